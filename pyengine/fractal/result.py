"""The result of a box count, and the log-log fit behind it."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pyengine.fits import quality_flag
from pyengine.results import Result, axes_or_new, jsonable

#: What the dimension of each kind measures, and its range.
KIND_LABELS = {
    "surface": "box-counting dimension of the graph of a surface z(x, y), in [2, 3]",
    "set": "box-counting dimension of a planar set (binary image or level set), in [1, 2]",
    "points": "box-counting dimension of a point set or curve in R^d, in [0, d]",
}


@dataclass(frozen=True)
class LineFit:
    """Least-squares line ``log N = intercept + slope * log s`` over points ``lo..hi-1``."""

    lo: int
    hi: int
    slope: float
    intercept: float
    slope_se: float


def fit_line(x: np.ndarray, y: np.ndarray, lo: int, hi: int) -> LineFit:
    """Ordinary least squares on ``x[lo:hi], y[lo:hi]`` with the standard error of the slope."""
    xs, ys = x[lo:hi], y[lo:hi]
    n = xs.size
    xm, ym = xs.mean(), ys.mean()
    sxx = ((xs - xm) ** 2).sum()
    slope = ((xs - xm) * (ys - ym)).sum() / sxx
    intercept = ym - slope * xm
    resid = ys - intercept - slope * xs
    slope_se = float(np.sqrt((resid @ resid) / (n - 2) / sxx)) if n > 2 else float("nan")
    return LineFit(lo, hi, float(slope), float(intercept), slope_se)


def select_range(x: np.ndarray, y: np.ndarray, min_points: int | None = None) -> LineFit:
    """Pick the linear part of a log-log curve automatically.

    Every window of consecutive points with at least ``min_points`` points (default: half
    of them, at least 3) is fitted; the window whose slope has the smallest standard error
    wins, the longest one among (near-)ties. Long windows lower the error; windows reaching
    into a bent part raise it.
    """
    n = x.size
    if min_points is None:
        min_points = max(3, (n + 1) // 2)
    min_points = min(max(2, min_points), n)
    best = None
    for length in range(n, min_points - 1, -1):
        for lo in range(0, n - length + 1):
            fit = fit_line(x, y, lo, lo + length)
            err = 0.0 if np.isnan(fit.slope_se) else fit.slope_se
            if best is None or err < best[0] * (1 - 1e-9) - 1e-12:
                best = (err, fit)
    return best[1]


@dataclass(frozen=True, repr=False)
class BoxCountResult(Result):
    """Box counts at several box sizes and the dimension fitted to them.

    ``N(s) ~ s**-D``: the dimension ``D`` is minus the slope of ``log N`` against ``log s``
    over the fitted range of sizes.

    Attributes
    ----------
    kind : {"surface", "set", "points"}
        What was counted, and so which dimension is reported (see :attr:`label`).
    method : str
        ``"dbc"``, ``"idbc"`` (surfaces), ``"occupied"`` (sets), ``"morton"`` (points).
    sizes : ndarray of shape (k,)
        Box sizes, increasing: pixels for images and surfaces, data units for points.
    counts : ndarray of shape (k,)
        Box counts ``N(s)`` (area-normalised means over the grid offsets; see boxcount).
    fit_range : (float, float)
        Smallest and largest box size of the fit.
    dimension : float
        The box-counting dimension ``D``.
    dimension_se : float
        Standard error of ``D`` from the least-squares fit (NaN with 2 points).
    intercept : float
        ``log N`` of the fitted line at ``log s = 0``.
    """

    kind: str
    method: str
    sizes: np.ndarray
    counts: np.ndarray
    fit_range: tuple[float, float]
    dimension: float
    dimension_se: float
    intercept: float
    settings: dict = field(default_factory=dict)

    _rows = None
    _headline = {"dimension": "dimension_se"}
    _flags = {"dimension": "flag"}
    _curves = {"counts": ("size",)}
    _coords = {"size": "sizes"}

    @property
    def flag(self) -> str | None:
        """Why ``D`` fails the fit quality rule of :mod:`pyengine.fits` (sizes fitted as points), or None."""
        return quality_flag(self.dimension, self.dimension_se, int(self.fitted.sum()),
                            float(np.log10(self.fit_range[1] / self.fit_range[0])))

    @property
    def log_sizes(self) -> np.ndarray:
        """``log s`` (natural log), one per size."""
        return np.log(self.sizes)

    @property
    def log_counts(self) -> np.ndarray:
        """``log N(s)`` (natural log), one per size."""
        return np.log(self.counts)

    @property
    def fitted(self) -> np.ndarray:
        """Boolean mask of the sizes inside the fit range."""
        return (self.sizes >= self.fit_range[0]) & (self.sizes <= self.fit_range[1])

    @property
    def label(self) -> str:
        """Which dimension this is, in words."""
        return KIND_LABELS[self.kind]

    def to_dict(self) -> dict:
        """Plain Python types, ready for JSON.

        Examples
        --------
        >>> import numpy as np, pyengine as pe
        >>> round(pe.boxcount(np.ones((64, 64), bool), kind="set").to_dict()["dimension"], 9)
        2.0
        """
        return jsonable({
            "kind": self.kind,
            "label": self.label,
            "method": self.method,
            "sizes": self.sizes.tolist(),
            "counts": self.counts.tolist(),
            "log_sizes": self.log_sizes.tolist(),
            "log_counts": self.log_counts.tolist(),
            "fit_range": [float(v) for v in self.fit_range],
            "dimension": self.dimension,
            "dimension_se": self.dimension_se,
            "flag": self.flag,
            "intercept": self.intercept,
            "settings": dict(self.settings),
        })

    def plot(self, ax=None):
        """Plot ``log N`` against ``log s`` with the fitted line over the fit range.

        Parameters
        ----------
        ax : matplotlib Axes, optional
            Drawn into; a new figure is made when omitted.

        Returns
        -------
        matplotlib Axes
        """
        ax = axes_or_new(ax)
        x, y, m = self.log_sizes, self.log_counts, self.fitted
        ax.plot(x[~m], y[~m], "o", mfc="none", color="0.5", label="outside fit")
        ax.plot(x[m], y[m], "o", color="C0", label="fitted")
        xf = np.array([x[m].min(), x[m].max()])
        ax.plot(xf, self.intercept - self.dimension * xf, "-", color="C1",
                label=f"D = {self.dimension:.3f} ± {self.dimension_se:.3f}")
        ax.set_xlabel("log box size")
        ax.set_ylabel("log box count")
        ax.set_title(f"{self.kind} ({self.method})")
        ax.legend()
        return ax
