"""One window plan per analysis: windows, lags and the step ↔ row conversion, decided once.

Every statistic of one analysis (MSD, exponents, β, increments, tails, MSL, path, loss)
reads its windows from the same :class:`WindowPlan`, built from the user's arguments and
validated here, once, with one clear error.

The rule (docs/engine.md, "Windows"):

- A window is T consecutive snapshots, rows [s, s + T); its waiting time t_w is the step
  of row s. Windows start every T snapshots from the first (or at the given ``t_w``), and
  a window is made only when all its T snapshots exist. Snapshots after the last whole
  window belong to no window; the plan says so (``leftover``), and ``pe.analyze`` lists
  them in ``Analysis.skipped``.
- Statistics inside a window use its T snapshots and its T − 1 increments. The one
  exception is the time-averaged MSD of Chen et al. (Eq. 3, ``origins="window"``): its
  origins are the window's T snapshots, and an endpoint t + τ may lie past the window as
  long as it exists; in the last window, origins whose endpoint would pass the run's end
  are dropped (the MSD's ``counts`` say how many remain).
- ``window="auto"`` (the default) fits any run: the whole run as one window below 64
  snapshots, else the largest of 1, 2, 5 × 10^k snapshots that is at most a quarter of the
  run and at most 1000 (so at least four windows, and window Gram matrices of at most
  1000 × 1000); and at most ``AUTO_MAX_WINDOWS`` = 16 windows, spread evenly over the run
  when more would fit (so memory does not grow with the run's length; pass ``t_w`` for
  others). The windows left out are listed like the snapshots after the last window.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["WindowPlan", "make_plan", "ORIGINS", "AUTO_MAX_ROWS", "AUTO_MIN_RUN", "AUTO_MAX_WINDOWS"]

ORIGINS = ("window", "within")
#: ``window="auto"``: longest window, in snapshots.
AUTO_MAX_ROWS = 1000
#: ``window="auto"``: runs shorter than this many snapshots are one window.
AUTO_MIN_RUN = 64
#: ``window="auto"``: most windows (spread evenly over longer runs).
AUTO_MAX_WINDOWS = 16


@dataclass(frozen=True)
class WindowPlan:
    """Windows and MSD lags of one analysis, in snapshot rows, with their steps.

    Attributes
    ----------
    n_rows : int
        Snapshots N in the run.
    step0, stride : int
        Step of the first snapshot, and steps between snapshots.
    length : int
        Window length T in snapshots.
    starts : ndarray of int64, shape (W,)
        First row of each window.
    lags : ndarray of int64, shape (L,)
        MSD lags in rows.
    origins : {"window", "within"}
        MSD origins: Chen et al.'s Eq. 3 (endpoints may pass the window) or both points
        inside the window.
    rule : str
        How the window length was chosen (for the report).
    """

    n_rows: int
    step0: int
    stride: int
    length: int
    starts: np.ndarray
    lags: np.ndarray
    origins: str
    rule: str

    @property
    def t_w(self) -> np.ndarray:
        """Waiting time (step) of each window, shape (W,)."""
        return self.step0 + self.starts * self.stride

    @property
    def window(self) -> int:
        """Window length T in steps."""
        return self.length * self.stride

    @property
    def lag_steps(self) -> np.ndarray:
        """MSD lags in steps, shape (L,)."""
        return self.lags * self.stride

    def steps_of(self, rows) -> np.ndarray:
        """Steps of snapshot rows."""
        return self.step0 + np.asarray(rows, dtype=np.int64) * self.stride

    @property
    def leftover(self) -> tuple[int, int] | None:
        """Rows [a, N) after the last window that no window holds, or None."""
        end = int(self.starts.max()) + self.length
        return (end, self.n_rows) if end < self.n_rows else None

    @property
    def gaps(self) -> int:
        """Rows between consecutive windows that no window holds (``t_w`` given, or spread)."""
        ends = self.starts + self.length
        return int(np.maximum(self.starts[1:] - ends[:-1], 0).sum())

    def msd_span(self, start: int) -> int:
        """Rows the MSD of the window at ``start`` touches: its origins and their endpoints."""
        if self.origins == "within":
            return self.length
        return min(self.length + int(self.lags.max()), self.n_rows - start)

    def to_dict(self) -> dict:
        """JSON-ready description: windows and lags in steps, and the rule."""
        return {"t_w": self.t_w.tolist(), "window": self.window, "lags": self.lag_steps.tolist(),
                "origins": self.origins, "stride": self.stride, "rule": self.rule}


def _stride(steps: np.ndarray) -> int:
    d = np.diff(steps)
    if d.size == 0:
        return 1
    if d.min() <= 0:
        i = int(np.argmin(d))
        raise ValueError(f"steps must increase strictly; step[{i + 1}] = {steps[i + 1]} after {steps[i]}")
    if d.min() != d.max():
        raise ValueError(f"windows need evenly spaced snapshots, but the steps go by {d.min()} to {d.max()}; "
                         "select an evenly spaced part of the run")
    return int(d[0])


def _integers(values, what: str) -> np.ndarray:
    """``values`` as int64, refusing what is not an integer (2.5, "16", True) instead of coercing it."""
    arr = np.atleast_1d(np.asarray(values, dtype=object if isinstance(values, (list, tuple)) else None))
    if arr.dtype == object:
        if not all(isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)) for v in arr.ravel()):
            raise TypeError(f"{what} must be integers (steps), got {values!r}")
        arr = arr.astype(np.int64)
    if arr.dtype.kind not in "iu" or arr.ndim != 1:
        raise TypeError(f"{what} must be an integer or a 1-D sequence of integers (steps), got {values!r}")
    return arr.astype(np.int64)


def _rows(values: np.ndarray, stride: int, what: str) -> np.ndarray:
    if (values % stride).any():
        raise ValueError(f"{what} must be multiples of the snapshot interval ({stride} steps), "
                         f"got {values[values % stride != 0][:5].tolist()}")
    return values // stride


def _nice_floor(n: int) -> int:
    """The largest of 1, 2, 5 × 10^k that is at most n (n >= 1)."""
    power = 10 ** (len(str(n)) - 1)
    return max(m * power for m in (1, 2, 5) if m * power <= n)


def _window_rows(window, n_rows: int, stride: int) -> tuple[int, str]:
    if isinstance(window, str):
        if window != "auto":
            raise ValueError(f"window must be a number of steps, 'auto' or None (the whole run), got {window!r}")
        if n_rows < AUTO_MIN_RUN:
            return n_rows, f"auto: the whole run (fewer than {AUTO_MIN_RUN} snapshots)"
        rows = _nice_floor(min(n_rows // 4, AUTO_MAX_ROWS))
        return rows, f"auto: {rows} snapshots, the largest 1/2/5×10^k ≤ min(N/4, {AUTO_MAX_ROWS})"
    if window is None:
        return n_rows, "the whole run"
    if isinstance(window, (bool, np.bool_)) or not isinstance(window, (int, np.integer)):
        raise TypeError(f"window must be an integer number of steps, 'auto' or None, got {window!r}")
    return int(_rows(np.array([window]), stride, "window")[0]), "given"


def _lag_rows(lags, max_lag: int, n_rows: int, stride: int, length: int, origins: str) -> np.ndarray:
    if lags is None:
        return np.arange(1, max_lag + 1, dtype=np.int64)
    if isinstance(lags, (int, np.integer)) and not isinstance(lags, (bool, np.bool_)):
        if lags < 1:
            raise ValueError(f"lags as a count must be >= 1, got {lags}")
        if lags >= max_lag:  # as many lags as exist (or more): every lag
            return np.arange(1, max_lag + 1, dtype=np.int64)
        return np.unique(np.geomspace(1, max_lag, int(lags)).round().astype(np.int64))
    rows = np.unique(_rows(_integers(lags, "lags"), stride, "lags"))
    if rows.size == 0 or rows.min() < 1:
        raise ValueError(f"lags must be >= {stride} steps (one snapshot), got {lags!r}")
    if rows.max() >= n_rows:
        raise ValueError(f"lag {rows.max() * stride} is longer than the run ({(n_rows - 1) * stride} steps "
                         "from first to last snapshot)")
    if origins == "within" and rows.max() >= length:
        raise ValueError(f"with origins='within' lags must be shorter than the window ({length * stride} steps)")
    return rows


def make_plan(steps, window="auto", *, t_w=None, lags=None, origins: str = "window") -> WindowPlan:
    """Build and check the window plan of a run.

    Parameters
    ----------
    steps : array of int, shape (N,)
        Step of each snapshot (evenly spaced, increasing).
    window : int, "auto" or None
        Window length T in steps; ``"auto"`` picks one that fits the run (module
        docstring); None takes the whole run as one window.
    t_w : sequence of int, optional
        Steps at which windows start (default: every T steps from the first snapshot).
    lags : None, int or sequence of int
        MSD lags: every lag (None), m log-spaced lags (an int; at most every lag), or
        lags in steps.
    origins : {"window", "within"}

    Returns
    -------
    WindowPlan

    Raises
    ------
    TypeError
        For a window, t_w or lags that are not integers.
    ValueError
        For windows or lags that do not fit the run, with what would fit.

    Examples
    --------
    >>> import numpy as np
    >>> plan = make_plan(np.arange(1, 3001), window=1000)
    >>> plan.t_w.tolist(), plan.window, plan.leftover
    ([1, 1001, 2001], 1000, None)
    >>> make_plan(np.arange(200)).window                 # "auto" on a short run
    50
    """
    if origins not in ORIGINS:
        raise ValueError(f"origins must be one of {ORIGINS}, got {origins!r}")
    steps = np.asarray(steps, dtype=np.int64)
    n_rows = steps.size
    if n_rows < 2:
        raise ValueError(f"a run needs at least 2 snapshots to have windows, got {n_rows}")
    stride, step0 = _stride(steps), int(steps[0])
    length, rule = _window_rows(window, n_rows, stride)
    if not 2 <= length <= n_rows:
        raise ValueError(f"a window of {window} steps is {length} snapshots, but it needs 2 … {n_rows} snapshots "
                         f"in this run of {n_rows} snapshots (steps {step0} … {int(steps[-1])}); try window='auto'")
    if t_w is None:
        starts = np.arange(0, n_rows - length + 1, length, dtype=np.int64)
        if window == "auto" and starts.size > AUTO_MAX_WINDOWS:
            starts = starts[np.unique(np.linspace(0, starts.size - 1, AUTO_MAX_WINDOWS).round().astype(np.int64))]
            rule += f"; {AUTO_MAX_WINDOWS} windows spread evenly over the run"
    else:
        given = _integers(t_w, "t_w")
        starts = _rows(given - step0, stride, "t_w")
        bad = (starts < 0) | (starts + length > n_rows)
        if bad.any():
            raise ValueError(f"t_w {given[bad][:5].tolist()} put windows of {length} snapshots outside the run "
                             f"(steps {step0} … {int(steps[-1])}); the last window may start at step "
                             f"{step0 + (n_rows - length) * stride}")
    max_lag = min(length, n_rows - 1) if origins == "window" else length - 1
    lag_rows = _lag_rows(lags, max_lag, n_rows, stride, length, origins)
    starts.flags.writeable = False
    lag_rows.flags.writeable = False
    return WindowPlan(n_rows, step0, stride, length, starts, lag_rows, origins, rule)
