import numpy as np
import pytest

import pyengine as pe
from pyengine.kernels import spectral_sums
from pyengine.kernels.spectral import fft_length

CPU_BACKENDS = [b for b in ("cpp", "numba", "numpy") if pe.backends()[b].available]
needs_cpp = pytest.mark.skipif(not pe.backends()["cpp"].available, reason="needs the C++ extension")


def reference_sums(x, n_origins, nfft):
    """Per-column float64 FFTs with numpy.fft, summed: the definition, written plainly."""
    y = x.astype(np.float64) - x[0].astype(np.float64)
    cut = y.copy()
    cut[n_origins:] = 0.0
    a, b = np.fft.rfft(y, nfft, axis=0), np.fft.rfft(cut, nfft, axis=0)
    return (b.conj() * a).sum(axis=1), (y * y).sum(axis=1)


def brute_correlation(x, n_origins):
    """sum over origins t < n_origins and columns of y(t) y(t + tau), by loops."""
    y = x.astype(np.float64) - x[0].astype(np.float64)
    n = len(y)
    return np.array([sum(float(y[t] @ y[t + tau]) for t in range(min(n_origins, n - tau))) for tau in range(n)])


def assert_close(got, want, rtol):
    scale = np.abs(want).max() or 1.0
    assert np.abs(got - want).max() <= rtol * scale, np.abs(got - want).max() / scale


@pytest.mark.parametrize("backend", CPU_BACKENDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(1, 1), (2, 1), (7, 3), (8, 16), (65, 17), (300, 37), (1030, 129)])
@pytest.mark.parametrize("offset", [0, 3])
def test_matches_reference_on_column_views(backend, dtype, shape, offset, rng):
    # Column views starting off a cache line exercise the C++ kernel's aligned batches,
    # and widths that are not multiples of 8 or 16 its partial lane groups.
    n, p = shape
    big = rng.standard_normal((n, p + 10)).cumsum(0).astype(dtype)
    x = big[:, offset : offset + p]
    for n_origins in sorted({n, max(1, n // 3)}):
        nfft = fft_length(n_origins + n - 1)
        cross, sq = spectral_sums(x, n_origins, backend=backend)
        want_cross, want_sq = reference_sums(x, n_origins, nfft)
        assert cross.shape == (nfft // 2 + 1,)
        assert_close(cross, want_cross, 1e-13)
        assert_close(sq, want_sq, 1e-14)


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_inverse_is_the_correlation_over_origins(backend, rng):
    x = rng.standard_normal((40, 21)).cumsum(0)
    for n_origins in (40, 25, 1):
        cross, sq = spectral_sums(x, n_origins, backend=backend)
        corr = np.fft.irfft(cross)[:40]
        np.testing.assert_allclose(corr, brute_correlation(x, n_origins), rtol=1e-11, atol=1e-9)
        np.testing.assert_allclose(sq, ((x - x[0]) ** 2).sum(axis=1), rtol=1e-13)


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_larger_fft_lengths_give_the_same_correlation(backend, rng):
    x = rng.standard_normal((100, 9)).cumsum(0)
    corr = [np.fft.irfft(spectral_sums(x, nfft=nfft, backend=backend)[0])[:100] for nfft in (256, 1024)]
    np.testing.assert_allclose(corr[0], corr[1], rtol=1e-12, atol=1e-9)


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_cancellation_large_weights_tiny_steps(backend, rng):
    # |w| ~ 1e3, steps ~ 1e-4: the displacements are exact differences of float64
    # conversions, so the sums keep full relative precision.
    x = (1e3 + 1e-4 * rng.standard_normal((200, 64)).cumsum(0)).astype(np.float32)
    cross, sq = spectral_sums(x, backend=backend)
    want_cross, want_sq = reference_sums(x, 200, 512)
    assert_close(cross, want_cross, 1e-13)
    np.testing.assert_allclose(sq, want_sq, rtol=1e-12, atol=0)


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_sums_accumulate_over_column_blocks(backend, rng):
    x = rng.standard_normal((100, 90)).cumsum(0)
    cross, sq = np.zeros(129, complex), np.zeros(100)
    for j in range(0, 90, 33):
        spectral_sums(x[:, j : j + 33], 60, cross=cross, sq=sq, backend=backend)
    want_cross, want_sq = reference_sums(x, 60, 256)
    assert_close(cross, want_cross, 1e-13)
    assert_close(sq, want_sq, 1e-14)


@needs_cpp
@pytest.mark.parametrize("n_origins", [500, 200])
def test_cpp_threads_agree_and_repeat_bitwise(n_origins, rng):
    x = rng.standard_normal((500, 300)).cumsum(0).astype(np.float32)
    runs = {t: spectral_sums(x, n_origins, backend="cpp", threads=t) for t in (1, 2, 3)}
    for t in (2, 3):
        for got, want in zip(runs[t], runs[1]):
            assert_close(got, want, 1e-14)
    again = spectral_sums(x, n_origins, backend="cpp", threads=2)
    for got, want in zip(again, runs[2]):
        np.testing.assert_array_equal(got, want)


@needs_cpp
@pytest.mark.parametrize("lanes", [2, 4, 8])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cpp_every_simd_width(lanes, dtype, rng):
    # The kernel picks 8 lanes (AVX-512), 4 (AVX2) or 2 (SSE2) at run time; each width has
    # its own batch size and alignment, checked here on whatever this CPU can run.
    from pyengine import _core

    big = rng.standard_normal((300, 80)).cumsum(0).astype(dtype)
    for offset, width in [(0, 80), (1, 29), (3, 7), (5, 1)]:
        x = big[:, offset : offset + width]
        for n_origins in (300, 111):
            cross, sq = np.zeros(fft_length(300 + n_origins - 1) // 2 + 1, complex), np.zeros(300)
            try:
                _core.spectral_sums(x, n_origins, cross, sq, 2, lanes)
            except ValueError as exc:
                assert "runs at most" in str(exc)
                pytest.skip(f"this CPU or build does not run {lanes} float64 lanes")
            want_cross, want_sq = reference_sums(x, n_origins, 2 * (len(cross) - 1))
            assert_close(cross, want_cross, 1e-13)
            assert_close(sq, want_sq, 1e-14)


@needs_cpp
def test_cpp_rejects_unknown_simd_widths():
    from pyengine import _core

    with pytest.raises(ValueError, match="lanes must be 0, 2, 4 or 8"):
        _core.spectral_sums(np.zeros((6, 4)), 6, np.zeros(5, complex), np.zeros(6), 1, 3)


@pytest.mark.skipif(not pe.backends()["numba"].available, reason="needs numba")
def test_numba_transpose_with_jit_off(monkeypatch, rng):
    from pyengine.kernels import _numba_spectral as nb

    monkeypatch.setattr(nb, "_transpose", nb._transpose.py_func)
    x = rng.standard_normal((9, 4)).astype(np.float32)
    y, sq = np.full((4, 12), 7.0), np.zeros(9)
    nb.transposed_displacements(x, y, sq)
    want = (x.astype(np.float64) - x[0].astype(np.float64)).T
    np.testing.assert_array_equal(y[:, :9], want)
    assert np.all(y[:, 9:] == 7.0), "the zero padding past n_snapshots must be left as it is"
    np.testing.assert_allclose(sq, (want**2).sum(axis=0), rtol=1e-12)


@pytest.mark.skipif(not pe.backends()["cuda"].available, reason="no CUDA device")
def test_cuda_matches_reference(rng):
    import cupy

    x = rng.standard_normal((333, 37)).astype(np.float32)
    cross, sq = spectral_sums(cupy.asarray(x), 100)
    want_cross, want_sq = reference_sums(x, 100, fft_length(432))
    assert_close(cross.get(), want_cross, 1e-13)
    assert_close(sq.get(), want_sq, 1e-14)


def test_bad_input_is_rejected():
    x = np.zeros((5, 2))
    with pytest.raises(ValueError, match="2-D"):
        spectral_sums(np.zeros(5))
    with pytest.raises(TypeError, match="floating"):
        spectral_sums(x.astype(complex))
    with pytest.raises(ValueError, match=r"n_origins must be in \[1, 5\]"):
        spectral_sums(x, 0)
    with pytest.raises(ValueError, match=r"n_origins must be in \[1, 5\]"):
        spectral_sums(x, 6)
    with pytest.raises(ValueError, match="nfft must be a power of two"):
        spectral_sums(x, nfft=12)
    with pytest.raises(ValueError, match="nfft must be a power of two"):
        spectral_sums(np.zeros((20, 2)), nfft=16)
    with pytest.raises(ValueError, match="nfft must be a power of two"):
        spectral_sums(x, cross=np.zeros(6, complex))
    with pytest.raises(ValueError, match="cross: expected complex128"):
        spectral_sums(x, cross=np.zeros(5))
    with pytest.raises(ValueError, match=r"sq: expected float64 of shape \(5,\)"):
        spectral_sums(x, sq=np.zeros(4))


_X, _C, _SQ = np.zeros((6, 4)), np.zeros(5, complex), np.zeros(6)
BAD_CORE_ARGS = {
    "x 1-D": (np.zeros(6), 6, _C, _SQ),
    "x int": (np.zeros((6, 4), np.int32), 6, _C, _SQ),
    "x columns strided": (np.zeros((6, 8))[:, ::2], 6, _C, _SQ),
    "n_origins 0": (_X, 0, _C, _SQ),
    "n_origins > rows": (_X, 7, _C, _SQ),
    "cross float": (_X, 6, np.zeros(5), _SQ),
    "cross too short": (_X, 6, np.zeros(3, complex), _SQ),
    "nfft not a power of two": (_X, 6, np.zeros(6, complex), _SQ),
    "nfft < rows": (np.zeros((9, 4)), 9, _C, np.zeros(9)),
    "cross read-only": (_X, 6, np.broadcast_to(np.complex128(0), (5,)), _SQ),
    "sq length": (_X, 6, _C, np.zeros(5)),
    "sq strided": (_X, 6, _C, np.zeros(12)[::2]),
}


@pytest.mark.parametrize("case", sorted(BAD_CORE_ARGS))
def test_core_rejects_bad_arrays(case):
    core = pytest.importorskip("pyengine._core")
    with pytest.raises((ValueError, TypeError)):
        core.spectral_sums(*BAD_CORE_ARGS[case])
