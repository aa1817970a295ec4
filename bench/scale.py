"""Validation at scale: peak memory and time of ``dense-edge validate`` for 1,000 to 20,000 images.

An image folder of N synthetic 224x224 JPEGs per N (written once, reused, under
``$DENSE_EDGE_BENCH_DATA`` or /tmp/dense-edge-scale), a random-weight 1000-class densenet121,
one OpenVINO int8 engine built once; then ``dense-edge validate`` per N in a process of its own.
Printed per N: the peak resident memory of validate's whole process tree (the sum over its
processes, sampled every 0.2 s: the decoding workers and each model's worker included), the
wall time, the images/s of the evaluation (N / wall: decode, the float model and the engine over
every image) and the engine's own throughput at batch 8 (OpenVINO's clock, from the report).

Labels: every test image is in class 0 and the classifier's bias favours class 0, so the float
reference is sound (validation rightly refuses one at chance) and the engine is judged; random
weights otherwise change no cost measured here. ``train/`` holds one small image per class, so
the folder names the model's 1000 classes.

    python bench/scale.py [N ...]        # default 1000 5000 20000 20000

The last N given twice is validated twice in a row: the second time the float model's logits
come from the run's cache (the "float model" column says "cached" when validate skipped it).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("DENSE_EDGE_BENCH_DATA", "/tmp/dense-edge-scale"))
CLASSES = 1000
SIZES = (1_000, 5_000, 20_000, 20_000)


def _jpegs(folder: Path, n: int, side: int, seed: int) -> None:
    """``n`` JPEGs of smooth random colour fields, written once (a marker says it is complete)."""
    from PIL import Image

    done = folder / ".complete"
    if done.exists():
        return
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        small = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
        Image.fromarray(small).resize((side, side), Image.Resampling.BICUBIC).save(
            folder / f"img{i:05d}.jpg", quality=90
        )
    done.touch()


def image_folder(n: int) -> Path:
    root = DATA / f"images-{n}"
    if not (root / ".complete").exists():
        for c in range(CLASSES):
            _jpegs(root / "train" / f"c{c:04d}", 1, 32, c)
        _jpegs(root / "test" / "c0000", n, 224, 1_000_000 + n)
        (root / ".complete").touch()
    return root


def _overrides(data_root: Path) -> list[str]:
    return ["--set", "data.skip_corrupt=false", "--set", f"data.root={data_root}",
            "--set", "validate.limit=1000000", "--set", "validate.rounds=1",
            "--set", "validate.batch_sizes=[8]", "--set", "validate.warmup=3",
            "--set", "validate.iterations=30"]  # fmt: skip


def build_run() -> Path:
    """RUN/ with the model, its int8 OpenVINO engine (built once, from 64 calibration images)."""
    run = DATA / "run"
    if (run / "engines" / "openvino-int8" / "manifest.json").exists():
        return run
    import torch

    from dense_edge import models

    torch.manual_seed(0)
    model = models.create("densenet121", num_classes=CLASSES)
    with torch.no_grad():
        model.classifier.bias[0] += 100.0  # every image is class 0 (see the docstring)
    DATA.mkdir(parents=True, exist_ok=True)
    weights = DATA / "densenet121-1000.pth"
    torch.save(model.state_dict(), weights)
    _jpegs(DATA / "cal", 64, 224, 7)
    from dense_edge.compile.stage import compile_stage
    from dense_edge.export import export_stage
    from dense_edge.recipe import load_recipe
    from dense_edge.recipe.loader import parse_set_option
    from dense_edge.rundir import RunDir
    from dense_edge.train.stage import train_stage

    overrides = dict(parse_set_option(a) for a in _overrides(image_folder(8))[1::2])
    recipe = load_recipe(ROOT / "recipes" / "densenet121-imagenet.yaml", {
        **overrides, "model.weights": str(weights), "calibration.source": str(DATA / "cal"),
        "calibration.samples": 64, "calibration.method": "minmax"})  # fmt: skip
    rd = RunDir.at(run).create()
    train_stage(recipe, rd)
    export_stage(recipe, rd)
    compile_stage(recipe, rd, "openvino", "int8")
    return run


def _tree_rss_mib(root_pid: int) -> float:
    """Resident memory of ``root_pid`` and every descendant, summed (MiB)."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(d.name))
            rss[int(d.name)] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, IndexError, ValueError):
            continue
    total, todo = 0, [root_pid]
    while todo:
        pid = todo.pop()
        total += rss.get(pid, 0)
        todo += children.get(pid, [])
    return total / 2**20


def validate(run: Path, n: int) -> dict[str, float]:
    folder = image_folder(n)
    cmd = [sys.executable, "-m", "dense_edge", "validate", "--recipe",
           str(ROOT / "recipes" / "densenet121-imagenet.yaml"), "--out", str(run),
           "--engine", "openvino-int8", *_overrides(folder)]  # fmt: skip
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    peak = 0.0
    while proc.poll() is None:
        peak = max(peak, _tree_rss_mib(proc.pid))
        time.sleep(0.2)
    wall = time.perf_counter() - t0
    err = proc.stderr.read() if proc.stderr else ""
    if proc.returncode not in (0, 1):  # 1: a verdict other than PASSED, still measured
        raise SystemExit(f"validate failed for N={n}:\n{err[-3000:]}")
    said = " ".join(err.split())  # the console may wrap its lines
    cached = "logits on these" in said and "are cached" in said  # validate says when it skips it
    report = json.loads((run / "report" / "report.json").read_text())
    engine = next(e for e in report["engines"] if e["name"] == "openvino-int8")
    ref = next(e for e in report["engines"] if e.get("is_reference"))
    return {"n": n, "peak_rss_mib": peak, "wall_s": wall, "eval_ips": n / wall,
            "engine_ips_b8": engine["latency"]["8"]["throughput_ips"],
            "worker_rss_mib": max(engine["peak_rss_mib"], ref["peak_rss_mib"]),
            "samples": report["evaluation"]["samples"],
            "float_model": "cached" if cached else "ran"}  # fmt: skip


def _machine() -> str:
    model = next((line.split(":", 1)[1].strip() for line in
                  subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines()
                  if line.startswith("Model name")), "?")  # fmt: skip
    return f"{model}, {os.cpu_count()} CPUs, load average {os.getloadavg()}"


def main() -> None:
    sizes = [int(a) for a in sys.argv[1:]] or list(SIZES)
    print(f"start: {_machine()}", flush=True)
    run = build_run()
    print(f"{'N':>7} {'peak RSS tree MiB':>18} {'wall s':>8} {'eval img/s':>11} "
          f"{'engine img/s b8':>16} {'worker RSS MiB':>15} {'float model':>12}",
          flush=True)  # fmt: skip
    for n in sizes:
        image_folder(n)
        r = validate(run, n)
        assert r["samples"] == n, r
        print(f"{n:>7} {r['peak_rss_mib']:>18.0f} {r['wall_s']:>8.0f} {r['eval_ips']:>11.1f} "
              f"{r['engine_ips_b8']:>16.1f} {r['worker_rss_mib']:>15.0f} {r['float_model']:>12}",
              flush=True)  # fmt: skip
    print(f"end: {_machine()}", flush=True)


if __name__ == "__main__":
    main()
