"""Mohammadi tail-index statistics: the 1-D sums and the multivariate squared norms."""

from __future__ import annotations

import numpy as np

from pyengine import config, dispatch
from pyengine.kernels._arrays import as_rows, is_cupy
from pyengine.reference import tail_index as ref

HEAD, PER_K1 = ref.HEAD, ref.PER_K1


def n_stats(n_k1: int) -> int:
    """Length of the 1-D statistics vector for ``n_k1`` group sizes."""
    return HEAD + PER_K1 * n_k1


def _k1_array(k1) -> np.ndarray:
    k1 = np.ascontiguousarray(k1, dtype=np.int64).ravel()
    if k1.size and k1.min() < 2:
        raise ValueError(f"k1: every K1 must be >= 2, got {k1.min()}")
    return k1


def tail_sums(x, k1, stats=None, backend: str = "auto"):
    """Add the 1-D Mohammadi statistics of the columns of ``x`` to ``stats``.

    Parameters
    ----------
    x : array of shape (n_samples, n_cols), float32 or float64
        NumPy or CuPy; each column is one sequence of samples (rows contiguous).
    k1 : sequence of int, each >= 2
        Group sizes.
    stats : float64 array of length ``n_stats(len(k1))``, optional
        Added to. Layout: [Σ log|x|, Σ log²|x|, n used, n zero, n non-finite], then per K1
        [Σ log|y|, Σ log²|y|, groups used, degenerate groups, values truncated].
    backend : {"auto", "cuda", "cpp", "numba", "numpy"}

    Returns
    -------
    stats : float64 array

    Examples
    --------
    >>> import numpy as np
    >>> s = tail_sums(np.array([[1.0], [2.0], [0.0], [4.0], [8.0]]), [2], backend="numpy")
    >>> s[2:5], s[7:10]          # 4 used, 1 zero; groups (1+2), (4+8)
    (array([4., 1., 0.]), array([2., 0., 0.]))
    """
    x = as_rows(x)
    k1 = _k1_array(k1)
    on_gpu = is_cupy(x)
    stats = _out(stats, n_stats(k1.size), on_gpu, "stats")
    name = dispatch.resolve(backend, on_gpu=on_gpu)
    _SUMS[name](x, k1, stats)
    return stats


def tail_norms(x, k1, row_sq=None, group_sq=None, backend: str = "auto"):
    """Add squared row norms and squared norms of K1-row group sums (multivariate form).

    Parameters
    ----------
    x : array of shape (n_samples, n_cols), float32 or float64
        Rows are sample vectors; a column block of them adds its share of every norm.
    k1 : sequence of int, each >= 2
    row_sq : float64 array of shape (n_samples,), optional
        Added to: ``row_sq[t] += sum_c x[t, c]**2``.
    group_sq : float64 array of shape (sum_k n_samples // k,), optional
        Added to: the squared norm of ``x[i*k:(i+1)*k].sum(0)`` for each K1 in order.
    backend : {"auto", "cuda", "cpp", "numba", "numpy"}

    Returns
    -------
    row_sq, group_sq : float64 arrays
    """
    x = as_rows(x)
    k1 = _k1_array(k1)
    on_gpu = is_cupy(x)
    n = x.shape[0]
    row_sq = _out(row_sq, n, on_gpu, "row_sq")
    group_sq = _out(group_sq, int(sum(n // k for k in k1)), on_gpu, "group_sq")
    name = dispatch.resolve(backend, on_gpu=on_gpu)
    _NORMS[name](x, k1, row_sq, group_sq)
    return row_sq, group_sq


def _out(a, n: int, on_gpu: bool, name: str):
    if a is None:
        if on_gpu:
            import cupy

            return cupy.zeros(n, dtype=np.float64)
        return np.zeros(n, dtype=np.float64)
    if a.shape != (n,) or a.dtype != np.float64:
        raise ValueError(f"{name}: expected float64 of shape ({n},), got {a.dtype} {a.shape}")
    return a


def _cpp_sums(x, k1, stats):
    from pyengine import _core

    _core.tail_sums(x, k1, stats, config.THREADS)


def _cpp_norms(x, k1, row_sq, group_sq):
    from pyengine import _core

    _core.tail_norms(x, k1, row_sq, group_sq, config.THREADS)


def _numba_sums(x, k1, stats):
    from pyengine.kernels import _numba_tail_index

    _numba_tail_index.tail_sums(x, k1, stats)


def _numba_norms(x, k1, row_sq, group_sq):
    from pyengine.kernels import _numba_tail_index

    _numba_tail_index.tail_norms(x, k1, row_sq, group_sq)


def _cuda_args(x):
    import cupy

    return (x.data.ptr, str(x.dtype), x.shape[0], x.shape[1], x.strides[0] // x.itemsize,
            cupy.cuda.get_current_stream().ptr)


def _cuda_sums(x, k1, stats):
    from pyengine import _cuda

    ptr, dtype, n_rows, n_cols, stride, stream = _cuda_args(x)
    _cuda.tail_sums(ptr, dtype, n_rows, n_cols, stride, k1.tolist(), stats.data.ptr, stream)


def _cuda_norms(x, k1, row_sq, group_sq):
    from pyengine import _cuda

    ptr, dtype, n_rows, n_cols, stride, stream = _cuda_args(x)
    _cuda.tail_norms(ptr, dtype, n_rows, n_cols, stride, k1.tolist(), row_sq.data.ptr, group_sq.data.ptr, stream)


_SUMS = {"cpp": _cpp_sums, "numba": _numba_sums, "numpy": ref.tail_sums, "cuda": _cuda_sums}
_NORMS = {"cpp": _cpp_norms, "numba": _numba_norms, "numpy": ref.tail_norms, "cuda": _cuda_norms}
