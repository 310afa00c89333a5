"""What every result object shares: a JSON-ready ``to_dict()`` and ``to_json()``."""

from __future__ import annotations

import dataclasses
import json
import math
from typing import ClassVar

import numpy as np

__all__ = ["Result", "jsonable", "MAX_LEGEND_WINDOWS", "window_colors", "window_legend", "window_colorbar",
           "band_alpha", "readable_ticks", "legend_outside"]


def jsonable(value):
    """Arrays to lists, non-finite floats to None, results and dataclasses to dicts (recursively)."""
    if hasattr(value, "to_dict"):
        return value.to_dict()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return jsonable({f.name: getattr(value, f.name) for f in dataclasses.fields(value)})
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "fc":
            return np.where(np.isfinite(value), value, None).tolist()
        return value.tolist()
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (np.floating, float)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


class Result:
    """Mixin for result dataclasses: every field to JSON, except those named in ``_exclude``."""

    _exclude: ClassVar[tuple[str, ...]] = ()

    def to_dict(self) -> dict:
        """JSON-ready dict: arrays as lists, NaN/Inf as None, nested results as dicts."""
        return jsonable({f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in self._exclude})

    def to_json(self) -> str:
        """:meth:`to_dict` as a JSON string."""
        return json.dumps(self.to_dict())


def axes_or_new(ax=None):
    """``ax``, or the axes of a new 5 × 4 inch figure (for ``plot(ax=None)`` methods)."""
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(5, 4))
    return ax


#: Per-window figures have a legend up to this many windows, a colour bar of t_w above it.
MAX_LEGEND_WINDOWS = 6


def window_colors(n: int) -> np.ndarray:
    """One colour per window, early (dark) to late (yellow): an array of shape (max(n, 2), 4)."""
    from matplotlib import cm

    return cm.viridis(np.linspace(0, 1, max(n, 2)))


def window_colorbar(ax, t_w, label: str = "waiting time t_w (steps)"):
    """A colour bar of the windows' colours (:func:`window_colors`) beside ``ax``, ticked with t_w.

    Each window is one block of the bar, so the bar is right for unevenly spaced t_w too;
    about six blocks carry a t_w label, the first and the last among them.

    Parameters
    ----------
    ax : matplotlib Axes or sequence of Axes
        The bar goes beside the (last) axes and takes its room from it: one bar for several
        panels drawn side by side.
    t_w : array_like of int, shape (W,)

    Returns
    -------
    matplotlib.colorbar.Colorbar

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> fig, ax = plt.subplots()
    >>> bar = window_colorbar(ax, [0, 100, 200, 300, 400, 500, 600, 700])
    >>> len(fig.axes)
    2
    """
    from matplotlib import cm, colors
    from matplotlib.ticker import EngFormatter, MaxNLocator

    t_w = np.asarray(t_w)
    n = t_w.size
    cmap = colors.ListedColormap(window_colors(n)[:n])
    norm = colors.BoundaryNorm(np.arange(n + 1) - 0.5, n)
    last = np.ravel(ax)[-1]  # one parent axes: the bar then works with tight_layout
    bar = last.figure.colorbar(cm.ScalarMappable(norm=norm, cmap=cmap), ax=last, pad=0.02, fraction=0.06, aspect=30)
    ticks = [int(i) for i in MaxNLocator(nbins=6, integer=True).tick_values(0, n - 1) if 0 <= i <= n - 1]
    if ticks[-1] != n - 1:  # the last window is labelled too; a tick too close to it gives way
        step = ticks[1] - ticks[0] if len(ticks) > 1 else n
        ticks = ticks[:-1] + [n - 1] if n - 1 - ticks[-1] < step / 2 else ticks + [n - 1]
    short = EngFormatter(sep="") if np.abs(t_w).max() >= 1e4 else str  # 12.5k, as the step axes (readable_ticks)
    bar.set_ticks(ticks, labels=[short(t_w[i]) for i in ticks])
    bar.ax.minorticks_off()
    bar.set_label(label)
    return bar


def window_legend(ax, t_w, **legend):
    """The key to per-window colours: the legend of ``ax`` for up to :data:`MAX_LEGEND_WINDOWS`
    windows, else a colour bar of t_w (:func:`window_colorbar`; labels are then left out).

    Parameters
    ----------
    ax : matplotlib Axes, or a sequence of Axes sharing one key (the legend goes in the first)
    t_w : array_like of int, shape (W,)
    **legend
        Passed to ``Axes.legend``.

    Returns
    -------
    matplotlib Legend, Colorbar, or None (no labelled artists)
    """
    axes = list(np.ravel(ax))
    if np.size(t_w) > MAX_LEGEND_WINDOWS:
        return window_colorbar(axes, t_w)
    if not axes[0].get_legend_handles_labels()[0]:
        return None
    return axes[0].legend(**{"fontsize": "small", **legend})


def band_alpha(n: int) -> float:
    """Opacity of one window's uncertainty band among ``n``: 0.2 up to six windows, less above
    (so that the overlap of many bands does not hide the lines)."""
    return 0.2 if n <= MAX_LEGEND_WINDOWS else max(0.04, 0.2 * MAX_LEGEND_WINDOWS / n)


def readable_ticks(ax, which: str = "both") -> None:
    """Tick labels of ``ax`` that never crowd each other; call it after drawing.

    Matplotlib labels the minor ticks of a log axis spanning less than about a decade
    (3×10¹, 4×10¹, …), and those wide labels overlap. Here such an axis gets major ticks at
    1, 2 and 5 per decade with plain labels (20, 50, 0.002), or a few evenly spaced ones below
    half a decade, and unlabelled minor ticks; an axis spanning more decades keeps its
    labelled powers of ten. A linear axis reaching 10⁴ (optimizer steps) gets at most six
    ticks with short labels (12.5k, 1.2M), as TensorBoard writes them.

    Parameters
    ----------
    ax : matplotlib Axes
    which : {"x", "y", "both"}

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> fig, ax = plt.subplots()
    >>> _ = ax.loglog([30, 60], [1, 2])
    >>> readable_ticks(ax)
    >>> ax.xaxis.get_minor_formatter().__class__.__name__
    'NullFormatter'
    """
    from matplotlib.ticker import EngFormatter, LogLocator, MaxNLocator, NullFormatter, ScalarFormatter

    for axis, get in (("x", ax.get_xlim), ("y", ax.get_ylim)):
        if which not in (axis, "both"):
            continue
        lo, hi = sorted(get())
        target = getattr(ax, f"{axis}axis")
        scale = getattr(ax, f"get_{axis}scale")()
        if scale == "linear" and isinstance(target.get_major_formatter(), ScalarFormatter):
            if max(abs(lo), abs(hi)) >= 1e4:
                target.set_major_locator(MaxNLocator(nbins=6, steps=[1, 2, 2.5, 5, 10]))
                target.set_major_formatter(EngFormatter(sep=""))
            continue
        if scale != "log" or not (lo > 0 and np.isfinite(hi)):
            continue
        target.set_minor_formatter(NullFormatter())
        span = np.log10(hi / lo)
        if span < 0.5:  # nearly linear: plain, evenly spaced ticks
            target.set_major_locator(MaxNLocator(nbins=4))
            target.set_major_formatter(ScalarFormatter())
        elif span < 2:
            target.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
            target.set_major_formatter(_plain_number)


def _plain_number(value: float, pos=None) -> str:
    """A tick label as short as ``%g`` (0.002, 20, 5e+06)."""
    return f"{value:.3g}"


def legend_outside(ax, handles=None, labels=None, ncol: int = 2, **legend):
    """A legend below ``ax``, outside the data (with ``tight_layout`` the axes make room).

    ``handles`` and ``labels`` default to those of ``ax``; pass those of twin axes too to
    get one legend for both.
    """
    if handles is None:
        handles, labels = ax.get_legend_handles_labels()
    if not handles:
        return None
    return ax.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=ncol,
                     **{"fontsize": "small", "frameon": False, **legend})
