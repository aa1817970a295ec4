"""The models INT8 benchmarks measure, and how they are measured (shared by
calibration_methods.py and modelopt_compare.py).

- ``digits``: the quick start (recipes/digits.yaml, densenet-digits on 8x8 digits), RUN runs/digits.
- ``deep``: DenseNet-BC-100 (k=12) on the digits resized to 32x32
  (recipes/densenet-bc-100-digits32.yaml), RUN runs/densenet-bc-100-digits32.
- ``densenet121``: torchvision's densenet121 (1000 classes, 224x224) with random weights
  (recipes/densenet121-imagenet.yaml), RUN runs/densenet121-random, calibrated on 32 synthetic
  JPEGs (bench/densenet121_setup.py). Bytes and kernels do not depend on the weights; it has
  no labelled test split, so its accuracy is not measured (``measure`` returns None).

``digits`` and ``deep`` are trained (or reused) in their run folders, exported, and measured on
their *test* split (never seen by calibration or accuracy-aware steps) with ONNX Runtime on the
CPU.
"""

from __future__ import annotations

import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MODELS = {
    "digits": ("recipes/digits.yaml", "runs/digits"),
    "deep": ("recipes/densenet-bc-100-digits32.yaml", "runs/densenet-bc-100-digits32"),
    "densenet121": ("recipes/densenet121-imagenet.yaml", "runs/densenet121-random"),
}
DENSENET121_CALIBRATION_IMAGES = 32  # keeps ModelOpt's and our CPU calibration short


@dataclass
class Bench:
    name: str
    recipe_path: Path
    run: Any  # RunDir
    x: np.ndarray  # test images, preprocessed (empty: no labelled test split)
    y: np.ndarray  # test labels
    ref: np.ndarray  # float model's top-1 on the test split
    overrides: dict[str, Any] = field(default_factory=dict)  # applied to every recipe load

    def recipe(self, **over: Any) -> Any:
        from dense_edge.recipe import load_recipe

        return load_recipe(self.recipe_path, {**self.overrides, **over})

    @property
    def labelled(self) -> bool:
        return len(self.y) > 0

    @property
    def float_top1(self) -> float:
        return float((self.ref == self.y).mean()) if self.labelled else float("nan")

    def measure(self, model_path: Path) -> tuple[float, float, float] | None:
        """(top-1, drop in points against float, agreement with float) on the test split, or
        None for a model without one (random-weight densenet121)."""
        if not self.labelled:
            return None
        got = top1(model_path, self.x)
        acc = float((got == self.y).mean())
        return acc, (self.float_top1 - acc) * 100, float((got == self.ref).mean())


def setup(name: str) -> Bench:
    from dense_edge.data import Preprocess, load_splits
    from dense_edge.export import export_stage
    from dense_edge.fileio import read_json
    from dense_edge.recipe import load_recipe
    from dense_edge.rundir import RunDir

    recipe_rel, run_rel = MODELS[name]
    recipe_path = ROOT / recipe_rel
    run = RunDir.at(ROOT / run_rel).create()
    if name == "densenet121":
        return _densenet121(recipe_path, run)
    recipe = load_recipe(recipe_path)
    export_stage(recipe, run)  # trains first if needed; reused when current
    pre = Preprocess.from_dict(read_json(run.model / "manifest.json")["preprocess"])
    test = load_splits(recipe, pre).test
    x, y = test.to_array(pre), test.labels
    return Bench(name, recipe_path, run, x, y, top1(run.onnx_model, x))


def _densenet121(recipe_path: Path, run: Any) -> Bench:
    """Random weights and synthetic calibration JPEGs, made once beside the run folder."""
    import torch
    from densenet121_setup import write_images

    from dense_edge import models
    from dense_edge.export import export_stage
    from dense_edge.recipe import load_recipe

    n = DENSENET121_CALIBRATION_IMAGES
    home = run.root.parent / (run.root.name + "-inputs")
    weights, cal = home / "densenet121.pth", home / f"cal{n}"
    if not weights.exists():
        home.mkdir(parents=True, exist_ok=True)
        torch.manual_seed(0)
        torch.save(models.create("densenet121").state_dict(), weights)
    if not cal.exists():
        write_images(cal, n)
    over = {"model.weights": str(weights), "calibration.source": str(cal),
            "calibration.samples": n}  # fmt: skip
    export_stage(load_recipe(recipe_path, over), run)
    none = np.zeros(0, np.int64)
    return Bench("densenet121", recipe_path, run, np.zeros((0, 3, 224, 224), np.float32), none,
                 none, over)  # fmt: skip


def top1(path: Path, x: np.ndarray) -> np.ndarray:
    from dense_edge.targets.onnxruntime.runner import OnnxRuntimeRunner

    with OnnxRuntimeRunner(path) as r:
        return r.infer_all(x, 64).argmax(1)


def placement(model: Any) -> Counter[str]:
    """Quantised inputs per reader op type: how many DQ'd activations each kind of op reads."""
    from dense_edge.calibrate.graph import Graph

    g = Graph(model)
    counts: Counter[str] = Counter()
    for dq in (n for n in model.graph.node if n.op_type == "DequantizeLinear"):
        q = g.producer.get(dq.input[0])
        if dq.input[0] in g.initializers or q is None or q.input[0] in g.initializers:
            continue  # weights
        for reader in g.consumers.get(dq.output[0], []):
            counts[reader.op_type] += 1
    return counts


def short_counts(c: Counter[str]) -> str:
    abbrev = {"BatchNormalization": "BN", "AveragePool": "AvgPool", "GlobalAveragePool": "GAP"}
    return " ".join(f"{abbrev.get(k, k)}:{v}" for k, v in sorted(c.items()))
