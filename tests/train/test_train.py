"""Training: the run-directory contract, reuse, exact resume, data-parallel under torchrun."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from dense_edge.errors import StageError
from dense_edge.recipe import load_recipe
from dense_edge.rundir import RunDir
from dense_edge.train import loop
from dense_edge.train.stage import train_stage
from tests.conftest import REPO

FAST = {"train.epochs": 3, "data.limit": 150}


def test_train_writes_weights_and_manifest(digits_run):
    manifest = json.loads((digits_run / "model" / "manifest.json").read_text())
    for key in ("arch", "num_classes", "classes", "input_shape", "preprocess", "seed", "versions"):
        assert key in manifest
    assert manifest["arch"] == "densenet-digits"
    assert manifest["input_shape"] == [1, 8, 8]
    assert manifest["preprocess"]["mean"] == [0.3053]
    assert 0.9 <= manifest["metrics"]["test_top1"] <= 1.0
    assert (digits_run / "model" / "weights.safetensors").exists()
    assert not (digits_run / "model" / "checkpoint").exists()


def test_a_current_stage_is_reused_and_force_redoes_it(tmp_path):
    recipe = load_recipe(None, {"train.epochs": 1, "data.limit": 60})
    run = RunDir.at(tmp_path).create()
    first = train_stage(recipe, run)
    assert not first.reused
    assert train_stage(recipe, run).reused
    assert not train_stage(recipe, run, force=True).reused
    changed = load_recipe(None, {"train.epochs": 1, "data.limit": 60, "train.lr": 0.05})
    with pytest.raises(StageError, match=r"other inputs: train\.lr 0\.1 -> 0\.05.*--force"):
        train_stage(changed, run)
    assert not train_stage(changed, run, force=True).reused


def test_resume_continues_exactly(tmp_path, monkeypatch):
    recipe = load_recipe(None, FAST)
    straight = train_stage(recipe, RunDir.at(tmp_path / "a").create())

    real_info = loop.info

    def interrupt_after_epoch_2(message):
        real_info(message)
        if "epoch 2/3:" in message:
            raise KeyboardInterrupt

    monkeypatch.setattr(loop, "info", interrupt_after_epoch_2)
    run = RunDir.at(tmp_path / "b").create()
    with pytest.raises(KeyboardInterrupt):
        train_stage(recipe, run)
    monkeypatch.setattr(loop, "info", real_info)
    assert not run.model.exists()  # nothing that looks finished
    with pytest.raises(StageError, match="--resume"):
        train_stage(recipe, run)
    resumed = train_stage(recipe, run, resume=True)
    assert [e["epoch"] for e in resumed.manifest["training"]["history"]] == [1, 2, 3]
    a = load_file(straight.path / "weights.safetensors")
    b = load_file(resumed.path / "weights.safetensors")
    for key in a:
        torch.testing.assert_close(a[key], b[key], msg=key)


def test_resume_refuses_a_changed_recipe(tmp_path, monkeypatch):
    recipe = load_recipe(None, FAST)
    run = RunDir.at(tmp_path).create()

    def stop(message):
        if "epoch 1/3:" in message:
            raise KeyboardInterrupt

    monkeypatch.setattr(loop, "info", stop)
    with pytest.raises(KeyboardInterrupt):
        train_stage(recipe, run)
    monkeypatch.undo()
    other = load_recipe(None, {**FAST, "train.lr": 0.01})
    with pytest.raises(StageError, match="different recipe"):
        train_stage(other, run, resume=True)


def test_importing_weights_instead_of_training(tmp_path, digits_run):
    weights = digits_run / "model" / "weights.safetensors"
    recipe = load_recipe(None, {"model.weights": str(weights)})
    result = train_stage(recipe, RunDir.at(tmp_path).create())
    original = json.loads((digits_run / "model" / "manifest.json").read_text())
    assert result.manifest["metrics"]["test_top1"] == pytest.approx(
        original["metrics"]["test_top1"]
    )
    assert result.manifest["source"]["weights"] == str(weights)


def test_an_imported_model_stays_the_runs_model_for_later_commands(tmp_path, digits_run):
    """`train --weights W` once; export/compile/run after it do not repeat --weights and must
    keep the imported model, not refuse it for lacking the recipe's training settings."""
    weights = digits_run / "model" / "weights.safetensors"
    run = RunDir.at(tmp_path).create()
    train_stage(load_recipe(None, {"model.weights": str(weights)}), run)
    again = train_stage(load_recipe(None, {}), run)
    assert again.reused and again.manifest["source"]["weights"] == str(weights)
    # Anything but the training settings still counts: another architecture is refused.
    with pytest.raises(StageError, match="other inputs"):
        train_stage(load_recipe(None, {"model.arch": "densenet-40-12"}), run)


@pytest.mark.slow
def test_torchrun_two_processes_with_gloo(tmp_path):
    env = {**os.environ, "DENSE_EDGE_QUIET": "1", "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
        "-m", "dense_edge", "train", "--out", str(tmp_path), "--epochs", "2",
    ]  # fmt: skip
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    manifest = json.loads((tmp_path / "model" / "manifest.json").read_text())
    assert manifest["training"]["world_size"] == 2
    assert manifest["metrics"]["test_top1"] > 0.5
