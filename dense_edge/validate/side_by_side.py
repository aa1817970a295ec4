"""Timing two versions of each engine side by side: the latency half of ``report compare``.

Two validations made at different times on a shared machine cannot tell a regression from the
machine: its speed swings by up to 1.7x within minutes, more than most regressions. So when both
reports' engines are on this machine, ``report compare`` times them again *together*: every
engine version in a process of its own (loaded once, kept warm), and in each round the base and
the new version run one short burst each, back to back, in alternating order. Load that comes
and goes hits both alike, so the ratio new/base within a round is steady even when the
milliseconds are not (the same idea as ``asv continuous`` or a paired A/B test). A round is
itself cut into short slices that alternate (base, new, new, base, ...), so a neighbour's load
lasting a second or more lands on both versions of the same round.

The verdict for an engine and batch size is the median of the per-round ratios, with its
confidence interval from order statistics over the rounds (the same exact, distribution-free
method as the validation's p50 interval).

**CPU time beside wall time.** A neighbour's burst on a 2-core machine does not slow both
versions alike: the scheduler places each process's threads (and the neighbour) on the cores in
its own way slice by slice, so one version can wait for a core while the other does not, and
two identical engines read 16% apart by the wall clock. Waiting for a core costs wall time but
no CPU time. So each worker also reports its process's CPU time per call (all its threads)
over every slice, and for an engine that computes on the CPU the gate asks both clocks: a
regression is slower by the wall clock *and* by the CPU clock. A version that really does more
work (fp32 in place of int8) uses more CPU time whatever the load; one that waited for a core
does not. (A slowdown that costs no CPU time, such as fewer threads, shows as "wall clock
only".) Inputs are one fixed-seed standard-normal batch of
the model's input shape, the same for both versions: a DenseNet's cost does not depend on the
pixel values.

    python -m dense_edge.validate.side_by_side BUNDLE     (a worker; driven over stdin/stdout)
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, TypedDict

import numpy as np

from dense_edge import bundle as bundle_io
from dense_edge.errors import UserError
from dense_edge.progress import bar
from dense_edge.targets import registry
from dense_edge.targets.base import TimedCall
from dense_edge.targets.registry import load_runner
from dense_edge.validate.latency import CI_LEVEL, median_ci_ranks, sample_calls

DEFAULT_ROUNDS = 15  # the median ratio's 95% interval then drops the 3 extreme rounds each side
BURST_S = 0.4  # seconds of calls per version, batch and round
SLICES = 4  # each round's burst cut into this many alternating slices per version
MIN_CALLS = 3  # calls per slice at least, however slow the engine
WARMUP_CALLS = 5


@dataclass(frozen=True)
class Pair:
    """One engine in both reports: where each version's bundle is."""

    name: str
    base: Path
    new: Path


class PairedTimingRecord(TypedDict):
    """A :class:`PairedTiming` as numbers (rounded): ratios new/base and medians in ms."""

    engine: str
    batch: int
    rounds: int
    ratio: float
    ratio_ci_low: float
    ratio_ci_high: float
    base_p50_ms: float
    new_p50_ms: float
    cpu_ratio: float | None
    cpu_ratio_ci_low: float | None
    cpu_ratio_ci_high: float | None


class _Reply(TypedDict, total=False):
    """A timing worker's line: ready, an error, or a burst's call times and CPU time."""

    ready: bool
    error: str
    times_ms: list[float]
    cpu_ms: float | None


@dataclass(frozen=True)
class PairedTiming:
    """One engine at one batch size, base and new timed side by side."""

    name: str
    batch: int
    base_ms: tuple[float, ...]  # the base version's median call per round
    new_ms: tuple[float, ...]
    ratios: tuple[float, ...]  # new / base per round
    # new / base of the CPU time per call (all threads of each worker), per round; empty when
    # the engine does not compute on this CPU (a GPU engine) or the CPU clock is unavailable
    cpu_ratios: tuple[float, ...] = ()

    @property
    def ratio(self) -> float:
        return float(statistics.median(self.ratios))

    @property
    def ratio_ci(self) -> tuple[float, float]:
        ordered = sorted(self.ratios)
        lo, hi = median_ci_ranks(len(ordered), CI_LEVEL)
        return ordered[lo], ordered[hi]

    @property
    def cpu_ratio(self) -> float | None:
        return float(statistics.median(self.cpu_ratios)) if self.cpu_ratios else None

    @property
    def cpu_ratio_ci(self) -> tuple[float, float] | None:
        if not self.cpu_ratios:
            return None
        ordered = sorted(self.cpu_ratios)
        lo, hi = median_ci_ranks(len(ordered), CI_LEVEL)
        return ordered[lo], ordered[hi]

    def to_dict(self) -> PairedTimingRecord:
        lo, hi = self.ratio_ci
        cpu = self.cpu_ratio_ci
        return {
            "engine": self.name,
            "batch": self.batch,
            "rounds": len(self.ratios),
            "ratio": round(self.ratio, 4),
            "ratio_ci_low": round(lo, 4),
            "ratio_ci_high": round(hi, 4),
            "base_p50_ms": round(float(statistics.median(self.base_ms)), 4),
            "new_p50_ms": round(float(statistics.median(self.new_ms)), 4),
            "cpu_ratio": None if self.cpu_ratio is None else round(self.cpu_ratio, 4),
            "cpu_ratio_ci_low": None if cpu is None else round(cpu[0], 4),
            "cpu_ratio_ci_high": None if cpu is None else round(cpu[1], 4),
        }


class _Worker:
    """One engine version loaded in a process of its own, timing bursts on request."""

    def __init__(self, bundle: Path) -> None:
        env = {**os.environ, "DENSE_EDGE_QUIET": "1"}
        self.bundle = bundle
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "dense_edge.validate.side_by_side", str(bundle)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        self._read()  # {"ready": ...}: loaded and warm

    def _read(self) -> _Reply:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            err = self.proc.stderr.read() if self.proc.stderr else ""
            raise RuntimeError(f"timing worker for {self.bundle} stopped:\n{err[-3000:]}")
        reply: _Reply = json.loads(line)
        if "error" in reply:
            raise UserError(f"cannot time {self.bundle}: {reply['error']}")
        return reply

    def burst(self, batch: int, seconds: float, min_calls: int) -> tuple[list[float], float | None]:
        """The call times, in ms, of a burst of calls on one batch, and the process's CPU time
        over the burst in ms (None where it is not a measure of the engine's work)."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(
            json.dumps({"batch": batch, "seconds": seconds, "min_calls": min_calls}) + "\n"
        )
        self.proc.stdin.flush()
        reply = self._read()
        cpu = reply.get("cpu_ms")
        return [float(t) for t in reply["times_ms"]], None if cpu is None else float(cpu)

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def time_pairs(
    pairs: Sequence[Pair],
    batch_sizes: Sequence[int],
    *,
    rounds: int = DEFAULT_ROUNDS,
    burst_s: float = BURST_S,
    slices: int = SLICES,
    min_calls: int = MIN_CALLS,
) -> list[PairedTiming]:
    """Per engine and batch size, base and new timed in alternating slices over ``rounds``."""
    if rounds < 1:
        raise ValueError("rounds must be at least 1")
    timings: list[PairedTiming] = []
    steps = rounds * len(pairs) * len(batch_sizes)
    with bar("compare: timing base and new side by side", steps, status=True) as progress:
        for name_index, pair in enumerate(pairs):
            progress.update(status=f"{pair.name}: loading both versions")
            workers = {"base": _Worker(pair.base), "new": _Worker(pair.new)}
            try:
                got: dict[int, dict[str, list[float]]] = {
                    b: {"base": [], "new": []} for b in batch_sizes
                }
                cpu_ms: dict[int, dict[str, list[float] | None]] = {
                    b: {"base": [], "new": []} for b in batch_sizes
                }
                for r in range(rounds):
                    for b in batch_sizes:
                        progress.update(status=f"{pair.name} b{b} round {r + 1}/{rounds}")
                        calls: dict[str, list[float]] = {"base": [], "new": []}
                        cpu: dict[str, list[float] | None] = {"base": [], "new": []}
                        for k in range(slices):
                            # base-new, new-base, ...: neither side always goes first
                            first = (r + k + name_index) % 2 == 0
                            for side in ("base", "new") if first else ("new", "base"):
                                times, spent = workers[side].burst(b, burst_s / slices, min_calls)
                                calls[side] += times
                                used = cpu[side]
                                cpu[side] = None if used is None or spent is None else [
                                    *used, spent]  # fmt: skip
                        for side, times in calls.items():
                            got[b][side].append(float(statistics.median(times)))
                            used, kept = cpu[side], cpu_ms[b][side]
                            # CPU ms per call over the round, or None from now on
                            cpu_ms[b][side] = (
                                None if used is None or kept is None
                                else [*kept, sum(used) / len(times)]
                            )  # fmt: skip
                        progress.advance(1)
            finally:
                for w in workers.values():
                    w.close()
            for b in batch_sizes:
                base, new = got[b]["base"], got[b]["new"]
                ratios = [n / o if o > 0 else float("inf") for o, n in zip(base, new, strict=True)]
                cb, cn = cpu_ms[b]["base"], cpu_ms[b]["new"]
                cpu_ratios = (
                    [n / o for o, n in zip(cb, cn, strict=True) if o > 0]
                    if cb is not None and cn is not None else []
                )  # fmt: skip
                timings.append(
                    PairedTiming(
                        name=pair.name,
                        batch=b,
                        base_ms=tuple(base),
                        new_ms=tuple(new),
                        ratios=tuple(ratios),
                        cpu_ratios=tuple(cpu_ratios) if len(cpu_ratios) == len(ratios) else (),
                    )
                )
    return timings


# -- the worker side ------------------------------------------------------------------------


def _input_batch(manifest: dict[str, Any], batch: int) -> np.ndarray:
    shape = [int(d) for d in manifest["input_shape"]]  # C, H, W
    rng = np.random.default_rng(0)
    return rng.standard_normal((batch, *shape[-3:])).astype(np.float32)


def _serve(bundle: str, stdin: IO[str], stdout: IO[str]) -> None:

    def say(obj: _Reply) -> None:
        stdout.write(json.dumps(obj) + "\n")
        stdout.flush()

    try:
        manifest = bundle_io.read(bundle)
        # CPU time measures the engine's work only where the engine computes on this CPU
        on_cpu = registry.get(str(manifest.get("target"))).device_kind == "cpu"
        runner = load_runner(bundle).activate()
    except Exception as exc:  # reported to the parent, which raises it there
        say({"error": str(exc).splitlines()[0] if str(exc) else type(exc).__name__})
        return
    calls: dict[int, TimedCall] = {}
    try:
        say({"ready": True})
        for line in stdin:
            ask = json.loads(line)
            b = int(ask["batch"])
            if b not in calls:
                calls[b] = runner.timed_call(_input_batch(manifest, b))
                for _ in range(WARMUP_CALLS):
                    calls[b].run()
            cpu0 = time.process_time()  # every thread of this process: the engine's work
            times, _ = sample_calls(calls[b], iterations=sys.maxsize,
                                    time_budget_s=float(ask["seconds"]),
                                    min_iterations=int(ask["min_calls"]))  # fmt: skip
            cpu_ms = (time.process_time() - cpu0) * 1000.0 if on_cpu else None
            say({"times_ms": [round(t * 1000.0, 6) for t in times], "cpu_ms": cpu_ms})
    finally:
        runner.deactivate()


if __name__ == "__main__":
    _serve(sys.argv[1], sys.stdin, sys.stdout)
