"""Our latency harness against OpenVINO's own ``benchmark_app`` on the same IR and settings.

    python bench/latency_vs_benchmark_app.py [--model densenet121|digits] [--rounds 11]

Builds (or takes) an OpenVINO engine bundle, then, in interleaved rounds, times it with
dense-edge's harness (the validate worker's code path: :func:`measure_samples` in a process of
its own) and with ``benchmark_app`` (``-api sync``, the bundle's own compile config through
``-load_config``: the same hint, precision and threads; ``-shape`` so the model is reshaped to
the batch size, as our OpenVINO runner compiles it per batch size; ``-inference_only true`` so
input filling is outside the loop, as ours is). Prints both medians per batch size and our
p50 / theirs per round, then the median over rounds with its 95% interval (order statistics over
the rounds; target: the median within 5%, i.e. 0.95..1.05). Both quote OpenVINO's own clock
(``InferRequest.latency``); our wall-clock p50 is printed beside it, to show what Python's call
overhead adds. On a shared machine whose speed swings within seconds, many short rounds beat a
few long ones: the ratio is taken within a round, where both ran seconds apart.

``--model densenet121`` (default) is torchvision's architecture at 224x224 with random weights,
fp32 (random weights change no cost); ``--model digits --run DIR`` uses DIR/engines/openvino-int8
of a digits run (0.1 ms a call: the harshest test of per-call overhead).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

CHILD = r"""
import json, os, sys
os.environ["DENSE_EDGE_QUIET"] = "1"
sys.path.insert(0, {root!r})
import numpy as np
from dense_edge.targets.registry import load_runner
from dense_edge.validate.latency import measure_samples
runner = load_runner({path!r})
sample = np.load({sample!r})
with runner:
    stats, _, _ = measure_samples(runner, sample, batch={batch}, warmup=10, iterations=100000,
                               time_budget_s={seconds}, show_progress=False)
print(json.dumps({{"p50_ms": stats.p50_ms, "wall_p50_ms": stats.wall_p50_ms,
                  "n": stats.iterations}}))
"""


def ours(bundle: Path, sample: Path, batch: int, seconds: float) -> tuple[float, float, int]:
    code = CHILD.format(root=str(ROOT), path=str(bundle), sample=str(sample), batch=batch,
                        seconds=seconds)  # fmt: skip
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-2000:])
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    return float(out["p50_ms"]), float(out["wall_p50_ms"]), int(out["n"])


def theirs(bundle: Path, config: Path, shape: list[int], seconds: float) -> tuple[float, int]:
    cmd = ["benchmark_app", "-m", str(bundle / "model.xml"), "-d", "CPU", "-api", "sync",
           "-load_config", str(config), "-shape", str(shape).replace(" ", ""),
           "-inference_only", "true", "-t", str(int(seconds))]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(proc.stdout[-2000:] + proc.stderr[-2000:])
    median = re.search(r"Median:\s+([\d.]+) (ms|us)", proc.stdout)
    count = re.search(r"Count:\s+(\d+) iterations", proc.stdout)
    if not median or not count:
        raise RuntimeError("no median in benchmark_app's output:\n" + proc.stdout[-2000:])
    scale = 1e-3 if median.group(2) == "us" else 1.0
    return float(median.group(1)) * scale, int(count.group(1))


def build_densenet121(tmp: Path) -> Path:
    from densenet121_setup import densenet121_run

    from dense_edge.compile.stage import compile_stage

    recipe, run = densenet121_run(tmp, 8)
    return compile_stage(recipe, run, "openvino", "fp32").path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", choices=["densenet121", "digits"], default="densenet121")
    ap.add_argument("--run", type=Path, help="digits: the run folder (with engines/openvino-int8)")
    ap.add_argument("--rounds", type=int, default=11)
    ap.add_argument(
        "--seconds",
        type=float,
        default=None,
        help="timing per measurement (default: digits 1.5, densenet121 5)",
    )
    ap.add_argument("--batches", default="1,8")
    a = ap.parse_args()
    batches = [int(b) for b in a.batches.split(",")]
    seconds = a.seconds or (1.5 if a.model == "digits" else 5.0)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        if a.model == "digits":
            if a.run is None:
                ap.error("--model digits needs --run DIR")
            bundle = a.run / "engines" / "openvino-int8"
        else:
            print("building densenet121 fp32 OpenVINO engine ...", flush=True)
            bundle = build_densenet121(tmp)
        manifest = json.loads((bundle / "manifest.json").read_text())
        config = tmp / "config.json"
        config.write_text(json.dumps({"CPU": {k: str(v) for k, v in manifest["config"].items()}}))
        shape = list(manifest["input_shape"])
        rng = np.random.default_rng(0)
        sample = tmp / "sample.npy"
        np.save(sample, rng.standard_normal((max(batches), *shape)).astype(np.float32))
        rows: dict[int, list[tuple[float, float, float]]] = {b: [] for b in batches}
        for r in range(a.rounds):
            for b in batches:
                # alternate who goes first, so drift within a round favours neither
                if r % 2 == 0:
                    o, ow, on = ours(bundle, sample, b, seconds)
                    t, tn = theirs(bundle, config, [b, *shape], seconds)
                else:
                    t, tn = theirs(bundle, config, [b, *shape], seconds)
                    o, ow, on = ours(bundle, sample, b, seconds)
                rows[b].append((o, t, ow))
                print(
                    f"  round {r + 1}/{a.rounds} batch {b}: ours {o:.4g} ms (n={on}, wall "
                    f"{ow:.4g}), benchmark_app {t:.4g} ms (n={tn}), ratio {o / t:.3f}",
                    flush=True,
                )
    import openvino as ov

    from dense_edge.validate.latency import median_ci_ranks

    name = "digits DenseNet 8x8 int8" if a.model == "digits" else "densenet121 224x224 fp32"
    print(f"\n{name}, OpenVINO {ov.get_version()} config {manifest['config']}; "
          f"{seconds:g} s per measurement, {a.rounds} interleaved rounds, medians")  # fmt: skip
    print(f"{'batch':>5}  {'ours p50 ms':>11}  {'benchmark_app':>13}  {'ours / theirs':>13}  "
          f"{'95% CI':>11}  {'ours wall / theirs':>18}  target")  # fmt: skip
    for b in batches:
        o = float(np.median([x[0] for x in rows[b]]))
        t = float(np.median([x[1] for x in rows[b]]))
        ratios = sorted(x[0] / x[1] for x in rows[b])
        ratio = float(np.median(ratios))
        lo, hi = median_ci_ranks(len(ratios))
        wall = float(np.median([x[2] / x[1] for x in rows[b]]))
        ok = "ok" if 0.95 <= ratio <= 1.05 else "OUTSIDE 5%"
        print(f"{b:>5}  {o:>11.4g}  {t:>13.4g}  {ratio:>13.3f}  "
              f"{ratios[lo]:>5.3f}-{ratios[hi]:<5.3f}  {wall:>18.3f}  {ok}")  # fmt: skip


if __name__ == "__main__":
    main()
