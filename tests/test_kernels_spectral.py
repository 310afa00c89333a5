import numpy as np
import pytest

import pyengine as pe
from pyengine.kernels import transposed_displacements

CPU_BACKENDS = [b for b in ("cpp", "numba", "numpy") if pe.backends()[b].available]
PAD = 5  # columns of y past n_snapshots: the FFT's zero padding, never written


def brute_force(x):
    n, p = x.shape
    y, sq = np.zeros((p, n)), np.zeros(n)
    for t in range(n):
        for c in range(p):
            y[c, t] = float(x[t, c]) - float(x[0, c])
            sq[t] += y[c, t] ** 2
    return y, sq


def padded_y(x):
    return np.full((x.shape[1], x.shape[0] + PAD), 7.0)


@pytest.mark.parametrize("backend", CPU_BACKENDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(1, 1), (2, 1), (7, 3), (65, 17), (300, 37), (1030, 129)])
def test_matches_brute_force_on_column_views(backend, dtype, shape, rng):
    n, p = shape
    big = rng.standard_normal((n, p + 10)).cumsum(0).astype(dtype)
    x = big[:, 3 : 3 + p]  # a column view: rows `p + 10` elements apart
    y, sq = transposed_displacements(x, padded_y(x), np.ones(n), backend=backend)
    want_y, want_sq = brute_force(x)
    np.testing.assert_array_equal(y[:, :n], want_y)
    assert np.all(y[:, n:] == 7.0), "the padding past n_snapshots must be left as it is"
    np.testing.assert_allclose(sq, 1.0 + want_sq, rtol=1e-12, atol=0)


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_cancellation_large_weights_tiny_steps(backend, rng):
    # |w| ~ 1e3, steps ~ 1e-4: differences of float64 conversions keep the displacements exact.
    x = (1e3 + 1e-4 * rng.standard_normal((200, 64)).cumsum(0)).astype(np.float32)
    y, sq = transposed_displacements(x, backend=backend)
    want_y, want_sq = brute_force(x)
    np.testing.assert_array_equal(y, want_y)
    np.testing.assert_allclose(sq, want_sq, rtol=1e-12, atol=0)


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_squared_norms_accumulate_over_column_blocks(backend, rng):
    x = rng.standard_normal((100, 90)).cumsum(0)
    sq = np.zeros(100)
    y = np.zeros((90, 100))
    for j in range(0, 90, 33):
        transposed_displacements(x[:, j : j + 33], y[j : j + 33], sq, backend=backend)
    want_y, want_sq = brute_force(x)
    np.testing.assert_array_equal(y, want_y)
    np.testing.assert_allclose(sq, want_sq, rtol=1e-12)


@pytest.mark.skipif(not pe.backends()["cpp"].available, reason="needs the C++ extension")
def test_cpp_result_does_not_depend_on_threads(rng):
    x = rng.standard_normal((1000, 70)).cumsum(0).astype(np.float32)
    one = transposed_displacements(x, backend="cpp", threads=1)
    two = transposed_displacements(x, backend="cpp", threads=2)
    for a, b in zip(one, two):
        np.testing.assert_array_equal(a, b)


@pytest.mark.skipif(not pe.backends()["numba"].available, reason="needs numba")
def test_numba_kernel_with_jit_off(monkeypatch, rng):
    from pyengine.kernels import _numba_spectral as nb

    monkeypatch.setattr(nb, "_transpose", nb._transpose.py_func)
    x = rng.standard_normal((9, 4)).astype(np.float32)
    y, sq = np.zeros((4, 9)), np.zeros(9)
    nb.transposed_displacements(x, y, sq)
    want_y, want_sq = brute_force(x)
    np.testing.assert_array_equal(y, want_y)
    np.testing.assert_allclose(sq, want_sq, rtol=1e-12)


@pytest.mark.skipif(not pe.backends()["cuda"].available, reason="no CUDA device")
def test_cuda_matches_cpu(rng):
    import cupy

    x = rng.standard_normal((333, 37)).astype(np.float32)
    y, sq = transposed_displacements(cupy.asarray(x), cupy.full((37, 340), 7.0))
    want_y, want_sq = brute_force(x)
    np.testing.assert_array_equal(y[:, :333].get(), want_y)
    assert bool((y[:, 333:] == 7.0).all())
    np.testing.assert_allclose(sq.get(), want_sq, rtol=1e-12)


def test_bad_input_is_rejected():
    x = np.zeros((5, 2))
    with pytest.raises(ValueError, match="2-D"):
        transposed_displacements(np.zeros(5))
    with pytest.raises(TypeError, match="floating"):
        transposed_displacements(x.astype(complex))
    with pytest.raises(ValueError, match=r"y: expected float64 of shape \(2, >= 5\)"):
        transposed_displacements(x, np.zeros((2, 4)))
    with pytest.raises(ValueError, match="y"):
        transposed_displacements(x, np.zeros((3, 5)))
    with pytest.raises(ValueError, match="y"):
        transposed_displacements(x, np.zeros((2, 5), dtype=np.float32))
    with pytest.raises(ValueError, match="y"):
        transposed_displacements(x, np.zeros((2, 10))[:, ::2])
    with pytest.raises(ValueError, match=r"sq: expected float64 of shape \(5,\)"):
        transposed_displacements(x, sq=np.zeros(4))


_X, _Y, _SQ = np.zeros((6, 4)), np.zeros((4, 8)), np.zeros(6)
BAD_CORE_ARGS = {
    "x 1-D": (np.zeros(6), _Y, _SQ),
    "x int": (np.zeros((6, 4), np.int32), _Y, _SQ),
    "x columns strided": (np.zeros((6, 8))[:, ::2], _Y, _SQ),
    "y too short": (_X, np.zeros((4, 5)), _SQ),
    "y rows": (_X, np.zeros((3, 8)), _SQ),
    "y float32": (_X, np.zeros((4, 8), np.float32), _SQ),
    "y columns strided": (_X, np.zeros((4, 16))[:, ::2], _SQ),
    "y read-only": (_X, np.broadcast_to(0.0, (4, 8)), _SQ),
    "sq length": (_X, _Y, np.zeros(5)),
    "sq strided": (_X, _Y, np.zeros(12)[::2]),
}


@pytest.mark.parametrize("case", sorted(BAD_CORE_ARGS))
def test_core_rejects_bad_arrays(case):
    core = pytest.importorskip("pyengine._core")
    with pytest.raises((ValueError, TypeError)):
        core.transposed_displacements(*BAD_CORE_ARGS[case])
