"""Increment spectra and weight autocorrelations of a window (pyengine.kernels.increment_sums)
against the per-column float64 reference, on every backend and SIMD width."""

import functools

import numpy as np
import pytest

import pyengine as pe
from pyengine import reference
from pyengine.kernels import increment_sums
from pyengine.kernels.spectral import fft_length

CPU_BACKENDS = [b for b in ("cpp", "numba", "numpy") if pe.backends()[b].available]
needs_cpp = pytest.mark.skipif(not pe.backends()["cpp"].available, reason="needs the C++ extension")
FROZEN = (0.1, 0.0, -3.7e5)  # constant columns: 0.1 * 3 / 3 != 0.1, so a naive mean would make them move


def window(n, p, dtype, offset=0, seed=0):
    """A random walk of n rows, the view x[:, offset : offset + p] of a wider array (so rows
    start off a cache line), with some columns frozen."""
    rng = np.random.default_rng(seed)
    big = rng.standard_normal((n, p + 10)).cumsum(0).astype(dtype)
    x = big[:, offset : offset + p]
    for c, value in zip(range(2, p, 5), FROZEN):
        x[:, c] = value
    return x


@functools.cache
def reference_sums(n, p, dtype, offset):
    """The reference with every lag (sums at lags <= max_lag do not depend on max_lag)."""
    return reference.increment_sums(window(n, p, dtype, offset), n - 1)


def assert_close(got, want, rtol):
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape
    scale = np.abs(want).max() or 1.0
    assert np.abs(got - want).max() <= rtol * scale, np.abs(got - want).max() / scale


def assert_sums(got, want, max_lag, rtol=1e-12, rtol_sq=1e-10):
    power, power_sq, acf, acf_sq, n_moving = got
    assert n_moving == want[4]
    assert_close(power, want[0], rtol)
    assert_close(power_sq, want[1], rtol_sq)
    assert_close(acf, want[2][: max_lag + 1], rtol)
    assert_close(acf_sq, want[3][: max_lag + 1], rtol_sq)


SHAPES = [(2, 3), (3, 1), (4, 7), (5, 37), (17, 130), (100, 7), (100, 130), (1000, 1), (1000, 37)]


@pytest.mark.parametrize("backend", CPU_BACKENDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("offset", [0, 3])
def test_matches_reference_on_column_views(backend, dtype, shape, offset):
    # Column views starting off a cache line exercise the C++ kernel's aligned batches, and
    # widths that are not multiples of 8 or 16 its partial lane groups.
    n, p = shape
    x = window(n, p, dtype, offset)
    want = reference_sums(n, p, dtype, offset)
    assert want[4] == p - min(len(FROZEN), len(range(2, p, 5)))
    for max_lag in sorted({0, 1, n // 2, n - 1}):
        got = increment_sums(x, max_lag, backend=backend)
        assert got[0].shape == (fft_length(n - 1) // 2 + 1,) and got[2].shape == (max_lag + 1,)
        assert_sums(got, want, max_lag)


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_sums_accumulate_over_column_blocks(backend):
    x = window(100, 90, np.float64)
    want = reference.increment_sums(x, 40)
    sums = [np.zeros(65), np.zeros(65), np.zeros(41), np.zeros(41)]
    n_moving = 0
    for j in range(0, 90, 33):  # two calls add up, and n blocks give what one block gives
        got = increment_sums(x[:, j : j + 33], 40, *sums, backend=backend)
        assert all(a is b for a, b in zip(got, sums))
        n_moving += got[4]
    assert_sums((*sums, n_moving), want, 40)
    assert_sums(increment_sums(x, 40, backend=backend), want, 40)


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_finer_frequency_grid(backend, rng):
    x = rng.standard_normal((30, 11)).cumsum(0)
    got = increment_sums(x, 5, nfft=128, backend=backend)
    assert_sums(got, reference.increment_sums(x, 5, nfft=128), 5)
    assert got[0].shape == (65,)


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_cancellation_large_weights_tiny_steps(backend, rng):
    # |w| ~ 1e3, steps ~ 1e-4, and a strong drift: increments are exact differences of the
    # float64 conversions, and the weights are taken from x[0] before their mean.
    steps = 1e-4 * rng.standard_normal((300, 64)) + 1e-3 * np.linspace(-1, 1, 64)
    x = (1e3 + steps.cumsum(0)).astype(np.float32)
    assert_sums(increment_sums(x, 200, backend=backend), reference.increment_sums(x, 200), 200)


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_white_noise_known_answers(backend):
    # White increments of variance s^2: E P = s^2 at every frequency, a flat spectrum; the
    # autocorrelation of white-noise weights lies inside the band +-z / sqrt(T).
    rng = np.random.default_rng(1)
    walk = np.cumsum(0.5 * rng.standard_normal((1000, 256)), axis=0)
    power, _, _, _, n_moving = increment_sums(walk, 10, backend=backend)
    mean = power[1:] / n_moving
    assert mean.mean() == pytest.approx(0.25, rel=0.02)
    f = np.arange(1, mean.size + 1)
    slope = np.polyfit(np.log(f), np.log(mean), 1)[0]
    assert abs(slope) < 0.02, slope
    noise = rng.standard_normal((1000, 256))
    _, _, acf, acf_sq, n_moving = increment_sums(noise, 50, backend=backend)
    band = 2.5758 / np.sqrt(1000)  # 99 %
    assert acf[0] == n_moving == 256
    assert np.all(np.abs(acf[1:] / n_moving) < band / 5)
    assert np.all(np.sqrt(acf_sq[1:] / n_moving) < band)


@needs_cpp
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cpp_threads_agree_and_repeat_bitwise(dtype):
    x = window(500, 300, dtype)
    runs = {t: increment_sums(x, 250, backend="cpp", threads=t) for t in (1, 2, 3)}
    for t in (2, 3):
        assert_sums(runs[t], runs[1], 250, rtol=1e-14, rtol_sq=1e-14)
    again = increment_sums(x, 250, backend="cpp", threads=2)
    for got, want in zip(again, runs[2]):
        np.testing.assert_array_equal(got, want)


@needs_cpp
@pytest.mark.parametrize("lanes", [2, 4, 8])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cpp_every_simd_width(lanes, dtype):
    # The kernel picks 8 lanes (AVX-512), 4 (AVX2) or 2 (SSE2) at run time; each width has
    # its own batch size and alignment, checked here on whatever this CPU can run.
    from pyengine import _core

    for n in (100, 9):
        big = window(n, 47, dtype)
        for offset, width in [(0, 37), (1, 29), (3, 7), (5, 1)]:
            x = big[:, offset : offset + width]
            want = reference.increment_sums(x, n - 1)
            sums = [np.zeros(fft_length(n - 1) // 2 + 1), np.zeros(fft_length(n - 1) // 2 + 1), np.zeros(n),
                    np.zeros(n)]
            try:
                n_moving = _core.increment_sums(x, n - 1, *sums, 2, lanes)
            except ValueError as exc:
                assert "runs at most" in str(exc)
                pytest.skip(f"this CPU or build does not run {lanes} float64 lanes")
            assert_sums((*sums, n_moving), want, n - 1)


@needs_cpp
def test_cpp_rejects_unknown_simd_widths():
    from pyengine import _core

    with pytest.raises(ValueError, match="lanes must be 0, 2, 4 or 8"):
        _core.increment_sums(np.zeros((6, 4)), 2, np.zeros(5), np.zeros(5), np.zeros(3), np.zeros(3), 1, 3)


@pytest.mark.skipif(not pe.backends()["numba"].available, reason="needs numba")
def test_numba_transpose_with_jit_off(monkeypatch, rng):
    from pyengine.kernels import _numba_increments as nb

    monkeypatch.setattr(nb, "_transpose", nb._transpose.py_func)
    x = rng.standard_normal((9, 4)).astype(np.float32)
    d, y = np.full((4, 10), 7.0), np.full((4, 12), 7.0)
    nb.transposed_increments(x, d, y)
    want_d, want_y = np.full((4, 10), 7.0), np.full((4, 12), 7.0)
    reference.transposed_increments(x, want_d, want_y)
    np.testing.assert_allclose(d, want_d, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(y, want_y, rtol=1e-13, atol=1e-15)
    assert np.all(d[:, 8:] == 7.0) and np.all(y[:, 9:] == 7.0), "the zero padding must be left as it is"


@pytest.mark.gpu
@pytest.mark.skipif(not pe.backends()["cuda"].available, reason="no CUDA device")
def test_cuda_matches_reference():
    import cupy

    x = window(333, 37, np.float32)
    got = increment_sums(cupy.asarray(x), 100)
    assert_sums([a.get() for a in got[:4]] + [got[4]], reference.increment_sums(x, 100), 100)


def test_bad_input_is_rejected():
    x = np.zeros((5, 2))
    with pytest.raises(ValueError, match="2-D"):
        increment_sums(np.zeros(5), 1)
    with pytest.raises(TypeError, match="floating"):
        increment_sums(x.astype(complex), 1)
    with pytest.raises(ValueError, match="at least 2 snapshots"):
        increment_sums(np.zeros((1, 3)), 0)
    for max_lag in (-1, 5, 2.0, True):
        with pytest.raises(ValueError, match=r"max_lag must be an integer in \[0, 4\]"):
            increment_sums(x, max_lag)
    with pytest.raises(ValueError, match="nfft must be a power of two"):
        increment_sums(x, 1, nfft=12)
    with pytest.raises(ValueError, match="nfft must be a power of two"):
        increment_sums(np.zeros((20, 2)), 1, nfft=16)
    with pytest.raises(ValueError, match="nfft must be a power of two"):
        increment_sums(x, 1, power=np.zeros(6))
    with pytest.raises(ValueError, match=r"power: expected float64 of shape \(5,\)"):
        increment_sums(x, 1, power=np.zeros(5, np.float32))
    with pytest.raises(ValueError, match=r"power_sq: expected float64 of shape \(5,\)"):
        increment_sums(x, 1, power=np.zeros(5), power_sq=np.zeros(9))
    with pytest.raises(ValueError, match=r"acf_sq: expected float64 of shape \(2,\)"):
        increment_sums(x, 1, acf_sq=np.zeros(3))


_X, _P, _A = np.zeros((6, 4)), np.zeros(5), np.zeros(3)
BAD_CORE_ARGS = {
    "x 1-D": (np.zeros(6), 2, _P, _P, _A, _A),
    "x int": (np.zeros((6, 4), np.int32), 2, _P, _P, _A, _A),
    "x columns strided": (np.zeros((6, 8))[:, ::2], 2, _P, _P, _A, _A),
    "x one row": (np.zeros((1, 4)), 0, _P, _P, np.zeros(1), np.zeros(1)),
    "max_lag < 0": (_X, -1, _P, _P, np.zeros(0), np.zeros(0)),
    "max_lag >= rows": (_X, 6, _P, _P, np.zeros(7), np.zeros(7)),
    "power too short": (_X, 2, np.zeros(3), np.zeros(3), _A, _A),
    "nfft not a power of two": (_X, 2, np.zeros(6), np.zeros(6), _A, _A),
    "nfft < rows - 1": (np.zeros((10, 4)), 2, _P, _P, _A, _A),
    "power int": (_X, 2, np.zeros(5, np.int64), _P, _A, _A),
    "power_sq length": (_X, 2, _P, np.zeros(4), _A, _A),
    "acf length": (_X, 2, _P, _P, np.zeros(2), _A),
    "acf_sq read-only": (_X, 2, _P, _P, _A, np.broadcast_to(0.0, (3,))),
    "acf strided": (_X, 2, _P, _P, np.zeros(6)[::2], _A),
}


@pytest.mark.parametrize("case", sorted(BAD_CORE_ARGS))
def test_core_rejects_bad_arrays(case):
    core = pytest.importorskip("pyengine._core")
    with pytest.raises((ValueError, TypeError)):
        core.increment_sums(*BAD_CORE_ARGS[case])
