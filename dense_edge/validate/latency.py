"""One latency harness for every runner: the float model and each engine are timed the same way.

What is timed is the engine: the runner prepares its input and output buffers once
(:meth:`Runner.timed_call`: an OpenVINO infer request over shared input memory, an ONNX Runtime
IOBinding with a preallocated output), so per-call copies of our glue are not engine time. Where
the runtime times its own calls (OpenVINO, TensorRT), its clock is the one quoted, as its own
benchmark tool quotes it; the wall clock around each call is kept beside it (``wall_p50_ms``).

Warm-up, then iterations until either ``iterations`` runs or ``time_budget_s`` has passed (at
least ``min_iterations``). Percentiles are over single calls on one fixed batch, so they are
per-batch latency; throughput is images per second at that batch size.

The median comes with a confidence interval from order statistics (exact, distribution-free:
the ranks whose binomial(n, 1/2) coverage is at least ``CI_LEVEL``). The p99 is only reported
with at least ``P99_MIN_SAMPLES`` samples; with fewer it is ``None`` and the report says so.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from dense_edge.progress import bar, no_bar
from dense_edge.targets.base import WALL_CLOCK, Runner, TimedCall

CI_LEVEL = 0.95
P99_MIN_SAMPLES = 1000
# Clock names that device reports (schema version 1) carried before each runtime's clock had one
# name; what they were is read as today's name.
FORMER_CLOCKS = {"gpu compute (CUDA events)": "TensorRT GPU compute (CUDA events)"}


def clock_of(lat: Mapping[str, Any]) -> str:
    """The clock a report's latency entry was measured by, under today's names: ``"wall"`` when
    none is recorded (reports made before it was) or for any wall-clock variant."""
    clock = str(lat.get("clock") or WALL_CLOCK)
    if clock.startswith(WALL_CLOCK):
        return WALL_CLOCK
    return FORMER_CLOCKS.get(clock, clock)


def wall_p50_of(lat: Mapping[str, Any]) -> float | None:
    """A latency entry's wall-clock median: recorded, or its p50 when the wall clock measured it;
    None when neither (an old entry timed by a runtime's own clock)."""
    if lat.get("wall_p50_ms") is not None:
        return float(lat["wall_p50_ms"])
    return float(lat["p50_ms"]) if clock_of(lat) == WALL_CLOCK else None


@dataclass(frozen=True)
class LatencyStats:
    batch: int
    iterations: int
    p50_ms: float
    p50_ci_low_ms: float
    p50_ci_high_ms: float
    p90_ms: float
    p99_ms: float | None  # None: fewer than P99_MIN_SAMPLES samples
    mean_ms: float
    min_ms: float
    max_ms: float
    throughput_ips: float  # images per second at the median
    clock: str  # what measured: "wall", or the runtime's own clock (e.g. OpenVINO's)
    wall_p50_ms: float  # the median by the harness's wall clock around the call

    def to_dict(self) -> dict[str, Any]:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def median_ci_ranks(n: int, level: float = CI_LEVEL) -> tuple[int, int]:
    """0-based ranks (lo, hi) of the sorted sample bounding the median with ``level`` coverage.

    P(X_(lo) <= median <= X_(hi)) = P(lo < B <= hi) for B ~ binomial(n, 1/2) (1-based ranks
    lo+1..hi+1); the widest symmetric tail that stays under (1 - level) / 2 is cut off.
    """
    if n < 1:
        raise ValueError("no samples")
    alpha = (1.0 - level) / 2
    log_half = n * math.log(0.5)
    cdf, k = 0.0, 0
    # largest k with P(B <= k - 1) <= alpha: the k-th order statistic (1-based) is the lower end
    while k < n:
        p = math.exp(math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1) + log_half)
        if cdf + p > alpha:
            break
        cdf += p
        k += 1
    lo = max(k - 1, 0)  # 0-based index of the k-th order statistic (k >= 1), else the minimum
    hi = min(n - 1 - lo, n - 1)
    return lo, hi


def summarize(
    times_s: list[float], batch: int, *, clock: str = WALL_CLOCK, wall_s: list[float] | None = None
) -> LatencyStats:
    """Statistics of per-call times ``times_s`` (by ``clock``); ``wall_s``: the wall times, needed
    when ``clock`` is a runtime's own."""
    if clock != WALL_CLOCK and wall_s is None:
        raise ValueError(f"times by {clock!r} need their wall-clock times beside them")
    ms = np.sort(np.asarray(times_s, dtype=np.float64) * 1000.0)
    p50 = float(np.percentile(ms, 50))
    lo, hi = median_ci_ranks(len(ms))
    return LatencyStats(
        batch=batch,
        iterations=len(ms),
        p50_ms=p50,
        p50_ci_low_ms=float(ms[lo]),
        p50_ci_high_ms=float(ms[hi]),
        p90_ms=float(np.percentile(ms, 90)),
        p99_ms=float(np.percentile(ms, 99)) if len(ms) >= P99_MIN_SAMPLES else None,
        mean_ms=float(ms.mean()),
        min_ms=float(ms.min()),
        max_ms=float(ms.max()),
        throughput_ips=batch * 1000.0 / p50 if p50 > 0 else float("inf"),
        clock=clock,
        wall_p50_ms=p50 if wall_s is None else float(np.percentile(np.multiply(wall_s, 1e3), 50)),
    )


def batch_of(sample: np.ndarray, batch: int) -> np.ndarray:
    """``batch`` images made by repeating ``sample`` (NCHW), contiguous float32."""
    reps = -(-batch // len(sample))
    return np.ascontiguousarray(np.concatenate([sample] * reps)[:batch], dtype=np.float32)


def measure(
    runner: Runner,
    sample: np.ndarray,
    *,
    batch: int,
    warmup: int = 10,
    iterations: int = 1000,
    time_budget_s: float | None = None,
    min_iterations: int = 10,
    label: str = "",
    show_progress: bool = True,
) -> LatencyStats:
    """Time the engine on one batch of ``batch`` images made from ``sample`` (NCHW)."""
    return measure_samples(
        runner, sample, batch=batch, warmup=warmup, iterations=iterations,
        time_budget_s=time_budget_s, min_iterations=min_iterations, label=label,
        show_progress=show_progress,
    )[0]  # fmt: skip


def measure_samples(
    runner: Runner,
    sample: np.ndarray,
    *,
    batch: int,
    warmup: int = 10,
    iterations: int = 1000,
    time_budget_s: float | None = None,
    min_iterations: int = 10,
    label: str = "",
    show_progress: bool = True,
) -> tuple[LatencyStats, list[float], list[float]]:
    """:func:`measure`, and the raw per-call times in seconds: by the clock quoted, by the wall."""
    call = runner.timed_call(batch_of(sample, batch))
    for _ in range(warmup):
        call.run()
    description = f"latency {label} b{batch}".strip()
    with bar(description, iterations) if show_progress else no_bar() as progress:
        times, wall = sample_calls(
            call, iterations=iterations, time_budget_s=time_budget_s,
            min_iterations=min_iterations, advance=progress.advance,
        )  # fmt: skip
    return summarize(times, batch, clock=call.clock, wall_s=wall), times, wall


def sample_calls(
    call: TimedCall,
    *,
    iterations: int,
    time_budget_s: float | None = None,
    min_iterations: int = 1,
    advance: Callable[[int], object] | None = None,
) -> tuple[list[float], list[float]]:
    """Run ``call`` ``iterations`` times, or until ``time_budget_s`` is spent (at least
    ``min_iterations``): the per-call times by the call's clock, and by the wall clock, in s."""
    clock = time.perf_counter
    run, engine = call.run, call.engine_seconds
    wall: list[float] = []
    own: list[float] = []
    deadline = None if time_budget_s is None else clock() + time_budget_s
    for _ in range(iterations):
        t0 = clock()
        run()
        t1 = clock()
        wall.append(t1 - t0)
        if engine is not None:
            own.append(engine())
        if advance is not None:
            advance(1)
        if deadline is not None and t1 > deadline and len(wall) >= min_iterations:
            break
    return (own if engine is not None else wall), wall


def cold_start(make_runner: Any, sample: np.ndarray) -> tuple[Runner, float]:
    """Seconds from nothing to the first result: load/compile + one inference."""
    t0 = time.perf_counter()
    runner = make_runner().activate()
    runner.infer(np.ascontiguousarray(sample[:1], dtype=np.float32))
    return runner, time.perf_counter() - t0
