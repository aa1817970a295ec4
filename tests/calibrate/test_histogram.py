"""Streaming statistics: growing ranges lose nothing, concatenations merge exactly."""

from __future__ import annotations

import numpy as np

from dense_edge.calibrate.histogram import TensorStats


def _hist_of(values, r, bins):
    return np.histogram(np.abs(values), bins=bins, range=(0, r))[0]


def test_streaming_equals_one_pass_over_everything():
    rng = np.random.default_rng(0)
    batches = [rng.normal(0, s, 5000).astype(np.float32) for s in (0.1, 1.0, 7.0, 0.5)]
    st = TensorStats(256)
    for b in batches:
        st.update(b)
    allv = np.concatenate(batches)
    assert st.min == allv.min() and st.max == allv.max()
    assert st.range == 2 ** np.ceil(np.log2(np.abs(allv).max()))
    assert st.count == allv.size
    # Magnitude histogram equals a histogram of everything at the final range (bin edges align).
    np.testing.assert_array_equal(st.magnitude(), _hist_of(allv, st.range, 256))


def test_post_relu_zeros_are_counted_apart():
    st = TensorStats(64)
    x = np.maximum(np.random.default_rng(1).normal(size=4000), 0).astype(np.float32)
    st.update(x)
    assert st.zeros == int((x == 0).sum())
    assert st.negative().sum() == st.zeros and st.neg.sum() == 0


def test_merge_is_the_statistics_of_the_concatenation():
    rng = np.random.default_rng(2)
    a = rng.normal(0, 0.3, 3000).astype(np.float32)
    b = rng.normal(0, 9.0, 3000).astype(np.float32)
    sa, sb, sab = TensorStats(512), TensorStats(512), TensorStats(512)
    sa.update(a)
    sb.update(b)
    sab.update(np.concatenate([a, b]))
    merged = TensorStats.merge([sa, sb])
    assert merged.range == sab.range and merged.count == sab.count
    np.testing.assert_array_equal(merged.magnitude(), sab.magnitude())
    np.testing.assert_array_equal(merged.positive(), sab.positive())


def test_memory_is_fixed_by_the_bin_count():
    st = TensorStats(2048)
    for scale in (1, 10, 1000):
        st.update(np.full(10_000, scale, np.float32))
    assert st.pos.shape == st.neg.shape == (2048,)


def test_arrays_round_trip():
    st = TensorStats(128)
    st.update(np.linspace(-3, 5, 999, dtype=np.float32))
    back = TensorStats.from_arrays(128, st.to_arrays())
    assert (back.min, back.max, back.range, back.count) == (st.min, st.max, st.range, st.count)
    np.testing.assert_array_equal(back.magnitude(), st.magnitude())


def test_vanishingly_small_values_do_not_break_the_histogram():
    st = TensorStats(256)
    st.update(np.full(100, 1e-38, np.float32))
    st.update(np.linspace(0, 2, 100, dtype=np.float32))
    assert st.count == 200 and st.range == 2.0
