"""Shared fixtures: tiny real things (a trained digits DenseNet, recipes) in temporary folders."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.heapcheck import HEAP_CHECK_ENV
from tests.sigstack import dangling_alt_stack

os.environ.setdefault("DENSE_EDGE_QUIET", "1")
# Every process the tests start (validation and side-by-side workers, CLI runs, the timed-call
# probe) runs with glibc's heap checking on (tests/heapcheck.py says what works and why).
for _key, _value in HEAP_CHECK_ENV.items():
    os.environ.setdefault(_key, _value)

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _signal_stack_intact():  # type: ignore[no-untyped-def]
    """Fails the test after which this process's alternate signal stack is unmapped memory:
    the next signal would kill the whole suite with no traceback (tests/sigstack.py)."""
    yield
    problem = dangling_alt_stack()
    assert problem is None, f"{problem} after this test: a signal now kills the process"


def write_recipe(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def digits_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run directory holding a digits DenseNet trained for a few epochs (~97% top-1)."""
    from dense_edge.recipe import load_recipe
    from dense_edge.rundir import RunDir
    from dense_edge.train.stage import train_stage

    root = tmp_path_factory.mktemp("digits-run")
    recipe = load_recipe(None, DIGITS_OVERRIDES)
    train_stage(recipe, RunDir.at(root).create())
    return root


DIGITS_EPOCHS = 15  # ~98% top-1: close to the quick start's model, in a third of its time
DIGITS_OVERRIDES = {"train.epochs": DIGITS_EPOCHS}
DIGITS_SET = f"train.epochs={DIGITS_EPOCHS}"  # the same, as a --set option


def digits_recipe(**over):  # type: ignore[no-untyped-def]
    """The recipe the session's digits run was made with, plus ``over``."""
    from dense_edge.recipe import load_recipe

    return load_recipe(None, {**DIGITS_OVERRIDES, **over})


@pytest.fixture(scope="session")
def digits_exported(digits_run: Path) -> Path:
    """The digits run with its float ONNX exported (read-only: copy before writing)."""
    from dense_edge.export import export_stage
    from dense_edge.rundir import RunDir

    export_stage(digits_recipe(), RunDir.at(digits_run))
    return digits_run


@pytest.fixture()
def run_copy(tmp_path: Path, digits_exported: Path):  # type: ignore[no-untyped-def]
    """A private copy of the exported digits run (model/ and onnx/)."""
    import shutil

    from dense_edge.rundir import RunDir

    for part in ("model", "onnx"):
        shutil.copytree(digits_exported / part, tmp_path / "run" / part)
    return RunDir.at(tmp_path / "run")


VALIDATE_FAST = {"validate.batch_sizes": [1, 4], "validate.iterations": 8, "validate.warmup": 1}
# the engines the `validated` fixture builds, as the recipe's targets (so none is missing)
VALIDATED_TARGETS = [
    {"name": "onnxruntime", "precisions": ["fp32", "int8"]},
    {"name": "openvino", "precisions": ["int8"]},
]


@pytest.fixture(scope="session")
def validated(tmp_path_factory: pytest.TempPathFactory, digits_exported: Path):  # type: ignore[no-untyped-def]
    """A digits run with three engines, validated once: (run dir, report). Read-only."""
    import shutil

    from dense_edge.compile.stage import compile_stage
    from dense_edge.pipeline import validate_and_report
    from dense_edge.rundir import RunDir

    root = tmp_path_factory.mktemp("validated") / "run"
    for part in ("model", "onnx"):
        shutil.copytree(digits_exported / part, root / part)
    run = RunDir.at(root)
    recipe = digits_recipe(**VALIDATE_FAST)
    for target, precision in (
        ("onnxruntime", "fp32"),
        ("onnxruntime", "int8"),
        ("openvino", "int8"),
    ):
        compile_stage(recipe, run, target, precision)
    # the recipe's targets name exactly the engines built, so none is reported missing
    return run, validate_and_report(digits_recipe(**VALIDATE_FAST, targets=VALIDATED_TARGETS), run)


@pytest.fixture()
def fast_recipe(tmp_path: Path) -> Path:
    return write_recipe(
        tmp_path / "fast.yaml",
        "name: fast\ntrain:\n  epochs: 1\ndata:\n  limit: 120\n",
    )
