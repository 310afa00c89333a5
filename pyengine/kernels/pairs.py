"""Pair binning kernel: one pass over the pairs a < b of a window into fp64 histograms."""

from __future__ import annotations

import numpy as np

from pyengine import config, dispatch, reference
from pyengine.kernels._arrays import array_module, is_cupy

#: Rows of the pair-binning output.
STATS = ("count", "key_sum", "value_sum", "value_sumsq")


def pair_bin(key, value, edges, out=None, backend: str = "auto", threads: int = 0):
    """Histogram of a pair value over bins of a pair key, for all pairs a < b of n points.

    Each of ``key`` and ``value`` is a pair quantity given either as an (n, n) matrix
    (entry [a, b] is used, a < b: e.g. squared distances D²) or as a length-n vector u of
    per-point numbers (the key is then |u_b − u_a|, the value (u_b − u_a)²: e.g. contour
    positions, losses). MSL (Chen et al. Eq. 9) is ``pair_bin(D2, loss, edges**2)``; the
    path geometry Δr² against contour length Δs is ``pair_bin(s, D2, edges)``.

    Parameters
    ----------
    key, value : float64 array of shape (n, n) or (n,)
        NumPy, or CuPy for the CUDA backend. Matrix rows must be contiguous.
    edges : array of shape (n_bins + 1,)
        Increasing bin edges in key units; bin k is [edges[k], edges[k+1]) and the last
        bin includes its right edge (as ``numpy.histogram``). Log-spaced edges take a fast
        path; any increasing edges are accepted.
    out : float64 array of shape (4, n_bins), optional
        Added to, so windows or blocks accumulate.
    backend : {"auto", "cuda", "cpp", "numba", "numpy"}
    threads : int
        CPU threads (0: ``config.THREADS``, or all cores).

    Returns
    -------
    out : float64 array of shape (4, n_bins)
        Per bin: count, sum of keys, sum of values, sum of squared values (see ``STATS``).
        Pairs whose key is outside the edges or NaN, or whose value is not finite, are
        skipped.

    Examples
    --------
    >>> import numpy as np
    >>> pos = np.array([0.0, 1.0, 3.0])          # key |pos_b - pos_a|: 1, 3, 2
    >>> loss = np.array([0.0, 1.0, 1.0])         # value (loss_b - loss_a)**2: 1, 1, 0
    >>> pair_bin(pos, loss, [0.5, 1.5, 3.5], backend="numpy")
    array([[1., 2.],
           [1., 5.],
           [1., 1.],
           [1., 1.]])
    """
    on_gpu = is_cupy(key) or is_cupy(value)
    xp = array_module(on_gpu)
    key, value = _source(key, "key", xp), _source(value, "value", xp)
    if key.shape[0] != value.shape[0]:
        raise ValueError(f"key and value must cover the same points, got {key.shape[0]} and {value.shape[0]}")
    edges = np.ascontiguousarray(edges, dtype=np.float64).ravel()
    if edges.size < 2 or not np.all(np.diff(edges) > 0):
        raise ValueError(f"edges must be at least 2 strictly increasing values, got {edges[:6]}")
    shape = (len(STATS), edges.size - 1)
    if out is None:
        out = xp.zeros(shape)
    elif out.shape != shape or out.dtype != np.float64:
        raise ValueError(f"out: expected float64 of shape {shape}, got {out.dtype} {out.shape}")
    name = dispatch.resolve(backend, on_gpu=on_gpu)
    _IMPLS[name](key, value, edges, _log_uniform(edges), out, threads or config.THREADS)
    return out


def log_edges(lo: float, hi: float, n_bins: int) -> np.ndarray:
    """``n_bins + 1`` log-spaced edges from lo to hi (both > 0)."""
    if not 0 < lo < hi:
        raise ValueError(f"log-spaced bins need 0 < lo < hi, got lo={lo}, hi={hi}")
    if n_bins < 1:
        raise ValueError(f"need at least one bin, got {n_bins}")
    return np.geomspace(lo, hi, n_bins + 1)


def _log_uniform(edges: np.ndarray) -> bool:
    if edges[0] <= 0:
        return False
    steps = np.diff(np.log2(edges))
    return bool(np.allclose(steps, steps[0], rtol=1e-9, atol=0))


def _source(a, name: str, xp):
    a = xp.asarray(a)
    if a.dtype != np.float64:
        if not (np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating)):
            raise TypeError(f"{name}: expected real numbers, got dtype {a.dtype}")
        a = a.astype(np.float64)
    if a.ndim == 1:
        return xp.ascontiguousarray(a)
    if a.ndim != 2 or a.shape[0] != a.shape[1]:
        raise ValueError(f"{name}: expected a square (n, n) matrix or a length-n vector, got shape {a.shape}")
    if a.shape[1] > 1 and a.strides[1] != a.itemsize:
        a = xp.ascontiguousarray(a)
    return a


def _cpp(key, value, edges, log_uniform, out, threads):
    from pyengine import _core

    _core.pair_bin(key, value, edges, log_uniform, out, threads)


def _numba(key, value, edges, log_uniform, out, threads):
    from pyengine.kernels import _numba_pairs

    _numba_pairs.pair_bin(key, value, edges, out, threads)


def _cuda(key, value, edges, log_uniform, out, threads):
    import cupy

    from pyengine import _cuda

    key, value = cupy.asarray(key), cupy.asarray(value)
    d_edges = cupy.asarray(edges)

    def ld(a):
        return a.strides[0] // a.itemsize if a.ndim == 2 else 0

    _cuda.pair_bin(key.data.ptr, ld(key), value.data.ptr, ld(value), key.shape[0], d_edges.data.ptr,
                   edges.size - 1, log_uniform, out.data.ptr, cupy.cuda.get_current_stream().ptr)


def _numpy(key, value, edges, log_uniform, out, threads):
    reference.pair_bin(key, value, edges, out)


_IMPLS = {"cpp": _cpp, "numba": _numba, "numpy": _numpy, "cuda": _cuda}
