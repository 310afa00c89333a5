"""Symmetric α-stable log-likelihood and its gradient, summed over samples."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from pyengine import config, dispatch
from pyengine.kernels._arrays import is_cupy
from pyengine.reference import tail_stable as ref


class DensityRow(NamedTuple):
    """The standard SαS density at one α (built by pyengine.heavytail.stable.density_row).

    ``g``/``g_da``: G(u_j) and ∂G/∂α on u_j = j·h (see csrc/include/pyengine/tail_stable.hpp);
    ``c``/``c_da``: tail-series coefficients c_1.. and their α-derivatives.
    """

    g: np.ndarray
    g_da: np.ndarray
    h: float
    x_tail: float
    c: np.ndarray
    c_da: np.ndarray
    alpha: float


def stable_loglik(x, loc: float, scale: float, row: DensityRow, logp=None, backend: str = "auto") -> np.ndarray:
    """Σ log p and its gradient for samples x of S(α, 0, scale, loc).

    Parameters
    ----------
    x : 1-D float32 or float64 array (NumPy or CuPy), finite values
    loc, scale : float
        Location and scale (> 0).
    row : DensityRow
        The standard density at α.
    logp : float64 array like x, optional
        Receives log p of every sample.
    backend : {"auto", "cuda", "cpp", "numba", "numpy"}

    Returns
    -------
    sums : float64 array of 4
        [Σ log p, Σ ∂log p/∂α, Σ ∂log p/∂loc, Σ ∂log p/∂scale].
    """
    on_gpu = is_cupy(x)
    if x.ndim != 1:
        raise ValueError(f"x: expected a 1-D array, got shape {x.shape}")
    if x.dtype not in (np.float32, np.float64):
        x = x.astype(np.float64)
    if not scale > 0:
        raise ValueError(f"scale must be > 0, got {scale}")
    if logp is not None and (logp.shape != x.shape or logp.dtype != np.float64):
        raise ValueError(f"logp: expected float64 of shape {x.shape}")
    sums = np.zeros(4)
    name = dispatch.resolve(backend, on_gpu=on_gpu)
    _IMPLS[name](x, float(loc), float(scale), row, sums, logp)
    return sums


def _cpp(x, loc, scale, row, sums, logp):
    from pyengine import _core

    x = np.ascontiguousarray(x)
    _core.stable_loglik(x, loc, scale, row.g, row.g_da, row.h, row.x_tail, row.c, row.c_da, row.alpha, sums,
                        logp, config.THREADS)


def _numba(x, loc, scale, row, sums, logp):
    from pyengine.kernels import _numba_tail_stable

    _numba_tail_stable.stable_loglik(x, loc, scale, row, sums, logp)


def _numpy(x, loc, scale, row, sums, logp):
    ref.stable_loglik(x, loc, scale, row.g, row.g_da, row.h, row.x_tail, row.c, row.c_da, row.alpha, sums, logp)


def _cuda(x, loc, scale, row, sums, logp):
    import cupy

    from pyengine import _cuda

    x = cupy.ascontiguousarray(x)
    dev = [cupy.asarray(a, dtype=np.float64) for a in (row.g, row.g_da, row.c, row.c_da)]
    out = cupy.zeros(4, dtype=np.float64)
    _cuda.stable_loglik(x.data.ptr, str(x.dtype), x.size, loc, scale, dev[0].data.ptr, dev[1].data.ptr,
                        row.g.size - 1, row.h, row.x_tail, dev[2].data.ptr, dev[3].data.ptr, row.c.size, row.alpha,
                        out.data.ptr, 0 if logp is None else logp.data.ptr, cupy.cuda.get_current_stream().ptr)
    sums += out.get()


_IMPLS = {"cpp": _cpp, "numba": _numba, "numpy": _numpy, "cuda": _cuda}
