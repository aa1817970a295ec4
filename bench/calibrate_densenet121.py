"""densenet121, 224x224, 256 calibration images: statistics + one method, timed; peak memory.

The images are 256 JPEGs (smooth random colour fields, 256x256) in a temporary folder, read with
the model's ImageNet preprocessing (resize 256, centre crop 224); weights are random. Neither
changes the cost: every activation is observed whatever its values.

    python bench/calibrate_densenet121.py [--method entropy] [--images 256]
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--method", default="entropy")
    ap.add_argument("--images", type=int, default=256)
    ap.add_argument("--profile", default="tensorrt")
    a = ap.parse_args()
    os.environ.setdefault("DENSE_EDGE_QUIET", "1")
    from densenet121_setup import densenet121_run

    from dense_edge.calibrate.stage import calibrate_stage
    from dense_edge.export import export_stage

    with tempfile.TemporaryDirectory() as tmp:
        recipe, run = densenet121_run(Path(tmp), a.images, **{"calibration.method": a.method})
        export_stage(recipe, run)  # not timed: the ONNX model is the stage's input
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        t0 = time.perf_counter()
        result = calibrate_stage(recipe, run, profiles=[a.profile])[0]
        wall = time.perf_counter() - t0
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    st = result.record["statistics"]
    print(f"densenet121 224x224, {a.images} calibration images, {os.cpu_count()} cores")
    print(f"statistics: {st['tensors']} tensors observed in {st['seconds']:.1f} s")
    print(
        f"{a.profile} profile with {a.method}: {wall:.1f} s in all "
        f"(image decoding, statistics, ranges, Q/DQ model, checker)  "
        f"(target <= 120 s)  {'ok' if wall <= 120 else 'OVER'}"
    )
    print(
        f"peak RSS {peak:.0f} MiB (before calibration {rss_before:.0f} MiB; "
        f"collector's own peak {st['peak_rss_mib']:.0f} MiB)"
    )


if __name__ == "__main__":
    main()
