"""Time-averaged MSD of SGD trajectories (Chen et al. 2022, Eqs. 3 and 4)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pyengine.engine.groups import ColumnGroups, Grouped, GroupedAccumulator, NamedGroups, column_groups, replicates
from pyengine.engine.msd import LagBandAccumulator, SpectralMSDAccumulator, SpectralWindow
from pyengine.engine.runner import prepare
from pyengine.estimators.reduced import scale_to_full
from pyengine.layers import named_groups, run_grouped
from pyengine.fits import jackknife_se
from pyengine.plan import WindowPlan, make_plan
from pyengine.results import Result, axes_or_new, band_alpha, readable_ticks, window_colors, window_legend

__all__ = ["MSDResult", "MSDRequest", "msd", "choose_method"]

METHODS = ("auto", "spectral", "lagband")


@dataclass(repr=False)
class MSDResult(Result):
    """Time-averaged mean squared displacement per window.

    Attributes
    ----------
    t_w : ndarray of int64, shape (W,)
        Waiting time (optimizer step) at which each window starts.
    lags : ndarray of int64, shape (L,)
        Lags τ in optimizer steps.
    msd : ndarray of float64, shape (W, L)
        Δr²(t_w, τ): mean over the window's origins of ‖w(t+τ) − w(t)‖² (summed over
        parameters, Eq. 3). NaN where no origin is left (lag past the end of the run).
    msd_se : ndarray of float64, shape (W, L)
        Standard error of ``msd``: the delete-one-group jackknife over parameter groups
        (docs/estimators.md, "Uncertainty"); NaN when the jackknife is off
        (``config.JACKKNIFE_GROUPS``) or P is too small for two groups.
    counts : ndarray of int64, shape (W, L)
        Number of origins averaged.
    nonaveraged : ndarray of float64, shape (W, L)
        Δ(t_w, t_w + τ) = ‖w(t_w+τ) − w(t_w)‖² / d (Eq. 4); NaN past the run's end.
    window : int
        Window length T in optimizer steps.
    origins : {"window", "within"}
    method : {"spectral", "lagband"}
    n_params : int
    replicates : ndarray of float64, shape (G, W, L) or None
        ``msd`` with each parameter group deleted (rescaled to all P), from which
        ``msd_se`` and the SEs of every fit to it come (not in :meth:`to_dict`).
    """

    t_w: np.ndarray
    lags: np.ndarray
    msd: np.ndarray
    msd_se: np.ndarray
    counts: np.ndarray
    nonaveraged: np.ndarray
    window: int
    origins: str
    method: str
    n_params: int
    settings: dict = field(default_factory=dict)
    replicates: np.ndarray | None = field(default=None, repr=False)

    _exclude = ("replicates",)

    _curves = {"msd": ("t_w", "lag"), "nonaveraged": ("t_w", "lag")}
    _se = {"msd": "msd_se"}
    _coords = {"lag": "lags"}
    _n = {"msd": "counts"}

    def plot(self, ax=None):
        """Log-log MSD curves coloured by waiting time, ±SE bands; returns the axes.

        The key is a legend up to six windows, a colour bar of t_w above
        (:func:`pyengine.results.window_legend`).
        """
        ax = axes_or_new(ax)
        colors = window_colors(len(self.t_w))
        alpha = band_alpha(len(self.t_w))
        for i, tw in enumerate(self.t_w):
            ok = np.isfinite(self.msd[i]) & (self.msd[i] > 0)
            m, se = self.msd[i, ok], self.msd_se[i, ok]
            ax.loglog(self.lags[ok], m, color=colors[i], lw=1, label=f"$t_w$={tw}")
            if np.isfinite(se).any():
                ax.fill_between(self.lags[ok], np.maximum(m - se, m / 10), m + se, color=colors[i], alpha=alpha, lw=0)
        ax.set_xlabel("lag τ (steps)")
        ax.set_ylabel("MSD Δr²(t_w, τ)")
        window_legend(ax, self.t_w)
        readable_ticks(ax)
        return ax


def choose_method(plan: WindowPlan) -> str:
    """Spectral for all lags of few windows; lag band for sparse lags or dense t_w scans.

    Costs in element operations per parameter: the band sweeps every origin of the run
    once per lag; the spectral path runs one or two FFTs of ~2T points per window.
    """
    band = plan.lags.size * plan.n_rows
    ffts = 1 if plan.origins == "within" else 2
    nfft = 2 * plan.length + int(plan.lags.max())
    spectral = plan.starts.size * ffts * 2.5 * nfft * np.log2(nfft)
    return "spectral" if spectral < band else "lagband"


def _empty(plan: WindowPlan):
    w, l = plan.starts.size, plan.lags.size
    return np.full((w, l), np.nan), np.zeros((w, l), np.int64), np.full((w, l), np.nan)


def _from_band(plan: WindowPlan, band: np.ndarray, n_params: int):
    prefix = np.concatenate((np.zeros((band.shape[0], 1)), np.cumsum(band, axis=1)), axis=1)
    msd, _, single = _empty(plan)
    counts = _band_counts(plan)
    for i, s in enumerate(plan.starts):
        n = counts[i]
        ok = n > 0
        idx = np.flatnonzero(ok)
        msd[i, ok] = (prefix[idx, s + n[ok]] - prefix[idx, s]) / n[ok]
        end = s + plan.lags < plan.n_rows
        single[i, end] = band[np.flatnonzero(end), s] / n_params
    return msd, counts, single


class _BandSums:
    """What :func:`_from_band` gives with n_params = 1, by window sums instead of a prefix sum
    over the whole band (whose row-wise cumsum costs 16× more; a grouped lag band reduces
    each label of every block); equal to rounding. Where the run's end (or "within") cuts
    a window's origins, a 0/1 mask of the origins kept, made once, weights the sum (a loop
    over the cut lags cost 8× more)."""

    def __init__(self, plan: WindowPlan):
        self.plan = plan
        self.counts = [_origin_counts(plan, s) for s in plan.starts]
        masks: dict[tuple, np.ndarray] = {}  # windows with the same cuts share a mask
        self.masks = []
        for s, n in zip(plan.starts, self.counts):
            width = int(min(plan.length, plan.n_rows - s))
            if np.all(n >= width):
                self.masks.append(None)
                continue
            key = n.tobytes(), width
            if key not in masks:
                masks[key] = (np.arange(width) < n[:, None]).astype(np.float64)
            self.masks.append(masks[key])

    def __call__(self, band: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        plan = self.plan
        msd, _, single = _empty(plan)
        for i, (s, n, mask) in enumerate(zip(plan.starts, self.counts, self.masks)):
            seg = band[:, s : s + plan.length]
            sums = seg.sum(axis=1) if mask is None else np.einsum("lt,lt->l", seg, mask)
            ok = n > 0
            msd[i, ok] = sums[ok] / n[ok]
            end = s + plan.lags < plan.n_rows
            single[i, end] = band[np.flatnonzero(end), s]
        return msd, single


def _band_counts(plan: WindowPlan) -> np.ndarray:
    """(W, L) origins averaged over per window and lag by the band's MSD."""
    return np.array([np.maximum(_origin_counts(plan, s), 0) for s in plan.starts], dtype=np.int64).reshape(
        plan.starts.size, plan.lags.size)


def _origin_counts(plan: WindowPlan, start: int) -> np.ndarray:
    if plan.origins == "within":
        return plan.length - plan.lags
    return np.minimum(plan.length, plan.n_rows - start - plan.lags)


def _from_spectral(plan: WindowPlan, per_window, n_params: int):
    msd, counts, single = _empty(plan)
    for i, (m, n, sq) in enumerate(per_window):
        ok = plan.lags < m.size
        msd[i, ok], counts[i, ok] = m[plan.lags[ok]], n[plan.lags[ok]]
        single[i, ok] = sq[plan.lags[ok]] / n_params
    return msd, counts, single


def msd(
    x,
    window: int | str | None = "auto",
    lags=None,
    origins: str = "window",
    method: str = "auto",
    *,
    t_w=None,
    groups=None,
    **engine,
) -> MSDResult:
    """Time-averaged MSD of a trajectory, per window, exactly, in one streaming pass.

    Parameters
    ----------
    x : path, Trajectory, h5py.Dataset, array-like or cupy.ndarray of shape (N, P)
        Snapshots of the weights. Arrays are taken as logged every step.
    window : int, "auto" or None
        Window length T in optimizer steps; ``"auto"`` fits the run, None is the whole
        run (the window rule: :mod:`pyengine.plan`).
    lags : None, int or sequence of int
        None: every lag; an int m: m log-spaced lags; a sequence: lags in steps.
    origins : {"window", "within"}
        ``"window"`` is Chen et al.'s Eq. 3: origins t ∈ [t_w, t_w + T), endpoints t + τ
        may pass the window. At the end of the run, origins whose endpoint would pass the
        last snapshot are dropped and the mean is over those left (``counts``); NaN where
        none is left. ``"within"`` keeps both points inside the window: T − τ origins.
    method : {"auto", "spectral", "lagband"}
        Spectral (FFT) for all lags of few windows, the exact lag band for sparse lags or
        dense t_w scans; ``"auto"`` picks by cost.
    t_w : sequence of int, optional
        Waiting times (steps) at which windows start (default: every T steps).
    groups : None, "tensor", "layer", "kind" or mapping
        Also the MSD of each named group of parameters, from the same pass, in
        ``result.groups`` (:mod:`pyengine.layers`; docs/estimators.md, "Per-layer
        statistics"): each a sum over its own parameters, so the groups' MSDs add up to
        the whole model's.
    **engine
        Engine settings: ``backend``, ``block_cols``, ``workers``, ``progress``,
        ``scheduler``, ``nonfinite`` (see :class:`pyengine.engine.EngineOptions`).

    Returns
    -------
    MSDResult

    References
    ----------
    Chen, Qu & Gong 2022, "Anomalous diffusion dynamics of learning in deep neural
    networks", Eqs. 3 and 4.

    Examples
    --------
    >>> import numpy as np, pyengine as pe
    >>> x = np.random.default_rng(0).standard_normal((2000, 50)).cumsum(axis=0)
    >>> res = pe.msd(x, window=1000, lags=[1, 10, 100])
    >>> res.msd.shape                      # 2 windows x 3 lags; MSD ≈ 50·τ (Brownian)
    (2, 3)
    """
    src, options = prepare(x, engine)
    plan = make_plan(src.steps, window, t_w=t_w, lags=lags, origins=origins)
    request = MSDRequest.make(plan, src.n_cols, method, named_groups(groups, src), reduction=src.reduction)
    return run_grouped(src, request, options, desc="msd")


@dataclass(frozen=True)
class MSDRequest:
    """The MSD estimator around the pass (see :class:`pyengine.engine.Request`).

    ``reduction``: a sampled or sketched input's (``Source.reduction``); its sums are scaled
    to the full model where the request concludes (:func:`pyengine.estimators.reduced.scale_to_full`).
    """

    plan: WindowPlan
    method: str
    n_params: int
    groups: ColumnGroups | None = None
    reduction: object | None = None

    @classmethod
    def make(cls, plan: WindowPlan, n_params: int, method: str = "auto", named: NamedGroups | None = None,
             reduction=None) -> "MSDRequest":
        """The request with the jackknife's column groups, inside the ``named`` groups if given;
        ``reduction``: the input's (``Source.reduction``)."""
        if method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {method!r}")
        return cls(plan, choose_method(plan) if method == "auto" else method, n_params,
                   column_groups(n_params, named), reduction)

    def accumulators(self) -> list:
        plan = self.plan
        if self.method == "spectral":
            windows = tuple(SpectralWindow(int(s), plan.length, plan.msd_span(int(s))) for s in plan.starts)
            inner = SpectralMSDAccumulator(windows)
        else:
            inner = LagBandAccumulator(tuple(int(l) for l in plan.lags))
        if self.groups is None:
            return [inner]
        if self.method == "lagband":  # one reduction per label and block: the cheap one
            band_sums = _BandSums(plan)
            return [GroupedAccumulator(inner, self.groups, lambda state: band_sums(inner.finalize(state)))]
        return [GroupedAccumulator(inner, self.groups, lambda state: self._values(inner.finalize(state)))]

    def _values(self, raw) -> tuple[np.ndarray, np.ndarray]:
        """The (W, L) MSD of a finalized state and the sum of Eq. 4's numerator, ‖w(t_w+τ) −
        w(t_w)‖² (both linear in it: those of column sets add)."""
        convert = _from_spectral if self.method == "spectral" else _from_band
        values, _, single = convert(self.plan, raw, 1)
        return values, single

    def conclude(self, results: list) -> MSDResult:
        plan, raw = self.plan, results[0]
        grouped = raw if isinstance(raw, Grouped) else None
        convert = _from_spectral if self.method == "spectral" else _from_band
        values, counts, single = convert(plan, grouped.total if grouped else raw, self.n_params)
        reps = replicates(values, grouped, lambda part: part[0]) if grouped else None
        return self._result(values, counts, single, self.n_params, reps)

    def conclude_group(self, results: list, group: int) -> MSDResult:
        """The MSD of named group ``group`` (an index into ``groups.named.names``): the sum
        of its parts, its own jackknife SE."""
        grouped = results[0]
        values, numerator = grouped.named_total(group)
        n_params = int(self.groups.named.sizes()[group])
        if self.method == "spectral":
            counts = _from_spectral(self.plan, grouped.total, self.n_params)[1]
        else:  # not _from_band: its prefix sum over the whole band, once per group, cost more than the group's fits
            counts = _band_counts(self.plan)
        reps = replicates(values, grouped, lambda part: part[0], group)
        return self._result(values, counts, numerator / n_params, n_params, reps)

    def _result(self, values, counts, single, n_params: int, reps) -> MSDResult:
        plan = self.plan
        se = jackknife_se(reps) if reps is not None else np.full(values.shape, np.nan)
        values, se, reps, single = scale_to_full(self.reduction, self.n_params, (values, se, reps), (single,))
        return MSDResult(t_w=plan.t_w, lags=plan.lag_steps, msd=values, msd_se=se, counts=counts,
                         nonaveraged=single, window=plan.window, origins=plan.origins, method=self.method,
                         n_params=n_params, settings={"stride": plan.stride}, replicates=reps)
