"""Loss fluctuations: |ΔL| per window and the moving variance of the loss.

Chen, Qu & Gong 2022, Sec. III and Fig. 5(e, f): the absolute change of loss
|ΔL(t)| = |L(t + 1) − L(t)| between consecutive recorded steps, shown per window
[t_w, t_w + T), and the variance of L over a sliding window of 100 neighbouring steps.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pyengine.results import Result, axes_or_new, readable_ticks, window_colors, window_legend
from pyengine.plan import WindowPlan, make_plan

__all__ = ["LossStats", "loss_stats", "loss_stats_in", "moving_variance", "snapshot_loss"]

#: Moving-variance window of the loss (Chen et al.: 100 steps), shortened to half the run for shorter runs.
VAR_WINDOW = 100

#: Rows per slab of the moving variance (bounds its temporary to ROWS × var_window floats).
SLAB_ROWS = 8192


def moving_variance(values: np.ndarray, width: int, ddof: int = 1) -> np.ndarray:
    """Variance of every run of ``width`` consecutive values.

    Entry i is the variance of values[i : i + width], computed directly (two-pass, per
    slab of rows) rather than from running sums, so it stays exact when the variance is
    tiny compared with the squared mean (late training).

    Parameters
    ----------
    values : ndarray of float, shape (N,)
    width : int
        Window length, 2 … N.
    ddof : int
        Delta degrees of freedom (1: sample variance).

    Returns
    -------
    ndarray of float64, shape (N − width + 1,)

    Examples
    --------
    >>> moving_variance(np.array([1.0, 2.0, 3.0, 5.0]), 2)
    array([0.5, 0.5, 2. ])
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1:
        raise ValueError(f"values must be 1-D, got shape {values.shape}")
    if int(width) != width or not 2 <= width <= values.size:
        raise ValueError(f"width must be an integer in 2 … {values.size} (the number of values), got {width!r}")
    width = int(width)
    out = np.empty(values.size - width + 1)
    for i in range(0, out.size, SLAB_ROWS):
        j = min(i + SLAB_ROWS, out.size)
        windows = np.lib.stride_tricks.sliding_window_view(values[i : j + width - 1], width)
        out[i:j] = windows.var(axis=1, ddof=ddof)
    return out


@dataclass(repr=False)
class LossStats(Result):
    """Loss curve, |ΔL| per window and moving variance.

    Attributes
    ----------
    steps : ndarray of int64, shape (N,)
        Step of each loss value.
    loss : ndarray of float64, shape (N,)
        The loss curve L(t).
    abs_dloss : ndarray of float64, shape (N − 1,)
        |L(t + 1) − L(t)| between consecutive records, at ``steps[:-1]``.
    t_w : ndarray of int64, shape (W,)
        Waiting times at which windows start.
    window : int
        Window length T in steps.
    abs_dloss_windows : ndarray of float64, shape (W, T / stride − 1)
        |ΔL(t)| between consecutive snapshots of each window [t_w, t_w + T).
    abs_dloss_mean, abs_dloss_std : ndarray of float64, shape (W,)
        Mean and standard deviation (ddof = 1) of |ΔL| per window.
    var_steps : ndarray of int64, shape (N − var_window + 1,)
        Last step of each moving-variance window.
    moving_var : ndarray of float64, shape (N − var_window + 1,)
        Sample variance (ddof = 1) of the ``var_window`` loss values ending at
        ``var_steps``.
    var_window : int
        Moving-variance window in records (Chen et al.: 100 steps).
    """

    steps: np.ndarray
    loss: np.ndarray
    abs_dloss: np.ndarray
    t_w: np.ndarray
    window: int
    abs_dloss_windows: np.ndarray
    abs_dloss_mean: np.ndarray
    abs_dloss_std: np.ndarray
    var_steps: np.ndarray
    moving_var: np.ndarray
    var_window: int

    _headline = {"abs_dloss_mean": None, "abs_dloss_std": None}
    _curves = {"loss": ("step",), "abs_dloss_windows": ("t_w", "increment"), "moving_var": ("var_step",)}
    _coords = {"step": "steps", "var_step": "var_steps", "increment": None}

    def plot(self, ax=None, kind: str = "all"):
        """Plot the loss statistics; returns the axes (an array of three for ``"all"``).

        ``kind``: ``"loss"`` (loss curve), ``"dloss"`` (|ΔL| against step, coloured by
        window, as Chen et al. Fig. 5e), ``"variance"`` (moving variance, Fig. 5f), or
        ``"all"`` (the three side by side; ``ax`` then must be None or three axes).
        """
        import matplotlib.pyplot as plt

        kinds = ("loss", "dloss", "variance")
        if kind not in kinds + ("all",):
            raise ValueError(f"kind must be one of {kinds + ('all',)}, got {kind!r}")
        if kind == "all":
            axes = plt.subplots(1, 3, figsize=(13, 3.6))[1] if ax is None else ax
            for a, k in zip(axes, kinds):
                self.plot(a, k)
            return axes
        ax = axes_or_new(ax)
        if kind == "loss":
            ax.plot(self.steps, self.loss, lw=0.8)
            ax.set_ylabel("loss L")
        elif kind == "dloss":
            stride = self.window // (self.abs_dloss_windows.shape[1] + 1)
            colors = window_colors(len(self.t_w))
            for color, tw, row in zip(colors, self.t_w, self.abs_dloss_windows):
                ax.plot(tw + stride * np.arange(row.size), row, color=color, lw=0.6, label=f"$t_w$={tw}")
            ax.set_ylabel("|ΔL|")
            window_legend(ax, self.t_w)
        else:
            ax.plot(self.var_steps, self.moving_var, lw=0.8)
            if (self.moving_var > 0).any():
                ax.set_yscale("log")
            ax.set_ylabel(f"moving variance of L ({self.var_window} records)")
        ax.set_xlabel("step")
        readable_ticks(ax)
        return ax


def loss_stats(loss, steps=None, window: int | str | None = "auto", var_window: int | None = None, *,
               t_w=None) -> LossStats:
    """|ΔL| per window, moving variance and the loss curve.

    Parameters
    ----------
    loss : array_like of float, shape (N,)
        Loss at each recorded step (e.g. ``pe.open(path).loss``).
    steps : array_like of int, shape (N,), optional
        Evenly spaced, increasing steps (default 0, 1, …, N − 1).
    window : int, "auto" or None
        Window length T in steps for |ΔL| (the window rule: :mod:`pyengine.plan`).
    var_window : int, optional
        Moving-variance window in records (default: Chen et al.'s 100, or half the run
        when it is shorter than 200 records).
    t_w : sequence of int, optional
        Window starts in steps (default: every T steps).

    Returns
    -------
    LossStats

    References
    ----------
    Chen, Qu & Gong 2022, Sec. III, Fig. 5(e, f).

    Examples
    --------
    >>> import numpy as np, pyengine as pe
    >>> loss = np.exp(-np.arange(3000) / 500) + 0.01 * np.random.default_rng(0).standard_normal(3000)
    >>> s = pe.loss_stats(loss, window=1000)
    >>> s.abs_dloss_windows.shape, s.moving_var.shape
    ((3, 999), (2901,))
    """
    loss = np.asarray(loss, dtype=np.float64)
    if loss.ndim != 1 or loss.size < 3:
        raise ValueError(f"loss must be 1-D with at least 3 values, got shape {loss.shape}")
    steps = np.arange(loss.size, dtype=np.int64) if steps is None else np.asarray(steps, dtype=np.int64)
    if steps.shape != loss.shape:
        raise ValueError(f"steps must have the shape of loss {loss.shape}, got {steps.shape}")
    return loss_stats_in(make_plan(steps, window, t_w=t_w), loss, var_window)


def snapshot_loss(loss, n_rows: int) -> np.ndarray | None:
    """A loss per snapshot as a float64 array (None stays None), checked against the run's length."""
    if loss is None:
        return None
    loss = np.asarray(loss, dtype=np.float64)
    if loss.shape != (n_rows,):
        raise ValueError(f"loss: expected one value per snapshot, shape ({n_rows},), got {loss.shape}")
    return loss


def loss_stats_in(plan: WindowPlan, loss: np.ndarray, var_window: int | None = None) -> LossStats:
    """:func:`loss_stats` on the windows of a plan (``pe.analyze`` and ``pe.loss_stats`` end here)."""
    loss = snapshot_loss(loss, plan.n_rows)
    if not np.isfinite(loss).all():
        bad = np.flatnonzero(~np.isfinite(loss))
        raise ValueError(f"loss has {bad.size} non-finite values (first at index {bad[0]})")
    var_window = min(VAR_WINDOW, max(2, loss.size // 2)) if var_window is None else var_window
    moving_var = moving_variance(loss, var_window)
    dloss = np.abs(np.diff(loss))
    per_window = dloss[plan.starts[:, None] + np.arange(plan.length - 1)]
    mean = per_window.mean(axis=1)
    std = per_window.std(axis=1, ddof=1) if per_window.shape[1] > 1 else np.full(mean.shape, np.nan)
    steps = plan.steps_of(np.arange(plan.n_rows))
    return LossStats(steps, loss, dloss, plan.t_w, plan.window, per_window, mean, std, steps[var_window - 1:],
                     moving_var, int(var_window))
