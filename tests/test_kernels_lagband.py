import numpy as np
import pytest

import pyengine as pe
from pyengine import reference
from pyengine.kernels import lag_band

CPU_BACKENDS = [b for b in ("cpp", "numba", "numpy") if pe.backends()[b].available]


def brute_force(x, lags):
    x = np.asarray(x, dtype=np.float64)
    n = x.shape[0]
    out = np.zeros((len(lags), n))
    for l, lag in enumerate(lags):
        for t in range(n - lag):
            out[l, t] = np.sum((x[t + lag] - x[t]) ** 2)
    return out


@pytest.mark.parametrize("backend", CPU_BACKENDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(2, 1), (7, 3), (300, 37), (1030, 129)])
def test_lag_band_matches_brute_force(backend, dtype, shape, rng):
    x = rng.standard_normal(shape).cumsum(0).astype(dtype)
    lags = [1, 2, 3, shape[0] - 1, shape[0] + 5]
    got = lag_band(x, lags, backend=backend)
    want = brute_force(x, lags)
    np.testing.assert_allclose(got, want, rtol=1e-6 if dtype == np.float32 else 1e-12, atol=0)


def test_ballistic_known_answer():
    # x(t) = v t: D(t, tau) = |v|^2 tau^2 for every origin.
    v = np.array([0.5, -1.0, 2.0])
    x = np.arange(50)[:, None] * v
    got = lag_band(x, [1, 4, 10])
    for l, lag in enumerate([1, 4, 10]):
        np.testing.assert_allclose(got[l, : 50 - lag], (v @ v) * lag**2, rtol=1e-13)


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_accumulates_over_column_blocks_and_views(backend, rng):
    x = rng.standard_normal((64, 100)).cumsum(0)
    lags = [1, 5, 9]
    out = np.zeros((3, 64))
    for j in range(0, 100, 33):
        lag_band(x[:, j : j + 33], lags, out=out, backend=backend)  # strided views, no copy
    np.testing.assert_allclose(out, reference.lag_band(x, np.array(lags), np.zeros((3, 64))), rtol=1e-12)


@pytest.mark.skipif(not pe.backends()["cpp"].available, reason="needs the C++ extension")
@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_many_column_strips_any_thread_count(threads, dtype, rng):
    # 4100 rows make strips of 24 (float64) or 56 (float32) columns, shared unevenly between
    # threads; rows and columns past the last full 8 x 8 transpose tile and origins past the
    # last register tile are included.
    x = rng.standard_normal((4100, 257)).cumsum(0).astype(dtype)
    lags = [1, 31, 32, 33, 4099]
    got = lag_band(x, lags, backend="cpp", threads=threads)
    want = reference.lag_band(x.astype(np.float64), np.array(lags), np.zeros((5, 4100)))
    np.testing.assert_allclose(got, want, rtol=1e-6 if dtype == np.float32 else 1e-12)
    for _ in range(3):  # strips go to whichever thread is free, yet the sums are the same every run
        np.testing.assert_array_equal(got, lag_band(x, lags, backend="cpp", threads=threads))


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_cancellation_large_weights_tiny_steps(backend, rng):
    # |w| ~ 1e3, steps ~ 1e-4: exact differences keep the small displacements exact.
    x = (1e3 + 1e-4 * rng.standard_normal((200, 64)).cumsum(0)).astype(np.float64)
    got = lag_band(x, [1, 2], backend=backend)
    np.testing.assert_allclose(got, brute_force(x, [1, 2]), rtol=1e-9)


def test_bad_input_is_rejected():
    with pytest.raises(ValueError, match="2-D"):
        lag_band(np.zeros(5), [1])
    with pytest.raises(ValueError, match="lags must be >= 1"):
        lag_band(np.zeros((5, 2)), [0])
    with pytest.raises(TypeError, match="floating"):
        lag_band(np.zeros((5, 2), dtype=complex), [1])
    with pytest.raises(ValueError, match="out"):
        lag_band(np.zeros((5, 2)), [1], out=np.zeros((2, 5)))
