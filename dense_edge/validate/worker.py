"""Measuring one model in a process of its own.

Every engine (and the float PyTorch model) is validated in a fresh process, so runtimes never
share the CPU's thread pools with each other, and the process's peak resident memory is the
engine's own. The parent writes a spec, the worker writes ``result.json`` and ``logits.npy``.
The worker reads the evaluation split in batches from the run's cache
(:mod:`dense_edge.validate.split_cache`), never all of it at once.

    python -m dense_edge.validate.worker SPEC.json
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from pathlib import Path
from typing import TypedDict, cast

import numpy as np

from dense_edge.errors import UserError
from dense_edge.records import EngineAccuracy, Latency
from dense_edge.targets.base import Runner, RunnerDescription
from dense_edge.targets.pytorch.runner import PyTorchRunner
from dense_edge.targets.registry import load_runner
from dense_edge.validate.latency import measure_samples
from dense_edge.validate.split_cache import count, read_batches, read_rows


class _SubjectKeys(TypedDict):
    name: str  # the report row's name
    kind: str  # "pytorch" (the float model) or "bundle" (an engine)
    path: str  # the model folder or the engine bundle


class Subject(_SubjectKeys, total=False):
    """A model to measure."""

    cuda: bool  # the float model on the GPU


class WorkerSpec(Subject, total=False):
    """What the parent asks of one worker (written as ``spec.json``)."""

    images: str  # the cached split (``images.npy``)
    out: str  # the folder the worker writes into
    accuracy: bool  # compute logits on every image (round 0, unless cached)
    batch_sizes: list[int]
    warmup: int
    iterations: int
    time_budget_s: float | None
    eval_batch: int


class WorkerResult(TypedDict, total=False):
    """What one worker measured (``result.json``), and what the parent adds to it."""

    cold_start_s: float
    latency: dict[str, Latency]
    peak_rss_mib: float
    baseline_rss_mib: float
    runner: RunnerDescription  # the runner's own description
    logits_file: str  # the parent's: where the worker wrote its logits
    logits: np.ndarray  # the parent's: logits cached from an earlier validation
    accuracy: EngineAccuracy  # the parent's: the logits scored


def _runner(spec: WorkerSpec) -> Runner:
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


EVAL_BATCH = 8  # images per call when the split is evaluated (``eval_batch`` in the spec)


def _trim_heap() -> None:
    """Give the memory freed by the last batch back to the system (glibc only; elsewhere a
    no-op). glibc keeps freed blocks in its arenas, one per thread that allocated them, and
    reuses them in an order the thread timing decides: the same float worker's peak on the same
    1,000 images at batch 32 read 762 and 1,041 MB in two runs (bench/README.md, validation at
    scale). Batches of 8 keep every block that varies four times smaller; mapping every large
    block on its own instead (mallopt) made the float pass 2.5x slower in page faults."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _write_logits(runner: Runner, images: Path, spec: WorkerSpec, path: Path) -> None:
    """The runner's logits on every cached image, a batch at a time, appended to ``path`` (a
    ``.npy``) as they come: the worker never holds more than one batch of images or logits."""
    n, start = count(images), 0
    with open(path, "wb") as fh:
        for x in read_batches(images, spec.get("eval_batch", EVAL_BATCH)):
            y = np.ascontiguousarray(runner.infer(x))
            if start == 0:
                header = {"descr": np.lib.format.dtype_to_descr(y.dtype),
                          "fortran_order": False, "shape": (n, *y.shape[1:])}  # fmt: skip
                np.lib.format.write_array_header_2_0(fh, header)
            fh.write(y.tobytes())
            start += len(y)
            del x, y
            _trim_heap()
        if start == 0:  # an empty split: an empty array, still a valid .npy
            np.save(fh, np.zeros((0, 0), np.float32))


def run(spec: WorkerSpec) -> WorkerResult:
    images = Path(spec["images"])
    baseline = peak_rss_mib()
    t0 = time.perf_counter()
    runner = _runner(spec).activate()
    runner.infer(read_rows(images, 0, 1))
    cold = time.perf_counter() - t0
    try:
        # timed first, before the split's batches have been through the heap
        latency: dict[str, Latency] = {}
        for b in spec["batch_sizes"]:
            stats, times, wall = measure_samples(
                runner,
                read_rows(images, 0, max(b, 1)),
                batch=b,
                warmup=spec["warmup"],
                iterations=spec["iterations"],
                time_budget_s=spec.get("time_budget_s"),
                show_progress=False,
            )
            entry = cast(Latency, stats.to_dict())  # LatencyStats' fields are Latency's
            entry["samples_ms"] = [round(t * 1000, 4) for t in times]
            entry["wall_samples_ms"] = [round(t * 1000, 4) for t in wall]  # pooled, then dropped
            latency[str(b)] = entry
        if spec.get("accuracy", True):
            _write_logits(runner, images, spec, Path(spec["out"]) / "logits.npy")
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
