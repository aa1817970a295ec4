"""The two models INT8 benchmarks measure, and how they are measured (shared by
calibration_methods.py and modelopt_compare.py).

- ``digits``: the quick start (recipes/digits.yaml, densenet-digits on 8x8 digits), RUN runs/digits.
- ``deep``: DenseNet-BC-100 (k=12) on the digits resized to 32x32
  (recipes/densenet-bc-100-digits32.yaml), RUN runs/densenet-bc-100-digits32.

Both are trained (or reused) in their run folders, exported, and measured on their *test* split
(never seen by calibration or accuracy-aware steps) with ONNX Runtime on the CPU.
"""

from __future__ import annotations

import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MODELS = {
    "digits": ("recipes/digits.yaml", "runs/digits"),
    "deep": ("recipes/densenet-bc-100-digits32.yaml", "runs/densenet-bc-100-digits32"),
}


@dataclass
class Bench:
    name: str
    recipe_path: Path
    run: Any  # RunDir
    x: np.ndarray  # test images, preprocessed
    y: np.ndarray  # test labels
    ref: np.ndarray  # float model's top-1 on the test split

    def recipe(self, **over: Any) -> Any:
        from dense_edge.recipe import load_recipe

        return load_recipe(self.recipe_path, over)

    @property
    def float_top1(self) -> float:
        return float((self.ref == self.y).mean())

    def measure(self, model_path: Path) -> tuple[float, float, float]:
        """(top-1, drop in points against float, agreement with float) on the test split."""
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
    recipe = load_recipe(recipe_path)
    run = RunDir.at(ROOT / run_rel).create()
    export_stage(recipe, run)  # trains first if needed; reused when current
    pre = Preprocess.from_dict(read_json(run.model / "manifest.json")["preprocess"])
    test = load_splits(recipe, pre).test
    x, y = test.to_array(pre), test.labels
    return Bench(name, recipe_path, run, x, y, top1(run.onnx_model, x))


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
