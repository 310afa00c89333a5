"""Exact fractional Brownian surfaces: Stein's (2002) intrinsic circulant embedding.

A fractional Brownian surface B_H on R² has E[(B_H(u) − B_H(v))²] = |u − v|^{2H}. Its
covariance is not stationary, so plain circulant embedding does not apply. Stein's method
simulates instead a stationary field Z whose covariance, for distances r ≤ 1, is

    c(r) = c0 − r^{2H} + c2·r²,

so that Z(u) − Z(v) has variance 2r^{2H} − 2c2·r². Adding the random plane √(2 c2)·(u·W),
W ~ N(0, I₂), restores 2r^{2H}: on a grid of diameter at most 1, Z(u) − Z(0) + √(2c2)·(u·W)
is exactly fBm (times √2). Beyond r = 1 the covariance is continued as β(R − r)³/r up to R
and 0 after it; Stein shows c is a covariance on R² with R = 1 for H ≤ 3/4 and R = 2 above,
so its periodisation on a torus is one too, and the circulant eigenvalues are >= 0.
Spectral synthesis (``pyengine.fractal.fbm_surface``) lacks this exactness: its surfaces are
smoother at the pixel scale than their H says, which biases every roughness estimator.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np
import scipy.fft

from pyengine.models._common import check_nonnegative, check_range, check_size


def fbm_surface_exact(shape, hurst: float, *, sigma: float = 1.0, size: int | None = None, seed=None) -> np.ndarray:
    """Fractional Brownian surface on a grid, exactly Gaussian with the fBm covariance.

    For grid points u, v (in pixels) ``E[(z[u] - z[v])**2] = sigma**2 * |u - v|**(2 H)``,
    in every direction and at every lag up to the grid's diagonal, and ``z[0, 0] = 0``. So
    along rows and columns the increments at lag t have variance ``sigma**2 * t**(2 H)``, and
    the graph of the surface has fractal dimension ``3 - H``.

    Parameters
    ----------
    shape : int or (int, int)
        Grid ``(ny, nx)`` (an int n means (n, n)); both sides >= 2.
    hurst : float
        Hurst exponent H in (0, 1).
    sigma : float, optional
        Standard deviation of a unit-lag increment, >= 0.
    size : int, optional
        Number of independent surfaces; None returns one.
    seed : int, numpy.random.Generator, numpy.random.SeedSequence or None, optional
        Anything :func:`numpy.random.default_rng` accepts (same seed, same surfaces).

    Returns
    -------
    float64 ndarray of shape (ny, nx), or (size, ny, nx) when ``size`` is given

    Notes
    -----
    Cost: the embedding torus has about ``(1 + R·√2)·n`` points per side (R = 1 for H <= 3/4,
    2 above), and one complex FFT of it yields two surfaces. For 1024², H = 0.8, that is a
    3920² FFT and about 0.8 GB of memory at its peak.

    References
    ----------
    M. L. Stein (2002), "Fast and exact simulation of fractional Brownian surfaces", J. Comp.
    Graph. Stat. 11, 587–599; C. R. Dietrich & G. N. Newsam (1997), SIAM J. Sci. Comput. 18,
    1088–1107 (circulant embedding).

    Examples
    --------
    >>> z = fbm_surface_exact(64, 0.3, size=400, seed=0)
    >>> z.shape
    (400, 64, 64)
    >>> msd = np.mean((z[:, :, 4:] - z[:, :, :-4]) ** 2)   # truth 4**0.6 = 2.297
    >>> bool(abs(msd / 4**0.6 - 1) < 0.02)
    True
    """
    ny, nx = _grid_shape(shape)
    hurst = check_range(hurst, "hurst", 0.0, 1.0, closed="neither")
    sigma = check_nonnegative(sigma, "sigma")
    count = 1 if size is None else check_size(size, "size")
    rng = np.random.default_rng(seed)
    embedding = stein_embedding((ny, nx), hurst)
    scale = sigma / (math.sqrt(2.0) * embedding.spacing**hurst)  # grid units -> pixels, sigma
    out = np.empty((count, ny, nx))
    for first in range(0, count, 2):
        for i, field in enumerate(_field_pair(rng, embedding)[: count - first]):
            out[first + i] = _intrinsic(field, rng, embedding) * scale
    return out[0] if size is None else out


def stein_constants(hurst: float) -> tuple[float, float, float, float]:
    """``(R, beta, c2, c0)`` of Stein's covariance for Hurst exponent H (α = 2H).

    R = 1, β = 0, c2 = α/2 for α <= 3/2; R = 2 above, with β fixed by matching c, c' and c''
    of the two pieces at r = 1: β = α(2 − α) / (3R(R² − 1)), c2 = (α − β(R − 1)²(R + 2)) / 2.
    In both cases c0 = 1 − c2 + β(R − 1)³, so that c is continuous at r = 1.

    Examples
    --------
    >>> stein_constants(0.5)
    (1.0, 0.0, 0.5, 0.5)
    """
    alpha = 2.0 * hurst
    radius = 1.0 if alpha <= 1.5 else 2.0
    beta = 0.0 if radius == 1.0 else alpha * (2.0 - alpha) / (3.0 * radius * (radius**2 - 1.0))
    c2 = (alpha - beta * (radius - 1.0) ** 2 * (radius + 2.0)) / 2.0
    c0 = 1.0 - c2 + beta * (radius - 1.0) ** 3
    return radius, beta, c2, c0


def stein_covariance(r, hurst: float) -> np.ndarray:
    """Stein's stationary covariance c(r) at distances r >= 0 (see :func:`stein_constants`).

    ``c0 - r**(2H) + c2 * r**2`` for r <= 1, ``beta * (R - r)**3 / r`` for 1 < r < R, 0 beyond.

    Examples
    --------
    >>> stein_covariance([0.0, 0.5, 1.0, 2.0], 0.5).tolist()
    [0.5, 0.125, 0.0, 0.0]
    """
    radius, beta, c2, c0 = stein_constants(hurst)
    r = np.asarray(r, dtype=np.float64)
    out = np.zeros_like(r)
    near, mid = r <= 1.0, (r > 1.0) & (r < radius)
    out[near] = c0 - r[near] ** (2.0 * hurst) + c2 * r[near] ** 2
    out[mid] = beta * (radius - r[mid]) ** 3 / r[mid]
    return out


@dataclass(frozen=True)
class SteinEmbedding:
    """The circulant embedding of Stein's covariance for one grid.

    Attributes
    ----------
    shape : (int, int)
        The grid (ny, nx).
    spacing : float
        Grid step h in the units of c: ``1 / hypot(ny - 1, nx - 1)`` (diameter 1).
    c2 : float
        Coefficient of the random plane.
    root : float64 ndarray of shape (my, mx)
        ``sqrt(eigenvalues / (my * mx))`` of the circulant on the (my, mx) torus.
    """

    shape: tuple[int, int]
    spacing: float
    c2: float
    root: np.ndarray


def stein_embedding(shape: tuple[int, int], hurst: float) -> SteinEmbedding:
    """Eigenvalues of Stein's covariance periodised on a torus around the grid.

    The torus side is at least ``(n - 1) h + R`` per axis, so that the periodised covariance
    (the sum of c over the images within R) equals c at every difference of grid points.

    Raises
    ------
    RuntimeError
        If an eigenvalue is negative beyond rounding (never for Stein's covariance).

    Examples
    --------
    >>> emb = stein_embedding((32, 32), 0.8)
    >>> emb.root.shape, bool(emb.root.min() >= 0)
    ((120, 120), True)
    """
    radius = stein_constants(hurst)[0]
    h = 1.0 / math.hypot(shape[0] - 1, shape[1] - 1)
    sides = [scipy.fft.next_fast_len(math.ceil(n - 1 + radius / h)) for n in shape]
    offsets = [np.where(np.arange(m) <= m // 2, np.arange(m), np.arange(m) - m) * h for m in sides]
    first_row = _periodised(hurst, offsets, [m * h for m in sides], radius)
    eig = scipy.fft.fft2(first_row).real
    if eig.min() < -1e-9 * eig.max():
        raise RuntimeError(f"circulant embedding is not non-negative (min eigenvalue {eig.min():.3g})")
    root = np.sqrt(np.clip(eig, 0.0, None) / eig.size)
    return SteinEmbedding(tuple(shape), h, stein_constants(hurst)[2], root)


def _periodised(hurst: float, offsets, periods, radius: float) -> np.ndarray:
    """Sum over the images (k_y, k_x) in {-1, 0, 1}² of c(|d + k T|), d the torus offsets."""
    total = np.zeros((offsets[0].size, offsets[1].size))
    for ky in (-1, 0, 1):
        dy = offsets[0] + ky * periods[0]
        iy = np.flatnonzero(np.abs(dy) < radius)
        for kx in (-1, 0, 1):
            dx = offsets[1] + kx * periods[1]
            ix = np.flatnonzero(np.abs(dx) < radius)
            total[np.ix_(iy, ix)] += stein_covariance(np.hypot(dy[iy, None], dx[None, ix]), hurst)
    return total


def _field_pair(rng: np.random.Generator, embedding: SteinEmbedding) -> tuple[np.ndarray, np.ndarray]:
    """Two independent stationary fields with Stein's covariance, on the grid."""
    ny, nx = embedding.shape
    noise = rng.standard_normal((*embedding.root.shape, 2)).view(np.complex128)[..., 0]
    noise *= embedding.root
    field = scipy.fft.fft2(noise, overwrite_x=True)[:ny, :nx]
    return field.real, field.imag


def _intrinsic(field: np.ndarray, rng: np.random.Generator, embedding: SteinEmbedding) -> np.ndarray:
    """``Z(u) - Z(0) + sqrt(2 c2) * (u . W)``, u in the units of c: fBm with variogram 2 r^(2H)."""
    ny, nx = embedding.shape
    w = rng.standard_normal(2) * math.sqrt(2.0 * embedding.c2) * embedding.spacing
    return field - field[0, 0] + np.arange(ny)[:, None] * w[0] + np.arange(nx)[None, :] * w[1]


def _grid_shape(shape) -> tuple[int, int]:
    if isinstance(shape, numbers.Integral):
        shape = (shape, shape)
    dims = tuple(shape) if isinstance(shape, (tuple, list)) else ()
    if len(dims) != 2:
        raise ValueError(f"shape must be an int or (ny, nx), got {shape!r}")
    ny, nx = (check_size(n, "shape") for n in dims)
    if ny < 2 or nx < 2:
        raise ValueError(f"shape must have both sides >= 2, got {(ny, nx)}")
    return ny, nx
