"""Named parameter groups: per-tensor, per-layer and per-kind statistics from one pass.

``groups=`` of :func:`pyengine.analyze` and of every streaming statistic names a partition
of the parameters into groups, each a union of contiguous column ranges
(:class:`pyengine.engine.groups.NamedGroups`), resolved here once per analysis from the
trajectory file's parameter table (``/params``: name, offset, size, shape, kind of each
tensor, :class:`pyengine.store.ParamInfo`):

``"tensor"``
    one group per entry of the table;
``"layer"``
    tensors grouped by module prefix, the name without its last dotted part
    (``layer1.0.conv1.weight`` and ``layer1.0.conv1.bias`` form ``layer1.0.conv1``; a name
    without a dot is its own layer);
``"kind"``
    ``weight``, ``bias``, ``norm``, ``other`` (the table's ``kind``);
a mapping ``{name: patterns}``
    each pattern a glob on tensor names (``"layer1.*"``, :func:`fnmatch.fnmatchcase`), a
    ``slice`` of columns, or column indices (an integer array, or a boolean mask of shape
    (P,)); arrays, which have no parameter table, take slices and indices only.

Columns that match no group go to a group ``"other"`` (joined to the mapping's own group of
that name, if it has one); a column that matches two groups is an error naming both. The
statistics then run on the same column-group machinery as the jackknife
(:mod:`pyengine.engine.groups`), so each group's numbers carry their SE.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping

import numpy as np

from pyengine.engine.groups import NamedGroups

__all__ = ["SPECS", "OTHER", "MAX_RANGES", "param_groups", "check_spec", "tensor_groups", "params_of",
           "named_groups", "run_grouped", "conclude_groups"]

#: The named ways to group the parameters of a trajectory file's parameter table.
SPECS = ("tensor", "layer", "kind")
#: The group of the columns no group of a mapping matches.
OTHER = "other"
#: Most contiguous column ranges a grouping may have (each range is at least one kernel
#: call per block and statistic: index arrays that scatter a group over single columns
#: would make the pass crawl).
MAX_RANGES = 65_536
_KINDS = ("weight", "bias", "norm", "other")


def params_of(src) -> list | None:
    """The parameter table of a source's trajectory file, or None (arrays, other files).

    Raises
    ------
    ValueError
        For a sketched recording, whose columns belong to no tensor.
    """
    if src.reduction is not None and src.reduction.method == "sketch":
        raise ValueError("groups: this file holds a sketch of the weights (each column mixes coordinates of "
                         "every tensor), so no column belongs to a tensor, layer or kind; record a sample "
                         "(Recorder(sample=f)) or every parameter for per-group statistics")
    if src.path is None:
        return None
    from pyengine.store import open_trajectory

    try:
        with open_trajectory(src.path, validate=False) as traj:
            if traj.n_params != src.n_cols:  # an h5py dataset of another shape in that file
                return None
            return list(traj.params)
    except (OSError, KeyError):
        return None


def _layer(name: str) -> str:
    """The module prefix of a tensor name: ``a.b.weight`` → ``a.b``; ``w`` → ``w``."""
    head, dot, _ = name.rpartition(".")
    return head if dot else name


def _by_table(spec: str, params: list, n_params: int) -> tuple[list[str], list[tuple[int, int, str]]]:
    """Group names and (first column, end, group) of each tensor."""
    key = {"tensor": lambda p: p.name, "layer": lambda p: _layer(p.name), "kind": lambda p: p.kind}[spec]
    pieces = [(int(p.offset), int(p.offset + p.size), str(key(p))) for p in params if p.size > 0]
    names = list(dict.fromkeys(name for *_, name in pieces))
    if spec == "kind":
        names = [k for k in _KINDS if k in names] + [k for k in names if k not in _KINDS]
    return names, pieces


def _columns(pattern, n_params: int) -> np.ndarray | None:
    """The column indices a slice or index array names (None for a glob)."""
    if isinstance(pattern, str):
        return None
    if isinstance(pattern, slice):
        return np.arange(n_params)[pattern]
    cols = np.asarray(pattern)
    if cols.dtype == bool:
        if cols.shape != (n_params,):
            raise ValueError(f"groups: a boolean mask must have shape ({n_params},), got {cols.shape}")
        return np.flatnonzero(cols)
    if cols.ndim != 1 or not (cols.size == 0 or np.issubdtype(cols.dtype, np.integer)):
        raise ValueError(f"groups: a pattern is a glob on tensor names, a slice, or a 1-D array of column indices; "
                         f"got {type(pattern).__name__} {getattr(cols, 'shape', '')}")
    if cols.size and (cols.min() < 0 or cols.max() >= n_params):
        raise ValueError(f"groups: column indices must lie in [0, {n_params}), got {int(cols.min())} … "
                         f"{int(cols.max())}")
    return cols.astype(np.int64)


def _by_mapping(mapping: Mapping, params: list | None, n_params: int) -> tuple[list[str], np.ndarray]:
    """Group names (``other`` last if needed) and the group of each column."""
    if not mapping:
        raise ValueError("groups: the mapping is empty; give {name: [glob or columns, ...]}")
    names = [str(k) for k in mapping]
    owner = np.full(n_params, -1, np.int64)
    for g, (name, value) in enumerate(mapping.items()):
        for pattern in _patterns(value):
            _claim(owner, g, names, _match(pattern, name, params, n_params))
    unmatched = owner < 0
    if unmatched.any():
        if OTHER not in names:
            names.append(OTHER)
        owner[unmatched] = names.index(OTHER)
    return names, owner


def _patterns(value) -> list:
    """A mapping's value as a list of patterns: one glob, slice or array, or a list of them
    (a list of numbers is one list of column indices or one mask)."""
    if isinstance(value, (str, slice, np.ndarray)):
        return [value]
    value = list(value)
    if value and all(isinstance(v, (int, np.integer, bool, np.bool_)) for v in value):
        return [np.asarray(value)]
    return value


def _match(pattern, name: str, params: list | None, n_params: int) -> list[tuple[int, int, str]]:
    """(first column, end, what) of the columns a pattern names."""
    cols = _columns(pattern, n_params)
    if cols is not None:
        if cols.size == 0:
            return []
        cols = np.unique(cols)
        breaks = np.flatnonzero(np.diff(cols) > 1)
        starts, ends = cols[np.r_[0, breaks + 1]], cols[np.r_[breaks, cols.size - 1]] + 1
        return [(int(a), int(b), f"columns {a}…{b - 1}") for a, b in zip(starts, ends)]
    if params is None:
        raise ValueError(f"groups: the glob {pattern!r} of group {name!r} needs a parameter table (a trajectory "
                         "file's /params); for an array give column slices or indices")
    hits = [(int(p.offset), int(p.offset + p.size), f"tensor {p.name!r}") for p in params
            if fnmatch.fnmatchcase(p.name, pattern) and p.size > 0]
    if not hits:
        shown = ", ".join(p.name for p in params[:8]) + (" …" if len(params) > 8 else "")
        raise ValueError(f"groups: the glob {pattern!r} of group {name!r} matches no tensor (tensors: {shown})")
    return hits


def _claim(owner: np.ndarray, g: int, names: list[str], pieces: list[tuple[int, int, str]]) -> None:
    for a, b, what in pieces:
        taken = owner[a:b]
        clash = taken[(taken >= 0) & (taken != g)]
        if clash.size:
            raise ValueError(f"groups: {what} is in group {names[int(clash[0])]!r} and in group {names[g]!r}; "
                             "a column may belong to one group only")
        taken[:] = g


def _ranges(owner: np.ndarray) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Starts and owners of the runs of equal owner."""
    starts = np.r_[0, np.flatnonzero(np.diff(owner)) + 1]
    if starts.size > MAX_RANGES:
        raise ValueError(f"groups: the groups cut the columns into {starts.size} contiguous ranges (at most "
                         f"{MAX_RANGES}); group contiguous columns (slices, tensors), not scattered indices")
    return tuple(starts.tolist()), tuple(owner[starts].tolist())


def param_groups(spec, params: list | None, n_params: int) -> NamedGroups | None:
    """The named groups of ``groups=`` (module docstring) for P columns.

    Parameters
    ----------
    spec : None, "tensor", "layer", "kind" or mapping
    params : list of ParamInfo or None
        The parameter table (None for arrays).
    n_params : int

    Returns
    -------
    NamedGroups or None
        None for ``spec=None``.

    Raises
    ------
    ValueError
        A named spec without a parameter table, an unknown spec, a glob that matches no
        tensor, a column in two groups, indices outside [0, P).
    TypeError
        A spec that is neither a name nor a mapping.

    Examples
    --------
    >>> from pyengine.store import ParamInfo
    >>> table = [ParamInfo("fc1.weight", 0, 6, (2, 3), "weight"), ParamInfo("fc1.bias", 6, 2, (2,), "bias"),
    ...          ParamInfo("fc2.weight", 8, 2, (1, 2), "weight")]
    >>> param_groups("layer", table, 10).names, param_groups("kind", table, 10).sizes().tolist()
    (('fc1', 'fc2'), [8, 2])
    >>> param_groups({"first": slice(0, 4)}, None, 10).names
    ('first', 'other')
    """
    if spec is None:
        return None
    check_spec(spec)
    if isinstance(spec, str):
        if params is None:
            raise ValueError(f"groups={spec!r} needs a parameter table (a trajectory file's /params); for an array "
                             "pass a mapping {name: slice or column indices}")
        names, pieces = _by_table(spec, params, n_params)
        owner = np.full(n_params, -1, np.int64)
        for a, b, name in pieces:
            owner[a:b] = names.index(name)
        if (owner < 0).any():  # a table that does not tile the columns (not a valid file): the rest apart
            names.append(OTHER)
            owner[owner < 0] = len(names) - 1
    else:
        names, owner = _by_mapping(spec, params, n_params)
    used = np.unique(owner)
    if used.size < len(names):  # a mapping's group that claimed no column (empty index list)
        empty = [names[k] for k in range(len(names)) if k not in set(used.tolist())]
        raise ValueError(f"groups: group(s) {', '.join(map(repr, empty))} hold no column")
    starts, owners = _ranges(owner)
    return NamedGroups(tuple(names), starts, owners, int(n_params))


def check_spec(spec) -> None:
    """Refuse what is not a ``groups=`` spec (None, a name of :data:`SPECS` or a mapping).

    Raises
    ------
    ValueError
        An unknown name.
    TypeError
        Neither a name nor a mapping.
    """
    if isinstance(spec, str) and spec not in SPECS:
        raise ValueError(f"groups must be one of {SPECS}, a mapping {{name: [glob or columns, ...]}} or None, "
                         f"got {spec!r}")
    if not (spec is None or isinstance(spec, (str, Mapping))):
        raise TypeError(f"groups must be one of {SPECS}, a mapping {{name: [glob or columns, ...]}} or None, got "
                        f"{type(spec).__name__}")


def tensor_groups(spec, params: list) -> tuple[NamedGroups, dict[str, list[str]]]:
    """Named groups of whole tensors of a parameter table (the Hessian's diagonal blocks).

    Parameters
    ----------
    spec : "tensor", "layer", "kind" or mapping
        As for :func:`param_groups`; slices and indices must take whole tensors.
    params : list of ParamInfo
        The table (offsets tiling [0, P)).

    Returns
    -------
    named : NamedGroups
        The groups over the table's P columns.
    tensors : dict of str to list of str
        The names of each group's tensors, in table order.

    Raises
    ------
    ValueError
        As :func:`param_groups`, and for a group that takes part of a tensor (naming it).

    Examples
    --------
    >>> from pyengine.store import ParamInfo
    >>> table = [ParamInfo("fc1.weight", 0, 6, (2, 3), "weight"), ParamInfo("fc1.bias", 6, 2, (2,), "bias")]
    >>> tensor_groups("kind", table)[1]
    {'weight': ['fc1.weight'], 'bias': ['fc1.bias']}
    >>> tensor_groups({"head": slice(0, 4)}, table)
    Traceback (most recent call last):
    ...
    ValueError: groups: tensor 'fc1.weight' (columns 0…5) is split between groups 'head' and 'other'; ...
    """
    n_params = max((int(p.offset + p.size) for p in params), default=0)
    named = param_groups(spec, params, n_params)
    tensors: dict[str, list[str]] = {name: [] for name in named.names}
    for p in params:
        if p.size == 0:
            continue
        owners = list(dict.fromkeys(owner for owner, *_ in named.ranges(int(p.offset), int(p.offset + p.size))))
        if len(owners) > 1:
            raise ValueError(f"groups: tensor {p.name!r} (columns {p.offset}…{p.offset + p.size - 1}) is split between "
                             f"groups {' and '.join(repr(named.names[o]) for o in owners)}; the Hessian's blocks are "
                             "whole tensors: give globs on tensor names (or 'tensor', 'layer', 'kind'), or slices "
                             "that take whole tensors")
        tensors[named.names[owners[0]]].append(p.name)
    return named, tensors


def named_groups(spec, src) -> NamedGroups | None:
    """The named groups of ``groups=`` for a source (its file's parameter table, if any)."""
    if spec is None:
        return None
    return param_groups(spec, params_of(src), src.n_cols)


def conclude_groups(request, raw: list) -> dict:
    """``{group name: result}``: a request's conclusion for each of its named groups."""
    named = None if request.groups is None else request.groups.named
    if named is None:
        return {}
    return {name: request.conclude_group(raw, k) for k, name in enumerate(named.names)}


def run_grouped(src, request, options, *, desc: str):
    """One request's pass and conclusion, with each named group's result in ``.groups``
    (what a standalone statistic returns; without named groups, ``run_requests``)."""
    from pyengine.engine.runner import pass_requests
    from pyengine.results import with_groups

    (raw,) = pass_requests(src, [request], options, desc=desc)
    result = request.conclude(raw)
    groups = conclude_groups(request, raw)
    return with_groups(result, groups) if groups else result
