"""Box-counting dimension of surfaces, planar sets, point sets and curves."""

from __future__ import annotations

import math

import numpy as np

from pyengine.fractal import points as _points
from pyengine.fractal.result import BoxCountResult, fit_line, select_range
from pyengine.kernels._arrays import array_module, is_cupy
from pyengine.kernels.boxcount import box_counts, surface_stats

_METHODS = {"surface": ("idbc", "dbc"), "set": ("occupied",), "points": ("morton",)}
#: Surfaces whose range lies outside ``2**±SAFE_EXPONENT`` are rescaled by a power of two
#: before counting (the sums of squares of the stats pass stay finite and nonzero).
SAFE_EXPONENT = 400
#: Relative amount by which DBC boxes are taller than ``s * range / side``: the maximum,
#: on the top edge of the stack, then falls inside the top box whatever the rounding.
DBC_TOP = 2.0**-40


def boxcount(z_or_points, kind: str = "surface", method: str | None = None, sizes=None,
             fit_range=None, backend: str = "auto", *, offsets: int = 1, level: float | None = None,
             curve: bool = False, spread: float = 3.0) -> BoxCountResult:
    """Box-counting dimension of a surface, a planar set, or a point set / curve.

    ``N(s)``, the number of boxes of side ``s`` needed to cover the object, is counted at
    several sizes and ``D`` is minus the slope of ``log N`` against ``log s`` over the
    linear part of the curve (chosen automatically unless ``fit_range`` is given).

    Parameters
    ----------
    z_or_points : array
        ``kind="surface"``: heights ``z[y, x]`` of shape (ny, nx), float (NumPy or CuPy).
        ``kind="set"``: a binary image (bool or 0/1) of shape (ny, nx), or a surface with
        ``level`` set. ``kind="points"``: coordinates of shape (m, d), m points in R^d.
    kind : {"surface", "set", "points"}
        Which dimension: of the graph of z (between 2 and 3), of a planar set (between 1
        and 2), or of a point set or curve (between 0 and d).
    method : str, optional
        Surfaces: ``"idbc"`` (default; Li, Du & Sun 2009: box height ``h / (1 + 2 a σ)``
        with σ the standard deviation of the normalised heights and ``a = spread``, boxes
        stacked from each block's minimum) or ``"dbc"`` (Sarkar & Chaudhuri 1994: box
        height ``h = s * (zmax - zmin) / min(ny, nx)``, boxes on a fixed grid from zmin).
        Sets: ``"occupied"``. Points: ``"morton"``.
    sizes : sequence, optional
        Box sizes: in pixels for surfaces and sets (any integers >= 1; powers of two all
        come from one min/max pyramid), in data units for points. Default: powers of two
        from 2 (surfaces) or 1 (sets) up to a quarter of the shorter side; for points,
        ``extent / 2**k`` down to where the counts saturate.
    fit_range : (float, float), optional
        Smallest and largest box size to fit; default: chosen automatically (the window
        of at least half of the sizes with the smallest slope standard error).
    backend : {"auto", "cuda", "cpp", "numba", "numpy"}
        Kernel backend for surfaces and sets (points always use NumPy's sort).
    offsets : int
        Surfaces and sets: number of grid origins ``(d, d)``, ``d = i * max(sizes) //
        offsets``, whose counts are pooled.
    level : float, optional
        With ``kind="set"``: count the level set ``{z = level}`` of the surface ``z``, i.e.
        the grid cells whose four corners straddle ``level``.
    curve : bool
        With ``kind="points"``: the points are consecutive vertices of a curve, densified
        so that steps are shorter than half the smallest box.
    spread : float
        The constant ``a`` of the IDBC box height.

    Returns
    -------
    BoxCountResult
        Sizes, counts, fit range, ``.dimension`` and ``.dimension_se``; ``.label`` says which
        dimension it is.

    Notes
    -----
    Images and surfaces are cut into whole ``s x s`` blocks; where ``s`` does not divide
    the side (or the grid is offset) the count is the mean count per block times
    ``ny * nx / s**2``, so partial blocks neither vanish nor bias the slope. Heights are
    rescaled so that their range equals ``min(ny, nx)`` pixels (the DBC convention), so the
    dimension does not depend on the units of z: ``z * 1e300`` and ``z * 1e-300`` count like
    ``z`` (ranges beyond ``2**±400`` are first scaled by an exact power of two), and a constant
    surface has dimension 2.
    Spectrally synthesised surfaces are smoother at the pixel scale than their Hurst
    exponent says, which pulls counts at small boxes towards dimension 2: compare methods
    and fit ranges (docs/fractal.md).

    References
    ----------
    Sarkar, N. & Chaudhuri, B. B. (1994). An efficient differential box-counting approach
    to compute fractal dimension of image. IEEE Trans. SMC 24(1), 115-120.
    Li, J., Du, Q. & Sun, C. (2009). An improved box-counting method for image fractal
    dimension estimation. Pattern Recognition 42(11), 2460-2469.

    Examples
    --------
    >>> import numpy as np, pyengine as pe
    >>> square = np.ones((256, 256), dtype=bool)
    >>> round(pe.boxcount(square, kind="set").dimension, 6)
    2.0
    >>> t = np.linspace(0.0, 1.0, 1000)
    >>> line = np.column_stack([t, 0.5 * t])
    >>> round(pe.boxcount(line, kind="points", curve=True).dimension, 1)
    1.0
    """
    if kind not in _METHODS:
        raise ValueError(f"kind must be one of {sorted(_METHODS)}, got {kind!r}")
    method = _METHODS[kind][0] if method is None else method
    if method not in _METHODS[kind]:
        raise ValueError(f"method for kind={kind!r} must be one of {_METHODS[kind]}, got {method!r}")
    if kind == "points":
        size_arr, counts = _count_points(z_or_points, sizes, curve)
        settings = {"curve": bool(curve)}
    else:
        if offsets < 1:
            raise ValueError(f"offsets must be >= 1, got {offsets}")
        if kind == "surface":
            size_arr, counts = _count_surface(z_or_points, method, sizes, offsets, spread, backend)
            settings = {"offsets": offsets, "spread": spread} if method == "idbc" else {"offsets": offsets}
        else:
            size_arr, counts = _count_set(z_or_points, sizes, offsets, level, backend)
            settings = {"offsets": offsets, "level": level}
    keep = counts > 0
    size_arr, counts = size_arr[keep], counts[keep]
    if size_arr.size < 2:
        raise ValueError(f"need at least 2 box sizes with boxes to fit a dimension, got {size_arr.size}; "
                         "pass more or smaller sizes")
    fit = _fit(np.log(size_arr), np.log(counts), size_arr, fit_range)
    return BoxCountResult(kind=kind, method=method, sizes=size_arr, counts=counts,
                          fit_range=(float(size_arr[fit.lo]), float(size_arr[fit.hi - 1])),
                          dimension=-fit.slope, dimension_se=fit.slope_se, intercept=fit.intercept,
                          settings=settings)


def _fit(x, y, sizes, fit_range):
    if fit_range is None:
        return select_range(x, y)
    lo_s, hi_s = fit_range
    inside = np.flatnonzero((sizes >= lo_s) & (sizes <= hi_s))
    if inside.size < 2:
        raise ValueError(f"fit_range {fit_range} holds {inside.size} box size(s); need at least 2 of {sizes.tolist()}")
    return fit_line(x, y, int(inside[0]), int(inside[-1]) + 1)


def _pixel_sizes(sizes, side: int, smallest: int) -> np.ndarray:
    if sizes is None:
        sizes = [2**k for k in range(31) if smallest <= 2**k <= side // 4]
    sizes = np.unique(np.asarray(sizes, dtype=np.int64))
    if sizes.size == 0 or sizes.min() < 1:
        raise ValueError(f"sizes must be integers >= 1 (pixels), got {sizes.tolist()}; "
                         f"the image is too small for the default sizes if this is empty")
    if sizes.max() > side:
        raise ValueError(f"sizes must be <= the shorter side ({side} pixels), got {sizes.max()}")
    return sizes


def _pooled_counts(z, sizes, inv_heights, zmin, rule, offsets, backend):
    """Counts pooled over grid origins, scaled to the whole image: mean per block * area / s**2."""
    total, blocks = np.zeros(sizes.size), np.zeros(sizes.size)
    for i in range(offsets):
        d = i * int(sizes.max()) // offsets
        c, b = box_counts(z, sizes, inv_heights, zmin, rule, (d, d), backend=backend)
        total += c
        blocks += b
    area = float(z.shape[0]) * float(z.shape[1])
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(blocks > 0, total / blocks * area / sizes.astype(np.float64) ** 2, 0.0)


def _count_surface(z, method, sizes, offsets, spread, backend):
    if getattr(z, "ndim", None) != 2:
        raise ValueError(f"surface: expected a 2-D array z[y, x], got shape {getattr(z, 'shape', None)}")
    if z.dtype.kind not in "fiu":
        raise TypeError(f"surface: expected real heights, got dtype {z.dtype}")
    if z.dtype.kind != "f":
        z = z.astype(np.float64)
    stats = surface_stats(z, backend=backend)
    if stats[4]:
        raise ValueError(f"surface: z holds {int(stats[4])} NaN value(s); crop or fill them before box counting")
    if not (np.isfinite(stats[0]) and np.isfinite(stats[1])):
        raise ValueError("surface: z holds infinite values")
    z, stats = _unit_scaled(z, stats, backend)
    side = min(z.shape)
    sizes = _pixel_sizes(sizes, side, 2)
    inv_h = _inverse_heights(stats, z.size, side, sizes, method, spread)
    counts = _pooled_counts(z, sizes, inv_h, float(stats[0]), method, offsets, backend)
    return sizes.astype(np.float64), counts


def _unit_scaled(z, stats, backend):
    """``z * 2**-e`` with its stats when the range of z lies outside ``2**±SAFE_EXPONENT``.

    The box rules only see ``(z - zmin) / range``, but the stats sum ``(z - z0)**2``, which
    overflows (range above about 1e154) or underflows (below about 1e-154), and ``zmax - zmin``
    itself overflows for ranges above the largest float. Scaling by a power of two is exact
    (short of subnormal values), so the counts are those of z; inside the window z is used as is.
    """
    zmin, zmax = float(stats[0]), float(stats[1])
    span = zmax - zmin
    if span == 0.0 or 2.0**-SAFE_EXPONENT <= span <= 2.0**SAFE_EXPONENT:
        return z, stats
    exponent = math.frexp(span)[1] if math.isfinite(span) else math.frexp(0.5 * zmax - 0.5 * zmin)[1] + 1
    scaled = array_module(is_cupy(z)).ldexp(z.astype(np.float64), -exponent)
    return scaled, surface_stats(scaled, backend=backend)


def _inverse_heights(stats, n: int, side: int, sizes, method: str, spread: float) -> np.ndarray:
    """``1 / h`` per box size: ``h = s * range / side`` for DBC, ``h / (1 + 2 a σ)`` for IDBC.

    A DBC stack of ``side / s`` boxes spans the range exactly, so zmax lies on the top edge of
    the stack; boxes ``DBC_TOP`` (relatively) taller keep it inside the top box whatever the
    rounding of ``(zmax - zmin) / h``, as in Sarkar & Chaudhuri's gray levels (max < G).
    """
    zmin, zmax, total, sumsq = (float(v) for v in stats[:4])
    range_z = zmax - zmin
    if range_z == 0.0:
        return np.zeros(sizes.size)  # flat: one box per block
    inv_h = side / (sizes * range_z)
    if method == "dbc":
        return inv_h * (1.0 - DBC_TOP)
    sigma = math.sqrt(max(sumsq / n - (total / n) ** 2, 0.0)) / range_z
    return inv_h * (1.0 + 2.0 * spread * sigma)


def _count_set(image, sizes, offsets, level, backend):
    if getattr(image, "ndim", None) != 2:
        raise ValueError(f"set: expected a 2-D image, got shape {getattr(image, 'shape', None)}")
    if level is not None:
        image = level_set(image, level)
    elif image.dtype != np.bool_:
        if image.dtype.kind not in "fiu":
            raise TypeError(f"set: expected a bool or 0/1 image, got dtype {image.dtype}")
        if not ((image == 0) | (image == 1)).all():
            raise ValueError("set: expected a bool or 0/1 image; pass level=... to count a level set of a surface")
        image = image != 0
    sizes = _pixel_sizes(sizes, min(image.shape), 1)
    counts = _pooled_counts(image, sizes, None, 0.0, "occupied", offsets, backend)
    return sizes.astype(np.float64), counts


def level_set(z, level: float):
    """Cells of a surface crossed by the contour ``z = level``.

    Parameters
    ----------
    z : array of shape (ny, nx), float
    level : float

    Returns
    -------
    bool array of shape (ny - 1, nx - 1)
        True where the four corners of cell ``(i, j)`` have ``min <= level <= max``.

    Examples
    --------
    >>> import numpy as np
    >>> level_set(np.array([[0.0, 1.0], [0.0, 1.0]]), 0.5)
    array([[ True]])
    """
    if np.isnan(z).any():
        raise ValueError("set: z holds NaN values; crop or fill them before taking a level set")
    corners = (z[:-1, :-1], z[:-1, 1:], z[1:, :-1], z[1:, 1:])
    lo = np.minimum(np.minimum(corners[0], corners[1]), np.minimum(corners[2], corners[3]))
    hi = np.maximum(np.maximum(corners[0], corners[1]), np.maximum(corners[2], corners[3]))
    return (lo <= level) & (level <= hi)


def _count_points(pts, sizes, curve):
    pts = np.asarray(pts)
    if pts.ndim != 2 or pts.shape[0] < 2:
        raise ValueError(f"points: expected an array of shape (m, d) with m >= 2, got shape {pts.shape}")
    if pts.dtype.kind not in "fiu":
        raise TypeError(f"points: expected real coordinates, got dtype {pts.dtype}")
    pts = pts.astype(np.float64)
    if not np.isfinite(pts).all():
        raise ValueError("points: coordinates must be finite (no NaN or inf)")
    if sizes is None:
        return _points.dyadic_counts(pts, curve)
    sizes = np.unique(np.asarray(sizes, dtype=np.float64))
    if sizes.min() <= 0:
        raise ValueError(f"sizes must be > 0, got {sizes.min()}")
    return sizes, _points.counts_at(pts, sizes, curve)
