"""Calibration methods x TensorRT layouts on the digits quick start and the deep model
(DenseNet-BC-100 on digits at 32x32): top-1, drop and agreement on the test split, and the
estimated bytes per image of each TensorRT layout.

    python bench/calibration_methods.py [--models digits,deep]

Each model is trained (or reused) in its run folder (bench/int8_models.py), then calibrated with
every method: the ``tensorrt`` profile (int8 Concats) with FP16 float parts (default) and with
its ``float_parts: fp32`` option, and the ``onnxruntime`` profile for reference. Q/DQ models run in
ONNX Runtime on the CPU (which inserts casts around FP16 ops it lacks kernels for: the accuracy
is the Q/DQ model's).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from int8_models import setup

METHODS = ("minmax", "percentile", "entropy", "mse")
VARIANTS = (  # (profile, float parts, label)
    ("tensorrt", "fp16", "tensorrt (fp16 float parts)"),
    ("tensorrt", "fp32", "tensorrt (fp32 float parts)"),
    ("onnxruntime", None, "onnxruntime"),
)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="digits,deep")
    a = ap.parse_args()
    os.environ.setdefault("DENSE_EDGE_QUIET", "1")
    from dense_edge.calibrate.stage import calibrate_stage
    from dense_edge.fileio import read_json

    for name in a.models.split(","):
        b = setup(name)
        rows = []
        for method in METHODS:
            for profile, float_parts, label in VARIANTS:
                over = {"calibration.method": method}
                if float_parts:
                    over["calibration.float_parts"] = float_parts
                r = calibrate_stage(b.recipe(**over), b.run, profiles=[profile], force=True)[0]
                top1, drop, agree = b.measure(r.path)
                mb = ""
                if profile == "tensorrt":
                    plan = read_json(r.path.parent / "plan.json")
                    mb = f"{plan['total_bytes_per_image'] / 1e6:.3f}"
                rows.append((label, method, top1, drop, agree, mb))
        # Leave the run's tensorrt model at the recipe's own settings.
        calibrate_stage(b.recipe(), b.run, profiles=["tensorrt"], force=True)
        print(
            f"\n{name}: {b.recipe().model.arch}, test split {len(b.y)} images, "
            f"float top-1 {b.float_top1:.4f}"
        )
        print(
            f"{'layout':<28}{'method':<12}{'int8 top-1':>11}{'drop (pts)':>12}"
            f"{'agreement':>11}{'MB/image':>10}"
        )
        for label, method, top1, drop, agree, mb in rows:
            print(f"{label:<28}{method:<12}{top1:>11.4f}{drop:>12.2f}{agree:>11.4f}{mb:>10}")


if __name__ == "__main__":
    main()
