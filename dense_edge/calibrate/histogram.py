"""Streaming activation statistics with bounded memory.

Each observed tensor keeps its exact minimum and maximum and two histograms of magnitudes, one of
its positive values and one of its negative values, over ``[0, R]`` with a fixed number of bins.
``R`` is always a power of two: when a batch exceeds it, ``R`` doubles and pairs of bins merge, so
no value is ever re-read. Because every histogram's bin width is a power of two, histograms of
different tensors align exactly and can be summed: the statistics of a concatenation are the sum
of its inputs' statistics, so DenseNet's large concatenated maps never need observing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

MIN_RANGE = 2.0**-24  # below this, magnitudes are float noise; keeps bins/range finite in float32


def _pow2_at_least(x: float) -> float:
    if x <= MIN_RANGE or not math.isfinite(x):
        return MIN_RANGE
    return float(2.0 ** math.ceil(math.log2(x)))


@dataclass
class TensorStats:
    bins: int
    min: float = math.inf
    max: float = -math.inf
    range: float = 0.0  # R: the histograms cover [0, R]
    count: int = 0
    pos: np.ndarray | None = None  # counts of x > 0 by |x|
    neg: np.ndarray | None = None  # counts of x < 0 by |x|
    zeros: int = 0

    def __post_init__(self) -> None:
        if self.bins < 2 or self.bins & (self.bins - 1):
            raise ValueError("bins must be a power of two")
        if self.pos is None:
            self.pos = np.zeros(self.bins, dtype=np.int64)
        if self.neg is None:
            self.neg = np.zeros(self.bins, dtype=np.int64)

    # -- collecting -----------------------------------------------------------------------------
    def update(self, x: np.ndarray) -> None:
        x = np.asarray(x, dtype=np.float32).ravel()
        if x.size == 0:
            return
        lo, hi = float(x.min()), float(x.max())
        if not (math.isfinite(lo) and math.isfinite(hi)):
            raise FloatingPointError("non-finite activation values")
        self.min, self.max = min(self.min, lo), max(self.max, hi)
        self._grow_to(max(abs(lo), abs(hi)))
        assert self.pos is not None and self.neg is not None
        scale = self.bins / self.range
        if lo >= 0:  # post-ReLU tensors: the common case, one pass
            idx = np.minimum((x * scale).astype(np.int32), self.bins - 1)
            counts = np.bincount(idx, minlength=self.bins)
            zeros = int(np.count_nonzero(x == 0))
            counts[0] -= zeros
            self.pos += counts
            self.zeros += zeros
        else:
            pos = x[x > 0]
            neg = -x[x < 0]
            self.pos += np.bincount(
                np.minimum((pos * scale).astype(np.int32), self.bins - 1), minlength=self.bins
            )
            self.neg += np.bincount(
                np.minimum((neg * scale).astype(np.int32), self.bins - 1), minlength=self.bins
            )
            self.zeros += int(x.size - pos.size - neg.size)
        self.count += int(x.size)

    def _grow_to(self, amax: float) -> None:
        target = _pow2_at_least(amax)
        if self.range == 0.0:
            self.range = target
            return
        while self.range < target:
            assert self.pos is not None and self.neg is not None
            self.pos = _halve(self.pos)
            self.neg = _halve(self.neg)
            self.range *= 2

    # -- combining ------------------------------------------------------------------------------
    def rebinned(self, new_range: float) -> TensorStats:
        """The same statistics over ``[0, new_range]`` (a power-of-two multiple of ``range``)."""
        out = TensorStats(
            self.bins, self.min, self.max, self.range, self.count, self.pos, self.neg, self.zeros
        )
        out.pos = self.pos.copy() if self.pos is not None else None
        out.neg = self.neg.copy() if self.neg is not None else None
        out._grow_to(new_range)
        return out

    @staticmethod
    def merge(parts: list[TensorStats]) -> TensorStats:
        """Statistics of the concatenation of the tensors that ``parts`` describe."""
        parts = [p for p in parts if p.count]
        if not parts:
            raise ValueError("nothing to merge")
        bins = parts[0].bins
        r = max(p.range for p in parts)
        out = TensorStats(bins)
        out.range = r
        for p in parts:
            q = p.rebinned(r)
            assert out.pos is not None and out.neg is not None
            out.pos += q.pos
            out.neg += q.neg
            out.min, out.max = min(out.min, p.min), max(out.max, p.max)
            out.count += p.count
            out.zeros += p.zeros
        return out

    # -- views ----------------------------------------------------------------------------------
    @property
    def bin_width(self) -> float:
        return self.range / self.bins

    def magnitude(self) -> np.ndarray:
        """Counts of |x| per bin (zeros in bin 0): what symmetric ranges are computed from."""
        assert self.pos is not None and self.neg is not None
        h = self.pos + self.neg
        h[0] += self.zeros
        counts: np.ndarray = h
        return counts

    def positive(self) -> np.ndarray:
        assert self.pos is not None
        h = self.pos.copy()
        h[0] += self.zeros
        counts: np.ndarray = h
        return counts

    def negative(self) -> np.ndarray:
        assert self.neg is not None
        h = self.neg.copy()
        h[0] += self.zeros
        counts: np.ndarray = h
        return counts

    @property
    def amax(self) -> float:
        return max(abs(self.min), abs(self.max))

    def to_arrays(self) -> dict[str, np.ndarray]:
        assert self.pos is not None and self.neg is not None
        return {
            "scalars": np.array(
                [self.min, self.max, self.range, self.count, self.zeros], dtype=np.float64
            ),
            "pos": self.pos,
            "neg": self.neg,
        }

    @classmethod
    def from_arrays(cls, bins: int, d: dict[str, np.ndarray]) -> TensorStats:
        mn, mx, r, count, zeros = d["scalars"].tolist()
        return cls(
            bins, mn, mx, r, int(count), d["pos"].astype(np.int64), d["neg"].astype(np.int64),
            int(zeros),
        )  # fmt: skip


def _halve(h: np.ndarray) -> np.ndarray:
    merged = h.reshape(-1, 2).sum(axis=1)
    return np.concatenate([merged, np.zeros(len(h) - len(merged), dtype=h.dtype)])
