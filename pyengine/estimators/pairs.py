"""Pairs inside windows: mean squared loss differences (MSL) and the fractal geometry of the path.

Both estimators run one streaming pass with the window Gram accumulator (all pairwise
distances of each window) and an exact lag band (step sizes, adjacent distances), then bin
the T(T−1)/2 pairs of each window with the pair-binning kernel.

Reference: Chen, Qu & Gong 2022, "Anomalous diffusion dynamics of learning in deep neural
networks": MSL Eq. 9 (and Eq. 8, MSL ∝ Δr^{2H}); contour length Δs against end-to-end
distance Δr, Δr² ∝ Δs^λ, D_f = 2/λ, with a crossover l; transverse distance.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

from pyengine.engine.gram import GramWindow, WindowGramAccumulator, principal_coordinates, sq_distances
from pyengine.engine.msd import LagBandAccumulator
from pyengine.engine.runner import run_requests
from pyengine.engine.source import Source, as_source
from pyengine.estimators.msd import plan_msd
from pyengine.kernels.pairs import log_edges, pair_bin
from pyengine.results import Result, axes_or_new, window_colors

__all__ = ["MSLResult", "PathResult", "PairsRequest", "PairsPass", "msl", "msl_from", "path_geometry", "path_from",
           "power_fit", "transverse_distances"]

#: Bins with fewer pairs are left out of fits.
MIN_PAIRS = 5
#: Auto fit range: the widest run of bins whose log10 residuals stay below this RMS.
MAX_FIT_RMSE = 0.05
#: Fewest bins in a fit range (each side of a crossover).
MIN_FIT_BINS = 4


@dataclass
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
    exponent, exponent_se : ndarray of float64, shape (W,)
        2H of the fit MSL ∝ Δr^{2H} and its standard error.
    fit_range : ndarray of float64, shape (W, 2)
        Δr range of the bins used in the fit.
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
    exponent: np.ndarray
    exponent_se: np.ndarray
    fit_range: np.ndarray
    n_flagged: np.ndarray
    n_params: int
    settings: dict = field(default_factory=dict)

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
            ax.errorbar(self.r[i, ok], self.msl[i, ok], yerr=self.msl_se[i, ok], color=colors[i], lw=1,
                        label=f"$t_w$={tw}, 2H={self.exponent[i]:.2f}")
            _draw_fit(ax, self.r[i], self.msl[i], self.fit_range[i], self.exponent[i])
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("distance Δr")
        ax.set_ylabel("MSL  ⟨(L_a − L_b)²⟩")
        if len(self.t_w) <= 10:
            ax.legend(fontsize="small")
        return ax


@dataclass
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
    lam, lam_se : ndarray of float64, shape (W, 2)
        λ of Δr² ∝ Δs^λ below and above the crossover, with standard errors.
    fractal_dim : ndarray of float64, shape (W, 2)
        D_f = 2 / λ in each range.
    crossover : ndarray of float64, shape (W,)
        Contour length l separating the two ranges (NaN when too few bins to split).
    fit_range : ndarray of float64, shape (W, 2, 2)
        Δs range of each of the two fits.
    transverse_lags : ndarray of int64, shape (L,)
        Pair separations b − a (optimizer steps) of the transverse-distance sample.
    transverse_dr, transverse_h : ndarray of float64, shape (W, L)
        Mean end-to-end distance Δr and mean transverse distance h of those pairs.
    transverse_exponent, transverse_exponent_se : ndarray of float64, shape (W,)
        ζ of h ∝ Δr^ζ: 1 for a self-similar path, ≠ 1 for a self-affine one.
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
    lam: np.ndarray
    lam_se: np.ndarray
    fractal_dim: np.ndarray
    crossover: np.ndarray
    fit_range: np.ndarray
    transverse_lags: np.ndarray
    transverse_dr: np.ndarray
    transverse_h: np.ndarray
    transverse_exponent: np.ndarray
    transverse_exponent_se: np.ndarray
    coords: np.ndarray
    explained: np.ndarray
    n_flagged: np.ndarray
    n_params: int
    settings: dict = field(default_factory=dict)

    def plot(self, ax=None):
        """Log-log Δr² against Δs per window with the two fitted ranges; returns the axes."""
        ax = axes_or_new(ax)
        colors = window_colors(len(self.t_w))
        for i, tw in enumerate(self.t_w):
            ok = np.isfinite(self.dr2[i]) & (self.dr2[i] > 0)
            ax.loglog(self.ds[i, ok], self.dr2[i, ok], "o-", ms=3, color=colors[i], lw=1,
                      label=f"$t_w$={tw}, $D_f$={self.fractal_dim[i, 0]:.2f}/{self.fractal_dim[i, 1]:.2f}")
            for j in range(2):
                _draw_fit(ax, self.ds[i], self.dr2[i], self.fit_range[i, j], self.lam[i, j])
            if np.isfinite(self.crossover[i]):
                ax.axvline(self.crossover[i], color=colors[i], ls=":", lw=1)
        ax.set_xlabel("contour length Δs")
        ax.set_ylabel("end-to-end Δr²")
        if len(self.t_w) <= 10:
            ax.legend(fontsize="small")
        return ax


def _draw_fit(ax, x, y, fit_range, slope) -> None:
    inside = np.isfinite(x) & np.isfinite(y) & (y > 0) & (x >= fit_range[0]) & (x <= fit_range[1])
    if not np.isfinite(slope) or inside.sum() < 2:
        return
    xs, ys = x[inside], y[inside]
    icpt = np.mean(np.log10(ys) - slope * np.log10(xs))
    ax.plot(xs, 10**icpt * xs**slope, "k--", lw=0.8)


def power_fit(x, y, lo: float = -np.inf, hi: float = np.inf) -> tuple[float, float, float]:
    """Least-squares line through (log10 x, log10 y) for lo ≤ x ≤ hi.

    Returns
    -------
    slope, slope_se, rmse : float
        The exponent, its standard error (from the residuals), and the RMS of the log10
        residuals; NaN when fewer than 2 points are usable (3 for the standard error).
    """
    x, y = np.asarray(x, float), np.asarray(y, float)
    ok = np.isfinite(x) & np.isfinite(y) & (x > 0) & (y > 0) & (x >= lo) & (x <= hi)
    if ok.sum() < 2:
        return np.nan, np.nan, np.nan
    lx, ly = np.log10(x[ok]), np.log10(y[ok])
    dx = lx - lx.mean()
    sxx = dx @ dx
    if sxx == 0:
        return np.nan, np.nan, np.nan
    slope = (dx @ (ly - ly.mean())) / sxx
    resid = ly - ly.mean() - slope * dx
    n = lx.size
    se = np.sqrt(resid @ resid / (n - 2) / sxx) if n > 2 else np.nan
    return float(slope), float(se), float(np.sqrt(resid @ resid / n))


def _auto_range(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """The widest run of usable bins (in log10 x) fitting one power law within MAX_FIT_RMSE."""
    ok = np.flatnonzero(np.isfinite(x) & np.isfinite(y) & (x > 0) & (y > 0))
    best, best_key = (x[ok[0]], x[ok[-1]]) if ok.size else (np.nan, np.nan), None
    for i in range(ok.size):
        for j in range(i + MIN_FIT_BINS - 1, ok.size):
            lo, hi = x[ok[i]], x[ok[j]]
            _, _, rmse = power_fit(x, y, lo, hi)
            key = (np.log10(hi / lo), -rmse)
            if rmse <= MAX_FIT_RMSE and (best_key is None or key > best_key):
                best, best_key = (lo, hi), key
    return best


def _two_ranges(x: np.ndarray, y: np.ndarray):
    """Two power laws split at the bin boundary that minimises the total squared log residual."""
    ok = np.flatnonzero(np.isfinite(x) & np.isfinite(y) & (x > 0) & (y > 0))
    if ok.size < 2 * MIN_FIT_BINS:
        s, se, _ = power_fit(x, y)
        lo, hi = (x[ok[0]], x[ok[-1]]) if ok.size else (np.nan, np.nan)
        return (s, s), (se, se), np.nan, ((lo, hi), (lo, hi))
    best = None
    for k in range(MIN_FIT_BINS, ok.size - MIN_FIT_BINS + 1):
        left, right = (x[ok[0]], x[ok[k - 1]]), (x[ok[k]], x[ok[-1]])
        fits = [power_fit(x, y, *r) for r in (left, right)]
        sse = sum(f[2] ** 2 * n for f, n in zip(fits, (k, ok.size - k)))
        if best is None or sse < best[0]:
            best = (sse, fits, np.sqrt(left[1] * right[0]), (left, right))
    _, fits, crossover, ranges = best
    return (fits[0][0], fits[1][0]), (fits[0][1], fits[1][1]), crossover, ranges


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
class PairsRequest:
    """The pass both pair estimators need (see :class:`pyengine.engine.Request`): the window
    Gram matrices and an exact lag band for step sizes and adjacent distances."""

    plan: object  # MSDPlan with origins="within"
    center: str
    exact_lags: int
    n_params: int

    @classmethod
    def make(cls, src: Source, window, t_w=None, center: str = "mean", exact_lags: int = 1) -> "PairsRequest":
        if exact_lags < 1:
            raise ValueError(f"exact_lags must be >= 1 (the step sizes), got {exact_lags}")
        return cls(plan_msd(src.n_rows, src.steps, window, t_w, lags=1, origins="within"), center, exact_lags,
                   src.n_cols)

    def accumulators(self) -> list:
        windows = tuple(GramWindow(int(s), self.plan.n_origins) for s in self.plan.starts)
        return [WindowGramAccumulator(windows, self.center), LagBandAccumulator(tuple(range(1, self.exact_lags + 1)))]

    def conclude(self, results: list) -> "PairsPass":
        return PairsPass(self, results[0], results[1])


@dataclass(frozen=True)
class PairsPass:
    """What the pass gave: one Gram matrix per window and the exact lag band."""

    request: PairsRequest
    grams: list
    band: np.ndarray


def _one_pass(x, window, t_w, center, exact_lags, block_cols, workers, backend, progress, desc) -> tuple[Source, PairsPass]:
    src = x if isinstance(x, Source) else as_source(x)
    request = PairsRequest.make(src, window, t_w, center, exact_lags)
    (pairs,) = run_requests(src, [request], block_cols=block_cols, workers=workers, backend=backend,
                            progress=progress, desc=desc)
    return src, pairs


def _distances(gram, band, start, n_params, rtol):
    t = gram.shape[0]
    return sq_distances(gram, n_params, exact=band[:, start : start + t], rtol=rtol)


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
    if bins is None or np.isscalar(bins):
        # A margin keeps the extreme pairs inside despite rounding (Δr edges are squared for D²).
        return log_edges(low * (1 - 1e-9), high * (1 + 1e-9), int(default if bins is None else bins))
    edges = np.asarray(bins, dtype=np.float64)
    if edges.ndim != 1 or edges.size < 2 or not np.all(np.diff(edges) > 0):
        raise ValueError(f"bins: expected a count or at least 2 increasing edges, got {bins!r}")
    return edges


def msl(
    x,
    loss=None,
    window: int | None = 1000,
    bins=None,
    t_w=None,
    fit_range=None,
    backend: str = "auto",
    *,
    center: str = "mean",
    exact_lags: int = 1,
    rtol: float = 1e-6,
    block_cols: int | None = None,
    workers: int = 1,
    progress: bool | None = None,
) -> MSLResult:
    """Mean squared loss difference of point pairs against their distance (Chen et al. Eq. 9).

    For each window [t_w, t_w + T) and distance bin, MSL(t_w, Δr) is the mean over the
    pairs a < b in the window with ‖w_a − w_b‖ in the bin of (L_a − L_b)². A fractal
    landscape gives MSL ∝ Δr^{2H} (Eq. 8); the exponent 2H is fitted per window.

    Parameters
    ----------
    x : path, Trajectory, h5py.Dataset, ndarray or cupy.ndarray of shape (N, P)
    loss : array of shape (N,), optional
        Loss at each snapshot; default: the trajectory file's ``/loss``.
    window : int or None
        Window length T in optimizer steps (None: the whole run).
    bins : int or array of float, optional
        Number of log-spaced distance bins (default 32) spanning the smallest to the largest
        nonzero distance of all windows, or explicit edges in distance units.
    t_w : sequence of int, optional
        Window starts (steps); default: consecutive windows.
    fit_range : (float, float), optional
        Δr range of the power-law fit; default: the widest run of bins (with at least
        ``MIN_PAIRS`` pairs) that one power law fits to an RMS log10 residual ≤ 0.05.
    backend : {"auto", "cuda", "cpp", "numba", "numpy"}
    center : {"mean", "first"}
        Reference point subtracted before the Gram product (see WindowGramAccumulator).
    exact_lags : int
        Pairs up to this separation (rows) take exact distances from the lag band.
    rtol : float
        Pairs whose distance the Gram matrix resolves worse than this are left out.
    block_cols, workers, progress
        Engine settings (see :func:`pyengine.engine.run`).

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
    src = x if isinstance(x, Source) else as_source(x)
    loss = _check_loss(src, loss)
    src, pairs = _one_pass(src, window, t_w, center, exact_lags, block_cols, workers, backend, progress, "msl")
    return msl_from(pairs, loss, bins, fit_range, backend, rtol)


def _check_loss(src: Source, loss) -> np.ndarray:
    loss = src.loss if loss is None else np.asarray(loss, dtype=np.float64)
    if loss is None:
        raise ValueError("no loss given and the input has no /loss: pass loss=array of shape (n_snapshots,)")
    if loss.shape != (src.n_rows,):
        raise ValueError(f"loss: expected shape ({src.n_rows},), got {loss.shape}")
    return loss


def msl_from(pairs: PairsPass, loss: np.ndarray, bins=None, fit_range=None, backend: str = "auto",
             rtol: float = 1e-6) -> MSLResult:
    """MSL from a finished pairs pass (``pe.msl`` and ``pe.analyze`` both end here)."""
    plan, grams, band, n_params = pairs.request.plan, pairs.grams, pairs.band, pairs.request.n_params
    center, exact_lags = pairs.request.center, pairs.request.exact_lags
    d2s, flagged = [], []
    for gram, start in zip(grams, plan.starts):
        d2, n_bad = _distances(gram, band, start, n_params, rtol)
        d2s.append(d2)
        flagged.append(n_bad)
    _warn_flagged(np.array(flagged), rtol)
    positive = [d2[d2 > 0] for d2 in d2s]
    low = min((p.min() for p in positive if p.size), default=np.nan)
    high = max((p.max() for p in positive if p.size), default=np.nan)
    if not np.isfinite(low) and (bins is None or np.isscalar(bins)):
        raise ValueError("all snapshots in the windows coincide: no distances to bin")
    edges = _edges(bins, np.sqrt(low), np.sqrt(high), 32)
    binner = _binner(backend)
    w, nb, t = len(d2s), edges.size - 1, plan.n_origins
    out = {k: np.full((w, nb), np.nan) for k in ("r", "msl", "se")}
    counts = np.zeros((w, nb), np.int64)
    exponent, exponent_se, ranges = np.full(w, np.nan), np.full(w, np.nan), np.full((w, 2), np.nan)
    for i, (d2, start) in enumerate(zip(d2s, plan.starts)):
        hist = binner(d2, loss[start : start + t], edges**2)
        counts[i], mean_d2, out["msl"][i], out["se"][i] = _bin_stats(hist)
        out["r"][i] = np.sqrt(mean_d2)
        usable = np.where(counts[i] >= MIN_PAIRS, out["msl"][i], np.nan)
        lo, hi = fit_range if fit_range is not None else _auto_range(out["r"][i], usable)
        exponent[i], exponent_se[i], _ = power_fit(out["r"][i], usable, lo, hi)
        ranges[i] = lo, hi
    return MSLResult(
        t_w=plan.step0 + plan.starts * plan.stride, window=t * plan.stride, edges=edges, r=out["r"],
        counts=counts, msl=out["msl"], msl_se=out["se"], exponent=exponent, exponent_se=exponent_se,
        fit_range=ranges, n_flagged=np.array(flagged, dtype=np.int64), n_params=n_params,
        settings={"backend": backend, "center": center, "exact_lags": exact_lags, "rtol": rtol},
    )


def path_geometry(
    x,
    window: int | None = 1000,
    t_w=None,
    bins=None,
    backend: str = "auto",
    *,
    n_transverse: int = 16,
    center: str = "mean",
    exact_lags: int = 1,
    rtol: float = 1e-6,
    block_cols: int | None = None,
    workers: int = 1,
    progress: bool | None = None,
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
    x : path, Trajectory, h5py.Dataset, ndarray or cupy.ndarray of shape (N, P)
    window : int or None
        Window length T in optimizer steps (None: the whole run).
    t_w : sequence of int, optional
        Window starts (steps); default: consecutive windows.
    bins : int or array of float, optional
        Number of log-spaced Δs bins (default 32) from the smallest step to the longest
        contour of all windows, or explicit edges.
    backend : {"auto", "cuda", "cpp", "numba", "numpy"}
    n_transverse : int
        Log-spaced pair separations sampled for the transverse distance.
    center, exact_lags, rtol, block_cols, workers, progress
        As in :func:`msl`.

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
    src, pairs = _one_pass(x, window, t_w, center, exact_lags, block_cols, workers, backend, progress, "path")
    return path_from(pairs, bins, n_transverse, backend, rtol)


def path_from(pairs: PairsPass, bins=None, n_transverse: int = 16, backend: str = "auto",
              rtol: float = 1e-6) -> PathResult:
    """Path geometry from a finished pairs pass (``pe.path_geometry`` and ``pe.analyze`` end here)."""
    plan, grams, band, n_params = pairs.request.plan, pairs.grams, pairs.band, pairs.request.n_params
    center, exact_lags = pairs.request.center, pairs.request.exact_lags
    t, w = plan.n_origins, len(grams)
    steps = np.sqrt(band[0])
    contours = [np.concatenate(([0.0], np.cumsum(steps[s : s + t - 1]))) for s in plan.starts]
    step_sizes = np.concatenate([steps[s : s + t - 1] for s in plan.starts])
    positive = step_sizes[step_sizes > 0]
    if positive.size == 0 and (bins is None or np.isscalar(bins)):
        raise ValueError("the path does not move inside the windows: no contour lengths to bin")
    edges = _edges(bins, positive.min() if positive.size else 1.0, max(c[-1] for c in contours), 32)
    lags = np.unique(np.geomspace(2, max(2, t - 1), n_transverse).round().astype(np.int64)) if t > 2 else np.zeros(0, np.int64)
    binner = _binner(backend)
    nb = edges.size - 1
    ds, dr2, se = (np.full((w, nb), np.nan) for _ in range(3))
    counts = np.zeros((w, nb), np.int64)
    lam, lam_se, crossover = np.full((w, 2), np.nan), np.full((w, 2), np.nan), np.full(w, np.nan)
    ranges = np.full((w, 2, 2), np.nan)
    tr_dr, tr_h = np.full((w, lags.size), np.nan), np.full((w, lags.size), np.nan)
    tr_exp, tr_se = np.full(w, np.nan), np.full(w, np.nan)
    coords, explained = np.zeros((w, t, 2)), np.zeros((w, 2))
    flagged = np.zeros(w, np.int64)
    for i, (gram, start, contour) in enumerate(zip(grams, plan.starts, contours)):
        coords[i, :, : min(2, t)], explained[i, : min(2, t)] = principal_coordinates(gram, 2, centered=center == "mean")
        d2, flagged[i] = _distances(gram, band, start, n_params, rtol)
        counts[i], ds[i], dr2[i], se[i] = _bin_stats(binner(contour, d2, edges))
        usable = np.where(counts[i] >= MIN_PAIRS, dr2[i], np.nan)
        lam[i], lam_se[i], crossover[i], ranges[i] = _two_ranges(ds[i], usable)
        if lags.size:
            tr_dr[i], tr_h[i] = transverse_distances(d2, lags)
            tr_exp[i], tr_se[i], _ = power_fit(tr_dr[i], tr_h[i])
    _warn_flagged(flagged, rtol)
    with np.errstate(divide="ignore"):
        fractal_dim = 2.0 / lam
    return PathResult(
        t_w=plan.step0 + plan.starts * plan.stride, window=t * plan.stride, edges=edges, ds=ds, dr2=dr2,
        dr2_se=se, counts=counts, lam=lam, lam_se=lam_se, fractal_dim=fractal_dim, crossover=crossover,
        fit_range=ranges, transverse_lags=lags * plan.stride, transverse_dr=tr_dr, transverse_h=tr_h,
        transverse_exponent=tr_exp, transverse_exponent_se=tr_se, coords=coords, explained=explained,
        n_flagged=flagged, n_params=n_params,
        settings={"backend": backend, "center": center, "exact_lags": exact_lags, "rtol": rtol},
    )
