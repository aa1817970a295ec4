"""Run folders never lose work: issue 13's numbered bugs, one test each, and its weak spots."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from dense_edge.cli import cli
from dense_edge.errors import RecipeError, StageError, UserError
from dense_edge.rundir import RunDir
from tests.conftest import REPO, digits_recipe
from tests.helpers import copy_run, digit_pngs, fault, leftovers

TINY = ["--set", "train.epochs=1", "--set", "data.limit=60"]


def _sha(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture()
def run(tmp_path: Path, digits_exported: Path) -> RunDir:
    return RunDir.at(copy_run(digits_exported, tmp_path / "run")).create()


# 1 --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["../../victim", "/tmp/victim", "a/b", "..", "a\\b"])
def test_a_recipe_name_is_a_name_not_a_path(tmp_path, name):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"name: {json.dumps(name)}\n")
    from dense_edge.recipe import load_recipe

    with pytest.raises(RecipeError, match=r"not a plain name.*--out"):
        load_recipe(recipe)


def test_force_never_deletes_a_folder_that_is_not_ours(tmp_path):
    victim = tmp_path / "run" / "model"
    victim.mkdir(parents=True)
    (victim / "thesis.tex").write_text("years of work")
    result = CliRunner().invoke(cli, ["train", "--out", str(tmp_path / "run"), "--force", *TINY])
    assert result.exit_code == 2, result.output
    assert "not made by dense-edge" in result.output
    assert (victim / "thesis.tex").read_text() == "years of work"


# 2 --------------------------------------------------------------------------------------------
def test_a_finished_model_is_not_replaced_without_force(run):
    weights = run.model / "weights.safetensors"
    before = _sha(weights)
    result = CliRunner().invoke(cli, ["train", "--out", str(run.root), "--set", "train.epochs=1"])
    assert result.exit_code == 2
    assert "train.epochs 15 -> 1" in result.output and "--force" in result.output
    assert _sha(weights) == before


def test_an_empty_recipe_does_not_overwrite_int8(run, tmp_path):
    from dense_edge.calibrate.stage import calibrate_stage

    first = digits_recipe(**{"calibration.samples": 32, "calibration.source": "data"})
    done = calibrate_stage(first, run, profiles=["onnxruntime"])[0]
    before = _sha(done.path)
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    result = CliRunner().invoke(
        cli, ["calibrate", "--recipe", str(empty), "--out", str(run.root), "--set",
              "train.epochs=15", "--profile", "onnxruntime"],
    )  # fmt: skip
    assert result.exit_code == 2
    assert "other inputs" in result.output and "--force" in result.output
    assert _sha(done.path) == before


# 3 --------------------------------------------------------------------------------------------
def test_force_builds_beside_the_old_model(tmp_path):
    args = ["train", "--out", str(tmp_path), *TINY]
    assert CliRunner().invoke(cli, args).exit_code == 0
    weights = tmp_path / "model" / "weights.safetensors"
    before = _sha(weights)
    with fault("model:epoch-1"), pytest.raises(BaseException, match="model:epoch-1"):
        CliRunner().invoke(cli, [*args, "--force"], catch_exceptions=False)  # killed
    assert _sha(weights) == before  # the finished model is still there
    with fault("model:built:ENOSPC"):  # the disk fills while writing the new model
        result = CliRunner().invoke(cli, [*args, "--force"])
    assert result.exit_code == 2 and "free disk space" in result.output
    assert _sha(weights) == before


# 4 --------------------------------------------------------------------------------------------
def test_a_crash_never_leaves_output_that_is_reused_for_other_settings(run):
    from dense_edge.calibrate.stage import calibrate_stage

    base = {"calibration.samples": 32, "calibration.source": "data"}
    minmax = digits_recipe(**base, **{"calibration.method": "minmax"})
    pct = digits_recipe(**base, **{"calibration.method": "percentile"})
    calibrate_stage(minmax, run, profiles=["onnxruntime"])
    for point in ("built", "recorded", "swapped"):
        with fault(f"int8/onnxruntime:{point}"), pytest.raises(BaseException, match=point):
            calibrate_stage(pct, run, profiles=["onnxruntime"], force=True)
        # the minmax model is never taken for the percentile one
        with pytest.raises(StageError, match=r"other inputs: method minmax -> percentile"):
            calibrate_stage(pct, run, profiles=["onnxruntime"])
        assert calibrate_stage(minmax, run, profiles=["onnxruntime"])[0].reused


def test_checkpoint_is_one_file():
    from dense_edge.train import loop

    assert not hasattr(loop, "CHECKPOINT_STATE")  # no separate weights / optimiser files
    assert RunDir.at("/x").checkpoint.name == "checkpoint.pt"


# 5 --------------------------------------------------------------------------------------------
def test_a_second_command_on_a_locked_run_says_who_holds_it(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys\nfrom dense_edge.rundir import RunDir, lock\n"
         f"with lock(RunDir.at({str(tmp_path)!r}), 'dense-edge train (holder)'):\n"
         "    print('held', flush=True)\n    sys.stdin.read()\n"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        env = {"DENSE_EDGE_LOCK_TIMEOUT": "0.3"}
        result = CliRunner(env=env).invoke(cli, ["train", "--out", str(tmp_path), *TINY])
        assert result.exit_code == 2
        line = result.output.strip()
        assert "\n" not in line and f"pid {holder.pid}" in line and "(holder)" in line
        assert not (tmp_path / "model").exists()
    finally:
        holder.communicate("", timeout=30)
    # released with its holder: the next command runs
    assert CliRunner().invoke(cli, ["train", "--out", str(tmp_path), *TINY]).exit_code == 0


# 6 --------------------------------------------------------------------------------------------
def test_recalibrating_with_the_same_settings_keeps_engines_current(run, monkeypatch):
    from dense_edge import manifest
    from dense_edge.calibrate.stage import calibrate_stage
    from dense_edge.compile.stage import compile_stage

    recipe = digits_recipe(**{"calibration.samples": 32, "calibration.source": "data"})
    compile_stage(recipe, run, "onnxruntime", "int8")
    # recalibrated later (a new `created` inside the int8 model), same settings
    monkeypatch.setattr(manifest, "now", lambda: "2031-01-01T00:00:00+00:00")
    calibrate_stage(recipe, run, profiles=["onnxruntime"], force=True)
    assert compile_stage(recipe, run, "onnxruntime", "int8").reused


# 7 --------------------------------------------------------------------------------------------
def test_a_file_where_a_stage_folder_belongs_is_one_line(run):
    import shutil

    shutil.rmtree(run.onnx)
    run.onnx.write_text("oops")
    result = CliRunner().invoke(cli, ["export", "--out", str(run.root), "--set",
                                      "train.epochs=15"])  # fmt: skip
    assert result.exit_code == 2
    assert str(run.onnx) in result.output and "remove or rename that file" in result.output
    run.onnx.unlink()
    again = CliRunner().invoke(cli, ["export", "--out", str(run.root), "--set", "train.epochs=15"])
    assert again.exit_code == 0, again.output
    assert not [p for p in run.root.iterdir() if p.name.startswith(".onnx")]


# 8: the cases are rows of tests/test_bad_input.py --------------------------------------------


# 9 --------------------------------------------------------------------------------------------
def test_a_corrupted_cache_entry_is_extracted_again(run, tmp_path, monkeypatch):
    from dense_edge import runtime
    from dense_edge.compile.stage import compile_stage
    from dense_edge.runtime.archive import pack

    engine = compile_stage(digits_recipe(), run, "onnxruntime", "fp32").path
    packed = pack(engine, tmp_path / "m.bundle")
    monkeypatch.setenv("DENSE_EDGE_CACHE", str(tmp_path / "cache"))
    runtime.load(packed).close()
    (entry,) = (tmp_path / "cache" / "bundles").iterdir()
    (entry / "labels.txt").write_text("flipped\n")  # a bad disk, an edit
    with runtime.load(packed) as model:  # still loads: the entry is rebuilt from the bundle
        assert model.manifest["target"] == "onnxruntime"
    (entry / "manifest.json").unlink()  # even without its manifest
    runtime.load(packed).close()


# 10 -------------------------------------------------------------------------------------------
def test_weights_respect_the_umask(digits_run):
    from dense_edge.fileio import UMASK

    for f in (digits_run / "model").iterdir():
        assert f.stat().st_mode & 0o777 == 0o666 & ~UMASK, f.name


# weak spots -----------------------------------------------------------------------------------
def test_a_flipped_byte_in_the_onnx_model_is_not_reused(run):
    from dense_edge.export import export_stage

    data = bytearray(run.onnx_model.read_bytes())
    data[len(data) // 2] ^= 0x01
    run.onnx_model.write_bytes(bytes(data))
    with pytest.raises(StageError, match=r"model\.onnx does not match the sha256.*--force"):
        export_stage(digits_recipe(), run)
    assert not export_stage(digits_recipe(), run, force=True).reused


def test_engine_folders_hold_only_hashed_files_and_edits_are_refused(run):
    from dense_edge import runtime
    from dense_edge.compile.stage import compile_stage

    engine = compile_stage(digits_recipe(), run, "onnxruntime", "fp32").path
    manifest = json.loads((engine / "manifest.json").read_text())
    assert {p.name for p in engine.iterdir()} == {*manifest["files"], "manifest.json"}
    manifest["classes"][3] = "three"  # a tempting edit
    (engine / "manifest.json").write_text(json.dumps(manifest, indent=1))
    with pytest.raises(UserError, match=r"manifest\.json was edited"):
        runtime.load(engine)
    with pytest.raises(StageError, match=r"manifest\.json was edited.*--force"):
        compile_stage(digits_recipe(), run, "onnxruntime", "fp32")
    assert not compile_stage(digits_recipe(), run, "onnxruntime", "fp32", force=True).reused


def test_leftovers_of_killed_builds_are_cleaned_only_when_ours(run):
    from dense_edge.compile.stage import compile_stage

    engines = run.root / "engines"
    engines.mkdir(exist_ok=True)
    ours = engines / ".onnxruntime-fp32.dense-edge-tmp-abc"
    ours.mkdir()
    (ours / ".dense-edge-tmp").write_text("")
    theirs = engines / ".onnxruntime-fp32.dense-edge-tmp-xyz"
    theirs.mkdir()
    (theirs / "notes.txt").write_text("keep me")
    compile_stage(digits_recipe(), run, "onnxruntime", "fp32")
    assert not ours.exists() and (theirs / "notes.txt").exists()
    assert leftovers(run.root) == [theirs]


def test_duplicate_yaml_keys_are_refused(tmp_path):
    from dense_edge.recipe import load_recipe

    recipe = tmp_path / "r.yaml"
    recipe.write_text("train:\n  epochs: 3\n  epochs: 30\n")
    with pytest.raises(RecipeError, match=r"r\.yaml: duplicate key 'epochs' at line 3"):
        load_recipe(recipe)


def test_a_set_value_error_names_the_set_flag(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("train:\n  epochs: 3\n")
    result = CliRunner().invoke(
        cli, ["train", "--recipe", str(recipe), "--set", "train.epochs=many"]
    )
    assert result.exit_code == 2
    assert "--set train.epochs=many: train.epochs: expected int" in result.output
    assert "r.yaml" not in result.output


def test_reuse_decides_without_decoding_images(tmp_path, monkeypatch):
    """A reused run opens no image: listings, sizes and sha256 of the files decide."""
    from PIL import Image

    from dense_edge.compile.stage import compile_stage
    from dense_edge.recipe import load_recipe

    root = digit_pngs(tmp_path / "digits", per_class=8)
    calib = digit_pngs(tmp_path / "calib", per_class=3)
    recipe = load_recipe(None, {
        "data.source": "imagefolder", "data.root": str(root), "train.epochs": 1,
        "calibration.source": str(calib), "calibration.samples": 20,
        "export.parity.samples": 8,
    })  # fmt: skip
    run = RunDir.at(tmp_path / "run").create()
    compile_stage(recipe, run, "onnxruntime", "int8")
    opened: list[str] = []
    real_open = Image.open

    def counting_open(fp, *a, **k):  # type: ignore[no-untyped-def]
        opened.append(str(fp))
        return real_open(fp, *a, **k)

    monkeypatch.setattr(Image, "open", counting_open)
    assert compile_stage(recipe, run, "onnxruntime", "int8").reused
    assert opened == []
    # and a changed calibration image (not among the first 8) is noticed without decoding
    victim = sorted(calib.rglob("*.png"))[-1]
    Image.fromarray(255 - __import__("numpy").asarray(real_open(victim))).save(victim)
    opened.clear()
    with pytest.raises(StageError, match=r"int8.*other inputs: images"):
        compile_stage(recipe, run, "onnxruntime", "int8")
    assert opened == []


def test_a_corrupt_training_image_is_named_before_training(tmp_path):
    from dense_edge.recipe import load_recipe
    from dense_edge.train.stage import train_stage

    root = digit_pngs(tmp_path / "digits")  # enough per class for the split check, which runs first
    bad = root / "7" / "002.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    recipe = load_recipe(None, {"data.source": "imagefolder", "data.root": str(root),
                                "train.epochs": 1})  # fmt: skip
    from dense_edge.errors import DataError

    with pytest.raises(DataError, match=r"002\.png.*skip_corrupt"):
        train_stage(recipe, RunDir.at(tmp_path / "run").create())
    assert not (tmp_path / "run" / "model").exists()
    assert not (tmp_path / "run" / ".dense-edge" / "checkpoint.pt").exists()  # before epoch 1
