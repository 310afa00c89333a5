"""Spectra of weight increments and weight autocorrelations per window (Chaudhari 2018, Fig. 6.3).

Brownian motion has white increments, so a flat increment spectrum and weights whose
fluctuations are not correlated beyond chance; SGD shows low-frequency modes (a spectrum
rising towards f → 0) and autocorrelations outside the confidence band at large lags.
"""

from __future__ import annotations

import math
import dataclasses
import statistics
from dataclasses import dataclass

import numpy as np

from pyengine.engine.increments import IncrementsAccumulator, IncrementSampleAccumulator, IncrementWindow
from pyengine.engine.groups import (ColumnGroups, ColumnSampleAccumulator, Grouped, GroupedAccumulator, NamedGroups,
                                    column_groups)
from pyengine.engine.runner import prepare
from pyengine.estimators.reduced import require_available
from pyengine.fits import PowerFit, jackknife_se, log_spaced, power_fit
from pyengine.heavytail.increments import check_options, increment_tail_index
from pyengine.kernels.spectral import fft_length
from pyengine.layers import named_groups, run_grouped
from pyengine.plan import WindowPlan, make_plan
from pyengine.results import (Result, axes_or_new, band_alpha, jsonable, readable_ticks, window_colors,
                              window_legend)

#: The α-stable fit of a window's increments uses at most this many values: its SE is then
#: ≈ 0.01 (measured at α = 1.7), while fitting all 255,000 of a default sample took 4× longer.
STABLE_SAMPLES = 20_000
#: With named groups, each group's tail index uses an evenly spaced sample of its own
#: coordinates: n_cols / (number of groups), but at least this many (all of a smaller group).
MIN_GROUP_TAIL_COLS = 32

__all__ = ["IncrementsResult", "IncrementsRequest", "increments", "IncrementTails", "IncrementTailsRequest",
           "increment_tails"]


@dataclass(repr=False)
class IncrementsResult(Result):
    """Increment spectra and weight autocorrelations, mean ± sd across coordinates, per window.

    Attributes
    ----------
    t_w : ndarray of int64, shape (W,)
        Waiting times (steps) at which windows start.
    window : int
        Window length T in steps: T / stride weights and one increment fewer per window.
    freqs : ndarray of float64, shape (F,)
        Frequencies f_k = k / (nfft·stride) in cycles per step, k = 1 … nfft/2, for the
        n = T/stride − 1 increments of a window zero-padded to nfft points, the power of
        two >= max(8, n) (f = 0 is left out: their mean is subtracted).
    power_mean, power_sd : ndarray of float64, shape (W, F)
        Mean and standard deviation across coordinates of the periodogram
        P_i(f_k) = |Σ_t Δw_i(t) e^{−2πi k t/nfft}|² / n of the mean-subtracted increments;
        white increments of variance σ² give E P = σ² at every f.
    power_mean_se : ndarray of float64, shape (W, F)
        Standard error of ``power_mean`` (jackknife over parameter groups; NaN when off).
    slope_fits : list of PowerFit
        Per window, the power law power_mean ∝ f^slope on log-spaced frequencies in
        ``f_range``: slope 0 for white increments, −2 when the increments are a random
        walk (``spectral_slope`` and ``spectral_slope_se`` give the slopes as arrays).
    f_range : tuple of float
        Frequency range of the slope fit.
    lags : ndarray of int64, shape (K,)
        Lags (steps) of the autocorrelation, 0 … max_lag.
    acf_mean, acf_sd : ndarray of float64, shape (W, K)
        Mean and standard deviation across coordinates of the weight autocorrelation
        r_i(k) = Σ_t y_i(t) y_i(t+k) / Σ_t y_i(t)², y_i = w_i − its window mean.
    acf_mean_se : ndarray of float64, shape (W, K)
        Standard error of ``acf_mean`` (jackknife over parameter groups; NaN when off).
    band : float
        Half-width of the ``level`` confidence band of an autocorrelation under white
        noise, z_{(1+level)/2} / √n (Chaudhari's dotted red lines).
    level : float
    n_params : int
        Coordinates averaged in the spectra.
    n_moving : ndarray of int64, shape (W,)
        Coordinates with non-zero variance in the window (those averaged in the
        autocorrelation).
    """

    t_w: np.ndarray
    window: int
    freqs: np.ndarray
    power_mean: np.ndarray
    power_mean_se: np.ndarray
    power_sd: np.ndarray
    slope_fits: list
    f_range: tuple[float, float]
    lags: np.ndarray
    acf_mean: np.ndarray
    acf_mean_se: np.ndarray
    acf_sd: np.ndarray
    band: float
    level: float
    n_params: int
    n_moving: np.ndarray

    _headline = {"spectral_slope": "spectral_slope_se", "n_moving": None}
    _flags = {"spectral_slope": "slope_fits[].flag"}
    _curves = {"power_mean": ("t_w", "freq"), "power_sd": ("t_w", "freq"), "acf_mean": ("t_w", "lag"),
               "acf_sd": ("t_w", "lag")}
    _coords = {"freq": "freqs", "lag": "lags"}
    _se = {"power_mean": "power_mean_se", "acf_mean": "acf_mean_se"}

    @property
    def spectral_slope(self) -> np.ndarray:
        """Slope of the increment spectrum per window, shape (W,)."""
        return np.array([f.slope for f in self.slope_fits], dtype=np.float64)

    @property
    def spectral_slope_se(self) -> np.ndarray:
        """Standard error of that slope per window, shape (W,)."""
        return np.array([f.slope_se for f in self.slope_fits], dtype=np.float64)

    def plot(self, ax=None, kind: str = "both"):
        """Plot as Chaudhari Fig. 6.3; returns the axes (two for ``"both"``).

        ``kind``: ``"spectrum"`` (log-log mean power per window, with the geometric ±1 sd
        band of :meth:`spectrum_band`), ``"acf"`` (autocorrelation ± sd with the white-noise
        confidence band dotted), or ``"both"``. One key for the figure: a legend up to six
        windows, a colour bar of t_w above.
        """
        import matplotlib.pyplot as plt

        if kind not in ("spectrum", "acf", "both"):
            raise ValueError(f"kind must be 'spectrum', 'acf' or 'both', got {kind!r}")
        if kind == "both":
            axes = plt.subplots(1, 2, figsize=(10, 4))[1] if ax is None else ax
            self._draw_spectrum(axes[0])
            self._draw_acf(axes[1])
            window_legend(axes, self.t_w)
            return axes
        ax = axes_or_new(ax)
        (self._draw_spectrum if kind == "spectrum" else self._draw_acf)(ax)
        window_legend(ax, self.t_w)
        return ax

    def spectrum_band(self) -> tuple[np.ndarray, np.ndarray]:
        """Geometric ±1 sd band of the spectra across coordinates, for a log axis.

        The band is m·g^±1 around the mean power m, with ln g the standard deviation of the
        log-normal that has the mean m and standard deviation s of the coordinates' powers:
        (ln g)² = ln(1 + s²/m²). It is positive, symmetric about the mean on a log axis and
        widens only as √ln(s/m), where m ± s would run below zero on a log axis.

        Returns
        -------
        low, high : ndarray of float64, shape (W, F)
        """
        with np.errstate(divide="ignore", invalid="ignore"):
            log_g = np.sqrt(np.log1p((self.power_sd / self.power_mean) ** 2))
        factor = np.exp(np.where(np.isfinite(log_g), log_g, 0.0))
        return self.power_mean / factor, self.power_mean * factor

    def _draw_spectrum(self, ax) -> None:
        colors, alpha = window_colors(len(self.t_w)), band_alpha(len(self.t_w))
        low, high = self.spectrum_band()
        for color, tw, m, lo, hi in zip(colors, self.t_w, self.power_mean, low, high):
            ax.fill_between(self.freqs, lo, hi, color=color, alpha=alpha, lw=0)
            ax.loglog(self.freqs, m, color=color, lw=0.8, label=f"$t_w$={tw}")
        ax.set_xlabel("frequency (cycles per step)")
        ax.set_ylabel("power of increments Δw")
        ax.set_title("mean over coordinates, geometric ±1 sd band", fontsize="small")
        readable_ticks(ax)

    def _draw_acf(self, ax) -> None:
        colors, alpha = window_colors(len(self.t_w)), band_alpha(len(self.t_w))
        for color, tw, m, s in zip(colors, self.t_w, self.acf_mean, self.acf_sd):
            ax.fill_between(self.lags, m - s, m + s, color=color, alpha=alpha, lw=0)
            ax.plot(self.lags, m, color=color, lw=0.8, label=f"$t_w$={tw}")
        for sign in (1, -1):
            ax.axhline(sign * self.band, color="red", ls=":", lw=1)
        ax.set_xlabel("lag (steps)")
        ax.set_ylabel("autocorrelation of weights")
        ax.set_title(f"mean ± sd over coordinates; red: {self.level:.0%} white-noise band", fontsize="small")


@dataclass(frozen=True)
class IncrementsRequest:
    """The increments estimator around the pass (see :class:`pyengine.engine.Request`).

    Each window of the plan gives its T − 1 increments and T weights.
    """

    plan: WindowPlan
    max_lag: int  # rows
    level: float
    f_range: tuple[float, float]
    groups: ColumnGroups | None = None

    @classmethod
    def make(cls, plan: WindowPlan, n_params: int, max_lag: int | None = None, level: float = 0.99,
             f_range=None, named: NamedGroups | None = None) -> IncrementsRequest:
        """Check every setting before the pass (``max_lag`` in steps, default T / 2); the
        jackknife's column groups inside the ``named`` groups if given."""
        if plan.length < 3:
            raise ValueError(f"increment spectra need windows of at least 3 snapshots, got {plan.length}")
        if max_lag is None:
            lag_rows = plan.length // 2
        elif (isinstance(max_lag, bool) or not isinstance(max_lag, (int, np.integer)) or max_lag % plan.stride
              or not 0 <= max_lag // plan.stride < plan.length):
            raise ValueError(f"max_lag must be a multiple of {plan.stride} steps in 0 … "
                             f"{(plan.length - 1) * plan.stride}, got {max_lag!r}")
        else:
            lag_rows = int(max_lag) // plan.stride
        if not 0 < level < 1:
            raise ValueError(f"level must be in (0, 1), got {level}")
        freqs = _freqs(plan)
        f_lo, f_hi = (freqs[0], freqs[-1]) if f_range is None else f_range
        if not 0 < f_lo < f_hi:
            raise ValueError(f"f_range must be (low, high) with 0 < low < high (cycles per step), got {f_range}")
        return cls(plan, lag_rows, float(level), (float(f_lo), float(f_hi)), column_groups(n_params, named))

    def accumulators(self) -> list:
        plan = self.plan
        inner = IncrementsAccumulator(tuple(IncrementWindow(int(s), plan.length, self.max_lag) for s in plan.starts))
        return [inner] if self.groups is None else [GroupedAccumulator(inner, self.groups)]

    def conclude(self, results: list) -> IncrementsResult:
        """Mean ± sd across coordinates from the finalized sums, the spectral slopes, and
        the jackknife SEs of the means and slopes (each group's sums deleted in turn)."""
        raw = results[0]
        if not isinstance(raw, Grouped):
            return self._result(raw, [])
        return self._result(raw.total, raw.jackknife()[0])

    def conclude_group(self, results: list, group: int) -> IncrementsResult:
        """The result of named group ``group`` (an index into ``groups.named.names``) from
        the sums of its columns, with its own jackknife SEs."""
        grouped = results[0]
        return self._result(grouped.named_total(group), grouped.jackknife(group)[0])

    def _result(self, sums: list, parts: list) -> IncrementsResult:
        """The result from per-window sums and the jackknife groups' shares of them."""
        plan = self.plan
        freqs = _freqs(plan)
        power_mean, power_sd = _power(sums)
        acf_mean, acf_sd = _acf(sums)
        power_reps = acf_reps = None
        if sum(part is not None for part in parts) >= 2:
            deleted = [[_minus(t, p) for t, p in zip(sums, part)] for part in parts if part is not None]
            power_reps = np.stack([_power(d)[0] for d in deleted])
            acf_reps = np.stack([_acf(d)[0] for d in deleted])
        nan = np.full(power_mean.shape, np.nan)
        return IncrementsResult(
            t_w=plan.t_w,
            window=plan.window,
            freqs=freqs,
            power_mean=power_mean,
            power_mean_se=nan if power_reps is None else jackknife_se(power_reps),
            power_sd=power_sd,
            slope_fits=_slopes(freqs, power_mean, self.f_range, power_reps),
            f_range=self.f_range,
            lags=np.arange(self.max_lag + 1, dtype=np.int64) * plan.stride,
            acf_mean=acf_mean,
            acf_mean_se=np.full(acf_mean.shape, np.nan) if acf_reps is None else jackknife_se(acf_reps),
            acf_sd=acf_sd,
            band=statistics.NormalDist().inv_cdf(0.5 + self.level / 2) / math.sqrt(plan.length),
            level=self.level,
            n_params=int(sums[0].n_cols),
            n_moving=np.array([s.n_moving for s in sums], dtype=np.int64),
        )


def _freqs(plan: WindowPlan) -> np.ndarray:
    """Frequencies k / (nfft·stride) (cycles per step), k = 1 … nfft/2, of the T − 1 increments
    zero-padded to nfft = fft_length(T − 1) points (the power of two >= max(8, T − 1))."""
    nfft = fft_length(plan.length - 1)
    return np.arange(1, nfft // 2 + 1) / (nfft * plan.stride)


def _slopes(freqs: np.ndarray, power: np.ndarray, f_range, reps: np.ndarray | None = None) -> list[PowerFit]:
    """Power-law fit of power_mean against f on log-spaced frequencies in f_range, per window
    (``reps``: the jackknife replicates of power_mean, shape (g, W, F))."""
    cols = np.flatnonzero((freqs >= f_range[0]) & (freqs <= f_range[1]))
    if cols.size:
        cols = cols[log_spaced(freqs[cols], 20)]
    return [power_fit(freqs[cols], p[cols], replicates=None if reps is None else reps[:, i, cols])
            for i, p in enumerate(power)]


def _power(sums) -> tuple[np.ndarray, np.ndarray]:
    return _mean_sd([s.power[1:] for s in sums], [s.power_sq[1:] for s in sums], [s.n_cols for s in sums])


def _acf(sums) -> tuple[np.ndarray, np.ndarray]:
    return _mean_sd([s.acf for s in sums], [s.acf_sq for s in sums], [s.n_moving for s in sums])


def _minus(total, part):
    """A window's sums without one group's share."""
    return dataclasses.replace(total, **{f.name: getattr(total, f.name) - getattr(part, f.name)
                                         for f in dataclasses.fields(total)})


def _mean_sd(totals, squares, counts) -> tuple[np.ndarray, np.ndarray]:
    total, square = np.array(totals), np.array(squares)
    n = np.array(counts, dtype=np.float64)[:, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = total / n
        var = np.maximum(square / n - mean * mean, 0.0) * n / (n - 1)
    return mean, np.sqrt(var)


def increments(
    x,
    window: int | str | None = "auto",
    max_lag: int | None = None,
    level: float = 0.99,
    *,
    t_w=None,
    f_range: tuple[float, float] | None = None,
    groups=None,
    **engine,
) -> IncrementsResult:
    """Spectrum of weight increments and weight autocorrelation per window, in one pass.

    Per coordinate i and window [t_w, t_w + T): the periodogram of the window's
    mean-subtracted increments Δw_i(t) = w_i(t+1) − w_i(t) and the autocorrelation of its
    weights w_i(t); both are averaged over coordinates (mean ± sd), as in Chaudhari
    (2018), Fig. 6.3.

    Parameters
    ----------
    x : path, Trajectory, h5py.Dataset, array-like or cupy.ndarray of shape (N, P)
        Snapshots of the weights (evenly spaced steps).
    window : int, "auto" or None
        Window length T in steps (the window rule: :mod:`pyengine.plan`).
    max_lag : int, optional
        Largest autocorrelation lag in steps (default T / 2).
    level : float
        Confidence level of the white-noise band ±z/√n of the autocorrelation.
    t_w : sequence of int, optional
        Window starts in steps (default: every T steps).
    f_range : (float, float), optional
        Frequencies (cycles per step) of the spectral-slope fit (default: all).
    groups : None, "tensor", "layer", "kind" or mapping
        Also each named group's spectra and autocorrelations (means over its own
        coordinates), in ``result.groups`` (:mod:`pyengine.layers`).
    **engine
        Engine settings (see :class:`pyengine.engine.EngineOptions`).

    Returns
    -------
    IncrementsResult

    References
    ----------
    Chaudhari 2018 (PhD thesis), Sec. 6.3.3, Fig. 6.3.

    Examples
    --------
    >>> import pyengine as pe
    >>> x = pe.models.brownian(4097, 64, seed=0)       # white increments
    >>> res = pe.increments(x, window=2048)
    >>> bool(abs(res.spectral_slope[0]) < 0.1)
    True
    """
    src, options = prepare(x, engine)
    require_available(src.reduction, "increments")
    plan = make_plan(src.steps, window, t_w=t_w)
    request = IncrementsRequest.make(plan, src.n_cols, max_lag, level, f_range, named_groups(groups, src))
    return run_grouped(src, request, options, desc="increments")


@dataclass(repr=False)
class IncrementTails(Result):
    """Heavy tails of weight increments per window: Mohammadi tail index and α-stable fit.

    Attributes
    ----------
    t_w : ndarray of int64, shape (W,)
    window : int
        Window length T in steps.
    columns : ndarray of int64, shape (k,)
        The sampled coordinates (every ``col_step``-th parameter).
    tail : list of IncrementTailIndex
        :func:`pyengine.heavytail.increment_tail_index` of each window's sample: with
        ``grouping="permuted"`` each coordinate is centred at its median, divided by its
        median absolute deviation, and the pooled values are permuted (seeded) before the
        Mohammadi estimator groups them (the tail of the increments, free of drift and
        memory); with ``"displacement"`` each K1-group is K1 consecutive increments of one
        coordinate (the scaling of K1-step displacements).
    stable : list of StableFit or None
        :func:`pyengine.fit_levy_stable` of each window's pooled sample, each coordinate
        divided by its median |Δw| first, on at most ``STABLE_SAMPLES`` of its values (a
        seeded subsample; None when ``stable=False``).
    alpha, alpha_se : ndarray of float64, shape (W,)
        Tail index per window and its standard error.
    stable_alpha : ndarray of float64, shape (W,)
        α of the stable fit per window (NaN when not fitted).
    samples : list of ndarray, shape (T / stride − 1, k)
        The sampled increments (for histograms; not in :meth:`to_dict`).
    grouping : {"permuted", "displacement"}
        How the tail index formed its K1-groups.
    seed : int
        Seed of the permutation.
    """

    t_w: np.ndarray
    window: int
    columns: np.ndarray
    tail: list
    stable: list | None
    samples: list
    grouping: str = "permuted"
    seed: int = 0

    _headline = {"alpha": "alpha_se", "stable_alpha": "stable[].alpha_se"}
    _flags = {"alpha": "tail[].flag"}

    @property
    def alpha(self) -> np.ndarray:
        return np.array([t.alpha for t in self.tail], dtype=np.float64)

    @property
    def alpha_se(self) -> np.ndarray:
        return np.array([t.alpha_se for t in self.tail], dtype=np.float64)

    @property
    def stable_alpha(self) -> np.ndarray:
        if self.stable is None:
            return np.full(len(self.tail), np.nan)
        return np.array([s.alpha for s in self.stable], dtype=np.float64)

    def to_dict(self) -> dict:
        """JSON-ready dict (NaN as None); the samples are left out."""
        return jsonable({"t_w": self.t_w, "window": self.window, "columns": self.columns,
                          "tail": [t.to_dict() for t in self.tail],
                          "stable": None if self.stable is None else [s.to_dict() for s in self.stable],
                          "alpha": self.alpha, "alpha_se": self.alpha_se, "stable_alpha": self.stable_alpha,
                          "grouping": self.grouping, "seed": self.seed}) | self._groups_dict()

    def plot(self, ax=None, kind: str = "alpha"):
        """Plot the tails; returns the axes.

        ``kind``: ``"alpha"`` (tail index ± se and stable α against t_w, α = 2 marked) or
        ``"distribution"`` (density of the first and last windows' scaled increments on a
        log scale, with their α-stable and Gaussian fits: Chen et al. Fig. 5b–c).
        """
        if kind not in ("alpha", "distribution"):
            raise ValueError(f"kind must be 'alpha' or 'distribution', got {kind!r}")
        ax = axes_or_new(ax)
        if kind == "distribution":
            return self._plot_distribution(ax)
        flagged = np.array([t.flag is not None for t in self.tail], dtype=bool)
        line, = ax.plot(self.t_w, self.alpha, "-", lw=1, color="C0")
        ax.errorbar(self.t_w[~flagged], self.alpha[~flagged], yerr=self.alpha_se[~flagged], fmt="o", ms=4,
                    capsize=2, color="C0", label="tail index (Mohammadi) ± SE")
        if flagged.any():
            ax.errorbar(self.t_w[flagged], self.alpha[flagged], yerr=self.alpha_se[flagged], fmt="o", ms=4,
                        capsize=2, color="C0", mfc="none", alpha=0.5, label="tail index, flagged")
        if self.stable is not None:
            se = np.array([s.alpha_se for s in self.stable], dtype=np.float64)
            ax.errorbar(self.t_w, self.stable_alpha, yerr=np.where(np.isfinite(se), se, 0.0), fmt="s--", ms=4,
                        capsize=2, color="C1", label="α-stable fit ± SE")
        ax.axhline(2.0, color="gray", lw=0.8, ls=":")
        ax.set_xlabel("waiting time t_w (steps)")
        ax.set_ylabel("α of increments Δw")
        ax.legend(fontsize="small", loc="best")
        readable_ticks(ax, "x")
        return ax

    def _plot_distribution(self, ax):
        """Histogram densities ± Poisson SE with the fits drawn over the histogram's x range and
        the y axis limited to the densities measured (a Gaussian's tails would pull it to 1e-20)."""
        from scipy.stats import norm

        from pyengine.heavytail.stable import stable_logpdf

        measured = []
        for i, color in zip(sorted({0, len(self.samples) - 1}), ("C0", "C3")):
            scaled = _scaled(self.samples[i])
            lim = np.quantile(np.abs(scaled), 0.999)
            edges = np.linspace(-lim, lim, 81)
            counts, _ = np.histogram(scaled, bins=edges)
            width = edges[1] - edges[0]
            density = counts / (scaled.size * width)
            se = np.sqrt(counts) / (scaled.size * width)
            mids = 0.5 * (edges[1:] + edges[:-1])
            seen = counts > 0
            ax.errorbar(mids[seen], density[seen], yerr=np.vstack((np.minimum(se, 0.9 * density)[seen], se[seen])),
                        fmt=".", color=color, ms=3, elinewidth=0.5, label=f"$t_w$={self.t_w[i]}")
            measured.append(density[seen])
            grid = np.linspace(-lim, lim, 400)
            ax.plot(grid, norm.pdf(grid, scaled.mean(), scaled.std()), ":", color=color, lw=1)
            if self.stable is not None:
                fit = self.stable[i]
                ax.plot(grid, np.exp(stable_logpdf(grid, fit.alpha, fit.scale, fit.loc)), "-", color=color, lw=1,
                        label=f"α-stable α={fit.alpha:.2f}")
        ax.set_yscale("log")
        values = np.concatenate(measured) if measured else np.array([])
        if values.size:
            ax.set_ylim(values.min() / 10, values.max() * 3)
        ax.set_xlabel("increment Δw / median |Δw| of its coordinate")
        ax.set_ylabel("density ± SE (dotted: Gaussian fit)")
        ax.legend(fontsize="small")
        return ax


def _scaled(sample: np.ndarray) -> np.ndarray:
    """Pool a window's sampled increments, each coordinate divided by its median |Δw|."""
    scale = np.median(np.abs(sample), axis=0)
    moving = scale > 0
    return (sample[:, moving] / scale[moving]).ravel()


def _stable_fit(sample: np.ndarray, seed: int):
    """The α-stable fit of a window's pooled, scaled increments, on at most STABLE_SAMPLES of them."""
    from pyengine.heavytail import fit_levy_stable

    values = _scaled(sample)
    if values.size > STABLE_SAMPLES:
        values = np.random.default_rng(seed).choice(values, STABLE_SAMPLES, replace=False)
    return fit_levy_stable(values)


@dataclass(frozen=True)
class IncrementTailsRequest:
    """The increment-tails estimator around the pass (see :class:`pyengine.engine.Request`)."""

    plan: WindowPlan
    col_step: int
    columns: np.ndarray
    k1: object
    stable: bool
    grouping: str = "permuted"
    seed: int = 0
    groups: ColumnGroups | None = None
    group_cols: int = 0

    @classmethod
    def make(cls, plan: WindowPlan, n_params: int, n_cols: int = 256, *, k1=None, stable: bool = True,
             grouping: str = "permuted", seed: int = 0, named: NamedGroups | None = None) -> IncrementTailsRequest:
        """Check every setting before the pass; with ``named`` groups, each group's tail index
        comes from an evenly spaced sample of ⌈n_cols / groups⌉ (at least
        ``MIN_GROUP_TAIL_COLS``) of its own coordinates, kept in the same pass."""
        if isinstance(n_cols, bool) or not isinstance(n_cols, (int, np.integer)) or n_cols < 1:
            raise ValueError(f"n_cols must be a positive integer, got {n_cols!r}")
        if plan.length < 3:
            raise ValueError(f"increment tails need windows of at least 3 snapshots, got {plan.length}")
        grouping, seed = check_options(grouping, seed)
        col_step = max(1, -(-n_params // int(n_cols)))
        group_cols = 0 if named is None else max(MIN_GROUP_TAIL_COLS, -(-int(n_cols) // len(named.names)))
        return cls(plan, col_step, np.arange(0, n_params, col_step), k1, bool(stable), grouping, seed,
                   column_groups(n_params, named), group_cols)

    def accumulators(self) -> list:
        windows = tuple(IncrementWindow(int(s), self.plan.length, 0) for s in self.plan.starts)
        whole = IncrementSampleAccumulator(windows, self.col_step)
        if self.groups is None or self.groups.named is None:
            return [whole]
        rows = tuple((w.start, w.length) for w in windows)
        return [whole, ColumnSampleAccumulator(rows, self.groups.named, self.group_cols)]

    def conclude(self, results: list) -> IncrementTails:
        """The whole model's tails, its jackknife over the groups of the uncertainty issue
        (without the named groups: the permutation, and so α̂, is then the same as without)."""
        samples = results[0]
        whole = None if self.groups is None else column_groups(self.groups.n_params)
        labels = None if whole is None else whole.of(self.columns)
        return self._result(self.columns, samples, labels, self.stable)

    def conclude_group(self, results: list, group: int) -> IncrementTails:
        """The tails of named group ``group`` (an index into ``groups.named.names``) from its
        own sample of coordinates (``columns``; the tail index's ``n_coords`` counts those
        that move); no α-stable fit (``stable`` is None: 0.08 s per window and group)."""
        cols, values = results[1]
        mine = self.groups.named.of(cols) == group
        samples = [np.diff(v[:, mine], axis=0) for v in values]
        return self._result(cols[mine], samples, self.groups.jackknife_of(cols[mine]), False)

    def _result(self, columns: np.ndarray, samples: list, labels, stable: bool) -> IncrementTails:
        tails = [increment_tail_index(s, grouping=self.grouping, k1=self.k1, seed=self.seed, column_groups=labels)
                 for s in samples]
        fits = [_stable_fit(s, self.seed) for s in samples] if stable else None
        return IncrementTails(self.plan.t_w, self.plan.window, columns, tails, fits, samples, self.grouping,
                              self.seed)


def increment_tails(
    x,
    window: int | str | None = "auto",
    n_cols: int = 256,
    *,
    t_w=None,
    k1=None,
    stable: bool = True,
    grouping: str = "permuted",
    seed: int = 0,
    groups=None,
    **engine,
) -> IncrementTails:
    """Tail index and α-stable fit of the weight increments Δw, per window, on a column sample.

    The increments Δw(t) = w(t+1) − w(t) inside each window [t_w, t_w + T) of every
    ⌈P / n_cols⌉-th coordinate are collected in the pass; per window,
    :func:`pyengine.heavytail.increment_tail_index` (Mohammadi estimator; by default on
    the increments centred at each coordinate's median, scaled by its median absolute
    deviation, pooled and permuted, so drift and memory do not bias it) and, with
    ``stable=True``, :func:`pyengine.fit_levy_stable` on the pooled increments (each
    coordinate scaled by its median |Δw|) give the tail of the step distribution (Chen et
    al. 2022, Fig. 5d).

    Parameters
    ----------
    x : path, Trajectory, h5py.Dataset, array-like or cupy.ndarray of shape (N, P)
    window : int, "auto" or None
        Window length T in steps (the window rule: :mod:`pyengine.plan`).
    n_cols : int
        About how many coordinates to sample (all when P <= n_cols).
    t_w : sequence of int, optional
        Window starts in steps.
    k1 : int, sequence, "grid" or None
        Group sizes of the Mohammadi estimator (see :func:`pyengine.heavytail.tail_index`).
    stable : bool
        Also fit a symmetric α-stable law per window.
    grouping : {"permuted", "displacement"}
        How the Mohammadi estimator forms its K1-groups: ``"permuted"`` (default) from
        the standardised, pooled and permuted increments (their tail index);
        ``"displacement"``: K1 consecutive raw increments of one coordinate (the scaling
        of K1-step displacements, which drift and memory lower; the behaviour before
        ``grouping`` existed).
    seed : int
        Seed (>= 0) of the permutation.
    groups : None, "tensor", "layer", "kind" or mapping
        Also each named group's tail index, from an evenly spaced sample of its own
        coordinates, in ``result.groups`` (:mod:`pyengine.layers`).
    **engine
        Engine settings (see :class:`pyengine.engine.EngineOptions`).

    Returns
    -------
    IncrementTails

    References
    ----------
    Chen, Qu & Gong 2022, Sec. III (Fig. 5); Şimşekli, Sagun & Gürbüzbalaban 2019, Eq. 15;
    docs/heavytail.md (the protocol and its validation).

    Examples
    --------
    >>> import numpy as np, pyengine as pe
    >>> x = np.cumsum(np.random.default_rng(0).standard_cauchy((2001, 64)), axis=0)
    >>> res = pe.increment_tails(x, window=1000, stable=False)
    >>> bool(np.all(np.abs(res.alpha - 1) < 0.15)), res.grouping
    (True, 'permuted')
    """
    src, options = prepare(x, engine)
    require_available(src.reduction, "tails")
    plan = make_plan(src.steps, window, t_w=t_w)
    request = IncrementTailsRequest.make(plan, src.n_cols, n_cols, k1=k1, stable=stable, grouping=grouping,
                                         seed=seed, named=named_groups(groups, src))
    return run_grouped(src, request, options, desc="increment tails")
