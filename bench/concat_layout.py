"""The chained concatenation layout against the torchvision one, engine by engine, in one run.

    python bench/concat_layout.py [--models densenet121,bc100] [--batches 1,8] [--rounds 5]
                                  [--engines ov-int8,ov-bf16,ov-f32,ort-int8,ort-fp32]
                                  [--accuracy]

Both layouts are exported from the *same* weights (``export.concat_layout``), compiled by the
same stages, and timed in interleaved rounds: each round runs every engine of both layouts, each
in a process of its own (no two runtimes' thread pools share the CPU), and the ratio chained /
torchvision is taken within a round. Printed: p50 per engine and batch (median over rounds), the
median ratio with a 95% interval (order statistics over the rounds, or min..max when there are
too few rounds for one), the traffic estimate of the ``tensorrt`` profile's int8 model in both
layouts (copies counted), and with ``--accuracy`` top-1 and agreement with the float model on
the digits test split for the int8 engines of both layouts (quick start's densenet-digits).

``densenet121`` is 224x224 with random weights, ``bc100`` DenseNet-BC-100 (k=12) at 32x32 with
random weights: weights change no cost. ``ov-bf16`` asks OpenVINO for bf16 inference precision;
on a CPU without bf16 instructions OpenVINO runs that request in f32 (the bench prints the
precision the compiled model reports).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

LAYOUTS = ("torchvision", "chained")
RAN: dict[str, str] = {}  # OpenVINO's inference precision, as the compiled model reports it
ENGINES = {  # name -> (target, precision, OpenVINO inference precision hint or None)
    "ov-int8": ("openvino", "int8", None),
    "ov-bf16": ("openvino", "fp32", "bf16"),
    "ov-f32": ("openvino", "fp32", "f32"),
    "ort-int8": ("onnxruntime", "int8", None),
    "ort-fp32": ("onnxruntime", "fp32", None),
}

CHILD = r"""
import json, os, sys
os.environ["DENSE_EDGE_QUIET"] = "1"
sys.path.insert(0, {root!r})
import numpy as np
from dense_edge.validate.latency import measure
from dense_edge.targets.registry import load_runner
hint = {hint!r}
if hint:
    import pathlib
    from dense_edge.targets.openvino.runner import OpenVinoRunner
    folder = pathlib.Path({path!r})
    manifest = json.loads((folder / "manifest.json").read_text())
    config = {{**(manifest.get("config") or {{}}), "INFERENCE_PRECISION_HINT": hint}}
    runner = OpenVinoRunner(folder / "model.xml", config=config)
else:
    runner = load_runner({path!r})
sample = np.load({sample!r})
out = {{}}
with runner:
    for b in {batches!r}:
        iters = {iterations} if b == 1 else max(8, {iterations} // 3)
        out[b] = measure(runner, sample, batch=b, warmup=3, iterations=iters,
                         show_progress=False).wall_p50_ms
    ran = None
    if hint:
        ran = str(runner.compiled.get_property("INFERENCE_PRECISION_HINT"))
print(json.dumps({{"ms": out, "ran": ran}}))
"""


def _child(path: Path, hint: str | None, sample: Path, batches: list[int], iters: int) -> Any:
    code = CHILD.format(root=str(ROOT), path=str(path), hint=hint, sample=str(sample),
                        batches=batches, iterations=iters)  # fmt: skip
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-2000:])
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    if got["ran"]:
        RAN[f"asked {hint}"] = got["ran"]
    return {int(k): v for k, v in got["ms"].items()}


def interval(ratios: list[float]) -> tuple[float, float, float]:
    """Median and a distribution-free 95% interval of the median (order statistics)."""
    from scipy.stats import binom

    r = sorted(ratios)
    n = len(r)
    med = float(np.median(r))
    k = int(binom.ppf(0.025, n, 0.5))  # P(X < k) <= 2.5%
    if k < 1:
        return med, r[0], r[-1]  # too few rounds for 95%: min..max
    return med, r[k - 1], r[n - k]


def _setup(model: str, tmp: Path, cal: int) -> dict[str, tuple[Any, Any]]:
    """(recipe, run) per layout: the same random weights, exported in each layout."""
    import torch
    from densenet121_setup import write_images

    from dense_edge import models
    from dense_edge.recipe import load_recipe
    from dense_edge.rundir import RunDir

    arch = "densenet121" if model == "densenet121" else "densenet-bc-100-12"
    write_images(tmp / "cal", cal)
    torch.manual_seed(0)
    weights = tmp / f"{model}.pth"
    torch.save(models.create(arch, num_classes=10).state_dict(), weights)
    over: dict[str, Any] = {
        "model.arch": arch,
        "model.num_classes": 10,
        "model.weights": str(weights),
        "calibration.source": str(tmp / "cal"),
        "calibration.samples": cal,
    }
    if model == "bc100":
        over.update({"preprocess.input_size": [32, 32], "preprocess.resize": [32, 32],
                     "preprocess.crop": False, "export.parity.max_abs_error": 1e-3})  # fmt: skip
    runs = {}
    for layout in LAYOUTS:
        recipe = load_recipe(
            ROOT / "recipes" / "densenet121-imagenet.yaml",
            {**over, "export.concat_layout": layout},
        )
        runs[layout] = (recipe, RunDir.at(tmp / model / layout).create())
    return runs


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="densenet121,bc100")
    ap.add_argument("--engines", default=",".join(ENGINES))
    ap.add_argument("--batches", default="1,8")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--iterations", type=int, default=20)
    ap.add_argument("--calibration-images", type=int, default=32)
    ap.add_argument("--accuracy", action="store_true")
    a = ap.parse_args()
    os.environ.setdefault("DENSE_EDGE_QUIET", "1")
    from dense_edge.calibrate.layout import relayout
    from dense_edge.calibrate.stage import calibrate_stage
    from dense_edge.calibrate.traffic import estimate
    from dense_edge.compile.stage import compile_stage
    from dense_edge.environment import cpu_info

    batches = [int(b) for b in a.batches.split(",")]
    engines = a.engines.split(",")
    print(f"CPU: {cpu_info()}; load average at start {os.getloadavg()}", flush=True)
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        built: list[tuple[str, str, str, Path, str | None, Path]] = []
        traffic: dict[str, dict[str, Any]] = {}
        for model in a.models.split(","):
            runs = _setup(model, tmp / model, a.calibration_images)
            for layout, (recipe, run) in runs.items():
                sample = tmp / model / "sample.npy"
                for eng in engines:
                    target, precision, hint = ENGINES[eng]
                    r = compile_stage(recipe, run, target, precision)
                    built.append((model, eng, layout, r.path, hint, sample))
                if not sample.exists():
                    shape = [8, *recipe_shape(run)]
                    np.save(sample, np.random.default_rng(0).random(shape, np.float32))
                import onnx

                q = calibrate_stage(recipe, run, profiles=["tensorrt"])[0].path
                qm = onnx.load(str(q))
                for shown in LAYOUTS:
                    m = qm if shown == layout else relayout(qm, shown)
                    t, t0 = estimate(m), estimate(m, count_copies=False)
                    traffic.setdefault(model, {})[f"{shown} (from {layout} export)"] = (t, t0)
        print(f"built {len(built)} engines; timing {a.rounds} interleaved rounds", flush=True)
        rounds: list[dict[tuple[str, str, str, int], float]] = []
        for i in range(a.rounds):
            cur: dict[tuple[str, str, str, int], float] = {}
            for model, eng, layout, path, hint, sample in built:
                for b, ms in _child(path, hint, sample, batches, a.iterations).items():
                    cur[(model, eng, layout, b)] = ms
            rounds.append(cur)
            print(f"  round {i + 1}/{a.rounds} done, load {os.getloadavg()[0]:.1f}", flush=True)

    print(f"\nCPU: {cpu_info()}; load average at end {os.getloadavg()}")
    print(f"p50 ms, median of {a.rounds} rounds; ratio chained / torchvision within a round")
    print(f"{'model':<12}{'engine':<10}{'batch':>6}{'torchvision':>13}{'chained':>10}"
          f"{'ratio':>8}  95% interval")  # fmt: skip
    for model in a.models.split(","):
        for eng in engines:
            for b in batches:
                tv = [rd[(model, eng, "torchvision", b)] for rd in rounds]
                ch = [rd[(model, eng, "chained", b)] for rd in rounds]
                med, lo, hi = interval([c / t for c, t in zip(ch, tv, strict=True)])
                print(f"{model:<12}{eng:<10}{b:>6}{np.median(tv):>13.2f}{np.median(ch):>10.2f}"
                      f"{med:>8.3f}  {lo:.3f}..{hi:.3f}")  # fmt: skip
    if RAN:
        print("OpenVINO inference precision: " + ", ".join(f"{k}, ran {v}" for k, v in RAN.items()))
    print("\ntensorrt profile, int8 model, estimated MB/image and kernels (copies counted / not)")
    for model, rows in traffic.items():
        for label, (t, t0) in rows.items():
            print(f"{model:<12}{label:<34}{t.total / 1e6:>8.3f} MB {t.kernels:>4} kernels   "
                  f"without copies {t0.total / 1e6:.3f} MB {t0.kernels} kernels")  # fmt: skip
    if a.accuracy:
        accuracy()


def recipe_shape(run: Any) -> list[int]:
    from dense_edge.fileio import read_json

    return list(read_json(run.model / "manifest.json")["input_shape"])


def accuracy() -> None:
    """Top-1 and agreement with float on the digits test split, int8 engines, both layouts."""
    from int8_models import top1

    from dense_edge.compile.stage import compile_stage
    from dense_edge.data import Preprocess, load_splits
    from dense_edge.export import export_stage
    from dense_edge.fileio import read_json
    from dense_edge.recipe import load_recipe
    from dense_edge.rundir import RunDir
    from dense_edge.targets.registry import load_runner

    print("\ndigits test split (quick start's densenet-digits), int8 engines")
    print(f"{'layout':<13}{'engine':<10}{'top-1':>8}{'agreement':>11}")
    base = ROOT / "runs" / "digits"
    for layout in LAYOUTS:
        recipe = load_recipe(ROOT / "recipes" / "digits.yaml", {"export.concat_layout": layout})
        run = RunDir.at(base if layout == "chained" else base.with_name("digits-tv")).create()
        if layout != "chained" and not (run.model / "manifest.json").exists():
            import shutil

            # the model comes from the chained run (the quick start's layout), copied here
            chained = load_recipe(
                ROOT / "recipes" / "digits.yaml", {"export.concat_layout": "chained"}
            )
            export_stage(chained, RunDir.at(base).create())
            shutil.copytree(base / "model", run.model, dirs_exist_ok=True)
        export_stage(recipe, run)
        pre = Preprocess.from_dict(read_json(run.model / "manifest.json")["preprocess"])
        test = load_splits(recipe, pre).test
        x, y = test.to_array(pre), np.asarray(test.labels)
        ref = top1(run.onnx_model, x)
        for eng in ("ov-int8", "ort-int8"):
            target, precision, _ = ENGINES[eng]
            path = compile_stage(recipe, run, target, precision).path
            with load_runner(path) as r:
                got = r.infer_all(x, 64).argmax(1)
            print(f"{layout:<13}{eng:<10}{(got == y).mean():>8.4f}{(got == ref).mean():>11.4f}")


if __name__ == "__main__":
    main()
