"""Time-averaged MSD of SGD trajectories (Chen et al. 2022, Eqs. 3 and 4)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pyengine.engine.msd import LagBandAccumulator, SpectralMSDAccumulator, SpectralWindow
from pyengine.engine.runner import run_requests
from pyengine.results import Result, axes_or_new, window_colors
from pyengine.engine.source import Source, as_source

__all__ = ["MSDResult", "MSDPlan", "MSDRequest", "plan_msd", "msd"]

ORIGINS = ("window", "within")
METHODS = ("auto", "spectral", "lagband")


@dataclass
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
    counts : ndarray of int64, shape (W, L)
        Number of origins averaged.
    nonaveraged : ndarray of float64, shape (W, L)
        Δ(t_w, t_w + τ) = ‖w(t_w+τ) − w(t_w)‖² / d (Eq. 4); NaN past the run's end.
    window : int
        Window length T in optimizer steps.
    origins : {"window", "within"}
    method : {"spectral", "lagband"}
    n_params : int
    """

    t_w: np.ndarray
    lags: np.ndarray
    msd: np.ndarray
    counts: np.ndarray
    nonaveraged: np.ndarray
    window: int
    origins: str
    method: str
    n_params: int
    settings: dict = field(default_factory=dict)

    def plot(self, ax=None):
        """Log-log MSD curves coloured by waiting time; returns the axes."""
        ax = axes_or_new(ax)
        colors = window_colors(len(self.t_w))
        for i, tw in enumerate(self.t_w):
            ok = np.isfinite(self.msd[i]) & (self.msd[i] > 0)
            ax.loglog(self.lags[ok], self.msd[i, ok], color=colors[i], lw=1, label=f"$t_w$={tw}")
        ax.set_xlabel("lag τ (steps)")
        ax.set_ylabel("MSD Δr²(t_w, τ)")
        if len(self.t_w) <= 10:
            ax.legend(fontsize="small")
        return ax


@dataclass(frozen=True)
class MSDPlan:
    """Windows and lags in snapshot rows, resolved from a request in optimizer steps."""

    starts: np.ndarray  # window start rows (W,)
    n_origins: int  # T in rows
    lag_rows: np.ndarray  # (L,) >= 1
    stride: int  # optimizer steps per snapshot
    step0: int
    n_rows: int
    origins: str

    def span(self, start: int) -> int:
        """Rows a window touches: its origins plus, for origins="window", the lagged endpoints."""
        if self.origins == "within":
            return self.n_origins
        return min(self.n_origins + int(self.lag_rows.max()), self.n_rows - start)


def _stride(steps: np.ndarray) -> int:
    d = np.diff(steps)
    if d.size == 0:
        return 1
    if d.min() <= 0:
        i = int(np.argmin(d))
        raise ValueError(f"steps must increase strictly; step[{i + 1}] = {steps[i + 1]} after {steps[i]}")
    if d.min() != d.max():
        raise ValueError(
            f"MSD needs evenly spaced snapshots, but the steps go by {d.min()} to {d.max()}; "
            "select an evenly spaced part of the run"
        )
    return int(d[0])


def _rows(values, stride: int, what: str) -> np.ndarray:
    values = np.atleast_1d(np.asarray(values, dtype=np.int64))
    if (values % stride).any():
        raise ValueError(f"{what} must be multiples of the snapshot interval ({stride} steps), got {values[values % stride != 0][:5]}")
    return values // stride


def plan_msd(n_rows: int, steps: np.ndarray, window: int | None, t_w=None, lags=None, origins: str = "window") -> MSDPlan:
    """Resolve windows and lags given in optimizer steps into snapshot rows.

    ``window=None`` takes the whole run as one window. ``t_w=None`` starts a window every
    T steps. ``lags``: None (every lag, 1 … T, or T−1 for ``"within"``), an int m (m
    log-spaced lags), or an explicit list in steps.
    """
    if origins not in ORIGINS:
        raise ValueError(f"origins must be one of {ORIGINS}, got {origins!r}")
    stride = _stride(steps)
    step0 = int(steps[0])
    t_rows = n_rows - (origins == "window") if window is None else int(_rows(window, stride, "window")[0])
    if not 2 <= t_rows <= n_rows - (origins == "window"):
        raise ValueError(
            f"window of {window} steps = {t_rows} snapshots does not fit a run of {n_rows} snapshots "
            f"({n_rows * stride} steps); it needs 2 … {n_rows - (origins == 'window')} snapshots"
        )
    if t_w is None:
        starts = np.arange(0, n_rows - t_rows + 1 - (origins == "window"), t_rows, dtype=np.int64)
    else:
        starts = _rows(np.asarray(t_w) - step0, stride, "t_w")
        bad = (starts < 0) | (starts + t_rows > n_rows)
        if bad.any():
            raise ValueError(f"t_w {np.asarray(t_w)[bad][:5]} put windows of {t_rows} snapshots outside the run "
                             f"(steps {step0} … {int(steps[-1])})")
    max_lag = t_rows if origins == "window" else t_rows - 1
    if lags is None:
        lag_rows = np.arange(1, max_lag + 1, dtype=np.int64)
    elif np.isscalar(lags) and int(lags) == lags and not isinstance(lags, (list, tuple)):
        if int(lags) < 1:
            raise ValueError(f"lags as a count must be >= 1, got {lags}")
        lag_rows = np.unique(np.geomspace(1, max_lag, int(lags)).round().astype(np.int64))
    else:
        lag_rows = np.unique(_rows(lags, stride, "lags"))
        if lag_rows.min() < 1:
            raise ValueError(f"lags must be >= {stride} steps (one snapshot), got {lag_rows.min() * stride}")
        if lag_rows.max() >= n_rows:
            raise ValueError(f"lag {lag_rows.max() * stride} is longer than the run "
                             f"({(n_rows - 1) * stride} steps from first to last snapshot)")
        if origins == "within" and lag_rows.max() >= t_rows:
            raise ValueError(f"with origins='within' lags must be shorter than the window ({t_rows * stride} steps)")
    return MSDPlan(starts, t_rows, lag_rows, stride, step0, n_rows, origins)


def choose_method(plan: MSDPlan) -> str:
    """Spectral for all lags of few windows; lag band for sparse lags or dense t_w scans.

    Costs in element operations per parameter: the band sweeps every origin of the run
    once per lag; the spectral path runs one or two FFTs of ~2T points per window.
    """
    band = plan.lag_rows.size * plan.n_rows
    ffts = 1 if plan.origins == "within" else 2
    nfft = 2 * plan.n_origins + int(plan.lag_rows.max())
    spectral = plan.starts.size * ffts * 2.5 * nfft * np.log2(nfft)
    return "spectral" if spectral < band else "lagband"


def _from_band(plan: MSDPlan, band: np.ndarray, n_params: int):
    prefix = np.concatenate((np.zeros((band.shape[0], 1)), np.cumsum(band, axis=1)), axis=1)
    w, l = plan.starts.size, plan.lag_rows.size
    msd, counts, single = np.full((w, l), np.nan), np.zeros((w, l), np.int64), np.full((w, l), np.nan)
    for i, s in enumerate(plan.starts):
        n = _origin_counts(plan, s)
        ok = n > 0
        idx = np.flatnonzero(ok)
        msd[i, ok] = (prefix[idx, s + n[ok]] - prefix[idx, s]) / n[ok]
        counts[i] = np.maximum(n, 0)
        end = s + plan.lag_rows < plan.n_rows
        single[i, end] = band[np.flatnonzero(end), s] / n_params
    return msd, counts, single


def _origin_counts(plan: MSDPlan, start: int) -> np.ndarray:
    if plan.origins == "within":
        return plan.n_origins - plan.lag_rows
    return np.minimum(plan.n_origins, plan.n_rows - start - plan.lag_rows)


def _from_spectral(plan: MSDPlan, per_window, n_params: int):
    w, l = plan.starts.size, plan.lag_rows.size
    msd, counts, single = np.full((w, l), np.nan), np.zeros((w, l), np.int64), np.full((w, l), np.nan)
    for i, (m, n, sq) in enumerate(per_window):
        ok = plan.lag_rows < m.size
        msd[i, ok], counts[i, ok] = m[plan.lag_rows[ok]], n[plan.lag_rows[ok]]
        single[i, ok] = sq[plan.lag_rows[ok]] / n_params
    return msd, counts, single


def msd(
    x,
    window: int | None = 1000,
    lags=None,
    origins: str = "window",
    method: str = "auto",
    backend: str = "auto",
    *,
    t_w=None,
    block_cols: int | None = None,
    workers: int = 1,
    progress: bool | None = None,
    scheduler=None,
    nonfinite: str = "raise",
) -> MSDResult:
    """Time-averaged MSD of a trajectory, per window, exactly, in one streaming pass.

    Parameters
    ----------
    x : path, Trajectory, h5py.Dataset, ndarray or cupy.ndarray of shape (N, P)
        Snapshots of the weights. Arrays are taken as logged every step.
    window : int or None
        Window length T in optimizer steps (None: the whole run).
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
    backend : {"auto", "cuda", "cpp", "numba", "numpy"}
    t_w : sequence of int, optional
        Waiting times (steps) at which windows start (default: every T steps).
    block_cols, workers, progress, scheduler, nonfinite
        Engine settings (see :func:`pyengine.engine.run`); ``scheduler`` runs the pass
        on a Dask cluster; ``nonfinite="skip"`` leaves out parameters with NaN/Inf.

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
    src = x if isinstance(x, Source) else as_source(x)
    request = MSDRequest.make(src, window, lags, origins, method, t_w)
    (result,) = run_requests(src, [request], block_cols=block_cols, workers=workers, backend=backend,
                             progress=progress, desc="msd", scheduler=scheduler, nonfinite=nonfinite)
    result.settings["backend"] = backend
    return result


@dataclass(frozen=True)
class MSDRequest:
    """The MSD estimator around the pass (see :class:`pyengine.engine.Request`)."""

    plan: MSDPlan
    method: str
    n_params: int

    @classmethod
    def make(cls, src: Source, window, lags=None, origins: str = "window", method: str = "auto", t_w=None) -> "MSDRequest":
        if method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {method!r}")
        plan = plan_msd(src.n_rows, src.steps, window, t_w, lags, origins)
        return cls(plan, choose_method(plan) if method == "auto" else method, src.n_cols)

    def accumulators(self) -> list:
        plan = self.plan
        if self.method == "spectral":
            windows = tuple(SpectralWindow(int(s), plan.n_origins, plan.span(int(s))) for s in plan.starts)
            return [SpectralMSDAccumulator(windows)]
        return [LagBandAccumulator(tuple(int(l) for l in plan.lag_rows))]

    def conclude(self, results: list) -> MSDResult:
        plan = self.plan
        convert = _from_spectral if self.method == "spectral" else _from_band
        values, counts, single = convert(plan, results[0], self.n_params)
        return MSDResult(
            t_w=plan.step0 + plan.starts * plan.stride,
            lags=plan.lag_rows * plan.stride,
            msd=values,
            counts=counts,
            nonaveraged=single,
            window=plan.n_origins * plan.stride,
            origins=plan.origins,
            method=self.method,
            n_params=self.n_params,
            settings={"stride": plan.stride},
        )
