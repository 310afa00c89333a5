"""Pairs inside windows: mean squared loss differences (MSL) and the fractal geometry of the path.

Both estimators share one streaming pass: the window Gram accumulator (all pairwise
distances of each window) and an exact lag band (step sizes, adjacent distances). The
pass's conclusion, :class:`PairDistances`, turns each window's Gram matrix into its own
array of squared distances once; the MSL and the path geometry then bin the T(T−1)/2
pairs of each window with the pair-binning kernel, and neither writes into what it reads.

Reference: Chen, Qu & Gong 2022, "Anomalous diffusion dynamics of learning in deep neural
networks": MSL Eq. 9 (and Eq. 8, MSL ∝ Δr^{2H}); contour length Δs against end-to-end
distance Δr, Δr² ∝ Δs^λ, D_f = 2/λ, with a crossover l; transverse distance.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import scipy.sparse

from pyengine import config
from pyengine.engine.gram import GramWindow, WindowGramAccumulator, principal_coordinates, sq_distances
from pyengine.engine.groups import ColumnGroups, Grouped, GroupedAccumulator, NamedGroups, column_groups, replicates
from pyengine.engine.msd import LagBandAccumulator
from pyengine.engine.runner import pass_requests, prepare
from pyengine.estimators.loss import snapshot_loss
from pyengine.estimators.reduced import scale_to_full
from pyengine.fits import PowerFit, jackknife_se, power_fit, with_se
from pyengine.kernels._arrays import to_host
from pyengine.kernels.pairs import log_edges, pair_bin
from pyengine.layers import conclude_groups, named_groups
from pyengine.plan import WindowPlan, make_plan
from pyengine.results import Result, axes_or_new, readable_ticks, window_colors, window_legend, with_groups

__all__ = ["MSLResult", "PathResult", "PairsRequest", "PairDistances", "msl", "msl_from", "path_geometry",
           "path_from", "transverse_distances"]

#: Bins with fewer pairs are left out of fits.
MIN_PAIRS = 5
#: Auto fit range: the widest run of bins whose log10 residuals stay below this RMS.
MAX_FIT_RMSE = 0.05
#: Fewest bins in a fit range (each side of a crossover).
MIN_FIT_BINS = 4
#: Pairs per window whose distances each column group keeps for the jackknife (of
#: T(T−1)/2: 499,500 at T = 1000): every pair up to the lag that fills half of them, and a
#: uniform sample of the longer ones. The parameter-sampling noise of long-lag distances is
#: shared by many pairs, so a sample spreads as all of them do; short lags are few and
#: independent, so they are all kept (sampling them too inflated the SE of λ below the
#: crossover 1.5–1.7× on fBm runs). Kept in float32: 6.4 MB per window for 32 groups.
PAIR_SAMPLE = 50_000


def _column(fits, attr: str) -> np.ndarray:
    return np.array([getattr(f, attr) for f in fits], dtype=np.float64)


@dataclass(repr=False)
class MSLResult(Result):
    """Mean squared loss difference against distance, per window (Chen et al. Eq. 9).

    Attributes
    ----------
    t_w : ndarray of int64, shape (W,)
        Waiting time (optimizer step) at which each window starts.
    window : int
        Window length T in optimizer steps.
    edges : ndarray of float64, shape (B + 1,)
        Distance bin edges (Δr, weight-space units).
    r : ndarray of float64, shape (W, B)
        Root-mean-square distance of the pairs in each bin (NaN when empty).
    counts : ndarray of int64, shape (W, B)
        Pairs in each bin.
    msl : ndarray of float64, shape (W, B)
        Mean over the bin's pairs of (L_a − L_b)² (the mean of squares).
    msl_se : ndarray of float64, shape (W, B)
        Standard error of that mean (pairs taken as independent: a lower bound).
    fits : list of PowerFit
        Per window, the fit MSL ∝ Δr^{2H} (slope 2H), with its SE, range and quality flag.
    n_flagged : ndarray of int64, shape (W,)
        Pairs left out because their distance was below the Gram's rounding (see docs).
    n_params : int
    """

    t_w: np.ndarray
    window: int
    edges: np.ndarray
    r: np.ndarray
    counts: np.ndarray
    msl: np.ndarray
    msl_se: np.ndarray
    fits: list
    n_flagged: np.ndarray
    n_params: int
    settings: dict = field(default_factory=dict)

    _headline = {"exponent": "exponent_se"}
    _flags = {"exponent": "fits[].flag"}
    _curves = {"msl": ("t_w", "bin")}
    _coords = {"bin": None}
    _x = {"bin": "r"}
    _edges = {"bin": "edges"}
    _se = {"msl": "msl_se"}
    _n = {"msl": "counts"}

    @property
    def exponent(self) -> np.ndarray:
        """2H per window, shape (W,)."""
        return _column(self.fits, "slope")

    @property
    def exponent_se(self) -> np.ndarray:
        """Standard error of 2H per window, shape (W,)."""
        return _column(self.fits, "slope_se")

    @property
    def fit_range(self) -> np.ndarray:
        """Δr range of each window's fit, shape (W, 2)."""
        return np.array([f.x_range for f in self.fits], dtype=np.float64).reshape(-1, 2)

    @property
    def hurst(self) -> np.ndarray:
        """H = exponent / 2 per window."""
        return self.exponent / 2

    def plot(self, ax=None):
        """Log-log MSL(Δr) per window with its fitted power law; returns the axes."""
        ax = axes_or_new(ax)
        colors = window_colors(len(self.t_w))
        for i, tw in enumerate(self.t_w):
            ok = np.isfinite(self.msl[i]) & (self.msl[i] > 0)
            fit = self.fits[i]
            ax.errorbar(self.r[i, ok], self.msl[i, ok], yerr=_log_safe(self.msl[i, ok], self.msl_se[i, ok]),
                        color=colors[i], lw=1, elinewidth=0.6, label=f"$t_w$={tw}, 2H={_fit_label(fit)}")
            _draw_fit(ax, fit)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("distance Δr")
        ax.set_ylabel("MSL  ⟨(L_a − L_b)²⟩")
        ax.set_title("± SE; fits dashed (dotted: flagged)", fontsize="small")
        window_legend(ax, self.t_w)
        readable_ticks(ax)
        return ax


@dataclass(repr=False)
class PathResult(Result):
    """Fractal geometry of the path per window: Δr² against contour length Δs.

    Attributes
    ----------
    t_w : ndarray of int64, shape (W,)
    window : int
        Window length T in optimizer steps.
    edges : ndarray of float64, shape (B + 1,)
        Contour-length bin edges (Δs).
    ds : ndarray of float64, shape (W, B)
        Mean contour length of the pairs in each bin.
    dr2, dr2_se : ndarray of float64, shape (W, B)
        Mean end-to-end squared distance Δr² of those pairs, and its standard error.
    counts : ndarray of int64, shape (W, B)
    fits : list of (PowerFit, PowerFit)
        Per window, Δr² ∝ Δs^λ below and above the crossover (the same fit twice when
        there are too few bins to split).
    crossover : ndarray of float64, shape (W,)
        Contour length l separating the two ranges (NaN when too few bins to split).
    transverse_lags : ndarray of int64, shape (L,)
        Pair separations b − a (optimizer steps) of the transverse-distance sample.
    transverse_dr, transverse_h : ndarray of float64, shape (W, L)
        Mean end-to-end distance Δr and mean transverse distance h of those pairs.
    transverse_fits : list of PowerFit
        Per window, h ∝ Δr^ζ: ζ = 1 for a self-similar path, ≠ 1 for a self-affine one.
    coords : ndarray of float64, shape (W, T, 2)
        The window's snapshots in their top two principal coordinates (classical MDS).
    explained : ndarray of float64, shape (W, 2)
        Fraction of the window's variance along each of those axes.
    n_flagged : ndarray of int64, shape (W,)
    n_params : int
    """

    t_w: np.ndarray
    window: int
    edges: np.ndarray
    ds: np.ndarray
    dr2: np.ndarray
    dr2_se: np.ndarray
    counts: np.ndarray
    fits: list
    crossover: np.ndarray
    transverse_lags: np.ndarray
    transverse_dr: np.ndarray
    transverse_h: np.ndarray
    transverse_fits: list
    coords: np.ndarray
    explained: np.ndarray
    n_flagged: np.ndarray
    n_params: int
    settings: dict = field(default_factory=dict)

    _headline = {"lam": "lam_se", "fractal_dim": "fractal_dim_se", "transverse_exponent": "transverse_exponent_se",
                 "crossover": None}
    _parts = {"lam": ("range", ("below", "above")), "fractal_dim": ("range", ("below", "above"))}
    _flags = {"lam": "fits[][].flag", "fractal_dim": "fits[][].flag", "transverse_exponent": "transverse_fits[].flag"}
    _curves = {"dr2": ("t_w", "bin"), "transverse_h": ("t_w", "tlag"), "explained": ("t_w", "pc")}
    _coords = {"bin": None, "tlag": "transverse_lags", "pc": None}
    _x = {"bin": "ds", "tlag": "transverse_dr"}
    _edges = {"bin": "edges"}
    _se = {"dr2": "dr2_se"}
    _n = {"dr2": "counts"}

    @property
    def lam(self) -> np.ndarray:
        """λ below and above the crossover per window, shape (W, 2)."""
        return np.array([[f.slope for f in pair] for pair in self.fits], dtype=np.float64).reshape(-1, 2)

    @property
    def lam_se(self) -> np.ndarray:
        """Standard errors of λ, shape (W, 2)."""
        return np.array([[f.slope_se for f in pair] for pair in self.fits], dtype=np.float64).reshape(-1, 2)

    @property
    def fractal_dim(self) -> np.ndarray:
        """D_f = 2 / λ in each range, shape (W, 2)."""
        with np.errstate(divide="ignore"):
            return 2.0 / self.lam

    @property
    def fractal_dim_se(self) -> np.ndarray:
        """Standard error of D_f (propagated from λ: 2 SE_λ / λ²), shape (W, 2)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return 2.0 * self.lam_se / self.lam**2

    @property
    def fit_range(self) -> np.ndarray:
        """Δs range of each of the two fits, shape (W, 2, 2)."""
        return np.array([[f.x_range for f in pair] for pair in self.fits], dtype=np.float64).reshape(-1, 2, 2)

    @property
    def transverse_exponent(self) -> np.ndarray:
        """ζ per window, shape (W,)."""
        return _column(self.transverse_fits, "slope")

    @property
    def transverse_exponent_se(self) -> np.ndarray:
        """Standard error of ζ per window, shape (W,)."""
        return _column(self.transverse_fits, "slope_se")

    def plot(self, ax=None):
        """Log-log Δr² ± SE against Δs per window with the two fitted ranges; returns the axes."""
        ax = axes_or_new(ax)
        colors = window_colors(len(self.t_w))
        for i, tw in enumerate(self.t_w):
            ok = np.isfinite(self.dr2[i]) & (self.dr2[i] > 0)
            low, high = self.fits[i]
            ax.errorbar(self.ds[i, ok], self.dr2[i, ok], yerr=_log_safe(self.dr2[i, ok], self.dr2_se[i, ok]),
                        fmt="o-", ms=3, color=colors[i], lw=1, elinewidth=0.6,
                        label=f"$t_w$={tw}, λ={_fit_label(low)}/{_fit_label(high)}")
            for fit in (low, high):
                _draw_fit(ax, fit)
            if np.isfinite(self.crossover[i]):
                ax.axvline(self.crossover[i], color=colors[i], ls=":", lw=1)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("contour length Δs")
        ax.set_ylabel("end-to-end Δr²")
        ax.set_title("± SE; fits dashed (dotted: flagged), crossovers dotted", fontsize="small")
        window_legend(ax, self.t_w)
        readable_ticks(ax)
        return ax


def _fit_label(fit: PowerFit) -> str:
    """The slope ± SE, with '?' for a fit that fails the quality rule."""
    if not np.isfinite(fit.slope):
        return "–"
    return f"{fit.slope:.2f}±{fit.slope_se:.2f}" + ("" if fit.ok else "?")


def _log_safe(values: np.ndarray, se: np.ndarray) -> np.ndarray:
    """Error bars (2, n) of ± SE for a log axis: missing SEs drawn as none, and a lower bar
    that would reach zero stopped at a tenth of the value (it runs off a log axis)."""
    se = np.where(np.isfinite(se), se, 0.0)
    return np.vstack((np.minimum(se, 0.9 * values), se))


def _draw_fit(ax, fit: PowerFit) -> None:
    if not np.isfinite(fit.slope):
        return
    xs = np.geomspace(*fit.x_range, 20)
    ax.plot(xs, fit.line(xs), "k--" if fit.ok else "k:", lw=0.8)


def _auto_range(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """The widest run of usable bins (in log10 x) fitting one power law within MAX_FIT_RMSE."""
    ok = np.flatnonzero(np.isfinite(x) & np.isfinite(y) & (x > 0) & (y > 0))
    best, best_key = (x[ok[0]], x[ok[-1]]) if ok.size else (np.nan, np.nan), None
    for i in range(ok.size):
        for j in range(i + MIN_FIT_BINS - 1, ok.size):
            lo, hi = x[ok[i]], x[ok[j]]
            rmse = power_fit(x, y, lo, hi).rmse
            key = (np.log10(hi / lo), -rmse)
            if rmse <= MAX_FIT_RMSE and (best_key is None or key > best_key):
                best, best_key = (lo, hi), key
    return best


def _two_ranges(x: np.ndarray, y: np.ndarray) -> tuple[tuple[PowerFit, PowerFit], float]:
    """Two power laws split at the bin boundary that minimises the total squared log residual."""
    ok = np.flatnonzero(np.isfinite(x) & np.isfinite(y) & (x > 0) & (y > 0))
    if ok.size < 2 * MIN_FIT_BINS:
        fit = power_fit(x, y)
        return (fit, fit), np.nan
    best = None
    for k in range(MIN_FIT_BINS, ok.size - MIN_FIT_BINS + 1):
        left, right = (x[ok[0]], x[ok[k - 1]]), (x[ok[k]], x[ok[-1]])
        fits = (power_fit(x, y, *left), power_fit(x, y, *right))
        sse = fits[0].rmse ** 2 * k + fits[1].rmse ** 2 * (ok.size - k)
        if best is None or sse < best[0]:
            best = (sse, fits, np.sqrt(left[1] * right[0]))
    return best[1], best[2]


def _binned_means(member: np.ndarray, key: np.ndarray, value: np.ndarray, edges: np.ndarray,
                  ends: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per replicate and bin of ``member`` (edges, right edge included): mean ``key`` and
    mean ``value``, shape (R, bins), NaN where a bin has fewer than MIN_PAIRS entries.
    ``key`` and ``value`` are (R, S), one row per replicate, or (S,) shared by all. The
    jackknife bins its sampled pairs by their full-data key (``member``) and averages the
    replicate's keys and values: pairs hopping across bin edges between replicates would add
    a spread of the sample's, not of the estimate's.

    With ``ends`` = (a, b), the pairs' snapshots, ``key`` is (R, T) per snapshot and pair s
    has key[:, b_s] − key[:, a_s] (a contour length): a bin's sum of those is linear in the
    rows of ``key``, so it is ``key`` times the bin's count of pair ends per snapshot, with no
    (R, S) gather (unless a key or value is not finite)."""
    n_bins = edges.size - 1
    bins = np.clip(np.searchsorted(edges, member, side="right") - 1, 0, n_bins - 1)
    rows = np.flatnonzero((member >= edges[0]) & (member <= edges[-1]))
    # Sums per bin for all replicates at once: the replicates times a pairs × bins 0/1 matrix.
    binning = scipy.sparse.csr_array((np.ones(rows.size), (rows, bins[rows])), shape=(member.size, n_bins)).T
    finite = np.isfinite(key).all() and np.isfinite(value).all()
    if ends is not None and not finite:  # pairs are then left out one by one: gather them
        key, ends = key[:, ends[1]] - key[:, ends[0]], None
    key, value = np.atleast_2d(key), np.atleast_2d(value)
    if finite:  # one count for every replicate, and a row shared by all binned once
        shape = (max(key.shape[0], value.shape[0]), n_bins)
        count = np.broadcast_to(np.bincount(bins[rows], minlength=n_bins), shape)
        if ends is None:
            key_sums = (binning @ key.T).T
        else:
            per_end = [np.bincount(e[rows] * n_bins + bins[rows], minlength=key.shape[1] * n_bins) for e in ends]
            key_sums = key @ (per_end[1] - per_end[0]).reshape(key.shape[1], n_bins).astype(np.float64)
        return _means(np.broadcast_to(key_sums, shape), np.broadcast_to((binning @ value.T).T, shape), count)
    # a non-finite key or value leaves its pair out of that replicate
    key, value = np.broadcast_arrays(key, value)
    finite = np.isfinite(key) & np.isfinite(value)
    key, value = np.where(finite, key, 0.0), np.where(finite, value, 0.0)
    count = (binning @ finite.T.astype(np.float64)).T
    return _means((binning @ key.T).T, (binning @ value.T).T, count)


def _means(key_sums: np.ndarray, value_sums: np.ndarray, count: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-bin sums over counts, NaN where a bin has fewer than MIN_PAIRS entries."""
    with np.errstate(invalid="ignore", divide="ignore"):
        keys, values = key_sums / count, value_sums / count
    few = count < MIN_PAIRS
    keys[few], values[few] = np.nan, np.nan
    return keys, values


def _msl_replicate_slopes(pairs: PairDistances, i: int, loss: np.ndarray, edges: np.ndarray,
                          fit: PowerFit) -> np.ndarray:
    """2H of window i from the sampled pairs, with each parameter group deleted."""
    a, b = pairs.sample
    dl2 = (loss[a] - loss[b]) ** 2
    mean_d2, msl = _binned_means(pairs.d2[i][a, b], pairs.replicates[0][:, i], dl2, edges**2)
    return np.array([power_fit(np.sqrt(x), y, *fit.x_range).slope for x, y in zip(mean_d2, msl)])


def _path_replicate_slopes(pairs: PairDistances, i: int, edges: np.ndarray, fits) -> np.ndarray:
    """λ below and above the crossover of window i from the sampled pairs, shape (G, 2),
    with each parameter group deleted (contour lengths too)."""
    a, b = pairs.sample
    start, t = int(pairs.plan.starts[i]), pairs.plan.length
    steps = np.sqrt(pairs.replicates[1][:, start : start + t - 1])
    contour = np.concatenate((np.zeros((steps.shape[0], 1)), np.cumsum(steps, axis=1)), axis=1)
    full = np.concatenate(([0.0], np.cumsum(pairs.steps[start : start + t - 1])))
    ds, dr2 = _binned_means(full[b] - full[a], contour, pairs.replicates[0][:, i], edges, ends=(a, b))
    return np.array([[power_fit(x, y, *fit.x_range).slope for fit in fits] for x, y in zip(ds, dr2)])


def _bin_stats(hist: np.ndarray):
    """(count, mean key, mean value, standard error of the mean value) from pair_bin sums."""
    count, key_sum, total, total_sq = hist
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = total / count
        var = np.maximum(total_sq / count - mean**2, 0.0) * count / (count - 1)
        se = np.sqrt(var / count)
        return count.astype(np.int64), key_sum / count, mean, np.where(count > 1, se, np.nan)


def transverse_distances(d2: np.ndarray, lags, max_origins: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Mean end-to-end distance and mean transverse distance of the pairs (a, a + lag).

    The transverse distance of a pair (a, b) is the largest distance of a point c, a < c < b,
    from the straight line through a and b, from the squared distances alone:
    h_c² = D²_ac − (D²_ac + D²_ab − D²_bc)² / (4 D²_ab) (the triangle's height).

    Parameters
    ----------
    d2 : float64 array of shape (T, T)
        Squared distances (NaN pairs are ignored).
    lags : sequence of int, each in [2, T)
        Separations b − a in rows.
    max_origins : int
        At most this many evenly spaced origins a per lag (cost O(lag) each).

    Returns
    -------
    dr, h : ndarray of shape (len(lags),)
        Means over the origins of √D²_ab and of h_ab.
    """
    t = d2.shape[0]
    dr, h = np.full(len(lags), np.nan), np.full(len(lags), np.nan)
    for i, lag in enumerate(lags):
        a = np.unique(np.linspace(0, t - 1 - lag, min(max_origins, t - lag)).astype(np.int64))
        c = a[:, None] + np.arange(1, lag)
        ab = d2[a, a + lag][:, None]
        ac, bc = d2[a[:, None], c], d2[c, (a + lag)[:, None]]
        with np.errstate(invalid="ignore", divide="ignore"):
            h2 = ac - (ac + ab - bc) ** 2 / (4 * ab)
        h2 = np.where(ab > 0, h2, ac)  # a and b coincide: distance from the point itself
        hmax = np.sqrt(np.maximum(np.nanmax(np.where(np.isnan(h2), -np.inf, h2), axis=1), 0.0))
        dr[i], h[i] = np.nanmean(np.sqrt(ab[:, 0])), np.mean(hmax)
    return dr, h


@dataclass(frozen=True)
class PairDistances:
    """What the pairs pass gives both pair estimators, computed once and read-only.

    Attributes
    ----------
    plan : WindowPlan
    d2 : list of ndarray, shape (T, T)
        Per window, squared distances of all pairs of its snapshots (NaN where the Gram
        matrix cannot resolve them to ``rtol``; exact at lags ≤ ``exact_lags``).
    n_flagged : ndarray of int64, shape (W,)
        Pairs set to NaN per window.
    steps : ndarray of float64, shape (N,)
        Exact step sizes ‖w(t+1) − w(t)‖ (the last entry is 0).
    coords, explained : ndarray or None
        Principal coordinates of each window (see :class:`PathResult`), when asked for.
    n_params : int
    settings : dict
        center, exact_lags, rtol.
    sample : (ndarray, ndarray) or None
        Rows (a, b) of the pairs sampled in every window for the jackknife.
    replicates : (ndarray, ndarray) or None
        The sampled pairs' D², shape (G, W, S), and the squared step sizes, shape (G, N),
        with each parameter group deleted (rescaled to all P): the jackknife replicates
        the pair statistics' standard errors come from.
    """

    plan: WindowPlan
    d2: list
    n_flagged: np.ndarray
    steps: np.ndarray
    coords: np.ndarray | None
    explained: np.ndarray | None
    n_params: int
    settings: dict
    sample: tuple | None = None
    replicates: tuple | None = None


@dataclass(frozen=True)
class PairsRequest:
    """The pass both pair estimators need (see :class:`pyengine.engine.Request`): the window
    Gram matrices and an exact lag band for step sizes and adjacent distances."""

    plan: WindowPlan
    n_params: int
    center: str = "mean"
    exact_lags: int = 1
    rtol: float = 1e-6
    coords: bool = True
    groups: ColumnGroups | None = field(default=None)
    reduction: object | None = None  # a sampled or sketched input's: sums scaled to the full model in conclude
    refused: str | None = None  # why per-group pairs were refused (the memory limit), if they were

    def __post_init__(self):
        if int(self.exact_lags) != self.exact_lags or self.exact_lags < 1:
            raise ValueError(f"exact_lags must be an integer >= 1 (the step sizes), got {self.exact_lags!r}")
        if not 0 < self.rtol < 1:
            raise ValueError(f"rtol must be in (0, 1), got {self.rtol!r}")

    @classmethod
    def make(cls, plan: WindowPlan, n_params: int, named: NamedGroups | None = None, **settings) -> "PairsRequest":
        """The request with the jackknife's column groups (``config.JACKKNIFE_GROUPS``), inside
        the ``named`` groups if their Gram matrices fit ``config.GROUP_PAIRS_BYTES``; else
        for the whole model only, with the reason in ``refused``."""
        request = cls(plan, n_params, groups=column_groups(n_params, named), **settings)
        need = None if named is None else request.group_bytes()
        if need is None or need <= config.GROUP_PAIRS_BYTES:
            return request
        reason = (f"per-group MSL and path geometry need a {plan.length} × {plan.length} Gram matrix per group and "
                  f"window: {need / 2**20:.0f} MiB for {len(named.names)} groups × {plan.starts.size} windows, over "
                  f"config.GROUP_PAIRS_BYTES = {config.GROUP_PAIRS_BYTES / 2**20:.0f} MiB; use fewer groups, "
                  "shorter windows (window=, t_w=) or raise the limit")
        return cls(plan, n_params, groups=column_groups(n_params), refused=reason, **settings)

    def group_bytes(self) -> int:
        """Bytes of one pass state's per-group parts: a T × T float64 Gram matrix per named
        group and window, the sampled pairs' float32 distances and the float64 lag band per
        label (named group × jackknife group)."""
        g = self.groups
        windows, t = self.plan.starts.size, self.plan.length
        labels = int(np.count_nonzero(g.sizes()))
        return (g.n_named * windows * 8 * t * t + labels * windows * 4 * self.sample[0].size
                + labels * 8 * self.exact_lags * self.plan.n_rows)

    @cached_property
    def sample(self) -> tuple[np.ndarray, np.ndarray]:
        """The pairs (a < b) of a window whose distances each column group keeps: all of
        them, or (PAIR_SAMPLE) all short-lag pairs and a seeded sample of the others."""
        t = self.plan.length
        a, b = np.triu_indices(t, 1)
        if a.size <= PAIR_SAMPLE:
            return a, b
        lag = b - a
        per_lag = t - np.arange(1, t)  # pairs at lags 1, 2, …
        short = int(np.searchsorted(np.cumsum(per_lag), PAIR_SAMPLE // 2, side="right"))
        rest = np.flatnonzero(lag > short)
        drawn = np.random.default_rng(0).choice(rest, PAIR_SAMPLE - (a.size - rest.size), replace=False)
        keep = np.sort(np.concatenate((np.flatnonzero(lag <= short), drawn)))
        return a[keep], b[keep]

    def accumulators(self) -> list:
        windows = tuple(GramWindow(int(s), self.plan.length) for s in self.plan.starts)
        band = LagBandAccumulator(tuple(range(1, self.exact_lags + 1)))
        if self.groups is None:
            return [WindowGramAccumulator(windows, self.center), band]
        return [WindowGramAccumulator(windows, self.center, self.groups, self.sample),
                GroupedAccumulator(band, self.groups, lambda state: to_host(state.band).copy())]

    def conclude(self, results: list) -> PairDistances:
        grams, band = results
        if self.groups is None:
            return self._distances(grams, band, self.n_params, None)
        return self._distances(grams.total, band.total, self.n_params, self._replicates(grams.total, band.total,
                                                                                       *results))

    def conclude_group(self, results: list, group: int) -> PairDistances:
        """The pair distances of named group ``group`` (an index into ``groups.named.names``):
        from its own Gram matrices and lag band, with its own jackknife replicates."""
        grams, band = results
        mine_grams, mine_band = grams.named[group], band.named_total(group)
        n_params = int(self.groups.named.sizes()[group])
        return self._distances(mine_grams, mine_band, n_params,
                               self._replicates(mine_grams, mine_band, grams, band, group))

    def _distances(self, grams: list, band: np.ndarray, n_params: int, reps) -> PairDistances:
        grams, band, reps = scale_to_full(self.reduction, self.n_params, (grams, band, reps))
        plan, t = self.plan, self.plan.length
        d2, flagged = [], []
        for gram, start in zip(grams, plan.starts):
            dist, n_bad = sq_distances(gram, n_params, exact=band[:, start : start + t], rtol=self.rtol)
            dist.flags.writeable = False
            d2.append(dist)
            flagged.append(n_bad)
        _warn_flagged(np.array(flagged), self.rtol)
        coords = explained = None
        if self.coords:
            w = len(grams)
            coords, explained = np.zeros((w, t, 2)), np.zeros((w, 2))
            for i, gram in enumerate(grams):
                coords[i, :, : min(2, t)], explained[i, : min(2, t)] = principal_coordinates(
                    gram, 2, centered=self.center == "mean")
        return PairDistances(plan, d2, np.array(flagged, dtype=np.int64), np.sqrt(band[0]), coords, explained,
                             n_params, {"center": self.center, "exact_lags": self.exact_lags, "rtol": self.rtol},
                             self.sample if reps else None, reps)

    def _replicates(self, grams: list, band: np.ndarray, grouped_grams: Grouped, grouped_band: Grouped,
                    group: int | None = None) -> tuple | None:
        """Jackknife replicates of the sampled pairs' D² and of the squared step sizes (of the
        whole model, or of named group ``group``: ``grams`` and ``band`` are then its own)."""
        a, b = self.sample
        total = np.stack([np.diag(g)[a] + np.diag(g)[b] - 2.0 * g[a, b] for g in grams])
        d2 = replicates(total, grouped_grams, np.stack, group)
        steps = replicates(band[0], grouped_band, lambda part: part[0], group)
        return None if d2 is None or steps is None else (np.maximum(d2, 0.0, out=d2), np.maximum(steps, 0.0, out=steps))


def _pairs_pass(src, options, window, t_w, coords: bool, groups, **request) -> tuple[PairDistances, dict]:
    """The pairs pass of a standalone pair statistic: the whole model's distances, and each
    named group's (refused with a ValueError beyond ``config.GROUP_PAIRS_BYTES``)."""
    plan = make_plan(src.steps, window, t_w=t_w, lags=1, origins="within")
    request = PairsRequest.make(plan, src.n_cols, named_groups(groups, src), coords=coords, reduction=src.reduction,
                                **request)
    if request.refused:
        raise ValueError(request.refused)
    (raw,) = pass_requests(src, [request], options, desc="pairs")
    return request.conclude(raw), conclude_groups(request, raw)


def _binner(backend: str):
    """pair_bin on the host, or on the GPU for backend="cuda" (distances are finalized on the host)."""
    if backend != "cuda":
        return lambda key, value, edges: pair_bin(key, value, edges, backend=backend)

    import cupy

    return lambda key, value, edges: pair_bin(cupy.asarray(key), cupy.asarray(value), edges, backend="cuda").get()


def _warn_flagged(n_flagged: np.ndarray, rtol: float) -> None:
    if n_flagged.any():
        warnings.warn(
            f"{int(n_flagged.sum())} pairs were closer than the Gram matrix resolves to rtol={rtol} and were "
            "left out; raise exact_lags to compute short-lag distances exactly", RuntimeWarning, stacklevel=3)


def _edges(bins, low: float, high: float, default: int) -> np.ndarray:
    if bins is None or (isinstance(bins, (int, np.integer)) and not isinstance(bins, bool)):
        n = int(default if bins is None else bins)
        if not 1 <= n <= MAX_BINS:
            raise ValueError(f"bins must be a count in 1 … {MAX_BINS} or increasing edges, got {bins!r}")
        # A margin keeps the extreme pairs inside despite rounding (Δr edges are squared for D²).
        return log_edges(low * (1 - 1e-9), high * (1 + 1e-9), n)
    edges = np.asarray(bins, dtype=np.float64)
    if edges.ndim != 1 or edges.size < 2 or edges.size > MAX_BINS + 1 or not np.all(np.diff(edges) > 0):
        raise ValueError(f"bins: expected a count or 2 … {MAX_BINS + 1} increasing edges, got {bins!r}")
    return edges


#: Most distance bins a pair statistic takes (a bin is four float64 sums per window).
MAX_BINS = 10_000


def msl(
    x,
    loss=None,
    window: int | str | None = "auto",
    bins=None,
    t_w=None,
    fit_range=None,
    *,
    center: str = "mean",
    exact_lags: int = 1,
    rtol: float = 1e-6,
    groups=None,
    **engine,
) -> MSLResult:
    """Mean squared loss difference of point pairs against their distance (Chen et al. Eq. 9).

    For each window [t_w, t_w + T) and distance bin, MSL(t_w, Δr) is the mean over the
    pairs a < b in the window with ‖w_a − w_b‖ in the bin of (L_a − L_b)². A fractal
    landscape gives MSL ∝ Δr^{2H} (Eq. 8); the exponent 2H is fitted per window.

    Parameters
    ----------
    x : path, Trajectory, h5py.Dataset, array-like or cupy.ndarray of shape (N, P)
    loss : array of shape (N,), optional
        Loss at each snapshot; default: the trajectory file's ``/loss``.
    window : int, "auto" or None
        Window length T in optimizer steps (the window rule: :mod:`pyengine.plan`).
    bins : int or array of float, optional
        Number of log-spaced distance bins (default 32) spanning the smallest to the largest
        nonzero distance of all windows, or explicit edges in distance units.
    t_w : sequence of int, optional
        Window starts (steps); default: consecutive windows.
    fit_range : (float, float), optional
        Δr range of the power-law fit; default: the widest run of bins (with at least
        ``MIN_PAIRS`` pairs) that one power law fits to an RMS log10 residual ≤ 0.05.
    center : {"mean", "first"}
        Reference point subtracted before the Gram product (see WindowGramAccumulator).
    exact_lags : int
        Pairs up to this separation (rows) take exact distances from the lag band.
    rtol : float
        Pairs whose distance the Gram matrix resolves worse than this are left out.
    groups : None, "tensor", "layer", "kind" or mapping
        Also the MSL of each named group (the distances of its own parameters), in
        ``result.groups`` (:mod:`pyengine.layers`): one Gram matrix per group and window,
        refused with a ValueError beyond ``config.GROUP_PAIRS_BYTES``.
    **engine
        Engine settings: ``backend``, ``block_cols``, ``workers``, ``progress``,
        ``scheduler``, ``nonfinite`` (see :class:`pyengine.engine.EngineOptions`).

    Returns
    -------
    MSLResult

    References
    ----------
    Chen, Qu & Gong 2022, Eqs. 8 and 9, Fig. 6(c).

    Examples
    --------
    >>> import numpy as np, pyengine as pe
    >>> rng = np.random.default_rng(0)
    >>> x = rng.standard_normal((400, 20)).cumsum(axis=0)
    >>> res = pe.msl(x, loss=np.sin(x[:, 0]), window=200, bins=16)
    >>> res.msl.shape
    (2, 16)
    """
    src, options = prepare(x, engine)
    loss = snapshot_loss(src.loss if loss is None else loss, src.n_rows)
    if loss is None:
        raise ValueError("no loss given and the input has no /loss: pass loss=array of shape (n_snapshots,)")
    _edges(bins, 1.0, 2.0, 32)  # bad bins fail before the pass, not after it
    pairs, by_group = _pairs_pass(src, options, window, t_w, False, groups, center=center, exact_lags=exact_lags,
                                  rtol=rtol)
    result = msl_from(pairs, loss, bins, fit_range, options.backend)
    if not by_group:
        return result
    return with_groups(result, {k: msl_from(p, loss, bins, fit_range, options.backend) for k, p in by_group.items()})


def msl_from(pairs: PairDistances, loss: np.ndarray, bins=None, fit_range=None, backend: str = "auto") -> MSLResult:
    """MSL from a finished pairs pass (``pe.msl`` and ``pe.analyze`` both end here)."""
    plan, d2s = pairs.plan, pairs.d2
    positive = [d2[d2 > 0] for d2 in d2s]
    low = min((p.min() for p in positive if p.size), default=np.nan)
    high = max((p.max() for p in positive if p.size), default=np.nan)
    if not np.isfinite(low) and (bins is None or np.isscalar(bins)):
        raise ValueError("all snapshots in the windows coincide: no distances to bin")
    edges = _edges(bins, np.sqrt(low), np.sqrt(high), 32)
    binner = _binner(backend)
    w, nb, t = len(d2s), edges.size - 1, plan.length
    r, mean, se = (np.full((w, nb), np.nan) for _ in range(3))
    counts = np.zeros((w, nb), np.int64)
    fits = []
    for i, (d2, start) in enumerate(zip(d2s, plan.starts)):
        counts[i], mean_d2, mean[i], se[i] = _bin_stats(binner(d2, loss[start : start + t], edges**2))
        r[i] = np.sqrt(mean_d2)
        usable = np.where(counts[i] >= MIN_PAIRS, mean[i], np.nan)
        lo, hi = fit_range if fit_range is not None else _auto_range(r[i], usable)
        fit = power_fit(r[i], usable, lo, hi)
        if pairs.replicates is not None:
            fit = with_se(fit, jackknife_se(_msl_replicate_slopes(pairs, i, loss[start : start + t], edges, fit)))
        fits.append(fit)
    return MSLResult(t_w=plan.t_w, window=plan.window, edges=edges, r=r, counts=counts, msl=mean, msl_se=se,
                     fits=fits, n_flagged=pairs.n_flagged, n_params=pairs.n_params,
                     settings={"backend": backend, **pairs.settings})


def path_geometry(
    x,
    window: int | str | None = "auto",
    t_w=None,
    bins=None,
    *,
    n_transverse: int = 16,
    center: str = "mean",
    exact_lags: int = 1,
    rtol: float = 1e-6,
    groups=None,
    **engine,
) -> PathResult:
    """Fractal geometry of the path: end-to-end Δr² against contour length Δs, per window.

    Δs(a, b) = Σ_{t=a}^{b−1} ‖w(t+1) − w(t)‖ (prefix sums of exact step sizes from the lag
    band); Δr²(a, b) = ‖w(b) − w(a)‖² from the window Gram. All pairs of a window are
    binned by Δs; Δr² ∝ Δs^λ is fitted in two ranges split at the crossover l that best
    separates them, and D_f = 2/λ in each (1 for a straight line, 2 for a random walk).
    Also: transverse distances h against Δr (h ∝ Δr^ζ; ζ = 1 for a self-similar path)
    and the window's 2-D principal coordinates (classical MDS of the Gram matrix).

    Parameters
    ----------
    x : path, Trajectory, h5py.Dataset, array-like or cupy.ndarray of shape (N, P)
    window : int, "auto" or None
        Window length T in optimizer steps (the window rule: :mod:`pyengine.plan`).
    t_w : sequence of int, optional
        Window starts (steps); default: consecutive windows.
    bins : int or array of float, optional
        Number of log-spaced Δs bins (default 32) from the smallest step to the longest
        contour of all windows, or explicit edges.
    n_transverse : int
        Log-spaced pair separations sampled for the transverse distance.
    center, exact_lags, rtol, groups
        As in :func:`msl`.
    **engine
        Engine settings (see :class:`pyengine.engine.EngineOptions`).

    Returns
    -------
    PathResult

    References
    ----------
    Chen, Qu & Gong 2022, Fig. 6(a, b) and the transverse-distance test of Sec. III.

    Examples
    --------
    >>> import numpy as np, pyengine as pe
    >>> x = np.random.default_rng(0).standard_normal((500, 200)).cumsum(axis=0)
    >>> res = pe.path_geometry(x, window=500)
    >>> bool(abs(res.fractal_dim[0, 1] - 2) < 0.2)     # a random walk: D_f = 2
    True
    """
    src, options = prepare(x, engine)
    _edges(bins, 1.0, 2.0, 32)
    if isinstance(n_transverse, bool) or not isinstance(n_transverse, (int, np.integer)) or n_transverse < 1:
        raise ValueError(f"n_transverse must be a positive integer, got {n_transverse!r}")
    pairs, by_group = _pairs_pass(src, options, window, t_w, True, groups, center=center, exact_lags=exact_lags,
                                  rtol=rtol)
    result = path_from(pairs, bins, n_transverse, options.backend)
    if not by_group:
        return result
    return with_groups(result, {k: path_from(p, bins, n_transverse, options.backend) for k, p in by_group.items()})


def path_from(pairs: PairDistances, bins=None, n_transverse: int = 16, backend: str = "auto") -> PathResult:
    """Path geometry from a finished pairs pass (``pe.path_geometry`` and ``pe.analyze`` end here)."""
    if pairs.coords is None:
        raise ValueError("this pairs pass has no principal coordinates: make it with PairsRequest(..., coords=True)")
    plan, steps = pairs.plan, pairs.steps
    t, w = plan.length, len(pairs.d2)
    contours = [np.concatenate(([0.0], np.cumsum(steps[s : s + t - 1]))) for s in plan.starts]
    step_sizes = np.concatenate([steps[s : s + t - 1] for s in plan.starts])
    positive = step_sizes[step_sizes > 0]
    if positive.size == 0 and (bins is None or np.isscalar(bins)):
        raise ValueError("the path does not move inside the windows: no contour lengths to bin")
    edges = _edges(bins, positive.min() if positive.size else 1.0, max(c[-1] for c in contours), 32)
    lags = (np.unique(np.geomspace(2, max(2, t - 1), int(n_transverse)).round().astype(np.int64)) if t > 2
            else np.zeros(0, np.int64))
    binner = _binner(backend)
    nb = edges.size - 1
    ds, dr2, se = (np.full((w, nb), np.nan) for _ in range(3))
    counts = np.zeros((w, nb), np.int64)
    crossover = np.full(w, np.nan)
    tr_dr, tr_h = np.full((w, lags.size), np.nan), np.full((w, lags.size), np.nan)
    fits, tr_fits = [], []
    for i, (d2, contour) in enumerate(zip(pairs.d2, contours)):
        counts[i], ds[i], dr2[i], se[i] = _bin_stats(binner(contour, d2, edges))
        pair, crossover[i] = _two_ranges(ds[i], np.where(counts[i] >= MIN_PAIRS, dr2[i], np.nan))
        if pairs.replicates is not None:
            slopes = _path_replicate_slopes(pairs, i, edges, pair)
            pair = tuple(with_se(fit, jackknife_se(slopes[:, k])) for k, fit in enumerate(pair))
        fits.append(pair)
        if lags.size:
            tr_dr[i], tr_h[i] = transverse_distances(d2, lags)
        tr_fits.append(power_fit(tr_dr[i], tr_h[i]))
    return PathResult(t_w=plan.t_w, window=plan.window, edges=edges, ds=ds, dr2=dr2, dr2_se=se, counts=counts,
                      fits=fits, crossover=crossover, transverse_lags=plan.steps_of(lags) - plan.step0,
                      transverse_dr=tr_dr, transverse_h=tr_h, transverse_fits=tr_fits, coords=pairs.coords,
                      explained=pairs.explained, n_flagged=pairs.n_flagged, n_params=pairs.n_params,
                      settings={"backend": backend, **pairs.settings})
