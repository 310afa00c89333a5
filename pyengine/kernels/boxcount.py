"""Box-counting kernels: block min/max at many box sizes (one pyramid for all powers of two)."""

from __future__ import annotations

import numpy as np

from pyengine import config, dispatch, reference
from pyengine.kernels._arrays import array_module, is_cupy

#: Box rules of the kernels (csrc/include/pyengine/boxcount.hpp).
RULES = {"dbc": 0, "idbc": 1, "occupied": 2}
_DTYPES = (np.dtype(np.float32), np.dtype(np.float64), np.dtype(np.uint8), np.dtype(np.bool_))


def box_counts(z, sizes, inv_heights=None, zmin: float = 0.0, rule: str = "dbc",
               origin: tuple[int, int] = (0, 0), backend: str = "auto"):
    """Raw box counts of a surface or binary image at several box sizes.

    For each size ``s`` the region ``z[oy:, ox:]`` is cut into whole ``s x s`` blocks (a
    partial last row or column of blocks is left out), and every block with minimum ``lo``
    and maximum ``hi`` needs

    - ``"dbc"``: ``floor((hi - zmin) / h) - floor((lo - zmin) / h) + 1`` boxes of height
      ``h`` on a fixed grid (Sarkar & Chaudhuri 1994);
    - ``"idbc"``: ``max(1, ceil((hi - lo) / h))`` boxes stacked from the block minimum
      (Li, Du & Sun 2009);
    - ``"occupied"``: 1 box if the block holds a nonzero value, else 0 (binary images).

    Parameters
    ----------
    z : array of shape (ny, nx), float32, float64, uint8 or bool
        NumPy or CuPy array with contiguous rows; values must be finite.
    sizes : sequence of int
        Distinct box sizes in pixels, each >= 1. All powers of two share one min/max pyramid.
    inv_heights : sequence of float, optional
        ``1 / h`` for each size (ignored by ``"occupied"``).
    zmin : float
        Base of the fixed box grid of ``"dbc"``.
    rule : {"dbc", "idbc", "occupied"}
    origin : (int, int)
        Grid offset ``(oy, ox)`` in pixels.
    backend : {"auto", "cuda", "cpp", "numba", "numpy"}

    Returns
    -------
    counts : float64 ndarray of shape (len(sizes),)
        Sum of the boxes over the blocks (0 where no whole block fits).
    n_blocks : float64 ndarray of shape (len(sizes),)
        Number of blocks.

    Examples
    --------
    >>> import numpy as np
    >>> z = np.array([[0.0, 1.0], [2.0, 3.0]])
    >>> box_counts(z, [1, 2], [1.0, 1.0], rule="dbc", backend="numpy")
    (array([4., 4.]), array([4., 1.]))
    """
    z = _check_image(z)
    sizes = np.ascontiguousarray(sizes, dtype=np.int64).ravel()
    if sizes.size and sizes.min() < 1:
        raise ValueError(f"sizes must be >= 1, got {sizes.min()}")
    if np.unique(sizes).size != sizes.size:
        raise ValueError("sizes must be distinct")
    if inv_heights is None:
        inv_heights = np.ones(sizes.size)
    inv_heights = np.ascontiguousarray(inv_heights, dtype=np.float64).ravel()
    if inv_heights.size != sizes.size:
        raise ValueError(f"inv_heights: expected {sizes.size} values (one per size), got {inv_heights.size}")
    if rule not in RULES:
        raise ValueError(f"rule must be one of {sorted(RULES)}, got {rule!r}")
    oy, ox = (int(v) for v in origin)
    if oy < 0 or ox < 0:
        raise ValueError(f"origin must be >= 0, got {origin}")
    name = dispatch.resolve(backend, on_gpu=is_cupy(z))
    return _IMPLS[name](z, (oy, ox), sizes, inv_heights, float(zmin), RULES[rule])


def surface_stats(z, backend: str = "auto") -> np.ndarray:
    """One pass over a surface: ``[min, max, sum(z - z0), sum((z - z0)**2), NaN count]``.

    Sums are over the non-NaN values, taken about ``z0 = z[0, 0]`` (against cancellation).

    Parameters
    ----------
    z : array of shape (ny, nx), float32 or float64
        NumPy or CuPy array with contiguous rows.
    backend : {"auto", "cuda", "cpp", "numba", "numpy"}

    Returns
    -------
    ndarray of shape (5,), float64

    Examples
    --------
    >>> import numpy as np
    >>> surface_stats(np.array([[1.0, np.nan], [3.0, 2.0]]), backend="numpy")
    array([1., 3., 3., 5., 1.])
    """
    z = _check_image(z)
    if z.dtype.kind != "f":
        raise TypeError(f"z: expected float32 or float64, got {z.dtype}")
    name = dispatch.resolve(backend, on_gpu=is_cupy(z))
    return _STATS[name](z)


def _check_image(z):
    if getattr(z, "ndim", None) != 2:
        raise ValueError(f"z: expected a 2-D array of shape (ny, nx), got shape {getattr(z, 'shape', None)}")
    if z.dtype not in _DTYPES:
        raise TypeError(f"z: expected float32, float64, uint8 or bool, got {z.dtype}")
    if z.shape[0] == 0 or z.shape[1] == 0:
        raise ValueError(f"z: expected a non-empty array, got shape {z.shape}")
    if z.shape[1] > 1 and z.strides[1] != z.itemsize:
        z = array_module(is_cupy(z)).ascontiguousarray(z)
    if z.dtype == np.bool_:
        z = z.view(np.uint8)
    return z


def _empty(sizes):
    return np.zeros((1, sizes.size)), np.zeros((1, sizes.size))


def _cpp(z, origin, sizes, inv_heights, zmin, rule):
    from pyengine import _core

    counts, n_blocks = _empty(sizes)
    _core.box_counts(z, origin[0], origin[1], sizes, inv_heights, zmin, rule, counts, n_blocks, config.THREADS)
    return counts[0], n_blocks[0]


def _numba(z, origin, sizes, inv_heights, zmin, rule):
    from pyengine.kernels import _numba_boxcount

    counts, n_blocks = np.zeros(sizes.size), np.zeros(sizes.size)
    return _numba_boxcount.box_counts(z, origin, sizes, inv_heights, zmin, rule, counts, n_blocks)


def _numpy(z, origin, sizes, inv_heights, zmin, rule):
    counts, n_blocks = np.zeros(sizes.size), np.zeros(sizes.size)
    return reference.box_counts(z, origin, sizes, inv_heights, zmin, rule, counts, n_blocks)


def _cuda(z, origin, sizes, inv_heights, zmin, rule):
    import cupy

    from pyengine import _cuda

    counts, n_blocks = cupy.zeros(sizes.size), cupy.zeros(sizes.size)
    _cuda.box_counts(z.data.ptr, str(z.dtype), z.shape[0], z.shape[1], z.strides[0] // z.itemsize,
                     origin[0], origin[1], sizes.tolist(), inv_heights.tolist(), zmin, rule,
                     counts.data.ptr, n_blocks.data.ptr, cupy.cuda.get_current_stream().ptr)
    return cupy.asnumpy(counts), cupy.asnumpy(n_blocks)


def _numba_stats(z):
    from pyengine.kernels import _numba_boxcount

    return _numba_boxcount.surface_stats(z)


def _cpp_stats(z):
    from pyengine import _core

    return _core.surface_stats(z, config.THREADS)


def _cuda_stats(z):
    import cupy

    nan = cupy.isnan(z)
    ok = z[~nan].astype(cupy.float64)
    if ok.size == 0:
        return np.array([np.inf, -np.inf, 0.0, 0.0, float(z.size)])
    z0 = float(z[0, 0]) if not bool(nan[0, 0]) else 0.0
    d = ok - z0
    return np.array([float(ok.min()), float(ok.max()), float(d.sum()), float((d * d).sum()), float(nan.sum())])


_IMPLS = {"cpp": _cpp, "numba": _numba, "numpy": _numpy, "cuda": _cuda}
_STATS = {"cpp": _cpp_stats, "numba": _numba_stats, "numpy": reference.surface_stats, "cuda": _cuda_stats}
