"""Power-law fits and the one quality rule every fitted exponent of pyengine follows.

Every exponent pyengine reports (diffusion α, α1, α2 and τ0; MSL 2H; path λ and D_f;
the transverse exponent; spectral slopes; tail indices) carries its standard error
(``*_se``), the range it was fitted over in decades, and the number of points; and it is
flagged, with the reason, when it fails :func:`quality_flag`:

- fewer than ``MIN_POINTS`` = 5 points: with 3 residual degrees of freedom or fewer the
  standard error itself is too uncertain to judge the fit by;
- a range narrower than ``MIN_DECADES`` = 1 decade: any smooth curve looks straight on
  a log-log plot over less than a decade, so a slope there says nothing about a power
  law (Stumpf & Porter 2012, Science 335:665, ask for two);
- a standard error above ``MAX_SE`` = 0.1: a 95% interval wider than ±0.2 cannot tell
  normal from anomalous diffusion, or a Gaussian tail (α = 2) from a heavy one, at the
  effect sizes of Chen et al. (2022) and Şimşekli et al. (2019).

A flagged exponent is kept (the number is what the data gave) but the report greys it
and prints the reason; ``regime`` calls it undetermined.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from pyengine.results import Result

__all__ = ["PowerFit", "power_fit", "log_spaced", "jackknife_se", "with_se", "quality_flag", "regime", "MIN_POINTS", "MIN_DECADES", "MAX_SE", "REGIMES"]

MIN_POINTS = 5
MIN_DECADES = 1.0
MAX_SE = 0.1
REGIMES = ("subdiffusive", "normal", "superdiffusive", "undetermined")


def quality_flag(value: float, se: float, n_points: int, decades: float | None = None) -> str | None:
    """Why an exponent fails the quality rule (module docstring), or None when it passes.

    Parameters
    ----------
    value, se : float
        The exponent and its standard error.
    n_points : int
        Points (or samples) the estimate used.
    decades : float, optional
        Width of the fit range in decades (None for estimates without one).

    Examples
    --------
    >>> quality_flag(1.02, 0.01, 40, 2.5) is None
    True
    >>> quality_flag(0.8, 0.02, 12, 0.4)
    'fit range 0.40 decades < 1'
    """
    if not math.isfinite(value):
        return "no estimate"
    if n_points < MIN_POINTS:
        return f"{n_points} points < {MIN_POINTS}"
    if decades is not None and not decades >= MIN_DECADES:
        return f"fit range {decades:.2f} decades < {MIN_DECADES:g}"
    if not se <= MAX_SE:
        return f"SE {se:.2g} > {MAX_SE:g}" if math.isfinite(se) else "no standard error"
    return None


def regime(alpha: float, alpha_se: float, flag: str | None = None) -> str:
    """Name the diffusion regime of an exponent, deciding with its standard error.

    Within 2 SE of 1 is ``"normal"``; farther below or above is ``"subdiffusive"`` or
    ``"superdiffusive"``; NaN, a missing SE or a flagged fit is ``"undetermined"``.

    Examples
    --------
    >>> regime(0.906, 0.007), regime(0.95, 0.03), regime(1.3, 0.05), regime(1.3, 0.05, "1 point")
    ('subdiffusive', 'normal', 'superdiffusive', 'undetermined')
    """
    if flag is not None or not (math.isfinite(alpha) and math.isfinite(alpha_se)):
        return "undetermined"
    if abs(alpha - 1.0) <= 2.0 * alpha_se:
        return "normal"
    return "subdiffusive" if alpha < 1.0 else "superdiffusive"


@dataclass(frozen=True)
class PowerFit(Result):
    """A least-squares line through (log10 x, log10 y): y ≈ 10^intercept · x^slope.

    Attributes
    ----------
    slope, slope_se : float
        The exponent and its standard error: the delete-one-group jackknife over parameter
        groups where the curve's replicates are known (``se_method="jackknife"``), else
        from the residuals with n − 2 degrees of freedom (``"residuals"``, too small when
        the points are correlated, as the lags of one MSD are).
    intercept : float
        log10 of the prefactor.
    rmse : float
        Root-mean-square residual in log10 units.
    n_points : int
        Points fitted.
    x_range : tuple of float
        (first, last) x of the fit (NaN when there is no fit).
    flag : str or None
        None when the fit passes the quality rule, else why not (also why there is no fit).
    se_method : {"jackknife", "residuals"}
    """

    slope: float
    slope_se: float
    intercept: float
    rmse: float
    n_points: int
    x_range: tuple[float, float]
    flag: str | None = None
    se_method: str = "residuals"

    @property
    def decades(self) -> float:
        """Width of the fit range in decades of x."""
        lo, hi = self.x_range
        return math.log10(hi / lo) if lo > 0 and hi > 0 else math.nan

    @property
    def ok(self) -> bool:
        """Whether the fit passes the quality rule."""
        return self.flag is None

    def to_dict(self) -> dict:
        out = super().to_dict()
        out["decades"] = self.decades if math.isfinite(self.decades) else None
        return out

    @classmethod
    def failed(cls, reason: str, n_points: int = 0) -> "PowerFit":
        """No fit: NaN values and the reason."""
        nan = math.nan
        return cls(nan, nan, nan, nan, int(n_points), (nan, nan), reason)

    def line(self, x):
        """The fitted power law at ``x``."""
        return 10**self.intercept * np.asarray(x, dtype=np.float64) ** self.slope


def power_fit(x, y, lo: float = -np.inf, hi: float = np.inf, *, min_points: int = 3, replicates=None) -> PowerFit:
    """Fit y ∝ x^slope by least squares in log10–log10 over lo ≤ x ≤ hi, and judge it.

    Points with a non-finite or non-positive x or y are left out. With ``replicates``
    (shape (g, len(y)): the curve with one parameter group deleted, see
    :func:`pyengine.engine.groups.replicates`) the same points of every replicate are
    fitted and the slope's SE is their jackknife SE; otherwise it comes from the
    residuals. The fit is flagged by :func:`quality_flag`; with fewer than ``min_points``
    usable points (at least 3) there is no fit.

    Examples
    --------
    >>> x = np.arange(1.0, 101.0)
    >>> fit = power_fit(x, 3 * x**0.5)
    >>> round(fit.slope, 6), fit.n_points, fit.ok
    (0.5, 100, True)
    """
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        ok = np.isfinite(x) & np.isfinite(y) & (x > 0) & (y > 0) & (x >= lo) & (x <= hi)
    n = int(ok.sum())
    if n < max(3, min_points):
        return PowerFit.failed(f"{n} usable points, fewer than {max(3, min_points)}", n)
    lx, ly = np.log10(x[ok]), np.log10(y[ok])
    dx = lx - lx.mean()
    sxx = float(dx @ dx)
    if sxx == 0:
        return PowerFit.failed("all points at one x", n)
    slope = float(dx @ (ly - ly.mean())) / sxx
    intercept = float(ly.mean() - slope * lx.mean())
    resid = ly - intercept - slope * lx
    ssr = float(resid @ resid)
    se, method = math.sqrt(ssr / (n - 2) / sxx), "residuals"
    if replicates is not None:
        jack = float(jackknife_se(_replicate_slopes(np.asarray(replicates, dtype=np.float64)[:, ok], dx, sxx)))
        if math.isfinite(jack):
            se, method = jack, "jackknife"
    x_range = (float(x[ok].min()), float(x[ok].max()))
    flag = quality_flag(slope, se, n, math.log10(x_range[1] / x_range[0]))
    return PowerFit(slope, se, intercept, math.sqrt(ssr / n), n, x_range, flag, method)


def _replicate_slopes(values: np.ndarray, dx: np.ndarray, sxx: float) -> np.ndarray:
    """Least-squares log-log slopes of replicate curves (rows) at the same points; NaN for a
    replicate with a non-positive value there."""
    with np.errstate(invalid="ignore", divide="ignore"):
        ly = np.where(values > 0, np.log10(np.where(values > 0, values, 1.0)), np.nan)
    return (ly - ly.mean(axis=1, keepdims=True)) @ dx / sxx


def log_spaced(x: np.ndarray, points_per_decade: float) -> np.ndarray:
    """Indices of the sorted positive ``x`` nearest a log-uniform grid with ``points_per_decade``
    (sorted, unique), so that the many points of a dense range do not outweigh the few of
    a sparse one in a fit."""
    if x.size <= 2:
        return np.arange(x.size)
    lo, hi = np.log10(x[0]), np.log10(x[-1])
    grid = np.linspace(lo, hi, max(2, int(round((hi - lo) * points_per_decade)) + 1))
    log_x = np.log10(x)
    right = np.clip(np.searchsorted(log_x, grid), 1, x.size - 1)
    left = right - 1
    nearest = np.where(grid - log_x[left] <= log_x[right] - grid, left, right)
    return np.unique(nearest)


def jackknife_se(replicates) -> np.ndarray:
    """Delete-one-group jackknife standard error from replicates of shape (g, ...).

    SE² = (g − 1)/g · Σ_k (θ_(k) − θ̄)², θ̄ the mean of the finite replicates (Efron &
    Tibshirani 1993, Eq. 11.5); NaN where fewer than 2 are finite.

    Examples
    --------
    >>> float(jackknife_se(np.array([1.0, 2.0, 3.0])))  # sqrt(2/3 · 2)
    1.1547005383792515
    """
    replicates = np.asarray(replicates, dtype=np.float64)
    ok = np.isfinite(replicates)
    n = ok.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(ok, replicates, 0.0).sum(axis=0) / n
        dev = np.where(ok, replicates - mean, 0.0)
        se = np.sqrt((n - 1) / n * (dev * dev).sum(axis=0))
    return np.where(n >= 2, se, np.nan)


def with_se(fit: PowerFit, se: float, method: str = "jackknife") -> PowerFit:
    """``fit`` with another standard error (and the quality flag judged again with it)."""
    if not math.isfinite(se):
        return fit
    flag = quality_flag(fit.slope, se, fit.n_points, fit.decades)
    return dataclasses.replace(fit, slope_se=float(se), flag=flag, se_method=method)
