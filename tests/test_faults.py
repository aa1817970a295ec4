"""Fault injection: every stage killed at every write point of its commit.

A kill is ``DENSE_EDGE_FAULT=<stage>:<point>`` (an exception the code does not catch, like
Ctrl-C or SIGKILL for what is on disk). After it: the output folder holds either the old
complete output or the new one, never a mix and never nothing; the next run reuses or rebuilds;
no temporary folders stay behind.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import torch

from dense_edge.errors import StageError
from dense_edge.rundir import RunDir
from dense_edge.stages import POINTS, InjectedFault, read_record
from tests.conftest import digits_recipe
from tests.helpers import copy_run, fault, leftovers


def _digest(folder: Path) -> str:
    h = hashlib.sha256()
    for f in sorted(folder.rglob("*")):
        if f.is_file():
            h.update(f.relative_to(folder).as_posix().encode() + f.read_bytes())
    return h.hexdigest()


def _fp(folder: Path, manifest: bool = False) -> str | None:
    rec = read_record(folder, manifest=manifest)
    return None if rec is None else rec["fingerprint"]


# (stage name, build(run, variant, force) -> folder, record lives in manifest)
def _model(run: RunDir, variant: int, force: bool) -> Path:
    from dense_edge.train.stage import train_stage

    weights = run.root.parent / "weights.safetensors"
    recipe = digits_recipe(**{"model.weights": str(weights), "seed": variant})
    return train_stage(recipe, run, force=force).path


def _onnx(run: RunDir, variant: int, force: bool) -> Path:
    from dense_edge.export import export_stage

    recipe = digits_recipe(**{"export.opset": 20 - variant})
    return export_stage(recipe, run, force=force).path.parent


def _int8(run: RunDir, variant: int, force: bool) -> Path:
    from dense_edge.calibrate.stage import calibrate_stage

    recipe = digits_recipe(
        **{
            "calibration.samples": 32,
            "calibration.source": "data",
            "calibration.method": ["minmax", "percentile"][variant],
        }
    )
    return calibrate_stage(recipe, run, profiles=["onnxruntime"], force=force)[0].path.parent


def _engine(run: RunDir, variant: int, force: bool) -> Path:
    from dense_edge.cli.options import with_target
    from dense_edge.compile.stage import compile_stage

    recipe = with_target(digits_recipe(), "onnxruntime", threads=variant + 1)
    return compile_stage(recipe, run, "onnxruntime", "fp32", force=force).path


STAGES = {
    "model": (_model, False),
    "onnx": (_onnx, False),
    "int8/onnxruntime": (_int8, False),
    "engines/onnxruntime-fp32": (_engine, True),
}


@pytest.fixture()
def run(tmp_path: Path, digits_exported: Path) -> RunDir:
    import shutil

    shutil.copy(digits_exported / "model" / "weights.safetensors", tmp_path / "weights.safetensors")
    return RunDir.at(copy_run(digits_exported, tmp_path / "run")).create()


@pytest.mark.slow
@pytest.mark.parametrize("point", POINTS)
@pytest.mark.parametrize("stage", list(STAGES))
def test_a_kill_while_replacing_keeps_the_old_output_or_lands_the_new(run, stage, point):
    build, in_manifest = STAGES[stage]
    old_folder = build(run, 0, True)  # a finished output, made with settings 0
    old_fp, old_digest = _fp(old_folder, in_manifest), _digest(old_folder)

    with fault(f"{stage}:{point}"), pytest.raises(InjectedFault):
        build(run, 1, True)  # --force with settings 1, killed at `point`

    # The next command starts by repairing what the kill left: the old complete output is
    # back, or the new one landed. Either way the folder is whole and nothing is left over.
    def settles() -> str:
        try:
            build(run, 0, False)  # reuses the old output when it is there
        except StageError as exc:
            assert "other inputs" in str(exc) and "--force" in str(exc)
            return "new"
        return "old"

    outcome = settles()
    assert not leftovers(run.root)
    if outcome == "old":
        assert point != "committed"  # a committed output must not vanish
        assert _fp(old_folder, in_manifest) == old_fp and _digest(old_folder) == old_digest
    else:
        assert point == "committed"
        assert build(run, 1, False)  # the new output is complete and reused as it is
    # And a forced rebuild after the kill completes normally.
    build(run, 1, True)
    assert _fp(old_folder, in_manifest) not in (None, old_fp)
    assert not leftovers(run.root)


@pytest.mark.parametrize("point", ["started", "built", "recorded", "committed"])
def test_a_kill_on_a_first_build_leaves_nothing_that_looks_finished(run, point):
    import shutil

    shutil.rmtree(run.root / "engines", ignore_errors=True)
    build, _ = STAGES["engines/onnxruntime-fp32"]
    with fault(f"engines/onnxruntime-fp32:{point}"), pytest.raises(InjectedFault):
        build(run, 0, False)
    folder = run.engine("onnxruntime", "fp32")
    assert folder.exists() == (point == "committed")
    build(run, 0, False)  # reuses (committed) or builds: no --force needed either way
    assert _fp(folder, True) is not None and not leftovers(run.root)


# -- training checkpoints --------------------------------------------------------------------

FAST = {"train.epochs": 3, "data.limit": 150}


@pytest.fixture(scope="module")
def straight(tmp_path_factory: pytest.TempPathFactory) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    from dense_edge.recipe import load_recipe
    from dense_edge.train.stage import train_stage

    run = RunDir.at(tmp_path_factory.mktemp("straight")).create()
    result = train_stage(load_recipe(None, FAST), run)
    return load_file(result.path / "weights.safetensors")


@pytest.mark.slow
@pytest.mark.parametrize("point", ["checkpoint-2", "epoch-2"])
def test_resume_after_a_kill_is_bit_identical(tmp_path, straight, point):
    """Killed while writing epoch 2's checkpoint (the epoch-1 one stays) or just after it."""
    from safetensors.torch import load_file

    from dense_edge.recipe import load_recipe
    from dense_edge.train.stage import train_stage

    recipe = load_recipe(None, FAST)
    run = RunDir.at(tmp_path).create()
    with fault(f"model:{point}"), pytest.raises(InjectedFault):
        train_stage(recipe, run)
    assert not run.model.exists() and run.checkpoint.exists()
    state = torch.load(run.checkpoint, weights_only=True)
    assert state["epoch"] + 1 == (1 if point == "checkpoint-2" else 2)
    resumed = train_stage(recipe, run, resume=True)
    assert [e["epoch"] for e in resumed.manifest["training"]["history"]] == [1, 2, 3]
    got = load_file(resumed.path / "weights.safetensors")
    assert got.keys() == straight.keys()
    for key, value in straight.items():
        assert torch.equal(value, got[key]), key
    assert not run.checkpoint.exists()


@pytest.mark.slow
@pytest.mark.parametrize("point", ["built", "swapped"])
def test_a_real_sigkill_during_compile_loses_nothing(run, point):
    """The process dies at the point (SIGKILL: no cleanup runs); the next command repairs."""
    import os
    import subprocess
    import sys

    from tests.conftest import DIGITS_SET, REPO

    args = [sys.executable, "-m", "dense_edge", "compile", "--out", str(run.root), "--target",
            "onnxruntime", "--precision", "fp32", "--set", DIGITS_SET]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    assert subprocess.run(args, env=env, cwd=REPO, capture_output=True).returncode == 0
    engine = run.engine("onnxruntime", "fp32")
    old = _digest(engine)
    killed = subprocess.run(
        [*args, "--threads", "2", "--force"],
        env={**env, "DENSE_EDGE_FAULT": f"engines/onnxruntime-fp32:{point}:KILL"},
        cwd=REPO,
        capture_output=True,
    )
    assert killed.returncode == -9
    assert leftovers(run.root)  # what a kill leaves: a temp (and, swapped, the old) folder
    again = subprocess.run(args, env=env, cwd=REPO, capture_output=True, text=True)
    assert again.returncode == 0, again.stderr  # the old engine is back, whole, and reused
    assert "(reused)" in again.stdout and _digest(engine) == old
    assert not leftovers(run.root)


def test_the_write_probe_names_a_full_disk(tmp_path, monkeypatch):
    """A runtime that failed writing, in words of its own, is checked by a write of the same
    size: on a full disk (here /dev/full, a real ENOSPC) that write names the folder and the fix."""
    import os

    from dense_edge.errors import UserError
    from dense_edge.stages import room_for

    (tmp_path / f".dense-edge-probe-{os.getpid()}").symlink_to("/dev/full")
    with pytest.raises(UserError, match=r"cannot write .*engines \(No space left on device\) "
                                        r"\(free disk space"):  # fmt: skip
        room_for(tmp_path, 4096, shown=tmp_path / "engines")
    assert not list(tmp_path.iterdir())  # the probe is gone
    room_for(tmp_path, 4096)  # room enough: nothing raised, nothing left
    assert not list(tmp_path.iterdir())
