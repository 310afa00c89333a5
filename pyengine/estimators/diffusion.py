"""Diffusion exponents of an MSD: power-law fits, the τ0 / t0 rule, and β(τ).

Chen, Qu & Gong 2022, "Anomalous diffusion dynamics of learning in deep neural networks":
Δr²(t_w, τ) ∝ τ^α is fitted by least squares in log-log space; τ0 (two regimes inside a
window) and t0 (the first window that is one power law) follow the RMSE rule of their
Sec. III, and β(τ) is the logarithmic derivative of their Eq. 6. Every fit carries its
standard error, range and quality flag (:mod:`pyengine.fits`); regimes are decided with
the standard error (:func:`pyengine.fits.regime`).

All fits are in log10: RMSE is the root-mean-square residual of log10 Δr² (0.03 is a
factor of 10^0.03 ≈ 1.07 in the MSD). Fits use log-spaced lags (about ``points_per_decade``
per decade, each the lag nearest a log-uniform grid point), so that the many long lags of
a dense lag set do not outweigh the few short ones.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from pyengine.estimators.msd import MSDResult
from pyengine.fits import PowerFit, log_spaced, power_fit, regime
from pyengine.results import (Result, axes_or_new, band_alpha, legend_outside, readable_ticks, window_colors,
                              window_legend, with_groups)

__all__ = ["WindowFit", "DiffusionFit", "LogDerivative", "fit_diffusion", "log_derivative"]

DERIVATIVE_METHODS = ("difference", "local")
#: Chen et al.'s RMSE threshold of the τ0 / t0 rule (log10 units).
PAPER_THRESHOLD = 0.03


def _check_msd_result(res) -> None:
    if not isinstance(res, MSDResult):
        raise TypeError(f"expected an MSDResult (from pyengine.msd), got {type(res).__name__}")
    if res.msd.ndim != 2 or res.msd.shape != (res.t_w.size, res.lags.size):
        raise ValueError(f"MSDResult.msd must have shape (n_windows, n_lags) = ({res.t_w.size}, {res.lags.size}), "
                         f"got {res.msd.shape}")


@dataclass(frozen=True)
class WindowFit(Result):
    """Power-law fits of one window's MSD.

    Attributes
    ----------
    t_w : int
        Waiting time (step) at which the window starts.
    whole : PowerFit
        One power law over all fit lags (its RMSE decides t0).
    tau0 : float
        Crossover lag τ0 in steps: the smallest fit lag τ' such that the power law on
        [τ', T] has RMSE < threshold (NaN when no τ' qualifies).
    early : PowerFit
        α1, fitted on lags τ < τ0 (no fit when τ0 is the first lag: one regime).
    late : PowerFit
        α2, fitted on lags τ ≥ τ0.
    regime_early, regime_late : str
        :func:`pyengine.fits.regime` of α1 and α2 (decided with their SE).
    reason : str or None
        Why τ0 is undefined, else None.
    """

    t_w: int
    whole: PowerFit
    tau0: float
    early: PowerFit
    late: PowerFit
    regime_early: str
    regime_late: str
    reason: str | None = None


@dataclass(repr=False)
class DiffusionFit(Result):
    """Diffusion exponents per window with the τ0 and t0 rules of Chen et al. (2022).

    Attributes
    ----------
    windows : list of WindowFit
        One per waiting time, in the order of the MSD.
    t0 : int or None
        First waiting time whose whole-window fit has RMSE < threshold (None if none).
    t0_reason : str or None
        Why t0 is None.
    fit_lags : ndarray of int64, shape (K,)
        The log-spaced lags (steps) the fits use, before dropping non-finite or
        non-positive MSD values per window.
    threshold : float
        RMSE threshold in log10 units.
    threshold_rule : str
        Where the threshold came from: ``"fixed"`` (given, Chen et al.'s 0.03 by default)
        or ``"data"`` (the standard deviation of all windows' whole-fit RMSEs).
    min_points : int
        Fewest lags a fit may use.
    points_per_decade : float
    window : int
        Window length T in steps.
    msd_result : MSDResult
        The MSD fitted (used by :meth:`plot`; left out of :meth:`to_dict`).
    """

    windows: list[WindowFit]
    t0: int | None
    t0_reason: str | None
    fit_lags: np.ndarray
    threshold: float
    threshold_rule: str
    min_points: int
    points_per_decade: float
    window: int
    msd_result: MSDResult = field(repr=False)

    _exclude = ("msd_result",)
    _headline = {"alpha": "alpha_se", "alpha1": "alpha1_se", "alpha2": "alpha2_se", "tau0": None, "rmse": None}
    _flags = {"alpha": "windows[].whole.flag", "alpha1": "windows[].early.flag", "alpha2": "windows[].late.flag",
              "tau0": "windows[].reason"}
    _text = {"regime1": "windows[].regime_early", "regime2": "windows[].regime_late"}

    def _column(self, get) -> np.ndarray:
        return np.array([get(w) for w in self.windows], dtype=np.float64)

    @property
    def t_w(self) -> np.ndarray:
        """Waiting times, shape (W,)."""
        return np.array([w.t_w for w in self.windows], dtype=np.int64)

    @property
    def tau0(self) -> np.ndarray:
        """τ0 per window (NaN where undefined), shape (W,)."""
        return self._column(lambda w: w.tau0)

    @property
    def alpha(self) -> np.ndarray:
        """Whole-window exponent per window, shape (W,)."""
        return self._column(lambda w: w.whole.slope)

    @property
    def alpha_se(self) -> np.ndarray:
        """Standard error of the whole-window exponent, shape (W,)."""
        return self._column(lambda w: w.whole.slope_se)

    @property
    def alpha1(self) -> np.ndarray:
        """α1 (τ < τ0) per window, shape (W,)."""
        return self._column(lambda w: w.early.slope)

    @property
    def alpha1_se(self) -> np.ndarray:
        """Standard error of α1, shape (W,)."""
        return self._column(lambda w: w.early.slope_se)

    @property
    def alpha2(self) -> np.ndarray:
        """α2 (τ ≥ τ0) per window, shape (W,)."""
        return self._column(lambda w: w.late.slope)

    @property
    def alpha2_se(self) -> np.ndarray:
        """Standard error of α2, shape (W,)."""
        return self._column(lambda w: w.late.slope_se)

    @property
    def rmse(self) -> np.ndarray:
        """RMSE (log10) of the whole-window fit per window, shape (W,)."""
        return self._column(lambda w: w.whole.rmse)

    def plot(self, ax=None, kind: str = "curves"):
        """Plot the fits; returns the axes.

        ``kind="curves"``: MSD curves coloured by t_w with the fitted power laws (dashed)
        and τ0 (dots). ``kind="exponents"``: α, α1, α2 and τ0 against t_w, t0 marked.
        """
        if kind not in ("curves", "exponents"):
            raise ValueError(f"kind must be 'curves' or 'exponents', got {kind!r}")
        ax = axes_or_new(ax)
        if kind == "curves":
            self._plot_curves(ax)
        else:
            self._plot_exponents(ax)
        return ax

    def _plot_curves(self, ax) -> None:
        self.msd_result.plot(ax=ax)
        colors = window_colors(len(self.windows))
        for color, w in zip(colors, self.windows):
            for fit in (w.early, w.late) if math.isfinite(w.tau0) else (w.whole,):
                if math.isfinite(fit.slope):
                    tau = np.geomspace(*fit.x_range, 20)
                    ax.loglog(tau, fit.line(tau), "--" if fit.ok else ":", color=color, lw=1)
            if math.isfinite(w.tau0) and math.isfinite(w.late.slope):
                ax.plot(w.tau0, w.late.line(w.tau0), "o", color=color, ms=4)
        ax.set_title("MSD with power-law fits (dashed; dotted: flagged) and τ0 (dots)", fontsize="small")
        readable_ticks(ax)

    def _plot_exponents(self, ax) -> None:
        """α, α1, α2 ± SE (open markers: flagged) and τ0 on a twin axis, one legend below the axes;
        t0 as a vertical line, or its reason in the title when there is none."""
        import textwrap

        t_w = self.t_w
        for fits, style, label in ((lambda w: w.whole, "k", "α (whole window)"), (lambda w: w.early, "b", "α1 (τ < τ0)"),
                                   (lambda w: w.late, "r", "α2 (τ ≥ τ0)")):
            _errorbars(ax, t_w, [fits(w) for w in self.windows], style, label)
        ax.axhline(1.0, color="gray", lw=0.8)
        if self.t0 is not None:
            ax.axvline(self.t0, color="gray", ls=":", label=f"t0 = {self.t0}")
            ax.set_title(f"t0 = {self.t0} (first window with one power law)", fontsize="small")
        else:
            reason = self.t0_reason or "undefined"
            ax.set_title(textwrap.fill(f"t0: – ({reason})", 60), fontsize="small")
        ax.set_xlabel("waiting time t_w (steps)")
        ax.set_ylabel("diffusion exponent")
        right = ax.twinx()
        tau0 = self.tau0
        if np.isfinite(tau0).any():
            right.semilogy(t_w, tau0, "g^", ms=5, label="τ0 (right axis)")
            readable_ticks(right, "y")
        else:
            right.plot([], [], "g^", ms=5, label="τ0: undefined in every window")
        right.set_ylabel("τ0 (steps)", color="g")
        handles, labels = ax.get_legend_handles_labels()
        more = right.get_legend_handles_labels()
        legend_outside(ax, handles + more[0], labels + more[1])
        readable_ticks(ax, "x")


def _errorbars(ax, x, fits: list[PowerFit], color: str, label: str) -> None:
    """Exponents ± SE against x: filled markers for fits that pass the quality rule, open for flagged."""
    values = np.array([f.slope for f in fits])
    errors = np.array([f.slope_se for f in fits])
    good = np.array([f.ok for f in fits])
    ax.errorbar(x[good], values[good], yerr=errors[good], fmt="o", color=color, ms=4, capsize=2, label=label)
    if (~good).any():
        ax.errorbar(x[~good], values[~good], yerr=errors[~good], fmt="o", color=color, mfc="none", ms=4, capsize=2,
                    alpha=0.5, label=f"{label}, flagged")


def _window_fit(t_w: int, lags: np.ndarray, values: np.ndarray, reps: np.ndarray | None, threshold: float,
                min_points: int) -> WindowFit:
    """The fits of one window; ``reps`` (g, L): the MSD with each parameter group deleted."""
    ok = np.isfinite(values) & (values > 0)
    lags, values = lags[ok], values[ok]
    reps = None if reps is None else reps[:, ok]

    def fit(sl: slice) -> PowerFit:
        return power_fit(lags[sl], values[sl], min_points=min_points, replicates=None if reps is None else reps[:, sl])

    whole = fit(slice(None))
    tau0, late, reason = float("nan"), None, None
    for k in range(lags.size - min_points + 1):  # the scan judges RMSE only: SEs come after
        if power_fit(lags[k:], values[k:], min_points=min_points).rmse < threshold:
            tau0, late = float(lags[k]), fit(slice(k, None))
            break
    if late is None:
        reason = (f"no lag τ' leaves a power law on [τ', T] with RMSE < {threshold:.3g} and at least "
                  f"{min_points} points ({lags.size} valid lags)")
        late = early = PowerFit.failed(reason, lags.size)
    elif k == 0:
        early = PowerFit.failed("τ0 is the first lag: one regime", 0)
    else:
        early = fit(slice(None, k))
    return WindowFit(int(t_w), whole, tau0, early, late, regime(early.slope, early.slope_se, early.flag),
                     regime(late.slope, late.slope_se, late.flag), reason)


def _threshold(threshold, lags: np.ndarray, msd: np.ndarray, min_points: int) -> tuple[float, str]:
    """The RMSE threshold: a given number, or "data" (the SD of all windows' whole-fit RMSEs)."""
    if isinstance(threshold, str):
        if threshold != "data":
            raise ValueError(f"threshold must be a positive number or 'data', got {threshold!r}")
        rmse = np.array([power_fit(lags, row, min_points=min_points).rmse for row in msd])
        rmse = rmse[np.isfinite(rmse)]
        if rmse.size < 2:
            raise ValueError(f"threshold='data' needs the whole-window fits of at least 2 windows, got {rmse.size}; "
                             f"pass a number (Chen et al.: {PAPER_THRESHOLD})")
        return float(np.std(rmse, ddof=1)), "data"
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not threshold > 0:
        raise ValueError(f"threshold must be a positive number (RMSE in log10 units) or 'data', got {threshold!r}")
    return float(threshold), "fixed"


def fit_diffusion(
    msd_result: MSDResult,
    threshold: float | str = PAPER_THRESHOLD,
    min_points: int = 5,
    *,
    points_per_decade: float = 20,
    lag_range: tuple[float, float] | None = None,
) -> DiffusionFit:
    """Fit Δr²(t_w, τ) ∝ τ^α per window, with the two-regime τ0 rule and t0.

    Per window, on log-spaced lags with a finite, positive MSD:

    - ``whole``: one least-squares line log10 Δr² = c + α·log10 τ over all lags;
    - τ0: scanning τ' upward over the fit lags, the smallest τ' such that the line on
      [τ', T] (at least ``min_points`` lags) has RMSE = sqrt(mean r²) < ``threshold``;
      α2 is that fit and α1 the fit on τ < τ0 (Chen et al. 2022, Sec. III);
    - t0: the first waiting time whose ``whole`` fit has RMSE < ``threshold``.

    Every fit has its standard error and quality flag (:mod:`pyengine.fits`); ill-posed
    fits (too few valid lags) are NaN with the reason, never a number.

    Parameters
    ----------
    msd_result : MSDResult
        From :func:`pyengine.msd`.
    threshold : float or "data"
        RMSE threshold in log10 units: Chen et al.'s 0.03 by default, or ``"data"`` for
        their data-derived rule (the standard deviation of all windows' whole-fit RMSEs).
    min_points : int
        Fewest lags per fit, >= 3 (a standard error needs one residual degree of freedom).
    points_per_decade : float
        Density of the log-spaced lags used for fitting.
    lag_range : (float, float), optional
        Only lags in [low, high] (steps) are fitted.

    Returns
    -------
    DiffusionFit
        With ``groups``: the fit of each group's MSD, when ``msd_result`` has per-group
        results (``pe.msd(..., groups=...)``).

    References
    ----------
    Chen, Qu & Gong 2022, Sec. III (τ0, t0, RMSE < 0.03, "the standard deviation of all
    RMSE values") and Eq. 3.

    Examples
    --------
    >>> import pyengine as pe
    >>> x = pe.models.brownian(4001, 64, seed=0)
    >>> fit = pe.fit_diffusion(pe.msd(x, window=1000, lags=40))
    >>> bool(abs(fit.alpha[0] - 1) < 0.1), fit.windows[0].regime_late
    (True, 'normal')
    """
    _check_msd_result(msd_result)
    if isinstance(min_points, bool) or not isinstance(min_points, (int, np.integer)) or min_points < 3:
        raise ValueError(f"min_points must be an integer >= 3, got {min_points!r}")
    if not points_per_decade > 0:
        raise ValueError(f"points_per_decade must be > 0, got {points_per_decade}")
    lags = msd_result.lags.astype(np.float64)
    keep = lags > 0
    if lag_range is not None:
        low, high = lag_range
        if not 0 < low < high:
            raise ValueError(f"lag_range must be (low, high) with 0 < low < high, got {lag_range}")
        keep &= (lags >= low) & (lags <= high)
    if not keep.any():
        raise ValueError(f"no lag of the MSD ({msd_result.lags.min()} … {msd_result.lags.max()}) lies in {lag_range}")
    cols = np.flatnonzero(keep)[log_spaced(lags[keep], points_per_decade)]
    level, rule = _threshold(threshold, lags[cols], msd_result.msd[:, cols], int(min_points))
    reps = msd_result.replicates
    windows = [_window_fit(tw, lags[cols], msd_result.msd[i, cols], None if reps is None else reps[:, i, cols],
                           level, int(min_points))
               for i, tw in enumerate(msd_result.t_w)]
    below = [w.t_w for w in windows if w.whole.rmse < level]
    t0 = int(below[0]) if below else None
    t0_reason = None if below else f"no window's whole fit has RMSE < {level:.3g}"
    fit = DiffusionFit(windows, t0, t0_reason, msd_result.lags[cols], level, rule, int(min_points),
                       float(points_per_decade), int(msd_result.window), msd_result)
    return _per_group(fit, msd_result, lambda res: fit_diffusion(res, threshold, min_points,
                                                                points_per_decade=points_per_decade,
                                                                lag_range=lag_range))


def _per_group(result, msd_result: MSDResult, conclude):
    """``result`` with ``conclude`` of each group's MSD as its ``groups`` (if the MSD has them)."""
    if msd_result.groups is None:
        return result
    return with_groups(result, {name: conclude(res) for name, res in msd_result.groups.items()})


@dataclass(repr=False)
class LogDerivative(Result):
    """Logarithmic derivative β(t_w, τ) = d ln Δr² / d ln τ per window.

    Attributes
    ----------
    t_w : ndarray of int64, shape (W,)
    tau : ndarray of float64, shape (K,)
        Lags (steps) at which β is given: τ of Eq. 6 (``"difference"``) or the centres
        of the log-spaced grid (``"local"``).
    beta : ndarray of float64, shape (W, K)
        β; NaN where the MSD is missing or non-positive, or too few lags fall in a
        local fit.
    beta_se : ndarray of float64, shape (W, K)
        Standard error of the local slope (``"local"``); NaN for ``"difference"``.
    n_points : ndarray of int64, shape (W, K)
        Lags used per value (2 for ``"difference"``).
    method : {"difference", "local"}
    dtau : int or None
        Δτ of Eq. 6 in steps (``"difference"``).
    half_width : float or None
        Half-width of a local fit in decades of τ (``"local"``).
    """

    t_w: np.ndarray
    tau: np.ndarray
    beta: np.ndarray
    beta_se: np.ndarray
    n_points: np.ndarray
    method: str
    dtau: int | None
    half_width: float | None

    _curves = {"beta": ("t_w", "tau")}
    _se = {"beta": "beta_se"}
    _n = {"beta": "n_points"}

    def plot(self, ax=None):
        """β(τ) per window coloured by t_w (± SE band for local fits), with β = 1 (normal
        diffusion) marked; returns the axes."""
        ax = axes_or_new(ax)
        colors = window_colors(len(self.t_w))
        alpha = band_alpha(len(self.t_w))
        for color, tw, beta, se in zip(colors, self.t_w, self.beta, self.beta_se):
            ax.semilogx(self.tau, beta, color=color, lw=1, label=f"$t_w$={tw}")
            if np.isfinite(se).any():
                ax.fill_between(self.tau, beta - se, beta + se, color=color, alpha=alpha, lw=0)
        ax.axhline(1.0, color="gray", lw=0.8, ls="--")
        ax.set_xlabel("lag τ (steps)")
        ax.set_ylabel("β(τ) = d ln Δr² / d ln τ")
        if np.isfinite(self.beta_se).any():
            ax.set_title("β ± SE of the local fit (band)", fontsize="small")
        window_legend(ax, self.t_w)
        readable_ticks(ax)
        return ax


def log_derivative(
    msd_result: MSDResult,
    dtau: int = 20,
    method: str = "difference",
    *,
    points_per_decade: float = 10,
    half_width: float = 0.15,
) -> LogDerivative:
    """Logarithmic derivative β(t_w, τ) of the MSD.

    ``"difference"`` is Eq. 6 of Chen et al.::

        β(t_w, τ) = [ln Δr²(t_w, τ + Δτ) − ln Δr²(t_w, τ)] / [ln(τ + Δτ) − ln τ]

    at every lag τ for which τ + Δτ is also a lag of the MSD (so it needs dense lags).
    ``"local"`` is the slope of a least-squares line of ln Δr² on ln τ over the lags
    within ``half_width`` decades of each point of a log-spaced grid (at least 3 lags,
    else NaN); it is smoother, has a standard error, and works on log-spaced lags.

    Parameters
    ----------
    msd_result : MSDResult
    dtau : int
        Δτ of Eq. 6 in steps (the unit of ``msd_result.lags``); Chen et al. use 20.
    method : {"difference", "local"}
    points_per_decade : float
        Grid density of ``"local"``.
    half_width : float
        Half-width of each local fit in decades (0.15: lags within a factor 1.41).

    Returns
    -------
    LogDerivative
        With ``groups`` when ``msd_result`` has per-group results.

    References
    ----------
    Chen, Qu & Gong 2022, Eq. 6.

    Examples
    --------
    >>> import numpy as np, pyengine as pe
    >>> x = pe.models.ballistic(1200, 8, seed=0)
    >>> b = pe.log_derivative(pe.msd(x, window=1000))
    >>> bool(np.allclose(b.beta[0, :900], 2.0))
    True
    """
    _check_msd_result(msd_result)
    if method not in DERIVATIVE_METHODS:
        raise ValueError(f"method must be one of {DERIVATIVE_METHODS}, got {method!r}")
    result = _log_derivative(msd_result, dtau, method, points_per_decade, half_width)
    return _per_group(result, msd_result, lambda res: log_derivative(
        res, dtau, method, points_per_decade=points_per_decade, half_width=half_width))


def _log_derivative(msd_result: MSDResult, dtau, method: str, points_per_decade: float,
                    half_width: float) -> LogDerivative:
    """:func:`log_derivative` of one MSD (the settings checked)."""
    lags = msd_result.lags.astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_msd = np.where(msd_result.msd > 0, np.log(msd_result.msd), np.nan)
    if method == "difference":
        if isinstance(dtau, bool) or not isinstance(dtau, (int, np.integer)) or dtau < 1:
            raise ValueError(f"dtau must be a positive integer number of steps, got {dtau!r}")
        pos = np.searchsorted(lags, lags + dtau)
        has = pos < lags.size
        has[has] = lags[pos[has]] == lags[has] + dtau
        if not has.any():
            raise ValueError(f"no pair of lags τ, τ + {dtau} in the MSD (lags {msd_result.lags[:5]} …); "
                             "compute the MSD with dense lags or use method='local'")
        i, j = np.flatnonzero(has), pos[has]
        beta = (log_msd[:, j] - log_msd[:, i]) / np.log(lags[j] / lags[i])
        shape = beta.shape
        return LogDerivative(msd_result.t_w, lags[i], beta, np.full(shape, np.nan), np.full(shape, 2, np.int64),
                             "difference", int(dtau), None)
    if half_width <= 0 or points_per_decade <= 0:
        raise ValueError(f"half_width and points_per_decade must be > 0, got {half_width}, {points_per_decade}")
    lo, hi = np.log10(lags[0]), np.log10(lags[-1])
    centres = np.logspace(lo, hi, max(2, int(round((hi - lo) * points_per_decade)) + 1))
    beta, beta_se, counts = (np.full((msd_result.t_w.size, centres.size), np.nan) for _ in range(3))
    for k, c in enumerate(centres):
        near = np.abs(np.log10(lags / c)) <= half_width
        for w in range(msd_result.t_w.size):
            ok = near & np.isfinite(log_msd[w])
            counts[w, k] = ok.sum()
            fit = power_fit(lags[ok], msd_result.msd[w, ok])
            beta[w, k], beta_se[w, k] = fit.slope, fit.slope_se
    return LogDerivative(msd_result.t_w, centres, beta, beta_se, counts.astype(np.int64), "local", None,
                         float(half_width))
