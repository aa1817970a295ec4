"""Shared by the densenet121 benchmarks: random weights, synthetic calibration JPEGs, a recipe.

Random weights and synthetic images do not change any cost measured here: every activation is
observed and every kernel runs whatever the values are.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def write_images(folder: Path, n: int, seed: int = 0) -> None:
    """``n`` 256x256 JPEGs of smooth random colour fields."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        small = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
        img = Image.fromarray(small).resize((256, 256), Image.Resampling.BICUBIC)
        img.save(folder / f"img{i:04d}.jpg", quality=90)


def densenet121_run(tmp: Path, calibration_images: int, **overrides: Any) -> tuple[Any, Any]:
    """(recipe, run directory) for a random-weight densenet121 with a calibration folder."""
    import torch

    from dense_edge import models
    from dense_edge.recipe import load_recipe
    from dense_edge.rundir import RunDir

    write_images(tmp / "cal", calibration_images)
    torch.manual_seed(0)
    weights = tmp / "densenet121.pth"
    torch.save(models.create("densenet121").state_dict(), weights)
    recipe = load_recipe(
        ROOT / "recipes" / "densenet121-imagenet.yaml",
        {
            "model.weights": str(weights),
            "calibration.source": str(tmp / "cal"),
            "calibration.samples": calibration_images,
            **overrides,
        },
    )
    return recipe, RunDir.at(tmp / "run").create()
