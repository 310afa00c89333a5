"""Sampling covariance of variogram estimates on a grid, for Gaussian fractional Brownian motion.

For a Gaussian surface with ``E[(z(u) - z(v))**2] = |u - v|**(2H)`` the increments
``Δ_a z(u) = z(u + a) - z(u)`` along rows and columns are jointly Gaussian with

    Cov(Δ_a z(u), Δ_b z(u + r)) = ½ (|r + b|^{2H} + |r − a|^{2H} − |r|^{2H} − |r + b − a|^{2H}),

so the covariance of the power sums ``S = Σ_u |Δ z(u)|^p`` is an exact sum over the offsets
r between the increments: ``2 C²`` per pair for p = 2, and for p = 1, with ``ρ`` the
correlation, ``(2/π) σ_a σ_b (√(1 − ρ²) + ρ arcsin ρ − 1)``. The number of pairs at offset r
is a product of one count per axis, so the double sum over the grid becomes a sum over the
(2 ny − 1)·(2 nx − 1) offsets. Offsets beyond ``INNER`` along an axis are grouped into tiles
of equal width (at most ``NODES`` nodes per axis), each summand evaluated at the tile centre
and weighted by the exact number of pairs in the tile: the summand is smooth there, and the
error is below 0.1 % of the variance (tests/test_variogram.py).
"""

from __future__ import annotations

import math

import numpy as np

#: Nodes per axis above which offsets beyond INNER are grouped into tiles.
NODES = 513
#: Offsets up to this (in cells, per axis) are always summed one by one.
INNER = 64


def log_variogram_cov(shape: tuple[int, int], lags, p: int, hurst: float) -> np.ndarray:
    """Covariance of ``log V̂_p(t)`` over the lags, for fBm with Hurst exponent H on a grid.

    ``V̂_p(t)`` is half the mean of ``|Δ z|**p`` at lag t along rows, averaged with the same
    along columns (rows only when ``shape[0] == 1``: a curve). The covariance of the logs is
    the delta-method one, ``Cov(V̂_t, V̂_s) / (V_t V_s)``; it does not depend on the scale
    of z.

    Parameters
    ----------
    shape : (int, int)
        Grid (ny, nx); ny = 1 for a curve.
    lags : sequence of int
        Distinct lags in cells, each smaller than the sides it is taken along.
    p : {1, 2}
        Order: 1 (madogram) or 2 (variogram).
    hurst : float
        H in (0, 1).

    Returns
    -------
    float64 ndarray of shape (len(lags), len(lags))

    References
    ----------
    T. Gneiting, H. Ševčíková & D. B. Percival (2012), "Estimators of fractal dimension:
    assessing the roughness of time series and spatial data", Statist. Sci. 27, 247–277
    (the estimators); G. Chan & A. T. A. Wood (2000), "Increment-based estimators of fractal
    dimension for two-dimensional surface data", Statistica Sinica 10, 343–376 (their
    variance for surfaces).

    Examples
    --------
    Brownian motion (independent steps): the two-point slope ``2H`` has variance
    ``(3/n + 2/n - 2 * 2/n) / log(2)**2``, so its SE is ``1 / (sqrt(n) log 2) = 0.0144``:

    >>> cov = log_variogram_cov((1, 10_000), [1, 2], 2, 0.5)
    >>> round(slope_se(np.log([1.0, 2.0]), cov), 4)
    0.0144
    """
    lags = [int(t) for t in lags]
    fields = [(axis, t) for t in lags for axis in _axes(shape)]
    tiles = [_axis_tiles(n) for n in shape]
    powers = _ShiftedPowers([(lo + hi) / 2.0 for lo, hi in tiles], hurst)
    total = np.zeros((len(lags), len(lags)))
    for i, a in enumerate(fields):
        for b in fields[i:]:
            s = _pair_sum(shape, tiles, powers, a, b, p, hurst) / (_n_pairs(shape, a) * _n_pairs(shape, b))
            ia, ib = lags.index(a[1]), lags.index(b[1])
            total[ia, ib] += s
            if a != b:
                total[ib, ia] += s
    norm = np.array([len(_axes(shape)) * _mean_power(p) * t ** (p * hurst) for t in lags])
    return total / np.outer(norm, norm)


def slope_se(log_lags: np.ndarray, cov: np.ndarray) -> float:
    """Standard error of the least-squares slope of ``log V̂`` on ``log_lags`` given ``cov``.

    Examples
    --------
    >>> bool(np.isclose(slope_se(np.log([1.0, 2.0]), np.diag([1e-4, 1e-4])), np.sqrt(2e-4) / np.log(2)))
    True
    """
    x = log_lags - log_lags.mean()
    w = x / (x @ x)
    return math.sqrt(max(float(w @ cov @ w), 0.0))


def power_cov(c: np.ndarray, sd_a: float, sd_b: float, p: int) -> np.ndarray:
    """Cov(|X|**p, |Y|**p) of centred Gaussians with covariance c and standard deviations sd.

    p = 2: ``2 c**2`` (Isserlis). p = 1: ``(2/π) sd_a sd_b (√(1 − ρ²) + ρ arcsin ρ − 1)``,
    written as ``ρ arcsin ρ − ρ² / (1 + √(1 − ρ²))`` against cancellation at small ρ.

    Examples
    --------
    >>> round(float(power_cov(np.array(1.0), 1.0, 1.0, 1)), 12)   # Var|X| = 1 - 2/π
    0.363380227632
    """
    if p == 2:
        return 2.0 * c * c
    rho = np.clip(c / (sd_a * sd_b), -1.0, 1.0)
    root = np.sqrt(1.0 - rho * rho)
    return (2.0 / math.pi) * sd_a * sd_b * (rho * np.arcsin(rho) - rho * rho / (1.0 + root))


class _ShiftedPowers:
    """``|node + w|**(2H)`` on the grid of tile centres, for each shift w (computed once)."""

    def __init__(self, centres, hurst: float):
        self.y, self.x = centres[0][:, None], centres[1][None, :]
        self.hurst = hurst
        self.cache: dict[tuple[int, int], np.ndarray] = {}

    def __call__(self, w: tuple[int, int]) -> np.ndarray:
        if w not in self.cache:
            self.cache[w] = np.hypot(self.y + w[0], self.x + w[1]) ** (2.0 * self.hurst)
        return self.cache[w]


def _pair_sum(shape, tiles, powers, a, b, p: int, hurst: float) -> float:
    """Cov(S_a, S_b): the power sums of increment fields a, b = (axis, lag)."""
    f = power_cov(_increment_cov(powers, _vector(a), _vector(b)), a[1] ** hurst, b[1] ** hurst, p)
    la, lb = _extent(shape, a), _extent(shape, b)
    wy = _tile_counts(*tiles[0], shape[0], la[0], lb[0])
    wx = _tile_counts(*tiles[1], shape[1], la[1], lb[1])
    return float(wy @ f @ wx)


def _increment_cov(powers, a: tuple[int, int], b: tuple[int, int]) -> np.ndarray:
    """Cov(Δ_a z(u), Δ_b z(u + r)) at every node r, from ``powers(w) = |r + w|**(2H)``."""
    return 0.5 * (powers(b) + powers((-a[0], -a[1])) - powers((0, 0)) - powers((b[0] - a[0], b[1] - a[1])))


def _axis_tiles(n: int) -> tuple[np.ndarray, np.ndarray]:
    """First and last offset of each tile of the offsets -(n-1) .. n-1 along one axis."""
    if 2 * n - 1 <= NODES:
        r = np.arange(-(n - 1), n)
        return r, r
    width = math.ceil((n - 1 - INNER) / ((NODES - 2 * INNER - 1) // 2))
    starts = np.arange(INNER + 1, n, width)
    ends = np.minimum(starts + width - 1, n - 1)
    inner = np.arange(-INNER, INNER + 1)
    return np.concatenate([-ends[::-1], inner, starts]), np.concatenate([-starts[::-1], inner, ends])


def _tile_counts(lo: np.ndarray, hi: np.ndarray, n: int, la: int, lb: int) -> np.ndarray:
    """Pairs (u, u + r), u in [0, la), u + r in [0, lb), with r in each tile [lo, hi]."""
    r = np.arange(-(n - 1), n)
    counts = np.clip(np.minimum(la, lb - r) - np.maximum(0, -r), 0, None).astype(np.float64)
    cum = np.concatenate([[0.0], np.cumsum(counts)])
    return cum[hi + n] - cum[lo + n - 1]


def _axes(shape) -> tuple[int, ...]:
    return (1,) if shape[0] == 1 else (0, 1)


def _vector(field) -> tuple[int, int]:
    axis, t = field
    return (t, 0) if axis == 0 else (0, t)


def _extent(shape, field) -> tuple[int, int]:
    """Grid of the increments of field (axis, lag): the positions u with u + lag inside."""
    axis, t = field
    return (shape[0] - t, shape[1]) if axis == 0 else (shape[0], shape[1] - t)


def _n_pairs(shape, field) -> int:
    return math.prod(_extent(shape, field))


def _mean_power(p: int) -> float:
    """E|X|**p for a standard Gaussian X (p = 1 or 2)."""
    return 1.0 if p == 2 else math.sqrt(2.0 / math.pi)
