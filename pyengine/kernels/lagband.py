"""Lag band kernel: exact squared displacements at chosen lags, for every origin."""

from __future__ import annotations

import numpy as np

from pyengine import config, dispatch, reference
from pyengine.kernels._arrays import array_module, as_rows, is_cupy


def lag_band(x, lags, out=None, backend: str = "auto", threads: int = 0):
    """Squared displacement ``D[l, t] = sum_c (x[t + lags[l], c] - x[t, c])**2``.

    Parameters
    ----------
    x : array of shape (n_snapshots, n_params), float32 or float64
        NumPy or CuPy array; rows must be contiguous (column views are fine).
    lags : sequence of int, each >= 1
        Lags in snapshot units.
    out : float64 array of shape (len(lags), n_snapshots), optional
        Added to (so column blocks accumulate into one band). Entries with
        ``t >= n_snapshots - lags[l]`` are left as they are.
    backend : {"auto", "cuda", "cpp", "numba", "numpy"}
    threads : int
        CPU threads for the C++ kernel (0: ``config.THREADS``, or all cores).

    Returns
    -------
    out : float64 array of shape (len(lags), n_snapshots)

    Examples
    --------
    >>> import numpy as np
    >>> x = np.arange(10.0).reshape(5, 2)          # moves by (2, 2) per snapshot
    >>> lag_band(x, [1, 2], backend="numpy")[:, :3]
    array([[ 8.,  8.,  8.],
           [32., 32., 32.]])
    """
    x = as_rows(x)
    on_gpu = is_cupy(x)
    xp = array_module(on_gpu)
    lags = np.ascontiguousarray(lags, dtype=np.int64).ravel()
    if lags.size and lags.min() < 1:
        raise ValueError(f"lags must be >= 1, got min {lags.min()}")
    shape = (lags.size, x.shape[0])
    if out is None:
        out = xp.zeros(shape, dtype=np.float64)
    elif out.shape != shape or out.dtype != np.float64:
        raise ValueError(f"out: expected float64 of shape {shape}, got {out.dtype} {out.shape}")
    name = dispatch.resolve(backend, on_gpu=on_gpu)
    _IMPLS[name](x, lags, out, threads or config.THREADS)
    return out


def _cpp(x, lags, out, threads):
    from pyengine import _core

    _core.lag_band(x, lags, out, threads)


def _numba(x, lags, out, threads):
    from pyengine.kernels import _numba_lagband

    _numba_lagband.lag_band(x, lags, out)


def _cuda(x, lags, out, threads):
    import cupy

    from pyengine import _cuda

    d_lags = cupy.asarray(lags)
    _cuda.lag_band(x.data.ptr, str(x.dtype), x.shape[0], x.shape[1], x.strides[0] // x.itemsize,
                   d_lags.data.ptr, lags.size, out.data.ptr, cupy.cuda.get_current_stream().ptr)


def _numpy(x, lags, out, threads):
    reference.lag_band(x, lags, out)


_IMPLS = {"cpp": _cpp, "numba": _numba, "numpy": _numpy, "cuda": _cuda}
