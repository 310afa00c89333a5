"""Variogram (p = 2) and madogram (p = 1) estimators of the fractal dimension of a graph.

``V_p(t) = ½ E|z(u + t) - z(u)|**p`` grows as ``t**(p H)`` at small lags for a surface or
curve of Hurst exponent H, whose graph has dimension ``D = d + 1 - H`` (d = 2 for a surface,
1 for a curve). The estimator fits ``log V̂_p(t) = c + p H log t`` by least squares over a few
small lags (Gneiting, Ševčíková & Percival 2012; t = 1, 2 by default).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from pyengine.fractal import fbm_variance
from pyengine.fractal.result import fit_line
from pyengine.results import Result, axes_or_new, jsonable

#: Name of the estimator of each order p.
ORDERS = {2: "variogram", 1: "madogram"}
#: What the dimension of each kind measures, and its range.
KIND_LABELS = {"surface": "fractal dimension of the graph of a surface z(x, y), in [2, 3]",
               "curve": "fractal dimension of the graph of a curve z(x), in [1, 2]"}
#: The standard error is computed for fBm with H clipped to this interval (the model needs
#: 0 < H < 1; smooth surfaces give estimates near or above 1).
SE_HURST_RANGE = (0.01, 0.99)


def variogram_dimension(z, p: int = 2, lags=(1, 2)) -> VariogramResult:
    """Fractal dimension of a surface (or curve) from its variogram or madogram.

    ``V̂_p(t)`` is half the mean of ``|z(u + t e) - z(u)|**p`` over the pairs of grid points
    at lag t along rows, averaged with the same along columns. The slope of ``log V̂_p`` against
    ``log t`` over ``lags`` is ``p H``, and ``D = 3 - H`` for a surface, ``2 - H`` for a
    curve. Unlike box counting, the estimate needs no choice of box sizes or of the height
    units, and on exact fBm it has no bias beyond its standard error (docs/fractal.md).

    Parameters
    ----------
    z : array of shape (ny, nx) or (n,)
        Heights z[y, x] of a surface on a grid (both sides > max(lags)), or a curve z[x];
        real, finite.
    p : {2, 1}
        2: variogram (mean squared increment); 1: madogram (mean absolute increment, more
        robust to outliers and recommended by Gneiting et al.).
    lags : sequence of int
        At least two distinct lags in grid cells; the default (1, 2) is the two-point slope.

    Returns
    -------
    VariogramResult
        ``.dimension``, ``.dimension_se``, ``.hurst``, ``.hurst_se``, the lags and
        ``log V̂_p`` behind the fit, ``.fit_range``; ``.plot()`` draws the fit.

    Notes
    -----
    The standard error is the sampling standard deviation of the estimate for Gaussian
    fractional Brownian motion with the estimated H (clipped to ``SE_HURST_RANGE``) on this
    grid: the exact covariance of the power sums of the increments (every pair of increments
    of the grid), carried to the slope by the delta method (:mod:`pyengine.fractal.fbm_variance`).
    It is validated against the spread over independent exact fBm surfaces
    (docs/fractal.md). For surfaces that are not fBm (e.g. loss landscapes) it is the
    spread that such an fBm would show, not a model-free error.

    References
    ----------
    T. Gneiting, H. Ševčíková & D. B. Percival (2012), "Estimators of fractal dimension:
    assessing the roughness of time series and spatial data", Statist. Sci. 27, 247–277.

    Examples
    --------
    >>> from pyengine.models.surfaces import fbm_surface_exact
    >>> r = variogram_dimension(fbm_surface_exact(256, 0.3, seed=1), p=1)
    >>> round(r.dimension, 2), round(r.dimension_se, 3)
    (2.7, 0.004)
    >>> ramp = np.add.outer(np.arange(50.0), 2 * np.arange(40.0))   # a plane: smooth
    >>> round(variogram_dimension(ramp).dimension, 12)
    2.0
    """
    z, exponent = _checked_heights(z)
    p, lags = _checked_order(p), _checked_lags(lags, z.shape)
    values, pairs = power_variogram(z, lags, p)
    if np.any(values == 0.0):
        raise ValueError(f"z: V_p(t) = 0 at lag(s) {lags[values == 0.0].tolist()} (z repeats itself at that lag, "
                         "e.g. a constant surface): the dimension is undefined")
    fit = fit_line(np.log(lags), np.log(values), 0, lags.size)  # of z * 2**-exponent: same slope
    unscale = p * exponent * math.log(2.0)
    hurst = fit.slope / p
    shape = z.shape if z.ndim == 2 else (1, z.size)
    se_hurst = float(np.clip(hurst, *SE_HURST_RANGE))
    cov = fbm_variance.log_variogram_cov(shape, lags, p, se_hurst)
    hurst_se = fbm_variance.slope_se(np.log(lags), cov) / p
    return VariogramResult(kind="surface" if z.ndim == 2 else "curve", p=p, lags=lags,
                           log_values=np.log(values) + unscale, pairs=pairs, hurst=hurst, hurst_se=hurst_se,
                           dimension=z.ndim + 1 - hurst, dimension_se=hurst_se, intercept=fit.intercept + unscale,
                           settings={"se_hurst": se_hurst})


def power_variogram(z: np.ndarray, lags: np.ndarray, p: int) -> tuple[np.ndarray, np.ndarray]:
    """``V̂_p(t) = ½ mean |z(u + t e) - z(u)|**p``: the mean along rows averaged with the mean
    along columns (so an anisotropic power law stays one), and the pairs counted.

    Parameters
    ----------
    z : float64 ndarray of shape (ny, nx) or (n,)
    lags : int ndarray of shape (k,)
    p : {1, 2}

    Returns
    -------
    values : float64 ndarray of shape (k,)
    pairs : int64 ndarray of shape (k,)

    Examples
    --------
    >>> power_variogram(np.array([0.0, 1.0, 3.0]), np.array([1, 2]), 2)
    (array([1.25, 4.5 ]), array([2, 1]))
    """
    values, pairs = np.zeros(lags.size), np.zeros(lags.size, dtype=np.int64)
    for i, t in enumerate(lags):
        steps = [z[t:] - z[:-t]] if z.ndim == 1 else [z[:, t:] - z[:, :-t], z[t:, :] - z[:-t, :]]
        means = [float(np.mean(d * d if p == 2 else np.abs(d))) for d in steps]
        values[i] = 0.5 * sum(means) / len(means)
        pairs[i] = sum(d.size for d in steps)
    return values, pairs


def _checked_heights(z) -> tuple[np.ndarray, int]:
    """float64 copy of z scaled by ``2**-e`` into [-1, 1] (exact), and e."""
    z = np.asarray(z)
    if z.ndim not in (1, 2):
        raise ValueError(f"z: expected a surface of shape (ny, nx) or a curve of shape (n,), got shape {z.shape}")
    if z.dtype.kind not in "fiu":
        raise TypeError(f"z: expected real heights, got dtype {z.dtype}")
    z = z.astype(np.float64)
    finite = np.isfinite(z)
    if not finite.all():
        raise ValueError(f"z: holds {int((~finite).sum())} NaN or infinite value(s); crop or fill them first")
    exponent = math.frexp(float(np.abs(z).max()) if z.size else 0.0)[1]
    return np.ldexp(z, -exponent), exponent


def _checked_order(p) -> int:
    if p not in ORDERS:
        raise ValueError(f"p must be 2 (variogram) or 1 (madogram), got {p!r}")
    return int(p)


def _checked_lags(lags, shape) -> np.ndarray:
    lags = np.asarray(lags)
    if lags.ndim != 1 or lags.dtype.kind not in "iu":
        raise TypeError(f"lags: expected a sequence of integers, got {lags!r}")
    if np.unique(lags).size != lags.size or lags.size < 2 or lags.min() < 1:
        raise ValueError(f"lags: expected at least two distinct integers >= 1, got {lags.tolist()}")
    if lags.max() >= min(shape):
        raise ValueError(f"lags: the largest lag ({lags.max()}) must be smaller than every side of z {shape}")
    return np.sort(lags).astype(np.int64)


@dataclass(frozen=True, repr=False)
class VariogramResult(Result):
    """A variogram or madogram fit ``log V̂_p(t) = intercept + p H log t`` and the dimension.

    Attributes
    ----------
    kind : {"surface", "curve"}
        What was measured (see :attr:`label`).
    p : {2, 1}
        Order: 2 variogram, 1 madogram (:attr:`method`).
    lags : int ndarray of shape (k,)
        Lags of the fit, in grid cells, increasing.
    log_values : ndarray of shape (k,)
        ``log V̂_p(t)`` (natural log, z in its own units).
    pairs : int ndarray of shape (k,)
        Pairs of grid points averaged at each lag.
    hurst, hurst_se : float
        H (``slope / p``) and its standard error.
    dimension, dimension_se : float
        ``D = 3 - H`` (surface) or ``2 - H`` (curve), and its standard error (equal to H's).
    intercept : float
        ``log V̂_p`` of the fitted line at ``log t = 0``.
    settings : dict
        ``se_hurst``: the H of the fBm model behind the standard error.
    """

    kind: str
    p: int
    lags: np.ndarray
    log_values: np.ndarray
    pairs: np.ndarray
    hurst: float
    hurst_se: float
    dimension: float
    dimension_se: float
    intercept: float
    settings: dict = field(default_factory=dict)

    _rows = None
    _headline = {"dimension": "dimension_se", "hurst": "hurst_se"}
    _curves = {"log_values": ("lag",)}
    _coords = {"lag": "lags"}
    _n = {"log_values": "pairs"}

    @property
    def method(self) -> str:
        """``"variogram"`` (p = 2) or ``"madogram"`` (p = 1)."""
        return ORDERS[self.p]

    @property
    def fit_range(self) -> tuple[float, float]:
        """Smallest and largest lag of the fit (grid cells)."""
        return float(self.lags[0]), float(self.lags[-1])

    @property
    def log_lags(self) -> np.ndarray:
        """``log t`` (natural log), one per lag."""
        return np.log(self.lags)

    @property
    def label(self) -> str:
        """Which dimension this is, in words."""
        return f"{self.method} estimate of the {KIND_LABELS[self.kind]}"

    def to_dict(self) -> dict:
        """Plain Python types, ready for JSON.

        Examples
        --------
        >>> r = variogram_dimension(np.add.outer(np.arange(20.0), np.arange(20.0)), p=1)
        >>> r.to_dict()["method"], round(r.to_dict()["dimension"], 12)
        ('madogram', 2.0)
        """
        return jsonable({
            "kind": self.kind, "label": self.label, "method": self.method, "p": self.p,
            "lags": self.lags, "log_values": self.log_values, "pairs": self.pairs,
            "fit_range": list(self.fit_range), "hurst": self.hurst, "hurst_se": self.hurst_se,
            "dimension": self.dimension, "dimension_se": self.dimension_se, "intercept": self.intercept,
            "settings": dict(self.settings),
        })

    def plot(self, ax=None):
        """Plot ``log V̂_p`` against ``log t`` with the fitted line.

        Parameters
        ----------
        ax : matplotlib Axes, optional
            Drawn into; a new figure is made when omitted.

        Returns
        -------
        matplotlib Axes
        """
        ax = axes_or_new(ax)
        x = self.log_lags
        ax.plot(x, self.log_values, "o", color="C0", label=f"{self.method} (p = {self.p})")
        ax.plot(x, self.intercept + self.p * self.hurst * x, "-", color="C1",
                label=f"D = {self.dimension:.3f} ± {self.dimension_se:.3f}")
        ax.set_xlabel("log lag (grid cells)")
        ax.set_ylabel(f"log V_{self.p}")
        ax.set_title(f"{self.kind} ({self.method})")
        ax.legend()
        return ax
