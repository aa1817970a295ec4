"""Calibration methods x profiles on the digits quick start: top-1 drop and agreement on the
test split (the split no calibration or accuracy-aware step ever sees).

    python bench/calibration_methods.py [--run runs/digits]

Trains (or reuses) the quick-start model in the run directory, then calibrates every profile
with every method; ONNX profiles are measured with ONNX Runtime, openvino with OpenVINO (f32 for
the ops NNCF leaves in float).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", default=str(ROOT / "runs" / "digits"))
    ap.add_argument("--concat", default="float", choices=["float", "shared"])
    a = ap.parse_args()
    os.environ.setdefault("DENSE_EDGE_QUIET", "1")
    import openvino as ov

    from dense_edge.calibrate.stage import calibrate_stage
    from dense_edge.data import Preprocess, load_splits
    from dense_edge.recipe import load_recipe
    from dense_edge.rundir import RunDir
    from dense_edge.targets.onnxruntime.runner import OnnxRuntimeRunner

    run = RunDir.at(a.run).create()
    base = load_recipe(ROOT / "recipes" / "digits.yaml")

    def onnx_top1(path: Path, x: np.ndarray) -> np.ndarray:
        with OnnxRuntimeRunner(path) as r:
            return r.infer_all(x, 128).argmax(1)

    def ov_top1(path: Path, x: np.ndarray) -> np.ndarray:
        c = ov.Core().compile_model(str(path), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
        return np.concatenate([c(x[i : i + 128])[0] for i in range(0, len(x), 128)]).argmax(1)

    rows = []
    ref = y = None
    for method in ("minmax", "percentile", "entropy", "mse"):
        recipe = load_recipe(
            ROOT / "recipes" / "digits.yaml",
            {"calibration.method": method, "calibration.concat": a.concat},
        )
        profiles = ["onnxruntime", "tensorrt"] + (["openvino"] if method == "minmax" else [])
        results = calibrate_stage(recipe, run, profiles=profiles)
        if ref is None:
            manifest_pre = Preprocess.from_dict(results[0].record and _pre(run))
            test = load_splits(base, manifest_pre).test
            x, y = test.to_array(manifest_pre), test.labels
            ref = onnx_top1(run.onnx_model, x)
            float_top1 = (ref == y).mean()
        for r in results:
            got = ov_top1(r.path, x) if r.profile == "openvino" else onnx_top1(r.path, x)
            name = "nncf (own ranges)" if r.profile == "openvino" else method
            rows.append(
                (
                    r.profile,
                    name,
                    (got == y).mean(),
                    ((ref == y).mean() - (got == y).mean()) * 100,
                    (got == ref).mean(),
                )
            )
    print(f"digits test split: {len(y)} images, float top-1 {float_top1:.4f}")
    print(f"TensorRT Concat treatment: {a.concat}")
    print(f"{'profile':<13}{'method':<19}{'int8 top-1':>11}{'drop (pts)':>12}{'agreement':>11}")
    for profile, method, top1, drop, agree in sorted(rows):
        print(f"{profile:<13}{method:<19}{top1:>11.4f}{drop:>12.2f}{agree:>11.4f}")


def _pre(run):  # type: ignore[no-untyped-def]
    import json

    return json.loads((run.model / "manifest.json").read_text())["preprocess"]


if __name__ == "__main__":
    main()
