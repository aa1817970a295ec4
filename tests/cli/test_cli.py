"""The command line: stages listed, one-line errors with non-zero exits, doctor."""

from __future__ import annotations

import json

import click
from click.testing import CliRunner

from dense_edge.cli import cli
from tests.conftest import write_recipe


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_help_lists_the_stages():
    out = invoke("--help").output
    for stage in ("train", "doctor"):
        assert stage in out


def test_bad_recipe_is_one_line_and_exit_2(tmp_path):
    recipe = write_recipe(tmp_path / "r.yaml", "calibration:\n  samples: many\n")
    result = invoke("train", "--recipe", str(recipe), "--out", str(tmp_path / "run"))
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert lines == [f"error: {recipe}: calibration.samples: expected int, got 'many'"]
    assert not (tmp_path / "run" / "model").exists()


def test_missing_weights_file_names_the_flag(tmp_path):
    result = invoke("train", "--weights", str(tmp_path / "nope.pth"), "--out", str(tmp_path))
    assert result.exit_code == 2
    assert "model.weights: file not found" in result.output
    assert "--weights" in result.output


def test_unwritable_out_directory(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = invoke("train", "--out", str(blocker / "run"))
    assert result.exit_code == 2
    assert "cannot create directory" in result.output


def test_train_cli_then_reuse(tmp_path):
    args = ("train", "--out", str(tmp_path), "--epochs", "1", "--set", "data.limit=100")
    first = invoke(*args)
    assert first.exit_code == 0, first.output
    assert "test top-1" in first.output
    again = invoke(*args)
    assert "(reused)" in again.output


def test_doctor_reports_runtimes():
    result = invoke("doctor", "--json")
    assert result.exit_code == 0
    info = json.loads(result.output)
    assert info["onnxruntime"]["installed"]
    assert "CPUExecutionProvider" in info["onnxruntime"]["providers"]
    assert info["tensorrt"]["installed"] in (True, False)
    if not info["tensorrt"]["installed"]:
        assert info["tensorrt"]["reason"]
    table = invoke("doctor").output
    assert "tensorrt" in table and "onnxruntime" in table


def test_every_train_option_has_help():
    from dense_edge.cli.train import train

    missing = [p.name for p in train.params if isinstance(p, click.Option) and not p.help]
    assert missing == []


def test_run_takes_the_recipe_as_an_option_like_every_command(tmp_path):
    from dense_edge.cli.run import run

    assert "--recipe" in {o for p in run.params for o in getattr(p, "opts", [])}
    a = write_recipe(tmp_path / "a.yaml", "name: a\n")
    b = write_recipe(tmp_path / "b.yaml", "name: b\n")
    result = invoke("run", str(a), "--recipe", str(b), "--out", str(tmp_path / "run"))
    assert result.exit_code == 2 and "give the recipe once" in result.output
    bad = write_recipe(tmp_path / "bad.yaml", "train:\n  epochs: many\n")
    result = invoke("run", "--recipe", str(bad), "--out", str(tmp_path / "run"))
    assert result.exit_code == 2 and "train.epochs: expected int" in result.output
