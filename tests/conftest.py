"""Shared fixtures: tiny real things (a trained digits DenseNet, recipes) in temporary folders."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("DENSE_EDGE_QUIET", "1")

REPO = Path(__file__).resolve().parents[1]


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
    recipe = load_recipe(None, {"train.epochs": 8})
    train_stage(recipe, RunDir.at(root).create())
    return root


@pytest.fixture()
def fast_recipe(tmp_path: Path) -> Path:
    return write_recipe(
        tmp_path / "fast.yaml",
        "name: fast\ntrain:\n  epochs: 1\ndata:\n  limit: 120\n",
    )
