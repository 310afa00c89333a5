"""Results of the landscape tools and how they are read back from a trajectory file.

NumPy and h5py only (no torch): the analysis and the report read stored surfaces and
Hessian spectra through :func:`landscape_results` and :func:`hessian_result`.
"""

from __future__ import annotations

import json
import pathlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from pyengine.fractal import BoxCountResult, VariogramResult, boxcount, level_set, variogram_dimension
from pyengine.results import (Result, axes_or_new, jsonable, panels_or_new, plain_text, readable_ticks, window_colors,
                               with_groups)
from pyengine.store import group_rows, open_trajectory

#: Quantiles of the finite losses at which level sets are box-counted by default.
LEVEL_QUANTILES = (0.25, 0.5, 0.75)
#: Fewest grid points per side to box-count (box sizes 2 … side/4 must give three sizes).
MIN_GRID = 16
#: Order p of the variogram estimate reported beside the box count: 1, the madogram, which
#: Gneiting, Ševčíková & Percival (2012) recommend for its efficiency and robustness.
VARIOGRAM_ORDER = 1


@dataclass(frozen=True)
class LevelSetCount:
    """Box counting of one level set ``{loss = level}`` of a surface."""

    quantile: float
    level: float
    boxcount: BoxCountResult


@dataclass(frozen=True, repr=False)
class LandscapeResult(Result):
    """A 2-D loss surface ``loss[y, x]`` around a centre, and its fractal dimensions.

    The surface is L(c + x·d1 + y·d2) for the centre c and two directions d1, d2 (see
    :func:`pyengine.landscape.loss_surface`).

    Attributes
    ----------
    name : str
        The surface's name (``/landscape/<name>`` in the file).
    x : ndarray of shape (nx,)
        Coordinates along d1.
    y : ndarray of shape (ny,)
        Coordinates along d2.
    loss : ndarray of shape (ny, nx)
        ``loss[j, i]`` = L at ``(x[i], y[j])``; NaN where not evaluated yet.
    done : bool ndarray of shape (ny, nx)
        Points evaluated so far.
    settings : dict
        How the surface was made (directions, seed, grid, span, centre, data, ...).
    path : ndarray of shape (T, 2), optional
        PCA directions only: the snapshots of the PCA window in (x, y) coordinates.
    path_steps : ndarray of shape (T,), optional
        Their optimizer steps.
    surface : BoxCountResult, optional
        Dimension of the graph of the surface (between 2 and 3); None while the surface
        is incomplete or holds non-finite losses (see :attr:`note`).
    level_sets : tuple of LevelSetCount
        Dimension of level sets at quantiles of the loss (between 1 and 2).
    note : str
        Why box counting was skipped, or ``""``.
    variogram : VariogramResult or None
        (Property, computed from ``loss``.) The madogram estimate of the dimension of the
        graph, ``variogram_dimension(loss, p=VARIOGRAM_ORDER)`` with lags 1 and 2, reported
        beside :attr:`surface`; None whenever box counting was skipped.
    """

    name: str
    x: np.ndarray
    y: np.ndarray
    loss: np.ndarray
    done: np.ndarray
    settings: dict
    path: np.ndarray | None = None
    path_steps: np.ndarray | None = None
    surface: BoxCountResult | None = None
    level_sets: tuple[LevelSetCount, ...] = ()
    note: str = ""

    #: Panels drawn by :meth:`plot`.
    panels = 2
    _rows = None
    _headline = {"surface.dimension": "surface.dimension_se", "variogram.dimension": "variogram.dimension_se"}
    _flags = {"surface.dimension": "surface.flag"}
    _curves = {"loss": ("d2", "d1")}
    _coords = {"d1": "x", "d2": "y"}

    @property
    def complete(self) -> bool:
        """Whether every grid point is evaluated."""
        return bool(self.done.all())

    @cached_property
    def variogram(self) -> VariogramResult | None:
        """Madogram dimension of the surface (lags 1 and 2), or None when it was not box-counted.

        Examples
        --------
        >>> landscape_results("run.h5")["final"].variogram.dimension  # doctest: +SKIP
        2.01
        """
        if self.surface is None:
            return None
        return variogram_dimension(self.loss, p=VARIOGRAM_ORDER)

    def to_dict(self) -> dict:
        """Plain Python types, ready for JSON (unfinished or non-finite losses are None).

        Examples
        --------
        >>> res = landscape_results("run.h5")["final"]  # doctest: +SKIP
        >>> res.to_dict()["surface"]["dimension"]  # doctest: +SKIP
        2.07
        """
        return jsonable({
            "name": self.name,
            "settings": self.settings,
            "x": self.x,
            "y": self.y,
            "loss": self.loss,
            "n_done": int(self.done.sum()),
            "complete": self.complete,
            "path": self.path,
            "path_steps": self.path_steps,
            "surface": self.surface,
            "variogram": self.variogram,
            "level_sets": [{"quantile": s.quantile, "level": s.level, "boxcount": s.boxcount} for s in self.level_sets],
            "note": self.note,
        })

    def plot(self, ax=None):
        """Contour map of the surface; box counting of the surface and its level sets, with the
        madogram dimension of the surface in the legend.

        Parameters
        ----------
        ax : sequence of two matplotlib Axes, optional
            Drawn into; a new figure with two panels is made when omitted.

        Returns
        -------
        ndarray of matplotlib Axes
        """
        ax = panels_or_new(ax, 2, "LandscapeResult.plot")
        self._plot_contour(ax[0])
        self._plot_counts(ax[1])
        return ax

    def _plot_contour(self, ax) -> None:
        finite = np.isfinite(self.loss)
        if finite.sum() >= 4 and self.loss.shape[0] > 1 and self.loss.shape[1] > 1:
            levels, norm, scale = surface_levels(self.loss[finite])
            cs = ax.contourf(self.x, self.y, np.where(finite, self.loss, np.nan), levels=levels, norm=norm,
                             cmap="viridis", extend="neither")
            bar = ax.figure.colorbar(cs, ax=ax, label=f"loss ({scale} colour scale)")
            _colorbar_ticks(bar, levels, scale)
            levels = sorted({s.level for s in self.level_sets})
            if levels:
                ax.contour(self.x, self.y, self.loss, levels=levels, colors="white", linewidths=0.8)
        if self.path is not None:
            ax.plot(self.path[:, 0], self.path[:, 1], "-", color="C3", lw=1, label="path")
        ax.plot([0], [0], "+", color="red", ms=10, label="centre")
        ax.set_xlabel("direction 1")
        ax.set_ylabel("direction 2")
        ax.set_title(f"loss surface {plain_text(repr(self.name))} ({plain_text(self.settings.get('directions', '?'))})")
        ax.set_aspect("equal", adjustable="box")

    def _plot_counts(self, ax) -> None:
        counts = ([("surface", self.surface)] if self.surface is not None else []) + [
            (f"level q={s.quantile:g}", s.boxcount) for s in self.level_sets]
        for i, (label, res) in enumerate(counts):
            x, y, m = res.log_sizes, res.log_counts, res.fitted
            ax.plot(x, y, "o", mfc="none", color=f"C{i}")
            xf = np.array([x[m].min(), x[m].max()])
            ax.plot(xf, res.intercept - res.dimension * xf, "-", color=f"C{i}",
                    label=f"{label}: D = {res.dimension:.2f} ± {res.dimension_se:.2f}")
        if self.variogram is not None:
            v = self.variogram
            ax.plot([], [], ls="none", label=f"surface, {v.method} (lags {v.lags[0]}–{v.lags[-1]}): "
                                             f"D = {v.dimension:.2f} ± {v.dimension_se:.2f}")
        if not counts:
            ax.text(0.5, 0.5, self.note or "no box counts", ha="center", va="center", transform=ax.transAxes)
        else:
            ax.legend(fontsize="small")
        ax.set_xlabel("log box size (grid cells)")
        ax.set_ylabel("log box count")
        ax.set_title("box counting")


@dataclass(frozen=True, repr=False)
class InterpolationResult(Result):
    """Loss along the straight line (1 − α)·w_a + α·w_b between two weight vectors.

    Attributes
    ----------
    alpha : ndarray of shape (n,)
    loss : ndarray of shape (n,)
    settings : dict
    """

    alpha: np.ndarray
    loss: np.ndarray
    settings: dict = field(default_factory=dict)

    _rows = None
    _curves = {"loss": ("alpha",)}

    def plot(self, ax=None):
        """Loss against α, with the two end points marked.

        Parameters
        ----------
        ax : matplotlib Axes, optional

        Returns
        -------
        matplotlib Axes
        """
        ax = axes_or_new(ax)
        ax.plot(self.alpha, self.loss, "-", color="C0")
        ends = np.isin(self.alpha, [0.0, 1.0])
        ax.plot(self.alpha[ends], self.loss[ends], "o", color="C3")
        ax.set_xlabel("α  (0: w_a, 1: w_b)")
        ax.set_ylabel("loss")
        ax.set_title("linear interpolation")
        return ax


@dataclass(frozen=True, repr=False)
class HessianResult(Result):
    """Top-k eigenvalues of the loss Hessian at several steps.

    A probe recorded with groups (``HessianProbe(groups=...)``) gives each group's diagonal
    block H_LL in ``groups`` (``{group: HessianResult}``, NaN past a block's size).

    Attributes
    ----------
    steps : ndarray of int64, shape (M,)
    eigenvalues : ndarray of float64, shape (M, k)
        Largest first.
    residuals : ndarray of float64, shape (M, k), optional
        Lanczos residual norms ‖H u − θ u‖ of the Ritz pairs: bounds on each eigenvalue's
        error.
    settings : dict
    """

    steps: np.ndarray
    eigenvalues: np.ndarray
    residuals: np.ndarray | None = None
    settings: dict = field(default_factory=dict)

    _rows = "step"
    _curves = {"eigenvalues": ("step", "rank"), "residuals": ("step", "rank")}
    _coords = {"step": "steps", "rank": None}

    @classmethod
    def from_rows(cls, rows: dict[str, np.ndarray], settings: dict) -> HessianResult:
        """From the row datasets of ``/hessian`` (:func:`pyengine.store.group_rows`) and its
        attributes (:func:`hessian_settings`), with the blocks' results in ``groups``.

        Raises
        ------
        ValueError
            ``eigenvalues`` not of shape (len(step), k).
        """
        steps = np.asarray(rows["step"], dtype=np.int64)
        eigenvalues = np.asarray(rows["eigenvalues"], dtype=np.float64)
        if eigenvalues.ndim != 2 or len(eigenvalues) != len(steps):
            raise ValueError(f"/hessian/eigenvalues: shape {eigenvalues.shape}, expected (len(step), k) = "
                             f"({len(steps)}, k)")
        residuals = np.asarray(rows["residuals"], dtype=np.float64) if "residuals" in rows else None
        result = cls(steps, eigenvalues, residuals, settings)
        blocks = block_rows(rows, settings)
        if blocks:
            with_groups(result, {name: cls.from_rows(block, own) for name, (block, own) in blocks.items()})
        return result

    def to_dict(self) -> dict:
        """Plain Python types, ready for JSON (each block's under ``"groups"``).

        Examples
        --------
        >>> hessian_result("run.h5").to_dict()["k"]  # doctest: +SKIP
        20
        """
        return jsonable({"steps": self.steps, "k": int(self.eigenvalues.shape[1]), "eigenvalues": self.eigenvalues,
                         "residuals": self.residuals, "settings": self.settings}) | self._groups_dict()

    def plot(self, ax=None):
        """Each of the top-k eigenvalues against the step (Chen et al. 2022, Fig. 7), with the
        Lanczos residual norms as error bars where stored (usually smaller than the markers).

        Parameters
        ----------
        ax : matplotlib Axes, optional

        Returns
        -------
        matplotlib Axes
        """
        ax = axes_or_new(ax)
        k = self.eigenvalues.shape[1]
        colors = window_colors(k)
        bounds = self.residuals if self.residuals is not None else np.zeros_like(self.eigenvalues)
        bounds = np.where(np.isfinite(bounds), np.abs(bounds), 0.0)
        for i in range(k):
            label = "λ1 (largest)" if i == 0 else (f"λ{k}" if i == k - 1 else None)
            ax.errorbar(self.steps, self.eigenvalues[:, i], yerr=bounds[:, i],
                        fmt="o-" if len(self.steps) < 30 else "-", ms=3, color=colors[i], label=label)
        finite = self.eigenvalues[np.isfinite(self.eigenvalues)]  # NaN past a block's size
        if np.all(finite > 0):
            ax.set_yscale("log")
        else:
            ax.set_yscale("symlog", linthresh=max(1e-3 * np.abs(finite).max(), 1e-12))
        ax.set_xlabel("step")
        ax.set_ylabel("Hessian eigenvalue")
        ax.set_title(f"top-{k} Hessian eigenvalues")
        ax.legend(fontsize="small")
        readable_ticks(ax)
        return ax


def _colorbar_ticks(bar, levels: np.ndarray, scale: str) -> None:
    """Few, readable ticks on a surface's colour bar: powers of ten (and 2, 5 below two
    decades) on a log scale, every fourth level on a quantile scale."""
    from matplotlib.ticker import LogFormatterSciNotation, LogLocator

    if scale == "log":
        narrow = np.log10(levels[-1] / levels[0]) < 2
        bar.locator = LogLocator(subs=(1.0, 2.0, 5.0) if narrow else (1.0,))
        bar.formatter = LogFormatterSciNotation(labelOnlyBase=False)
        bar.minorticks_off()
    elif scale == "quantile":
        bar.set_ticks(levels[::4], labels=[f"{v:.3g}" for v in levels[::4]])


def surface_levels(values: np.ndarray, n: int = 20):
    """Contour levels and colour norm of a loss surface that resolve its basin.

    A loss surface spans decades (a basin near 0.01 inside walls near 100), so linear
    levels paint the basin one colour. Positive losses spanning more than a decade get
    log-spaced levels and a log norm; other surfaces with a long upper tail (the 95th
    percentile below half the range) get levels at quantiles; the rest linear levels.

    Parameters
    ----------
    values : ndarray of float
        The surface's finite losses.
    n : int
        Number of colour bands.

    Returns
    -------
    levels : ndarray of float64, shape (<= n + 1,)
    norm : matplotlib.colors.Normalize
    scale : {"log", "quantile", "linear"}

    Examples
    --------
    >>> levels, norm, scale = surface_levels(np.geomspace(0.01, 100, 50))
    >>> scale, float(levels[0]), float(levels[-1])
    ('log', 0.01, 100.0)
    """
    from matplotlib import colors

    lo, hi = float(np.min(values)), float(np.max(values))
    if not hi > lo:
        levels = np.linspace(lo - 0.5, hi + 0.5, 3)
        return levels, colors.Normalize(levels[0], levels[-1]), "linear"
    if lo > 0 and hi / lo > 10:
        levels = np.geomspace(lo, hi, n + 1)
        return levels, colors.LogNorm(lo, hi), "log"
    if np.quantile(values, 0.95) - lo < 0.5 * (hi - lo):
        levels = np.unique(np.quantile(values, np.linspace(0, 1, n + 1)))
        if levels.size >= 3:
            return levels, colors.BoundaryNorm(levels, 256), "quantile"
    levels = np.linspace(lo, hi, n + 1)
    return levels, colors.Normalize(lo, hi), "linear"


def box_count_surface(loss: np.ndarray, done: np.ndarray,
                      quantiles: Sequence[float] = LEVEL_QUANTILES,
                      method: str | None = None) -> tuple[BoxCountResult | None, tuple[LevelSetCount, ...], str]:
    """Box-counting dimensions of a surface and of its level sets at loss quantiles.

    Parameters
    ----------
    loss : ndarray of shape (ny, nx)
    done : bool ndarray of shape (ny, nx)
        Evaluated points; an incomplete surface is not counted.
    quantiles : sequence of float in (0, 1)
        Levels of the level sets, as quantiles of the losses.
    method : {"idbc", "dbc"}, optional
        Surface method of :func:`pyengine.boxcount` (default its default).

    Box sizes are every integer from 2 (surface) or 1 (level sets) cells up to a quarter
    of the shorter side: a 51 × 51 grid has few dyadic sizes.

    Returns
    -------
    surface : BoxCountResult or None
    level_sets : tuple of LevelSetCount
    note : str
        Why nothing was counted, or ``""``.

    Examples
    --------
    >>> z = np.add.outer(np.linspace(-1, 1, 33) ** 2, np.linspace(-1, 1, 33) ** 2)
    >>> surface, levels, note = box_count_surface(z, np.ones(z.shape, bool))
    >>> surface.kind, [lv.quantile for lv in levels]
    ('surface', [0.25, 0.5, 0.75])
    """
    if not done.all():
        return None, (), f"incomplete: {int(done.sum())} of {done.size} points evaluated"
    if not np.isfinite(loss).all():
        return None, (), f"{int((~np.isfinite(loss)).sum())} non-finite losses"
    if min(loss.shape) < MIN_GRID:
        return None, (), (f"grid {loss.shape[1]}x{loss.shape[0]} is too small to box-count "
                          f"(need {MIN_GRID}x{MIN_GRID})")
    if np.ptp(loss) == 0:
        return None, (), "constant surface"
    largest = min(loss.shape) // 4
    surface = boxcount(loss, kind="surface", method=method, sizes=np.arange(2, largest + 1))
    levels = []
    for q in quantiles:
        level = float(np.quantile(loss, q))
        if level_set(loss, level).any():
            counts = boxcount(loss, kind="set", level=level, sizes=np.arange(1, largest + 1))
            levels.append(LevelSetCount(float(q), level, counts))
    return surface, tuple(levels), ""


def landscape_results(traj_path: str | pathlib.Path, quantiles: Sequence[float] = LEVEL_QUANTILES,
                      method: str | None = None) -> dict[str, LandscapeResult]:
    """Every surface stored under ``/landscape`` of a trajectory file, box-counted (with the
    madogram dimension beside: :attr:`LandscapeResult.variogram`).

    Parameters
    ----------
    traj_path : str or Path
        The trajectory file.
    quantiles : sequence of float
        Loss quantiles of the level sets to box-count.
    method : {"idbc", "dbc"}, optional
        Surface box-counting method.

    Returns
    -------
    dict of str to LandscapeResult
        Keyed by surface name; empty when the file has none.

    Examples
    --------
    >>> for name, res in landscape_results("run.h5").items():  # doctest: +SKIP
    ...     print(name, res.surface.dimension, res.variogram.dimension, [s.boxcount.dimension for s in res.level_sets])
    """
    with open_trajectory(traj_path, validate=False) as traj:
        group = traj.group("landscape")
        stored = {} if group is None else {name: read_surface(g) for name, g in group.items()}
    results = {}
    for name, (arrays, settings) in sorted(stored.items()):
        surface, levels, note = box_count_surface(arrays["loss"], arrays["done"], quantiles, method)
        results[name] = LandscapeResult(name, arrays["x"], arrays["y"], arrays["loss"], arrays["done"], settings,
                                        arrays.get("path"), arrays.get("path_step"), surface, levels, note)
    return results


def read_surface(group) -> tuple[dict[str, np.ndarray], dict]:
    """Datasets and attributes of one ``/landscape/<name>`` group (an h5py group).

    A group without ``done`` (written by another tool) counts its finite losses as done.
    """
    for key in ("x", "y", "loss"):
        if key not in group:
            raise ValueError(f"{group.name}: missing dataset {key!r} (see docs/format.md)")
    arrays = {key: group[key][()] for key in group}
    loss = np.asarray(arrays["loss"], dtype=np.float64)
    if loss.shape != (len(arrays["y"]), len(arrays["x"])):
        raise ValueError(f"{group.name}/loss: shape {loss.shape}, expected (len(y), len(x)) = "
                         f"({len(arrays['y'])}, {len(arrays['x'])})")
    arrays["loss"] = loss
    arrays["done"] = np.asarray(arrays.get("done", np.isfinite(loss)), dtype=bool)
    return arrays, {key: plain(value) for key, value in group.attrs.items()}


def hessian_result(traj_path: str | pathlib.Path) -> HessianResult | None:
    """The Hessian spectra stored under ``/hessian`` of a trajectory file, or None; a probe
    recorded with groups gives each diagonal block's spectrum in ``result.groups``.

    Parameters
    ----------
    traj_path : str or Path

    Returns
    -------
    HessianResult or None

    Examples
    --------
    >>> res = hessian_result("run.h5")  # doctest: +SKIP
    >>> res.eigenvalues.shape  # doctest: +SKIP
    (10, 20)
    >>> res.groups["fc1"].eigenvalues[:, 0]  # λ_max of the block of layer fc1, with HessianProbe(groups="layer")  # doctest: +SKIP
    """
    with open_trajectory(traj_path, validate=False) as traj:
        group = traj.group("hessian")
        if group is None:
            return None
        for key in ("step", "eigenvalues"):
            if key not in group:
                raise ValueError(f"/hessian: missing dataset {key!r} (see docs/format.md)")
        rows, settings = group_rows(group), hessian_settings(group.attrs)
    return HessianResult.from_rows(rows, settings)


def hessian_settings(attrs) -> dict:
    """``/hessian``'s attributes as plain Python, ``block_groups`` decoded from its JSON.

    Raises
    ------
    ValueError
        ``block_groups`` not a JSON object of tensor-name lists.
    """
    settings = {key: plain(value) for key, value in attrs.items()}
    if isinstance(settings.get("block_groups"), str):
        try:
            settings["block_groups"] = json.loads(settings["block_groups"])
        except ValueError as exc:
            raise ValueError(f"/hessian: attribute 'block_groups' is not JSON ({exc}); see docs/format.md") from None
        if not isinstance(settings["block_groups"], dict):
            raise ValueError("/hessian: attribute 'block_groups' must be a JSON object {group: [tensor names]}, "
                             f"got {type(settings['block_groups']).__name__}; see docs/format.md")
    return settings


def block_rows(rows: dict[str, np.ndarray], settings: dict) -> dict[str, tuple[dict[str, np.ndarray], dict]]:
    """Each diagonal block's rows, as the whole Hessian's are named (``eigenvalues``,
    ``residuals``, ``iterations``, ``trace``, ``trace_se``), and its settings (the group,
    its tensors and size); {} for a probe without groups or a file from before them.

    Parameters
    ----------
    rows : dict of str to ndarray
        ``/hessian``'s row datasets (``block_*`` of shape (M, G, ...)).
    settings : dict
        Its attributes (:func:`hessian_settings`).

    Returns
    -------
    dict of str to (rows, settings)

    Raises
    ------
    ValueError
        A ``block_*`` dataset without a group axis of one entry per group.
    """
    tensors = settings.get("block_groups")
    if not isinstance(tensors, dict) or "block_eigenvalues" not in rows:
        return {}
    for key in BLOCK_COLUMNS:
        shape = np.shape(rows.get(f"block_{key}", np.empty((0, len(tensors)))))
        if len(shape) < 2 or shape[1] != len(tensors):
            raise ValueError(f"/hessian/block_{key}: shape {shape}, expected (M, {len(tensors)}, ...), one entry per "
                             "group of the attribute 'block_groups' (see docs/format.md)")
    sizes = settings.get("block_sizes") if isinstance(settings.get("block_sizes"), list) else []
    common = {key: value for key, value in settings.items() if not key.startswith("block_") and key != "n_blocks"}
    out = {}
    for g, (name, members) in enumerate(tensors.items()):
        block = {"step": rows["step"]}
        block.update({key: rows[f"block_{key}"][:, g] for key in BLOCK_COLUMNS if f"block_{key}" in rows})
        out[name] = block, {**common, "group": name, "tensors": members,
                            "n_params": sizes[g] if g < len(sizes) else None}
    return out


#: Row datasets of ``/hessian`` measured per diagonal block (``block_<name>``, a group axis after the rows).
BLOCK_COLUMNS = ("eigenvalues", "residuals", "iterations", "trace", "trace_se")


def plain(value):
    """An HDF5 attribute value as plain Python (lists, floats, ints, bools, str).

    Examples
    --------
    >>> plain(np.array([1.0, 2.0])), plain(np.int64(3)), plain(b"pca")
    ([1.0, 2.0], 3, 'pca')
    """
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, bytes):
        return value.decode()
    return value

