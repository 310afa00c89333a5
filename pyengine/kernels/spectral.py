"""Spectral MSD input: displacements from the first row, laid out for FFTs along time."""

from __future__ import annotations

import numpy as np

from pyengine import config, dispatch, reference
from pyengine.kernels._arrays import array_module, as_rows, is_cupy


def transposed_displacements(x, y=None, sq=None, backend: str = "auto", threads: int = 0):
    """Displacements ``y[c, t] = x[t, c] - x[0, c]`` in float64, one row per column of ``x``.

    The transpose makes time contiguous, so each parameter's FFT runs along a row; the
    squared norms ``sq[t] += sum_c y[c, t]**2`` come from the same pass over the data.

    Parameters
    ----------
    x : array of shape (n_snapshots, n_params), float32 or float64
        NumPy or CuPy array; rows must be contiguous (column views are fine).
    y : float64 array of shape (n_params, m), m >= n_snapshots, optional
        Rows must be contiguous. ``y[:, :n_snapshots]`` is overwritten; the rest (an FFT's
        zero padding) is left as it is.
    sq : float64 array of shape (n_snapshots,), optional
        Added to (so column blocks accumulate).
    backend : {"auto", "cuda", "cpp", "numba", "numpy"}
        ``"cuda"`` runs the NumPy reference on CuPy arrays.
    threads : int
        CPU threads for the C++ kernel (0: ``config.THREADS``, or all cores).

    Returns
    -------
    y, sq : float64 arrays

    Examples
    --------
    >>> import numpy as np
    >>> x = np.array([[1.0, 5.0], [2.0, 3.0], [4.0, 5.0]], dtype=np.float32)
    >>> y, sq = transposed_displacements(x, np.zeros((2, 4)), backend="numpy")
    >>> y
    array([[ 0.,  1.,  3.,  0.],
           [ 0., -2.,  0.,  0.]])
    >>> sq
    array([0., 5., 9.])
    """
    x = as_rows(x)
    on_gpu = is_cupy(x)
    xp = array_module(on_gpu)
    n, p = x.shape
    if y is None:
        y = xp.empty((p, n), dtype=np.float64)
    elif not _rows_of_at_least(y, p, n):
        raise ValueError(f"y: expected float64 of shape ({p}, >= {n}) with contiguous rows, "
                         f"got {y.dtype} {y.shape}")
    if sq is None:
        sq = xp.zeros(n, dtype=np.float64)
    elif sq.shape != (n,) or sq.dtype != np.float64:
        raise ValueError(f"sq: expected float64 of shape ({n},), got {sq.dtype} {sq.shape}")
    name = dispatch.resolve(backend, on_gpu=on_gpu)
    _IMPLS[name](x, y, sq, threads or config.THREADS)
    return y, sq


def _rows_of_at_least(y, p: int, n: int) -> bool:
    """Whether y is float64 of shape (p, >= n) with contiguous rows."""
    return (y.ndim == 2 and y.shape[0] == p and y.shape[1] >= n and y.dtype == np.float64
            and (y.shape[1] <= 1 or y.strides[1] == y.itemsize))


def _cpp(x, y, sq, threads):
    from pyengine import _core

    _core.transposed_displacements(x, y, sq, threads)


def _numba(x, y, sq, threads):
    from pyengine.kernels import _numba_spectral

    _numba_spectral.transposed_displacements(x, y, sq)


def _reference(x, y, sq, threads):
    reference.transposed_displacements(x, y, sq)


_IMPLS = {"cpp": _cpp, "numba": _numba, "numpy": _reference, "cuda": _reference}
