"""What every result object shares: JSON (``to_dict``, ``to_json``), a short ``repr``, a
``summary()`` table, ``_repr_html_`` for notebooks and tidy exports (``to_pandas``,
``to_xarray``).

A result class declares only what is specific to it, in class attributes that the
:class:`Result` mixin reads (every one optional):

``_rows``
    The dimension of the rows of :meth:`Result.summary`: ``"t_w"`` (default: one row per
    window), ``"step"`` (probe records: one row per probe step) or None (one estimate).
``_headline``
    ``{value: se}``: the headline numbers (one per row, or one scalar) and the attribute
    holding their standard error (None when there is none).
``_flags``
    ``{value: path}``: why each headline value fails the fit quality rule (None: it passes).
``_parts``
    ``{value: (dim, labels)}``: a headline with a second axis (λ below and above the
    crossover): summary columns ``<value>_<label>``.
``_text``
    ``{column: path}``: words per row in the summary (the diffusion regimes).
``_curves``
    ``{field: dims}``: the array fields that are curves, with their dimensions (xarray
    names), e.g. ``{"msd": ("t_w", "lag")}``. A dict field (one curve per data set) gives
    ``<field>_<key>``.
``_coords``
    ``{dim: field}``: where a dimension's coordinate lives (default: the field named like
    the dimension; None: positions 0 … n − 1).
``_x``
    ``{dim: field}``: a per-value x that stands for the dimension in the tidy table (MSL:
    each bin's rms distance ``r``); in :meth:`Result.to_xarray` a coordinate.
``_edges``
    ``{dim: field}``: bin edges (n + 1) of a dimension: coordinates ``<dim>_lo``, ``<dim>_hi``.
``_se``, ``_n``
    ``{field: field}``: a curve's standard error and the count behind each value (the
    ``se`` and ``n`` columns of the tidy table).

A result computed with ``groups=`` carries its per-group results, of the same class, in
``result.groups`` (:func:`with_groups`); :meth:`Result.to_dict`, the tidy table (its
``group`` column), :meth:`Result.summary` and the repr include them.

Paths name attributes: ``"alpha_se"``; ``"windows[].whole.flag"`` maps over a list
(``[w.whole.flag for w in self.windows]``); ``"fits[][].flag"`` over a list of pairs. A
None on the way gives None, and a missing number is NaN.
"""

from __future__ import annotations

import dataclasses
import html
import importlib
import json
import math
from typing import ClassVar

import numpy as np

__all__ = ["Result", "with_groups", "jsonable", "import_optional", "resolve", "TIDY_COLUMNS", "MAX_LEGEND_WINDOWS",
           "window_colors", "window_legend", "window_colorbar", "band_alpha", "readable_ticks", "legend_outside"]

#: Columns of every tidy table (:meth:`Result.to_pandas`), in this order.
TIDY_COLUMNS = ("statistic", "group", "quantity", "t_w", "x_name", "x", "value", "se", "n", "flag")
#: Widest line of a repr; most lines per section (headline numbers, arrays, settings).
WIDTH = 100
MAX_HEADLINE_LINES = 6
MAX_ITEM_LINES = 3
#: Most rows of the summary table in ``_repr_html_`` (the first and last ones shown).
MAX_HTML_ROWS = 12
_ROW_NAMES = {"t_w": "window", "step": "step"}


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


def import_optional(name: str):
    """Import an optional dependency (``"pandas"``, ``"xarray"``) or say how to install it.

    Raises
    ------
    ImportError
        ``"… needs pandas: pip install pandas"`` when it is missing.
    """
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise ImportError(f"this export needs {name}, which is not installed: pip install {name}") from exc


def resolve(obj, path: str):
    """The value at an attribute path of ``obj`` (module docstring); None if a step is None.

    Examples
    --------
    >>> from types import SimpleNamespace as NS
    >>> fits = NS(fits=[(NS(flag=None), NS(flag="2 points < 5"))])
    >>> resolve(fits, "fits[][].flag")
    [[None, '2 points < 5']]
    """
    return _walk(obj, path.split("."))


def _walk(obj, segments: list[str]):
    if obj is None or not segments:
        return obj
    name, depth = segments[0], 0
    while name.endswith("[]"):
        name, depth = name[:-2], depth + 1
    return _mapped(getattr(obj, name), depth, segments[1:])


def _mapped(value, depth: int, rest: list[str]):
    if value is None:
        return None
    if depth == 0:
        return _walk(value, rest)
    return [_mapped(v, depth - 1, rest) for v in value]


def _floats(value) -> np.ndarray:
    """Numbers (nested lists, arrays, scalars) as float64, None as NaN."""
    if value is None:
        return np.array(np.nan)
    if isinstance(value, (list, tuple)):
        return np.array([_floats(v) for v in value], dtype=np.float64)
    return np.asarray(value, dtype=np.float64)


def _objects(value, shape: tuple) -> np.ndarray:
    """Words or None (nested lists, scalars) as an object array of ``shape``."""
    out = np.empty(shape, dtype=object)
    if value is not None:
        out[...] = np.array(value, dtype=object)
    return out


def _missing_as_nan(column: np.ndarray) -> np.ndarray:
    """A column for pandas: None in a text column becomes NaN (pandas' missing value)."""
    if column.dtype != object:
        return column
    return np.array([np.nan if v is None else v for v in column], dtype=object)


def _num(value) -> str:
    """A number in a few characters: integers whole, others to 4 significant digits."""
    v = float(value)
    if not math.isfinite(v):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")
    if v.is_integer() and abs(v) < 1e9:
        return str(int(v))
    return f"{v:.4g}"


def _pm(value, se) -> str:
    """``value ± se``, the standard error to 2 significant digits (the value alone without one)."""
    se = float(se)
    if not math.isfinite(se):
        return _num(value)
    return f"{_num(value)} ± {se:.2g}"


def _short(value, width: int = 48) -> str:
    """A setting in a few characters (long ones cut with …)."""
    if isinstance(value, dict):
        text = "{" + ", ".join(f"{k}: {_short(v, 24)}" for k, v in value.items()) + "}"
    elif isinstance(value, (tuple, list)) and all(isinstance(v, (int, float, np.number)) for v in value):
        text = "(" + ", ".join(_num(v) for v in value) + ")"
    elif isinstance(value, (float, np.floating, int, np.integer)) and not isinstance(value, bool):
        text = _num(value)
    else:
        text = repr(value)
    return text if len(text) <= width else text[: width - 1] + "…"


def _wrap(items: list[str], indent: str = "  ", max_lines: int = MAX_ITEM_LINES) -> list[str]:
    """``items`` joined by "; " into lines of at most WIDTH characters, at most ``max_lines``."""
    lines, line = [], ""
    for i, item in enumerate(items):
        candidate = f"{line}; {item}" if line else item
        if line and len(indent) + len(candidate) > WIDTH:
            if len(lines) == max_lines - 1:
                lines.append(f"{line}; … ({len(items) - i} more)")
                return [indent + x for x in lines]
            lines.append(line)
            candidate = item
        line = candidate
    if line:
        lines.append(line)
    return [indent + x for x in lines]


def _array_text(name: str, value) -> str | None:
    """``name: shape dtype`` for arrays, lists of them, dicts of them and nested results; else None."""
    if isinstance(value, np.ndarray):
        return f"{name}: {value.shape} {value.dtype}"
    if isinstance(value, dict) and value and all(isinstance(v, np.ndarray) for v in value.values()):
        first = next(iter(value.values()))
        return f"{name}: {{{', '.join(map(str, value))}}} × {first.shape} {first.dtype}"
    if isinstance(value, (list, tuple)) and value and not all(isinstance(v, (int, float, np.number)) for v in value):
        if all(isinstance(v, np.ndarray) and v.shape == value[0].shape for v in value):
            return f"{name}: {len(value)} × {value[0].shape} {value[0].dtype}"
        return f"{name}: [{len(value)} {type(value[0]).__name__}]"
    if isinstance(value, (list, tuple)) and not value:
        return None
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return f"{name}: {type(value).__name__}"
    return None


class Result:
    """Mixin for result dataclasses: JSON, a short repr, a summary table and tidy exports.

    What is specific to a class is declared in class attributes (module docstring); the
    dataclass must be declared with ``repr=False`` so that the mixin's ``__repr__`` is used.
    """

    #: Per-group results of the same class, ``{group name: result}`` (:func:`with_groups`;
    #: docs/estimators.md, "Per-layer statistics"); None when the result has none.
    groups = None

    _exclude: ClassVar[tuple[str, ...]] = ()
    _rows: ClassVar[str | None] = "t_w"
    _headline: ClassVar[dict] = {}
    _flags: ClassVar[dict] = {}
    _parts: ClassVar[dict] = {}
    _text: ClassVar[dict] = {}
    _curves: ClassVar[dict] = {}
    _coords: ClassVar[dict] = {}
    _x: ClassVar[dict] = {}
    _edges: ClassVar[dict] = {}
    _se: ClassVar[dict] = {}
    _n: ClassVar[dict] = {}

    def to_dict(self) -> dict:
        """JSON-ready dict: arrays as lists, NaN/Inf as None, nested results as dicts; the
        per-group results (if any) under ``"groups"``."""
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in self._exclude}
        return jsonable(fields) | self._groups_dict()

    def _groups_dict(self) -> dict:
        """``{"groups": {name: result.to_dict()}}``, or {} without per-group results."""
        return {} if self.groups is None else {"groups": {k: v.to_dict() for k, v in self.groups.items()}}

    def to_json(self) -> str:
        """:meth:`to_dict` as a JSON string."""
        return json.dumps(self.to_dict())

    # -- what the declarations give -------------------------------------------------------

    def _coord(self, dim: str, size: int | None = None) -> np.ndarray:
        """The coordinate of a dimension (positions when the class names none)."""
        field = self._coords.get(dim, dim)
        if dim in self._coords:  # declared: it must exist (None: positions)
            value = None if field is None else getattr(self, field)
        else:
            value = getattr(self, field, None)
        if value is None:
            return np.arange(size)
        value = np.asarray(value)
        if size is not None and value.shape != (size,):
            raise ValueError(f"{type(self).__name__}: coordinate {field!r} of {dim!r} has shape {value.shape}, "
                             f"expected ({size},)")
        return value

    def _row_values(self) -> np.ndarray | None:
        """The row coordinate (t_w, probe steps), or None for a single estimate."""
        if self._rows is None:
            return None
        return self._coord(self._rows)

    def _headlines(self) -> list[tuple[str, np.ndarray, np.ndarray, np.ndarray]]:
        """(name, value, se, flag) of every headline number, parts split; arrays of the row shape."""
        out = []
        for name, se_path in self._headline.items():
            value = _floats(resolve(self, name))
            se = np.broadcast_to(_floats(resolve(self, se_path)), value.shape) if se_path else None
            flag = _objects(resolve(self, self._flags[name]) if name in self._flags else None, value.shape)
            if name in self._parts:
                for j, label in enumerate(self._parts[name][1]):
                    out.append((f"{name}_{label}", value[..., j], None if se is None else se[..., j], flag[..., j]))
            else:
                out.append((name, value, se, flag))
        return out

    def _curve_arrays(self, field: str):
        """(quantity, array) of a curve field: one, or one per key of a dict field; none when None."""
        value = getattr(self, field)
        if value is None:
            return []
        if isinstance(value, dict):
            return [(f"{field}_{key}", np.asarray(v)) for key, v in value.items()]
        return [(field, np.asarray(value))]

    def _summary_columns(self) -> dict:
        """Columns of :meth:`summary` as 1-D arrays (one entry per row)."""
        rows = self._row_values()
        n = 1 if rows is None else rows.size
        cols = {} if rows is None else {self._rows: rows}
        reasons = [dict() for _ in range(n)]
        for name, value, se, flag in self._headlines():
            cols[name] = value.reshape(n)
            if se is not None:
                cols[f"{name}_se"] = se.reshape(n)
            for i, f in enumerate(flag.reshape(n)):
                if f is not None:
                    reasons[i].setdefault(str(f), []).append(name)
        for name, path in self._text.items():
            cols[name] = _objects(resolve(self, path), (n,))
        if self._flags:
            cols["flag"] = np.array(["; ".join(f"{', '.join(names)}: {why}" for why, names in r.items()) or None
                                     for r in reasons], dtype=object)
        return cols

    # -- public ---------------------------------------------------------------------------

    def summary(self):
        """The headline numbers as a pandas DataFrame: one row per window (``t_w``), per probe
        step (``step``), or one row for a single estimate.

        Columns: the row coordinate, each headline number and its standard error
        (``<name>_se``), words such as the diffusion regime, and ``flag``: why a value fails
        the fit quality rule (:mod:`pyengine.fits`), naming the values, or None. Missing
        values are NaN. A result with per-group results (``groups``) has a first column
        ``group``: NaN on the whole model's rows, then each group's rows under its name.

        Examples
        --------
        >>> import pyengine as pe
        >>> fit = pe.fit_diffusion(pe.msd(pe.models.brownian(2001, 32, seed=0), window=1000, lags=40))
        >>> fit.summary()[["t_w", "alpha", "alpha_se"]].shape
        (2, 3)
        """
        pd = import_optional("pandas")
        table = pd.DataFrame({k: _missing_as_nan(v) for k, v in self._summary_columns().items()})
        if self.groups is None:
            return table
        frames = [table] + [r.summary().assign(group=name) for name, r in self.groups.items()]
        table = pd.concat(frames, ignore_index=True)
        return table[["group"] + [c for c in table.columns if c != "group"]]

    def to_pandas(self):
        """Every number of the result as one tidy pandas DataFrame (long format).

        One row per value, with the columns of :data:`TIDY_COLUMNS`: ``statistic`` (the
        class; in :meth:`pyengine.Analysis.to_pandas` the analysis' name), ``group`` (NaN
        for the whole model; the group's name for the rows of each per-group result of
        ``groups``, which follow the whole model's), ``quantity``,
        ``t_w`` (the window; NaN when the value is not per window), ``x_name`` and ``x``
        (what the curve runs over: ``"lag"``, ``"freq"``, ``"r"``, ``"step"`` …; NaN for a
        headline number), ``value``, ``se`` and ``n`` (its standard error and the count
        behind it, NaN where there is none) and ``flag`` (why a fitted value fails the
        quality rule, else None). Headline numbers come first, then the curves in C order
        (window by window). A curve over two dimensions besides ``t_w`` (a surface, a
        spectrum per probe step) names the first in its quantity: ``loss[d2=0.1]``.

        Examples
        --------
        >>> import numpy as np, pyengine as pe
        >>> res = pe.msd(np.random.default_rng(0).standard_normal((400, 8)).cumsum(0), window=200, lags=10)
        >>> table = res.to_pandas()
        >>> len(table[table.quantity == "msd"]) == res.msd.size
        True
        """
        pd = import_optional("pandas")
        return pd.DataFrame({k: _missing_as_nan(np.concatenate(v) if v else np.empty(0)) for k, v in self._tidy().items()},
                            columns=list(TIDY_COLUMNS))

    def _tidy(self) -> dict[str, list[np.ndarray]]:
        cols = {c: [] for c in TIDY_COLUMNS}
        name = type(self).__name__

        def add(quantity, t_w, x_name, x, value, se=None, n=None, flag=None):
            value = np.asarray(value, dtype=np.float64)
            shape, size = value.shape, value.size

            def column(v, dtype, missing):
                if v is None:
                    return np.full(size, missing, dtype=dtype)
                return np.broadcast_to(np.asarray(v, dtype=dtype), shape).ravel()

            cols["statistic"].append(np.full(size, name, dtype=object))
            cols["group"].append(np.full(size, None, dtype=object))
            cols["quantity"].append(column(quantity, object, None))
            cols["t_w"].append(column(t_w, np.float64, np.nan))
            cols["x_name"].append(np.full(size, x_name, dtype=object))
            cols["x"].append(column(x, np.float64, np.nan))
            cols["value"].append(value.ravel())
            cols["se"].append(column(se, np.float64, np.nan))
            cols["n"].append(column(n, np.float64, np.nan))
            cols["flag"].append(column(flag, object, None))

        self._tidy_own(add)
        for group, result in (self.groups or {}).items():
            for k, v in result._tidy().items():
                cols[k] += [np.full(len(a), group, dtype=object) for a in v] if k == "group" else v
        return cols

    def _tidy_own(self, add) -> None:
        """The result's own rows (without its groups'), through ``add``."""
        rows = self._row_values()
        for quantity, value, se, flag in self._headlines():
            if quantity in self._curves:
                continue
            if rows is None:
                add(quantity, None, None, None, value, se, None, flag)
            elif self._rows == "t_w":
                add(quantity, rows, None, None, value, se, None, flag)
            else:
                add(quantity, None, self._rows, rows, value, se, None, flag)
        for field, dims in self._curves.items():
            for quantity, value in self._curve_arrays(field):
                self._tidy_curve(add, field, quantity, dims, value)

    def _tidy_curve(self, add, field: str, quantity: str, dims: tuple, value: np.ndarray) -> None:
        shape = value.shape
        axes = {dim: self._coord(dim, shape[i]).reshape([-1 if j == i else 1 for j in range(len(dims))])
                for i, dim in enumerate(dims)}
        t_w = axes.pop("t_w", None)
        rest = [d for d in dims if d != "t_w"]
        x_name, x = None, None
        if rest:
            x_dim = rest[-1]
            x_name, x = (self._x[x_dim], getattr(self, self._x[x_dim])) if x_dim in self._x else (x_dim, axes[x_dim])
        if len(rest) > 1:
            names = np.empty(shape, dtype=object)
            for index in np.ndindex(shape):
                label = ", ".join(f"{d}={_num(axes[d].ravel()[index[dims.index(d)]])}" for d in rest[:-1])
                names[index] = f"{quantity}[{label}]"
            quantity = names
        se = getattr(self, self._se[field]) if field in self._se else None
        n = getattr(self, self._n[field]) if field in self._n else None
        add(quantity, t_w, x_name, x, value, se, n)

    def to_xarray(self):
        """The result as an ``xarray.Dataset``; with per-group results (``groups=``) every
        variable gains a first dimension ``group``: :data:`WHOLE_MODEL`, then each group.

        Curves are variables over their dimensions (``t_w`` and ``lag`` for the MSD, ``tau``
        for β, ``freq`` and ``lag`` for increments, ``bin`` for the MSL and the path, with
        the bins' ``r`` or ``ds`` and edges as coordinates, ``k1`` for a tail index, …), with
        their standard errors (``<curve>_se`` fields) and counts beside them; headline
        numbers are variables over the rows (``t_w``, ``step``, or none), each with
        ``<name>_se`` and ``<name>_flag`` (the reason a value fails the quality rule, ""
        when it passes) where the class has them. Scalar settings are ``attrs``.

        Examples
        --------
        >>> import numpy as np, pyengine as pe
        >>> res = pe.msd(np.random.default_rng(0).standard_normal((400, 8)).cumsum(0), window=200, lags=10)
        >>> ds = res.to_xarray()
        >>> ds["msd"].dims, ds["msd"].shape
        (('t_w', 'lag'), (2, 10))
        >>> by_group = pe.msd(np.random.default_rng(0).standard_normal((400, 8)).cumsum(0), window=200, lags=10,
        ...                   groups={"a": slice(0, 4), "b": slice(4, 8)}).to_xarray()
        >>> by_group["msd"].dims, by_group.group.values.tolist()
        (('group', 't_w', 'lag'), ['(whole model)', 'a', 'b'])
        """
        xr = import_optional("xarray")
        groups = getattr(self, "groups", None)
        if not groups:
            return self._dataset(xr)
        parts = [self._dataset(xr)] + [r._dataset(xr) for r in groups.values()]
        # Bins (MSL, path) may differ between groups: the union of their indices, NaN elsewhere.
        ds = xr.concat(parts, dim="group", coords="different", compat="equals", join="outer",
                       combine_attrs="drop_conflicts")
        return ds.assign_coords(group=[WHOLE_MODEL, *groups])

    def _dataset(self, xr):
        """This result alone (without its groups) as an ``xarray.Dataset``."""
        coords, data = {}, {}
        for field, dims in self._curves.items():
            for quantity, value in self._curve_arrays(field):
                for axis, dim in enumerate(dims):
                    coords.setdefault(dim, self._coord(dim, value.shape[axis]))
                data[quantity] = (dims, value)
            for extra in (self._se.get(field), self._n.get(field)):
                if extra is not None and getattr(self, extra) is not None:
                    data[extra] = (dims, np.asarray(getattr(self, extra)))
            for dim in dims:
                if dim in self._x:
                    coords[self._x[dim]] = (dims, np.asarray(getattr(self, self._x[dim])))
        for dim, field in self._edges.items():
            edges = np.asarray(getattr(self, field))
            coords[f"{dim}_lo"], coords[f"{dim}_hi"] = (dim, edges[:-1]), (dim, edges[1:])
        rows = self._row_values()
        row_dims = () if rows is None else (self._rows,)
        if rows is not None:
            coords.setdefault(self._rows, rows)
        for name, se_path in self._headline.items():
            if name in self._curves:
                continue
            value = _floats(resolve(self, name))
            dims = row_dims
            if name in self._parts:
                part_dim, labels = self._parts[name]
                coords.setdefault(part_dim, np.array(labels))
                dims = row_dims + (part_dim,)
            data[name] = (dims, value)
            if se_path:
                data[f"{name}_se"] = (dims, np.broadcast_to(_floats(resolve(self, se_path)), value.shape).copy())
            if name in self._flags:
                flags = _objects(resolve(self, self._flags[name]), value.shape)
                data[f"{name}_flag"] = (dims, np.array([f or "" for f in flags.ravel()], dtype=str).reshape(value.shape))
        for name, path in self._text.items():
            words = _objects(resolve(self, path), () if rows is None else rows.shape)
            data[name] = (row_dims, np.array([w or "" for w in words.ravel()], dtype=str).reshape(words.shape))
        return xr.Dataset(data, coords=coords, attrs={"statistic": type(self).__name__, **self._attrs()})

    def _attrs(self) -> dict:
        """Scalar fields (and the scalar entries of dict fields) for ``Dataset.attrs``."""
        out = {}
        for name, value in self._scalars().items():
            items = value.items() if isinstance(value, dict) else [(None, value)]
            for key, v in items:
                if isinstance(v, (bool, np.bool_)):
                    v = int(v)
                if isinstance(v, (str, int, float, np.number)):
                    out[name if key is None else f"{name}.{key}"] = v
        return out

    def _scalars(self) -> dict:
        """Fields that are not arrays, lists of them or nested results (the settings)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if _array_text(f.name, getattr(self, f.name)) is None}

    def _settings_items(self) -> list[tuple[str, object]]:
        """The scalar fields shown as settings: those not already shown as headline numbers."""
        shown = set(self._headline) | {se for se in self._headline.values() if se}
        return [(k, v) for k, v in self._scalars().items() if k not in shown]

    # -- display --------------------------------------------------------------------------

    def _title(self) -> str:
        rows = self._row_values()
        text = type(self).__name__
        if rows is not None:
            noun = _ROW_NAMES.get(self._rows, self._rows)
            label = "t_w " if self._rows == "t_w" else ""
            if rows.size == 0:
                text += f": no {noun}s"
            elif rows.size == 1:
                text += f": 1 {noun}, {label}{_num(rows[0])}"
            else:
                text += f": {rows.size} {noun}s, {label}{_num(rows[0])} … {_num(rows[-1])}"
            window = getattr(self, "window", None)
            if self._rows == "t_w" and isinstance(window, (int, np.integer)):
                text += f", window {window}"
        return text

    def _headline_text(self, name, value, se, flag) -> str:
        """``name  v ± se`` (one), ``v ± se, …`` (≤ 3 rows), or first … last, and how many are flagged."""
        values, ses = value.ravel(), (np.full(value.size, np.nan) if se is None else se.ravel())
        flags = [f for f in flag.ravel() if f is not None]
        if value.ndim == 0:
            return f"{name} = {_pm(values[0], ses[0])}" + (f"  [flagged: {str(flags[0])[:60]}]" if flags else "")
        if values.size <= 3:
            text = ", ".join(_pm(v, s) for v, s in zip(values, ses))
        else:
            text = f"{_pm(values[0], ses[0])} … {_pm(values[-1], ses[-1])}  (first … last)"
        return f"{name}  {text}" + (f"; {len(flags)} of {values.size} flagged" if flags else "")

    def _repr_lines(self) -> list[str]:
        lines = [self._title()]
        heads = self._headlines()
        for head in heads[:MAX_HEADLINE_LINES]:
            lines.append("  " + self._headline_text(*head)[: WIDTH - 2])
        if len(heads) > MAX_HEADLINE_LINES:
            lines.append(f"  … and {', '.join(h[0] for h in heads[MAX_HEADLINE_LINES:])}"[:WIDTH])
        arrays = [t for f in dataclasses.fields(self) if (t := _array_text(f.name, getattr(self, f.name)))]
        lines += _wrap(arrays)
        lines += _wrap([f"{k}={_short(v)}" for k, v in self._settings_items()])
        if self.groups is not None:
            text = f"  groups ({len(self.groups)}, in .groups): " + ", ".join(map(str, self.groups))
            lines.append(text if len(text) <= WIDTH else text[: WIDTH - 1] + "…")
        return lines

    def __repr__(self) -> str:
        return "\n".join(self._repr_lines())

    def headline(self) -> str:
        """One line: the first headline number (first … last window), else the shape of the first curve.

        Examples
        --------
        >>> import pyengine as pe
        >>> res = pe.msd(pe.models.brownian(401, 4, seed=0), window=200, lags=10)
        >>> res.headline()
        'msd (2, 10) over t_w, lag 1 … 200'
        """
        heads = self._headlines()
        if heads:
            return self._headline_text(*heads[0])
        for field, dims in self._curves.items():
            for quantity, value in self._curve_arrays(field):
                x = self._coord(dims[-1], value.shape[-1])
                span = f" {_num(x[0])} … {_num(x[-1])}" if x.size and x.dtype.kind in "iuf" else ""
                return f"{quantity} {value.shape} over {', '.join(dims)}{span}"
        return self._title()

    def _repr_html_(self) -> str:
        esc = html.escape
        parts = [f"<div class='pyengine-result'><p><b>{esc(self._title())}</b></p>"]
        cols = self._summary_columns()
        if len(cols) > (0 if self._rows is None else 1):
            parts.append(_html_table(cols, {name for name, *_ in self._headlines()}))
        arrays = [t for f in dataclasses.fields(self) if (t := _array_text(f.name, getattr(self, f.name)))]
        if arrays:
            parts.append(f"<p><b>arrays</b>: {esc('; '.join(arrays))}</p>")
        settings = [f"{k}={_short(v, 200)}" for k, v in self._settings_items()]
        if settings:
            parts.append(f"<p><b>settings</b>: {esc('; '.join(settings))}</p>")
        return "".join(parts) + "</div>"


#: The ``group`` label of the whole model's values in :meth:`Result.to_xarray`.
WHOLE_MODEL = "(whole model)"


def with_groups(result, groups: dict):
    """``result`` with its per-group results (``{group name: result of the same class}``)
    as ``result.groups``; returns ``result``.

    The attribute is not a dataclass field: the whole-model result compares, copies
    (``dataclasses.replace`` drops it) and constructs as before; :meth:`Result.to_dict`,
    :meth:`Result.to_pandas`, :meth:`Result.summary` and the repr show the groups.
    """
    object.__setattr__(result, "groups", dict(groups))  # frozen results too
    return result


def _html_table(cols: dict, numbers: set) -> str:
    """A summary table as escaped HTML: value ± SE in one cell, at most MAX_HTML_ROWS rows."""
    esc = html.escape
    names = [c for c in cols if not (c.endswith("_se") and c[:-3] in numbers)]
    n = len(next(iter(cols.values())))
    shown = list(range(n)) if n <= MAX_HTML_ROWS else list(range(MAX_HTML_ROWS - 4)) + [None] + list(range(n - 3, n))
    head = "".join(f"<th>{esc(str(c))}</th>" for c in names)
    body = []
    for i in shown:
        if i is None:
            body.append(f"<tr><td colspan='{len(names)}'>… {n - MAX_HTML_ROWS + 1} more rows …</td></tr>")
            continue
        cells = []
        for c in names:
            v = cols[c][i]
            if c in numbers:
                se = cols.get(f"{c}_se")
                text = _pm(v, np.nan if se is None else se[i])
            elif isinstance(v, (float, int, np.number)) and not isinstance(v, bool):
                text = _num(v)
            else:
                text = "" if v is None else str(v)
            cells.append(f"<td>{esc(text)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def plain_text(text, limit: int = 60) -> str:
    """A name from a file as matplotlib text: ``$`` escaped (no mathtext from stored names:
    ``$\\frac{$`` would fail the figure) and at most ``limit`` characters.

    Examples
    --------
    >>> plain_text("a$b") == r"a\\$b"
    True
    """
    text = str(text)
    text = text if len(text) <= limit else text[: limit - 1] + "…"
    return text.replace("$", r"\$")


def axes_or_new(ax=None):
    """``ax``, or the axes of a new 5 × 4 inch figure (for ``plot(ax=None)`` methods)."""
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(5, 4))
    return ax


def panels_or_new(ax, n: int, owner: str) -> np.ndarray:
    """The ``n`` axes given as ``ax``, or those of a new one-row figure of ``n`` panels
    (for ``plot(ax=None)`` methods that draw several panels; ``owner`` names the method)."""
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(1, n, figsize=(5 * n, 4.2))
    axes = np.atleast_1d(ax)
    if axes.size != n:
        raise ValueError(f"{owner} draws {n} panels, got {axes.size} axes")
    return axes


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
