"""Measuring one model in a process of its own.

Every engine (and the float PyTorch model) is validated in a fresh process, so runtimes never
share the CPU's thread pools with each other, and the process's peak resident memory is the
engine's own. The parent writes a spec, the worker writes ``result.json`` and ``logits.npy``.

    python -m dense_edge.validate.worker SPEC.json
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from dense_edge.errors import UserError
from dense_edge.targets.base import Runner
from dense_edge.targets.pytorch.runner import PyTorchRunner
from dense_edge.targets.registry import load_runner
from dense_edge.validate.latency import measure_samples


def _runner(spec: dict[str, Any]) -> Runner:
    if spec["kind"] == "pytorch":
        device = "cuda" if spec.get("cuda") else "cpu"
        return PyTorchRunner(spec["path"], device=device)
    return load_runner(spec["path"])


def peak_rss_mib() -> float:
    """Peak resident memory of this process since it started (VmHWM).

    Not ``ru_maxrss``: Linux carries that across exec, so a worker would report the parent's
    peak from before it was exec'd.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run(spec: dict[str, Any]) -> dict[str, Any]:
    images = np.load(spec["images"])
    baseline = peak_rss_mib()
    t0 = time.perf_counter()
    runner = _runner(spec).activate()
    runner.infer(images[:1])
    cold = time.perf_counter() - t0
    try:
        if spec.get("accuracy", True):
            logits = runner.infer_all(images, spec.get("eval_batch", 32))
            np.save(Path(spec["out"]) / "logits.npy", logits)
        latency = {}
        for b in spec["batch_sizes"]:
            stats, times, wall = measure_samples(
                runner,
                images[: max(b, 1)],
                batch=b,
                warmup=spec["warmup"],
                iterations=spec["iterations"],
                time_budget_s=spec.get("time_budget_s"),
                show_progress=False,
            )
            entry = stats.to_dict()
            entry["samples_ms"] = [round(t * 1000, 4) for t in times]
            entry["wall_samples_ms"] = [round(t * 1000, 4) for t in wall]  # pooled, then dropped
            latency[str(b)] = entry
        described = runner.describe()
    finally:
        runner.deactivate()
    return {
        "cold_start_s": round(cold, 4),
        "latency": latency,
        "peak_rss_mib": round(peak_rss_mib(), 1),
        "baseline_rss_mib": round(baseline, 1),
        "runner": described,
    }


def main() -> None:
    spec_path = Path(sys.argv[1])
    spec = json.loads(spec_path.read_text())
    os.environ.setdefault("DENSE_EDGE_QUIET", "1")

    out = Path(spec["out"])
    try:
        result = run(spec)
    except UserError as exc:
        (out / "error.txt").write_text(str(exc))
        sys.exit(2)
    (out / "result.json").write_text(json.dumps(result, default=str))


if __name__ == "__main__":
    main()
