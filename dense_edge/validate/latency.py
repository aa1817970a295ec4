"""One latency harness for every runner: the float model and each engine are timed the same way.

Warm-up, then iterations until either ``iterations`` runs or ``time_budget_s`` has passed (at
least ``min_iterations``). Percentiles are over single ``infer`` calls on one fixed batch, so they
are per-batch latency; throughput is images per second at that batch size. Runners synchronise
inside ``infer`` (the CUDA ones time with CUDA events), so wall time is the time to a result.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from dense_edge.progress import bar, no_bar
from dense_edge.targets.base import Runner


@dataclass(frozen=True)
class LatencyStats:
    batch: int
    iterations: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    min_ms: float
    max_ms: float
    throughput_ips: float  # images per second

    def to_dict(self) -> dict[str, Any]:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def summarize(times_s: list[float], batch: int) -> LatencyStats:
    ms = np.asarray(times_s, dtype=np.float64) * 1000.0
    p50 = float(np.percentile(ms, 50))
    return LatencyStats(
        batch=batch,
        iterations=len(ms),
        p50_ms=p50,
        p90_ms=float(np.percentile(ms, 90)),
        p99_ms=float(np.percentile(ms, 99)),
        mean_ms=float(ms.mean()),
        min_ms=float(ms.min()),
        max_ms=float(ms.max()),
        throughput_ips=batch * 1000.0 / p50 if p50 > 0 else float("inf"),
    )


def measure(
    runner: Runner,
    sample: np.ndarray,
    *,
    batch: int,
    warmup: int = 10,
    iterations: int = 100,
    time_budget_s: float | None = None,
    min_iterations: int = 10,
    label: str = "",
    show_progress: bool = True,
) -> LatencyStats:
    """Time ``runner.infer`` on one batch of ``batch`` images made from ``sample`` (NCHW)."""
    reps = -(-batch // len(sample))
    x = np.ascontiguousarray(np.concatenate([sample] * reps)[:batch], dtype=np.float32)
    for _ in range(warmup):
        runner.infer(x)
    times: list[float] = []
    start = time.perf_counter()
    description = f"latency {label} b{batch}".strip()
    with bar(description, iterations) if show_progress else no_bar() as progress:
        for _ in range(iterations):
            t0 = time.perf_counter()
            runner.infer(x)
            times.append(time.perf_counter() - t0)
            progress.advance(1)
            spent = time.perf_counter() - start
            if time_budget_s is not None and spent > time_budget_s and len(times) >= min_iterations:
                break
    return summarize(times, batch)


def cold_start(make_runner: Any, sample: np.ndarray) -> tuple[Runner, float]:
    """Seconds from nothing to the first result: load/compile + one inference."""
    t0 = time.perf_counter()
    runner = make_runner().activate()
    runner.infer(np.ascontiguousarray(sample[:1], dtype=np.float32))
    return runner, time.perf_counter() - t0
