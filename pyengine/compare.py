"""``pe.compare``: several recorded runs side by side (seeds, learning rates, batch sizes, models).

A comparison reads, from each run, only the numbers it shows (:data:`QUANTITIES`: the
headline numbers per window, t0, the MSD curves, the loss curve and the last evaluation
probe) and the training settings stored in the trajectory file. It reads them from the
same JSON whatever the item is: a result folder's ``results.json``, an :class:`Analysis`
turned into that JSON (``to_dict``), or a trajectory file analysed on the way. No
estimator is run again on a result folder.

Runs are labelled by the stored settings that differ between them; runs that differ only
in their seed form a group (mean ± standard error across seeds beside the within-run
SEs); a headline number against a numeric setting gets a fitted line (:class:`Trend`).
docs/compare.md describes the page and the table.
"""

from __future__ import annotations

import json
import math
import os
import pathlib
from dataclasses import dataclass

import numpy as np

from pyengine.analysis import RESULTS_FILE, Analysis, analyze
from pyengine.results import Result, import_optional, jsonable

__all__ = ["compare", "Comparison", "Run", "Series", "Quantity", "Trend", "QUANTITIES", "read_run", "fit_trend",
           "COMPARISON_FILE"]

#: What :meth:`Comparison.save` writes beside index.html: every number the page shows.
COMPARISON_FILE = "comparison.json"
#: The results (of results.json) a comparison reads; nothing else is read.
READ = ("msd", "diffusion", "msl", "path", "tails", "loss", "eval")
#: Columns of :meth:`Comparison.to_pandas`, before and after the varying settings.
TIDY_RUN_COLUMNS = ("run", "group", "source")
TIDY_VALUE_COLUMNS = ("statistic", "quantity", "t_w", "value", "se", "flag")


@dataclass(frozen=True)
class Quantity:
    """A headline number a comparison shows.

    Attributes
    ----------
    statistic, quantity : str
        Its names in :meth:`pyengine.Analysis.summary` and ``to_pandas`` (``"diffusion"``,
        ``"alpha2"``; ``"msl"``, ``"exponent"``).
    column : str
        Its unique short name in :meth:`Comparison.summary` and for :meth:`Comparison.trend`
        (``"alpha2"``, ``"msl_2H"``, ``"tail_alpha"``).
    label : str
        How the page names it.
    """

    statistic: str
    quantity: str
    column: str
    label: str


#: The per-window and per-run headline numbers, in the order of the page. The evaluation
#: probe's last losses and accuracies (``eval_loss_test``, …) follow, one per data set.
QUANTITIES = (
    Quantity("diffusion", "alpha", "alpha", "α (whole window)"),
    Quantity("diffusion", "alpha1", "alpha1", "α1 (τ < τ0)"),
    Quantity("diffusion", "alpha2", "alpha2", "α2 (τ ≥ τ0)"),
    Quantity("diffusion", "tau0", "tau0", "τ0 (steps)"),
    Quantity("diffusion", "t0", "t0", "t0 (steps)"),
    Quantity("msl", "exponent", "msl_2H", "MSL 2H"),
    Quantity("path", "fractal_dim_below", "D_f_below", "D_f below the crossover"),
    Quantity("path", "fractal_dim_above", "D_f_above", "D_f above the crossover"),
    Quantity("tails", "alpha", "tail_alpha", "tail α (Mohammadi)"),
    Quantity("tails", "stable_alpha", "stable_alpha", "α-stable α (MLE)"),
    Quantity("loss", "abs_dloss_mean", "abs_dloss_mean", "mean |ΔL| per step"),
)


@dataclass(frozen=True)
class Series:
    """One headline number of one run: per window, or once per run (``t_w`` = [NaN]).

    Attributes
    ----------
    t_w : ndarray of float64, shape (W,)
    value, se : ndarray of float64, shape (W,)
        NaN where missing (no estimate, no standard error).
    flag : tuple of (str or None), length W
        Why a value fails the fit quality rule (:mod:`pyengine.fits`) or has no estimate.
    """

    t_w: np.ndarray
    value: np.ndarray
    se: np.ndarray
    flag: tuple

    def at(self, window: int) -> tuple[float, float, float, str | None]:
        """(t_w, value, se, flag) of window ``window`` (a Python index: -1 the last); NaNs
        when the run has no such window."""
        n = self.t_w.size
        if not -n <= window < n:
            return math.nan, math.nan, math.nan, None
        return float(self.t_w[window]), float(self.value[window]), float(self.se[window]), self.flag[window]


@dataclass(repr=False)
class Run:
    """What a comparison reads from one run (:func:`read_run`).

    Attributes
    ----------
    name : str
        Where it came from: the path given (result folder, results.json or trajectory
        file), else the analysed file's name or ``"run i"``.
    settings : dict
        The training settings stored in the trajectory file, flattened as the report
        flattens them (``optimizer.lr``, ``model.class``; docs/report.md).
    numbers : dict of (statistic, quantity) to Series
        The headline numbers of :data:`QUANTITIES` the run has, and its last evaluation.
    curves : dict
        ``"msd"``: (t_w (W,), lags (L,), msd (W, L), msd_se (W, L)); ``"loss"``: (steps,
        loss); ``"eval"``: (steps, {data set: loss}). Only those the run has.
    analysis : dict
        How it was analysed: ``window``, ``t_w``, ``lags`` (count, first, last),
        ``threshold``, ``backend``.
    skipped : dict
        What its analysis could not make, and why.
    source : str or None
        The trajectory file analysed.
    folder : str or None
        The result folder read (None for analyses and files).
    """

    name: str
    settings: dict
    numbers: dict
    curves: dict
    analysis: dict
    skipped: dict
    source: str | None = None
    folder: str | None = None

    def to_dict(self) -> dict:
        return jsonable({
            "name": self.name, "source": self.source, "folder": self.folder, "settings": self.settings,
            "analysis": self.analysis, "skipped": self.skipped,
            "numbers": {f"{s}.{q}": {"t_w": v.t_w, "value": v.value, "se": v.se, "flag": list(v.flag)}
                        for (s, q), v in self.numbers.items()},
            "curves": self.curves,
        })


# -- reading results.json ----------------------------------------------------------------------


def _float(value) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else math.nan


def _floats(values) -> np.ndarray:
    """Numbers of a JSON list as float64 (anything else NaN); [] for a non-list."""
    return np.array([_float(v) for v in values] if isinstance(values, list) else [], dtype=np.float64)


def _matrix(rows, shape: tuple[int, int]) -> np.ndarray | None:
    """A JSON list of lists as a float64 array of ``shape``, or None when it is not one."""
    if not isinstance(rows, list) or len(rows) != shape[0]:
        return None
    out = [_floats(r) for r in rows]
    return np.array(out) if all(r.size == shape[1] for r in out) else None


def _list(doc, key: str) -> list:
    value = doc.get(key) if isinstance(doc, dict) else None
    return value if isinstance(value, list) else []


def _dicts(values: list) -> list[dict]:
    return [v if isinstance(v, dict) else {} for v in values]


def _flag(value) -> str | None:
    return None if value is None or value == "" else str(value)


def _fits(t_w: np.ndarray, fits: list[dict], transform=None) -> Series | None:
    """A Series of the slopes of serialized PowerFits (one per window)."""
    if len(fits) != t_w.size:
        return None
    value, se = _floats([f.get("slope") for f in fits]), _floats([f.get("slope_se") for f in fits])
    if transform is not None:
        value, se = transform(value, se)
    return Series(t_w, value, se, tuple(_flag(f.get("flag")) for f in fits))


def _fractal_dim(lam: np.ndarray, lam_se: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """D_f = 2/λ and its SE 2·SE_λ/λ², as :attr:`pyengine.PathResult.fractal_dim` gives them."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return 2.0 / lam, 2.0 * lam_se / lam**2


def _read_diffusion(d: dict) -> dict:
    windows = _dicts(_list(d, "windows"))
    t_w = _floats([w.get("t_w") for w in windows])
    out = {}
    for name, part in (("alpha", "whole"), ("alpha1", "early"), ("alpha2", "late")):
        out[name] = _fits(t_w, _dicts([w.get(part) for w in windows]))
    out["tau0"] = Series(t_w, _floats([w.get("tau0") for w in windows]), np.full(t_w.size, np.nan),
                         tuple(_flag(w.get("reason")) for w in windows))
    if "t0" in d:
        out["t0"] = Series(np.array([np.nan]), np.array([_float(d.get("t0"))]), np.array([np.nan]),
                           (_flag(d.get("t0_reason")),))
    return out


def _read_path(d: dict) -> dict:
    t_w = _floats(_list(d, "t_w"))
    pairs = [p if isinstance(p, list) and len(p) == 2 else [{}, {}] for p in _list(d, "fits")]
    return {f"fractal_dim_{side}": _fits(t_w, _dicts([p[i] for p in pairs]), _fractal_dim)
            for i, side in enumerate(("below", "above"))}


def _read_tails(d: dict) -> dict:
    t_w = _floats(_list(d, "t_w"))
    out = {}
    alpha, alpha_se = _floats(_list(d, "alpha")), _floats(_list(d, "alpha_se"))
    if alpha.size == t_w.size == alpha_se.size:
        tail = _dicts(_list(d, "tail"))
        flags = tuple(_flag(t.get("flag")) for t in tail) if len(tail) == t_w.size else (None,) * t_w.size
        out["alpha"] = Series(t_w, alpha, alpha_se, flags)
    stable = _dicts(_list(d, "stable"))
    if len(stable) == t_w.size:
        out["stable_alpha"] = Series(t_w, _floats([s.get("alpha") for s in stable]),
                                     _floats([s.get("alpha_se") for s in stable]), (None,) * t_w.size)
    return out


def _read_loss(d: dict) -> dict:
    t_w, mean = _floats(_list(d, "t_w")), _floats(_list(d, "abs_dloss_mean"))
    if mean.size != t_w.size:
        return {}
    return {"abs_dloss_mean": Series(t_w, mean, np.full(t_w.size, np.nan), (None,) * t_w.size)}


def _read_eval(d: dict) -> dict:
    """The last finite loss and accuracy of each data set of the evaluation probe."""
    out = {}
    for kind in ("losses", "accuracies"):
        sets = d.get(kind) if isinstance(d.get(kind), dict) else {}
        for name, values in sets.items():
            values = _floats(values)
            finite = values[np.isfinite(values)]
            if finite.size:
                quantity = f"{'loss' if kind == 'losses' else 'accuracy'}_{name}"
                out[quantity] = Series(np.array([np.nan]), finite[-1:], np.array([np.nan]), (None,))
    return out


_READERS = {"diffusion": _read_diffusion, "msl": lambda d: {"exponent": _fits(_floats(_list(d, "t_w")),
                                                                              _dicts(_list(d, "fits")))},
            "path": _read_path, "tails": _read_tails, "loss": _read_loss, "eval": _read_eval}


def _read_curves(results: dict) -> dict:
    curves = {}
    msd = results.get("msd") if isinstance(results.get("msd"), dict) else {}
    t_w, lags = _floats(_list(msd, "t_w")), _floats(_list(msd, "lags"))
    values, se = (_matrix(msd.get(k), (t_w.size, lags.size)) for k in ("msd", "msd_se"))
    if t_w.size and lags.size and values is not None:
        curves["msd"] = (t_w, lags, values, se if se is not None else np.full_like(values, np.nan))
    loss = results.get("loss") if isinstance(results.get("loss"), dict) else {}
    steps, values = _floats(_list(loss, "steps")), _floats(_list(loss, "loss"))
    if steps.size and steps.size == values.size:
        curves["loss"] = (steps, values)
    probe = results.get("eval") if isinstance(results.get("eval"), dict) else {}
    steps = _floats(_list(probe, "steps"))
    losses = {str(k): _floats(v) for k, v in (probe.get("losses") or {}).items()} \
        if isinstance(probe.get("losses"), dict) else {}
    losses = {k: v for k, v in losses.items() if v.size == steps.size}
    if steps.size and losses:
        curves["eval"] = (steps, losses)
    return curves


def _analysis_settings(settings) -> dict:
    settings = settings if isinstance(settings, dict) else {}
    plan = settings.get("plan") if isinstance(settings.get("plan"), dict) else {}
    lags = _floats(_list(plan, "lags"))
    return {"window": settings.get("window"), "t_w": _list(plan, "t_w"),
            "lags": [int(lags.size), _float(lags[0]) if lags.size else None, _float(lags[-1]) if lags.size else None],
            "threshold": settings.get("threshold"), "backend": settings.get("backend")}


def read_run(doc: dict, name: str, *, folder: str | None = None) -> Run:
    """What a comparison needs from one analysis' JSON (``results.json`` or ``Analysis.to_dict()``).

    Reads exactly: ``source.path``, ``source.settings`` (flattened), ``settings`` (window,
    t_w, lags, threshold, backend), ``skipped``, and of ``results``: ``msd`` (t_w, lags,
    msd, msd_se), ``diffusion`` (per window the whole, early and late fits' slope,
    slope_se and flag, tau0 and reason; t0 and t0_reason), ``msl`` (t_w; fits: 2H),
    ``path`` (t_w; the fits below and above the crossover: D_f = 2/λ), ``tails`` (t_w,
    alpha, alpha_se, tail[].flag, stable[].alpha and alpha_se), ``loss`` (steps, loss,
    t_w, abs_dloss_mean) and ``eval`` (steps, losses, accuracies). Anything missing or of
    the wrong type is left out (the file may have been edited by anyone).

    Parameters
    ----------
    doc : dict
        The analysis as JSON.
    name : str
        What to call the run where its settings do not tell it apart.
    folder : str, optional
        The result folder it was read from.

    Returns
    -------
    Run

    Examples
    --------
    >>> import pyengine as pe
    >>> res = pe.analyze(pe.models.brownian(1000, 8, seed=0), window=250, progress=False)
    >>> run = read_run(res.to_dict(), "brownian")
    >>> run.numbers["diffusion", "alpha"].value.shape
    (4,)
    """
    from pyengine.report.compare import flatten_settings

    if not isinstance(doc, dict):
        raise ValueError(f"{name}: not a pyengine results file (expected a JSON object)")
    source = doc.get("source") if isinstance(doc.get("source"), dict) else {}
    results = doc.get("results") if isinstance(doc.get("results"), dict) else {}
    numbers = {}
    for statistic, reader in _READERS.items():
        if isinstance(results.get(statistic), dict):
            got = reader(results[statistic])
            numbers.update({(statistic, q): s for q, s in got.items() if s is not None})
    skipped = doc.get("skipped") if isinstance(doc.get("skipped"), dict) else {}
    path = source.get("path") if isinstance(source.get("path"), str) else None
    return Run(name, flatten_settings(source.get("settings")), numbers, _read_curves(results),
               _analysis_settings(doc.get("settings")), {str(k): str(v) for k, v in skipped.items()}, path, folder)


def _analysis_doc(analysis: Analysis) -> dict:
    """The part of ``analysis.to_dict()`` that :func:`read_run` reads."""
    return {"source": analysis.source, "settings": analysis.settings, "skipped": analysis.skipped,
            "results": {k: analysis.results[k].to_dict() for k in READ if k in analysis.results}}


def _read_item(item, i: int, analyze_options: dict) -> Run:
    """One item of :func:`compare` as a Run: an Analysis, a result folder or results.json, or a
    trajectory file (analysed here)."""
    if isinstance(item, Analysis):
        name = str(item.source["path"]) if item.source.get("path") else f"run {i + 1}"
        return read_run(_analysis_doc(item), name)
    if not isinstance(item, (str, os.PathLike)):
        raise TypeError(f"compare: item {i + 1} is a {type(item).__name__}; expected an Analysis, a result folder "
                        "(with results.json) or a trajectory file")
    path = pathlib.Path(item)
    if path.is_dir():
        results = path / RESULTS_FILE
        if not results.is_file():
            raise FileNotFoundError(f"{path} has no {RESULTS_FILE}: give a folder written by `pyengine analyze`, "
                                    "or the trajectory file itself")
        return _read_json(results, os.fspath(item), folder=os.fspath(path))
    if path.is_file() and path.suffix.lower() == ".json":
        return _read_json(path, os.fspath(item), folder=os.fspath(path.parent))
    if path.is_file():
        analysis = analyze(path, **analyze_options)
        return read_run(_analysis_doc(analysis), os.fspath(item))
    raise FileNotFoundError(f"{path}: no such file or folder")


def _read_json(path: pathlib.Path, name: str, folder: str) -> Run:
    try:
        doc = json.loads(path.read_text())
    except ValueError as exc:
        raise ValueError(f"{path} is not a pyengine results file ({exc})") from None
    return read_run(doc, name, folder=folder)


# -- which settings tell the runs apart ----------------------------------------------------------


def _key(value) -> str:
    """A setting as a comparable key (lists and dicts by their JSON)."""
    return json.dumps(jsonable(value), sort_keys=True, default=str)


def _is_seed(name: str) -> bool:
    """A seed setting: ``seed``, ``data.seed``, ``init_seed``, ``seed_data``."""
    last = name.rsplit(".", 1)[-1]
    return last == "seed" or last.endswith("_seed") or last.startswith("seed_")


def _number(value) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _follows(name: str, kept: list[str], runs: list[Run]) -> bool:
    """Whether runs equal in ``kept`` are equal in ``name`` too (its value follows from them)."""
    seen: dict = {}
    for run in runs:
        where = tuple(_key(run.settings.get(k)) for k in kept)
        if seen.setdefault(where, _key(run.settings.get(name))) != _key(run.settings.get(name)):
            return False
    return True


def _varying(runs: list[Run]) -> tuple[list[str], dict[str, list[str]]]:
    """The settings that tell the runs apart (labels), and the other differing settings with
    the labelling ones they follow from.

    A setting of the user's differs in its own right unless it is one-to-one with a
    labelling setting stored before it (``hurst`` beside ``batch_size`` when each batch
    size has its own H). One the recorder added (``model.n_params``, ``optimizer.lr``, a
    probe's settings) labels runs only where the labelling settings do not already
    determine it (``model.class`` of two architectures)."""
    from pyengine.report.compare import is_recorded, settings_order

    names = settings_order(list(dict.fromkeys(n for run in runs for n in run.settings)))
    kept: list[str] = []
    derived: dict[str, list[str]] = {}
    for name in names:
        if _follows(name, [], runs):
            continue  # the same in every run
        if is_recorded(name):
            if _follows(name, kept, runs):
                derived[name] = [k for k in kept if not _follows(name, [x for x in kept if x != k], runs)] or kept
                continue
        else:
            twin = next((k for k in kept if _follows(name, [k], runs) and _follows(k, [name], runs)), None)
            if twin is not None:
                derived[name] = [twin]
                continue
        kept.append(name)
    return kept, derived


def _short(value, width: int = 32) -> str:
    """A setting value for a label: numbers as written, class paths by their last part."""
    if value is None:
        return "–"
    if isinstance(value, float):
        text = f"{value:g}"
    elif isinstance(value, (list, dict)):
        text = _key(value)
    else:
        text = str(value)
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _label(names: list[str], settings: dict) -> str:
    def value(name):
        v = settings.get(name)
        return v.rsplit(".", 1)[-1] if name.endswith(".class") and isinstance(v, str) else v

    return ", ".join(f"{n}={_short(value(n))}" for n in names)


def _sort_key(run: Run, names: list[str]) -> tuple:
    out = []
    for name in names:
        v = run.settings.get(name)
        out.append((-1, 0.0, "") if v is None else (0, _number(v), "") if _number(v) is not None else (1, 0.0, _key(v)))
    return tuple(out)


# -- trends ------------------------------------------------------------------------------------


@dataclass(frozen=True, repr=False)
class Trend(Result):
    """A headline number against a numeric setting: a least-squares line through the runs.

    The line is value = intercept + slope · X with X = log10(setting) (``scale="log"``) or
    the setting itself (``"linear"``); one point per run (seeds are separate points), at
    the same window of each run. The slope's SE comes from the scatter about the line
    (n − 2 degrees of freedom), so it includes the seed-to-seed variation;
    ``slope_se_within`` propagates the runs' own SEs instead (Σ (dX_i/Sxx)² SE_i²): much
    smaller than ``slope_se`` means the runs differ more than their error bars say.

    Attributes
    ----------
    column, setting : str
        The headline number (:attr:`Quantity.column`) and the setting.
    scale : {"log", "linear"}
    where : dict
        The other settings that differ between runs, held at these values.
    x, y, y_se : ndarray of float64, shape (n,)
        The setting, the value and its within-run SE of each run used.
    t_w : ndarray of float64, shape (n,)
        The window of each point (NaN for per-run numbers).
    slope, slope_se, slope_se_within, intercept : float
        NaN when there is no line (see ``flag``).
    n_points, n_values : int
        Runs used and distinct setting values among them.
    x_mean, sxx, resid_var : float
        Mean and sum of squares of X, residual variance: the line's SE at any X.
    flag : str or None
        Why there is no line (fewer than 3 setting values), else None.
    """

    column: str
    setting: str
    scale: str
    where: dict
    x: np.ndarray
    y: np.ndarray
    y_se: np.ndarray
    t_w: np.ndarray
    slope: float
    slope_se: float
    slope_se_within: float
    intercept: float
    n_points: int
    n_values: int
    x_mean: float
    sxx: float
    resid_var: float
    flag: str | None = None

    _rows = None
    _headline = {"slope": "slope_se", "slope_se_within": None}
    _flags = {"slope": "flag"}
    _curves = {"y": ("point",)}
    _coords = {"point": None}
    _x = {"point": "x"}
    _se = {"y": "y_se"}

    def transform(self, x) -> np.ndarray:
        """X of the line: log10(x) or x."""
        x = np.asarray(x, dtype=np.float64)
        if self.scale != "log":
            return x
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.log10(x)

    def line(self, x) -> np.ndarray:
        """The fitted value at setting values ``x``."""
        return self.intercept + self.slope * self.transform(x)

    def line_se(self, x) -> np.ndarray:
        """Standard error of the fitted value at ``x``: √(s² (1/n + (X − X̄)²/Sxx))."""
        dx = self.transform(x) - self.x_mean
        return np.sqrt(self.resid_var * (1.0 / max(self.n_points, 1) + dx**2 / self.sxx))

    def describe(self) -> str:
        """One line: ``alpha2 vs batch_size: -0.12 ± 0.031 per decade (3 values, 6 runs)``."""
        unit = "per decade" if self.scale == "log" else "per unit"
        where = f" at {_label(list(self.where), self.where)}" if self.where else ""
        if self.flag:
            return f"{self.column} vs {self.setting}{where}: no line ({self.flag})"
        return (f"{self.column} vs {self.setting}{where}: {self.slope:.4g} ± {self.slope_se:.2g} {unit} "
                f"({self.n_values} values, {self.n_points} runs)")


def fit_trend(x, y, y_se=None, *, scale: str = "auto") -> dict:
    """Least-squares line of ``y`` against ``x`` (or log10 x): the numbers of a :class:`Trend`.

    ``scale="auto"`` is ``"log"`` when every x is positive, else ``"linear"``: learning
    rates, batch sizes and widths are swept geometrically and act by factors (SGD's noise
    scale goes as lr/b), so a line in log10 of the setting gives each factor the same
    weight and reads as a change per decade; a setting that can be zero or negative
    (momentum 0, weight decay 0) is fitted on its own scale. The quantity is not logged:
    exponents may be near or below zero. A line needs at least 3 distinct setting values.

    Parameters
    ----------
    x, y : array_like of float, shape (n,)
    y_se : array_like of float, shape (n,), optional
        The within-run standard errors of ``y``.
    scale : {"auto", "log", "linear"}

    Returns
    -------
    dict
        scale, slope, slope_se, slope_se_within, intercept, n_points, n_values, x_mean,
        sxx, resid_var, flag.

    Examples
    --------
    >>> fit = fit_trend([16, 64, 256], [1.2, 1.1, 1.0])
    >>> fit["scale"], round(fit["slope"], 4), round(fit["slope_se"], 12)
    ('log', -0.1661, 0.0)
    """
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    y_se = np.full(y.shape, np.nan) if y_se is None else np.asarray(y_se, dtype=np.float64)
    if scale not in ("auto", "log", "linear"):
        raise ValueError(f"scale must be 'auto', 'log' or 'linear', got {scale!r}")
    if scale == "auto":
        scale = "log" if x.size and np.all(x > 0) else "linear"
    if scale == "log" and np.any(x <= 0):
        raise ValueError(f"scale='log' needs positive setting values, got {x.min():g}")
    with np.errstate(divide="ignore", invalid="ignore"):
        big_x = np.log10(x) if scale == "log" else x
    ok = np.isfinite(big_x) & np.isfinite(y)
    n, n_values = int(ok.sum()), int(np.unique(big_x[ok]).size)
    nan = math.nan
    out = {"scale": scale, "slope": nan, "slope_se": nan, "slope_se_within": nan, "intercept": nan, "n_points": n,
           "n_values": n_values, "x_mean": nan, "sxx": nan, "resid_var": nan, "flag": None}
    if n_values < 3:
        out["flag"] = f"{n_values} setting value{'s' if n_values != 1 else ''} with a value, a line needs 3"
        return out
    bx, by, bse = big_x[ok], y[ok], y_se[ok]
    dx = bx - bx.mean()
    sxx = float(dx @ dx)
    slope = float(dx @ (by - by.mean())) / sxx
    intercept = float(by.mean() - slope * bx.mean())
    resid = by - intercept - slope * bx
    resid_var = float(resid @ resid) / (n - 2)
    out.update(slope=slope, intercept=intercept, x_mean=float(bx.mean()), sxx=sxx, resid_var=resid_var,
               slope_se=math.sqrt(resid_var / sxx), slope_se_within=float(np.sqrt(np.sum((dx / sxx) ** 2 * bse**2))))
    return out


# -- the comparison ----------------------------------------------------------------------------


@dataclass(repr=False)
class Comparison:
    """Several runs side by side, as returned by :func:`compare`.

    Attributes
    ----------
    runs : list of Run
        Sorted by the settings that tell them apart (numbers numerically).
    labels : list of str
        One per run: ``"batch_size=16, seed=0"`` (its name where no setting differs).
    varying : list of str
        The stored settings that differ between the runs and label them.
    derived : dict of str to list of str
        The other differing settings, each with the labelling settings it follows from
        (``model.n_params`` from ``width``; ``optimizer.lr`` from ``lr``).
    by : list of str
        The settings that define the groups: by default ``varying`` without the seeds.
    groups : list of list of int
        Indices into ``runs`` of each group (runs equal in ``by``: seeds of one setting;
        each run alone when no run has stored settings, as for analyses of arrays).
    group_labels : list of str
    """

    runs: list
    labels: list
    varying: list
    derived: dict
    by: list
    groups: list
    group_labels: list

    # -- numbers ------------------------------------------------------------------------------

    def quantities(self) -> list[Quantity]:
        """The headline numbers at least one run has, in the order of :data:`QUANTITIES`, then
        the evaluation probe's last losses and accuracies."""
        have = {k for run in self.runs for k in run.numbers}
        out = [q for q in QUANTITIES if (q.statistic, q.quantity) in have]
        for statistic, quantity in sorted(k for k in have if k[0] == "eval"):
            what, _, data = quantity.partition("_")
            out.append(Quantity(statistic, quantity, f"eval_{quantity}", f"{data} {what} (last probe)"))
        return out

    def quantity(self, name: str) -> Quantity:
        """A headline number by its column (``"alpha2"``, ``"tail_alpha"``) or
        ``"statistic.quantity"`` (``"msl.exponent"``)."""
        for q in self.quantities():
            if name in (q.column, f"{q.statistic}.{q.quantity}"):
                return q
        raise ValueError(f"unknown headline number {name!r}; these runs have "
                         f"{', '.join(q.column for q in self.quantities())}")

    def at_window(self, q: Quantity, window: int = -1) -> list[tuple[float, float, float, str | None]]:
        """(t_w, value, se, flag) of the headline number ``q`` (:meth:`quantity`) for each run at
        window ``window`` (a Python index into the run's windows; per-run numbers such as t0
        give their one value; NaNs where a run has none)."""
        nan = (math.nan, math.nan, math.nan, None)
        out = []
        for run in self.runs:
            series = run.numbers.get((q.statistic, q.quantity))
            out.append(nan if series is None else series.at(0 if np.isnan(series.t_w).all() else window))
        return out

    def _settings_columns(self) -> dict[str, str]:
        """Column name of each varying setting in the tables (renamed if it clashes)."""
        taken = set(TIDY_RUN_COLUMNS) | set(TIDY_VALUE_COLUMNS) | {q.column for q in self.quantities()}
        return {n: f"setting.{n}" if n in taken else n for n in self.varying}

    def summary(self, window: int = -1):
        """The headline numbers of every run at one window, as a pandas DataFrame.

        One row per run: ``run`` (its label), the varying settings, ``t_w`` (the window,
        by default each run's last), a column per headline number (:attr:`Quantity.column`)
        and its ``<column>_se``, and ``flag`` (why values fail the fit quality rule, naming
        them; NaN when all pass).

        Examples
        --------
        >>> cmp.summary()[["run", "batch_size", "alpha2", "alpha2_se"]]  # doctest: +SKIP
        """
        pd = import_optional("pandas")
        columns = self._settings_columns()
        rows = [{"run": label, **{columns[n]: run.settings.get(n) for n in self.varying}, "t_w": math.nan}
                for label, run in zip(self.labels, self.runs)]
        flags: list[list[str]] = [[] for _ in self.runs]
        for q in self.quantities():
            for i, (t_w, value, se, flag) in enumerate(self.at_window(q, window)):
                rows[i][q.column], rows[i][f"{q.column}_se"] = value, se
                if not math.isnan(t_w) and math.isnan(rows[i]["t_w"]):
                    rows[i]["t_w"] = t_w
                if flag and not math.isnan(value):
                    flags[i].append(f"{q.column}: {flag}")
        for row, flag in zip(rows, flags):
            row["flag"] = "; ".join(flag) if flag else np.nan
        return pd.DataFrame(rows)

    def to_pandas(self):
        """Every headline number of every run as one tidy pandas DataFrame.

        One row per run × statistic × quantity × window, with the columns ``run`` (its
        label), ``group`` (its group's label), ``source`` (where it came from), the varying
        settings (one column each, named as flattened: ``batch_size``, ``optimizer.lr``),
        then ``statistic``, ``quantity`` (as in :meth:`pyengine.Analysis.to_pandas`:
        ``diffusion``/``alpha2``, ``msl``/``exponent``, ``path``/``fractal_dim_above``,
        ``tails``/``alpha``, ``eval``/``accuracy_test`` …), ``t_w`` (NaN for per-run numbers:
        t0, the last evaluation), ``value``, ``se`` and ``flag``. Missing values are NaN.

        Examples
        --------
        >>> table = cmp.to_pandas()  # doctest: +SKIP
        >>> table.query("quantity == 'alpha2'").pivot(index="t_w", columns="run", values="value")  # doctest: +SKIP
        """
        pd = import_optional("pandas")
        columns = self._settings_columns()
        group_of = {i: g for g, members in enumerate(self.groups) for i in members}
        rows = []
        for i, (label, run) in enumerate(zip(self.labels, self.runs)):
            head = {"run": label, "group": self.group_labels[group_of[i]], "source": run.name,
                    **{columns[n]: run.settings.get(n) for n in self.varying}}
            for q in self.quantities():
                series = run.numbers.get((q.statistic, q.quantity))
                if series is None:
                    continue
                for t_w, value, se, flag in zip(series.t_w, series.value, series.se, series.flag):
                    rows.append({**head, "statistic": q.statistic, "quantity": q.quantity, "t_w": t_w,
                                 "value": value, "se": se, "flag": np.nan if flag is None else flag})
        names = [*TIDY_RUN_COLUMNS, *columns.values(), *TIDY_VALUE_COLUMNS]
        return pd.DataFrame(rows, columns=names)

    def group_stats(self) -> list[dict]:
        """Mean ± standard error across the runs of each group, per headline number and window.

        Returns
        -------
        list of dict
            ``group`` (index), ``column``, ``statistic``, ``quantity``, ``t_w``, ``n``
            (runs with a value), ``mean``, ``se_runs`` (sd across the runs / √n, NaN below
            2), ``se_within`` (the runs' own SEs propagated to the mean: √(Σ SE_i²) / n),
            ``n_flagged`` (values among them that fail the fit quality rule; they are
            included in the mean).
        """
        out = []
        for g, members in enumerate(self.groups):
            for q in self.quantities():
                series = [self.runs[i].numbers[(q.statistic, q.quantity)] for i in members
                          if (q.statistic, q.quantity) in self.runs[i].numbers]
                out.extend({"group": g, "column": q.column, "statistic": q.statistic, "quantity": q.quantity,
                            **_mean_se(series, t_w)} for t_w in _union_t_w(series))
        return out

    def group_summary(self):
        """:meth:`group_stats` as a pandas DataFrame, with the group's label and settings.

        Columns: ``group`` (label), the grouping settings (:attr:`by`), ``statistic``,
        ``quantity``, ``t_w``, ``n``, ``mean``, ``se_runs``, ``se_within``, ``n_flagged``.
        """
        pd = import_optional("pandas")
        columns = self._settings_columns()
        rows = []
        for stat in self.group_stats():
            first = self.runs[self.groups[stat["group"]][0]]
            rows.append({"group": self.group_labels[stat["group"]],
                         **{columns.get(n, n): first.settings.get(n) for n in self.by},
                         **{k: v for k, v in stat.items() if k not in ("group", "column")}})
        return pd.DataFrame(rows)

    def numeric_settings(self) -> list[str]:
        """The varying settings (seeds left out) that are numbers in every run and take at
        least 2 values: the x axes of trends."""
        out = []
        for name in self.varying:
            values = [_number(run.settings.get(name)) for run in self.runs]
            if not _is_seed(name) and None not in values and len(set(values)) >= 2:
                out.append(name)
        return out

    def trends(self, quantity: str | None = None, setting: str | None = None, *, window: int = -1,
               scale: str = "auto") -> list[Trend]:
        """Lines of headline numbers against numeric settings (:class:`Trend`).

        One per headline number × numeric setting × combination of the other varying
        settings (seeds left out: they are the replicates); those without 3 setting values
        carry the reason in ``flag``.

        Parameters
        ----------
        quantity : str, optional
            A headline number (:meth:`quantity`); default all.
        setting : str, optional
            A numeric varying setting (:meth:`numeric_settings`); default all.
        window : int
            Which window of each run (a Python index; default the last).
        scale : {"auto", "log", "linear"}
            See :func:`fit_trend`.
        """
        quantities = [self.quantity(quantity)] if quantity is not None else self.quantities()
        settings = self.numeric_settings()
        if setting is not None:
            if setting not in settings:
                raise ValueError(f"{setting!r} is not a numeric setting that differs between these runs; they have "
                                 f"{', '.join(settings) or 'none'}")
            settings = [setting]
        out = []
        for name in settings:
            others = [n for n in self.varying if n != name and not _is_seed(n) and not _follows(n, [name], self.runs)]
            parts: dict = {}
            for i, run in enumerate(self.runs):
                parts.setdefault(tuple(_key(run.settings.get(n)) for n in others), []).append(i)
            for members in parts.values():
                where = {n: self.runs[members[0]].settings.get(n) for n in others}
                out.extend(self._trend(q, name, members, where, window, scale) for q in quantities)
        return out

    def trend(self, quantity: str, setting: str, *, window: int = -1, scale: str = "auto") -> Trend:
        """The one line of ``quantity`` against ``setting`` (:meth:`trends`); raises when other
        settings also differ (several lines: use :meth:`trends`).

        Examples
        --------
        >>> cmp.trend("alpha2", "batch_size").describe()  # doctest: +SKIP
        'alpha2 vs batch_size: -0.1 ± 0.02 per decade (3 values, 6 runs)'
        """
        found = self.trends(quantity, setting, window=window, scale=scale)
        if len(found) != 1:
            raise ValueError(f"{len(found)} lines of {quantity} against {setting} (other settings differ too): "
                             "use trends()")
        return found[0]

    def _trend(self, q: Quantity, setting: str, members: list[int], where: dict, window: int, scale: str) -> Trend:
        values = self.at_window(q, window)
        x = np.array([_number(self.runs[i].settings.get(setting)) for i in members], dtype=np.float64)
        t_w, y, se = (np.array([values[i][k] for i in members], dtype=np.float64) for k in range(3))
        fit = fit_trend(x, y, se, scale=scale)
        return Trend(q.column, setting, where=where, x=x, y=y, y_se=se, t_w=t_w, **fit)

    # -- output -------------------------------------------------------------------------------

    def inputs(self) -> list[str]:
        """The files and result folders the runs were read from (an output may not hold them)."""
        return [p for run in self.runs for p in (run.source, run.folder) if p]

    def to_dict(self) -> dict:
        """Everything the page shows, JSON-ready (what :meth:`save` writes to comparison.json)."""
        from pyengine._version import __version__

        return jsonable({
            "producer": f"pyengine {__version__}", "labels": self.labels, "varying": self.varying,
            "derived": self.derived, "by": self.by, "groups": self.groups, "group_labels": self.group_labels,
            "runs": [run.to_dict() for run in self.runs], "group_stats": self.group_stats(),
            "trends": [t.to_dict() for t in self.trends()],
        })

    def save(self, out: str | os.PathLike, *, formats=("png", "svg"), windows=None,
             self_contained: bool = False) -> pathlib.Path:
        """Write the comparison page, its figures and comparison.json into the directory ``out``.

        ``out`` may be new, empty, or an earlier pyengine output, and may not hold any of
        the runs' files or result folders; it is written whole and swapped in
        (:func:`pyengine.output.write_output`).

        Parameters
        ----------
        out : path
        formats : sequence of {"png", "svg", "pdf"}
            Files written per figure (the page shows the PNG).
        windows : sequence of int, optional
            The windows (Python indices into each run's windows) whose MSD curves are
            overlaid, one panel each; default the first, middle and last.
        self_contained : bool
            Also write ``report-self-contained.html``, the page with its images embedded.

        Returns
        -------
        Path
            ``out/index.html``.
        """
        from pyengine.output import write_output
        from pyengine.report.compare import write_comparison

        formats = _check_formats(formats)

        def fill(tmp: pathlib.Path) -> None:
            write_comparison(self, tmp, formats=formats, windows=windows, self_contained=self_contained)

        return write_output(out, fill, inputs=self.inputs()) / "index.html"

    # -- display ------------------------------------------------------------------------------

    def headline(self) -> str:
        """One line: how many runs and groups, and what differs."""
        n = len(self.groups)
        groups = f" in {n} group{'s' if n != 1 else ''}" if n != len(self.runs) else ""
        what = f", varying {', '.join(self.varying)}" if self.varying else ", no stored setting differs"
        n = len(self.runs)
        return f"Comparison of {n} run{'s' if n != 1 else ''}{groups}{what}"

    def __repr__(self) -> str:
        shown = [q for q in self.quantities() if q.column in ("alpha2", "msl_2H", "tail_alpha")]
        lines = [self.headline() + (", at each run's last window:" if shown else "")]
        width = max(len(label) for label in self.labels)
        for i, label in enumerate(self.labels[:12]):
            cells = []
            for q in shown:
                _, value, se, _ = self.at_window(q, -1)[i]
                cells.append(f"{q.column} {value:.4g} ± {se:.2g}" if math.isfinite(se) else f"{q.column} {value:.4g}")
            lines.append(f"  {label:<{width}}  " + "; ".join(cells))
        if len(self.labels) > 12:
            lines.append(f"  … and {len(self.labels) - 12} more runs")
        return "\n".join(line[:110] for line in lines)

    def _repr_html_(self) -> str:
        from pyengine.report.compare import headline_table

        return f"<div class='pyengine-comparison'><p><b>{_esc(self.headline())}</b></p>{headline_table(self)}</div>"


def _esc(text: str) -> str:
    import html

    return html.escape(text)


def _union_t_w(series: list[Series]) -> list[float]:
    t_w = sorted({float(t) for s in series for t in s.t_w if not math.isnan(t)})
    return t_w or ([math.nan] if series else [])


def _mean_se(series: list[Series], t_w: float) -> dict:
    """Mean, SE across runs and propagated within-run SE of the runs' values at ``t_w``."""
    values, ses, flagged = [], [], 0
    for s in series:
        hit = np.flatnonzero(np.isnan(s.t_w)) if math.isnan(t_w) else np.flatnonzero(s.t_w == t_w)
        if hit.size and math.isfinite(s.value[hit[0]]):
            values.append(s.value[hit[0]])
            ses.append(s.se[hit[0]])
            flagged += s.flag[hit[0]] is not None
    n = len(values)
    values, ses = np.array(values), np.array(ses)
    mean = float(values.mean()) if n else math.nan
    se_runs = float(values.std(ddof=1) / math.sqrt(n)) if n >= 2 else math.nan
    se_within = float(math.sqrt(float(np.sum(ses**2))) / n) if n else math.nan
    return {"t_w": t_w, "n": n, "mean": mean, "se_runs": se_runs, "se_within": se_within, "n_flagged": flagged}


def _check_formats(formats) -> tuple[str, ...]:
    formats = (formats,) if isinstance(formats, str) else tuple(formats)
    if not formats or any(f not in ("png", "svg", "pdf") for f in formats):
        raise ValueError(f"formats must be a non-empty sequence of 'png', 'svg', 'pdf', got {formats!r}")
    return tuple(dict.fromkeys(formats))


def comparison_of(runs: list[Run], by=None) -> Comparison:
    """A :class:`Comparison` of runs already read (:func:`read_run`): labels, groups, order."""
    if not runs:
        raise ValueError("compare: no runs given; pass at least one analysis, result folder or trajectory file")
    varying, derived = _varying(runs)
    if by is None:
        by = [n for n in varying if not _is_seed(n)]
    else:
        by = [by] if isinstance(by, str) else list(by)
        known = list(dict.fromkeys(n for run in runs for n in run.settings))
        unknown = [n for n in by if n not in known]
        if unknown:
            raise ValueError(f"by: no run has the setting(s) {', '.join(map(repr, unknown))}; the settings that "
                             f"differ are {', '.join(varying) or 'none'}")
    order = sorted(range(len(runs)), key=lambda i: _sort_key(runs[i], varying))
    runs = [runs[i] for i in order]
    labels = [_label(varying, run.settings) if varying else run.name for run in runs]
    for i, label in enumerate(labels):
        if labels.count(label) > 1:
            labels[i] = f"{label} ({runs[i].name})" if runs[i].name not in label else f"{label} ({i + 1})"
    groups: dict = {}
    unknown = not any(run.settings for run in runs)  # no stored settings: no run is known to repeat another
    for i, run in enumerate(runs):
        groups.setdefault((i,) if unknown else tuple(_key(run.settings.get(n)) for n in by), []).append(i)
    members = list(groups.values())
    group_labels = [labels[m[0]] if unknown else _label(by, runs[m[0]].settings) if by else "all runs"
                    for m in members]
    return Comparison(runs, labels, varying, derived, by, members, group_labels)


def compare(items, by=None, *, window="auto", lags=48, progress: bool | None = None, **analyze_options) -> Comparison:
    """Compare recorded runs: labels from the settings that differ, seeds grouped, trends.

    Parameters
    ----------
    items : sequence
        Each an :class:`pyengine.Analysis`, a result folder written by ``Analysis.save`` /
        ``pyengine analyze`` (or its ``results.json``; read back, nothing recomputed), or a
        trajectory file, analysed here with the same settings for every file
        (``window``, ``lags``, ``**analyze_options`` of :func:`pyengine.analyze`), one at a
        time (only the numbers the comparison shows are kept).
    by : str or sequence of str, optional
        The settings (flattened names: ``batch_size``, ``optimizer.lr``) whose runs are
        compared; runs equal in them are replicates, shown as mean ± SE across the runs.
        Default: every stored setting that differs, except seeds, so runs that differ only
        in their seed are grouped.
    window, lags, progress, **analyze_options
        For trajectory files: as in :func:`pyengine.analyze`.

    Returns
    -------
    Comparison

    Examples
    --------
    >>> import pyengine as pe
    >>> runs = []
    >>> for h in (0.3, 0.5, 0.7):
    ...     res = pe.analyze(pe.models.fbm(1001, 16, h, seed=0), window=250, only=["diffusion"], progress=False)
    ...     res.source["settings"] = {"hurst": h}  # as a trajectory file stores its settings
    ...     runs.append(res)
    >>> cmp = pe.compare(runs)
    >>> cmp.labels
    ['hurst=0.3', 'hurst=0.5', 'hurst=0.7']
    >>> cmp.trend("alpha", "hurst", scale="linear").slope > 1.5
    True
    """
    if isinstance(items, (str, os.PathLike, Analysis)):
        raise TypeError("compare: items must be a sequence (a list of analyses, result folders or files)")
    options = {"window": window, "lags": lags, "progress": progress, **analyze_options}
    return comparison_of([_read_item(item, i, options) for i, item in enumerate(items)], by)
