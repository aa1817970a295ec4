"""Range methods: from collected statistics to a clipping threshold.

Statistics are collected once (:mod:`dense_edge.calibrate.collect`); these functions only read
them, so trying another method never re-runs the model.

- ``minmax``: the largest magnitude seen. Nothing is clipped; rare outliers cost resolution.
- ``percentile``: the magnitude below which ``p`` percent of values fall.
- ``entropy``: the threshold whose quantised distribution is closest (KL divergence) to the
  observed one, TensorRT's entropy calibration.
- ``mse``: the threshold that minimises the expected squared error of clipping plus rounding.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dense_edge.calibrate.histogram import TensorStats
from dense_edge.catalog import METHODS


@dataclass(frozen=True)
class MethodOptions:
    method: str = "percentile"
    percentile: float = 99.99


def threshold(
    hist: np.ndarray, width: float, amax: float, levels: int, opts: MethodOptions
) -> float:
    """Clipping threshold for a histogram of magnitudes (bin ``i`` covers ``[i*w, (i+1)*w)``)."""
    if amax <= 0 or hist.sum() == 0:
        return max(amax, 1e-8)
    if opts.method == "minmax":
        t = amax
    elif opts.method == "percentile":
        t = _percentile(hist, width, opts.percentile)
    elif opts.method == "entropy":
        t = _entropy(hist, width, levels)
    elif opts.method == "mse":
        t = _mse(hist, width, levels)
    else:
        raise ValueError(f"unknown calibration method {opts.method!r}; choose from {METHODS}")
    return float(min(max(t, width), amax))


def _percentile(hist: np.ndarray, width: float, p: float) -> float:
    cdf = np.cumsum(hist, dtype=np.float64)
    target = cdf[-1] * p / 100.0
    i = int(np.searchsorted(cdf, target, side="left"))
    i = min(i, len(hist) - 1)
    below = cdf[i - 1] if i > 0 else 0.0
    frac = (target - below) / hist[i] if hist[i] else 1.0
    return (i + min(max(frac, 0.0), 1.0)) * width


def _entropy(hist: np.ndarray, width: float, levels: int) -> float:
    nonzero = np.flatnonzero(hist)
    last = int(nonzero[-1]) + 1
    if last <= levels:
        return last * width
    h = hist[:last].astype(np.float64)
    # The first bin holds a ReLU's zeros: a spike that says nothing about where to clip, and
    # that would dominate the divergence. Treat it like its neighbour.
    if last > 1:
        h[0] = min(h[0], h[1])
    stride = max(1, (last - levels) // 512)
    best_i, best_kl = last, np.inf
    for i in range(levels, last + 1, stride):
        p = h[:i].copy()
        p[i - 1] += h[i:].sum()  # values beyond the threshold clip to it
        q = _quantised(h[:i], levels)
        kl = _kl(p, q)
        if kl < best_kl:
            best_kl, best_i = kl, i
    return (best_i + 0.5) * width


def _quantised(ref: np.ndarray, levels: int) -> np.ndarray:
    """Merge ``ref`` into ``levels`` buckets, then spread each back over its non-empty bins."""
    n = len(ref)
    # n >= levels, so the bucket edges are strictly increasing and reduceat sees no empty bucket.
    edges = np.linspace(0, n, levels + 1).round().astype(np.int64)
    nz = ref > 0
    sums = np.add.reduceat(ref, edges[:-1])
    counts = np.add.reduceat(nz.astype(np.int64), edges[:-1])
    per_bin = np.divide(sums, counts, out=np.zeros_like(sums), where=counts > 0)
    return np.where(nz, np.repeat(per_bin, np.diff(edges)), 0.0)


def _kl(p: np.ndarray, q: np.ndarray) -> float:
    ps, qs = p.sum(), q.sum()
    if ps == 0 or qs == 0:
        return np.inf
    p = p / ps
    q = q / qs
    mask = p > 0
    q = np.where(mask & (q == 0), 1e-12, q)
    return float(np.sum(p[mask] * np.log(p[mask] / q[mask])))


def _mse(hist: np.ndarray, width: float, levels: int) -> float:
    nonzero = np.flatnonzero(hist)
    last = int(nonzero[-1]) + 1
    centers = (np.arange(last) + 0.5) * width
    h = hist[:last].astype(np.float64)
    candidates = np.linspace(width, last * width, num=min(last, 512))
    best_t, best_err = candidates[-1], np.inf
    for t in candidates:
        step = t / (levels - 1)
        clipped = centers > t
        err = np.where(clipped, (centers - t) ** 2, step * step / 12.0)
        total = float((h * err).sum())
        if total < best_err:
            best_err, best_t = total, t
    return float(best_t)


@dataclass(frozen=True)
class Range:
    """A tensor's quantisation range: ``[lo, hi]`` with ``lo <= 0 <= hi``."""

    lo: float
    hi: float

    @property
    def amax(self) -> float:
        return max(-self.lo, self.hi)


def symmetric_range(stats: TensorStats, opts: MethodOptions, levels: int = 128) -> Range:
    t = threshold(stats.magnitude(), stats.bin_width, stats.amax, levels, opts)
    return Range(-t, t)


def asymmetric_range(stats: TensorStats, opts: MethodOptions) -> Range:
    """For unsigned 8-bit activations: each side clipped on its own histogram."""
    hi = 0.0
    lo = 0.0
    signed = stats.min < 0
    levels = 128 if signed else 256
    if stats.max > 0:
        hi = threshold(stats.positive(), stats.bin_width, stats.max, levels, opts)
    if signed:
        lo = -threshold(stats.negative(), stats.bin_width, -stats.min, levels, opts)
    if hi - lo <= 0:
        hi = lo + 1e-8
    return Range(lo, hi)
