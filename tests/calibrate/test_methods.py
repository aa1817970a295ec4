"""Range methods on known distributions."""

from __future__ import annotations

import numpy as np
import pytest

from dense_edge.calibrate.histogram import TensorStats
from dense_edge.calibrate.methods import (
    METHODS,
    MethodOptions,
    asymmetric_range,
    symmetric_range,
)


@pytest.fixture(scope="module")
def gaussian_with_outliers():
    rng = np.random.default_rng(0)
    x = rng.normal(0, 1, 200_000).astype(np.float32)
    x[:20] = 40.0  # rare large outliers
    st = TensorStats(2048)
    st.update(x)
    return x, st


def test_minmax_is_the_largest_magnitude(gaussian_with_outliers):
    _, st = gaussian_with_outliers
    assert symmetric_range(st, MethodOptions("minmax")).amax == pytest.approx(40.0)


def test_percentile_matches_numpy(gaussian_with_outliers):
    x, st = gaussian_with_outliers
    got = symmetric_range(st, MethodOptions("percentile", 99.9)).amax
    assert got == pytest.approx(np.percentile(np.abs(x), 99.9), rel=0.01)


@pytest.mark.parametrize("method", ["entropy", "percentile"])
def test_clipping_methods_ignore_rare_outliers(gaussian_with_outliers, method):
    _, st = gaussian_with_outliers
    t = symmetric_range(st, MethodOptions(method)).amax
    assert 2.0 < t < 10.0, t  # far below the outliers at 40, above the bulk of N(0, 1)


def test_mse_keeps_costly_outliers_but_clips_a_long_tail(gaussian_with_outliers):
    # Twenty values at 40 cost more clipped (quadratic error) than the rounding noise they add.
    _, st = gaussian_with_outliers
    assert symmetric_range(st, MethodOptions("mse")).amax > 30
    # A Laplace tail: for 8 bits the optimum lies well inside the largest value (about 10b).
    lap = TensorStats(2048)
    lap.update(np.random.default_rng(1).laplace(0, 1, 400_000).astype(np.float32))
    t = symmetric_range(lap, MethodOptions("mse")).amax
    assert 6 < t < 0.9 * lap.amax


@pytest.mark.parametrize("method", METHODS)
def test_thresholds_never_exceed_what_was_seen(method):
    st = TensorStats(256)
    st.update(np.random.default_rng(3).uniform(0, 3, 10_000).astype(np.float32))
    r = symmetric_range(st, MethodOptions(method))
    assert 0 < r.amax <= 3.0


def test_asymmetric_ranges_keep_zero_and_follow_each_side():
    st = TensorStats(1024)
    st.update(np.random.default_rng(4).uniform(-1, 6, 50_000).astype(np.float32))
    r = asymmetric_range(st, MethodOptions("minmax"))
    assert r.lo == pytest.approx(-1, abs=1e-3) and r.hi == pytest.approx(6, abs=1e-3)
    post_relu = TensorStats(1024)
    post_relu.update(np.random.default_rng(5).uniform(0, 2, 1000).astype(np.float32))
    assert asymmetric_range(post_relu, MethodOptions("minmax")).lo == 0.0
