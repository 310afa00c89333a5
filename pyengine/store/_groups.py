"""The optional groups of a trajectory file, defined once: their datasets, dtypes and row shapes.

``/eval``, ``/noise`` and ``/hessian`` are *row groups*: one row per probe run, in
datasets that grow along their first axis together, ``step`` last (a reader takes the
rows present in every one of them, :func:`group_rows`). Their row shapes follow from the
group's attributes (``k`` eigenvalues, ``n_samples`` noise values, the names of the eval
sets), so a writer can create them, empty, before any row exists. ``/landscape/<name>``
groups hold whole arrays. Used by :class:`~pyengine.store.TrajectoryWriter`, the
recorder's probes and the readers (``pyengine.estimators.probes``, ``pyengine.landscape``);
the table is in ``docs/format.md``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import h5py
import numpy as np



@dataclass(frozen=True)
class Column:
    """One dataset of an optional group.

    Attributes
    ----------
    name : str
        Dataset name; ``"{}"`` stands for each name listed in the group attribute ``per``.
    dtype : str
        NumPy dtype of the values.
    width : str, tuple of str, or None
        Group attribute holding the length of each row, or attributes holding each axis of
        a row (``("n_blocks", "k")``: a row of shape (n_blocks, k)); None: one value per
        row. A width of 0 means the dataset is not stored.
    per : str or None
        Group attribute listing the names put in for ``"{}"``.
    static : bool
        Written once, whole (not one row per probe run).
    """

    name: str
    dtype: str
    width: str | tuple[str, ...] | None = None
    per: str | None = None
    static: bool = False


#: Every optional group: its datasets. ``step`` comes last in a row group (written last).
GROUPS: dict[str, tuple[Column, ...]] = {
    "eval": (
        Column("loss_{}", "float64", per="sets"),
        Column("accuracy_{}", "float64", per="accuracy_sets"),
        Column("step", "int64"),
    ),
    "noise": (
        Column("grad_norm", "float64"),
        Column("noise_norm", "float64"),
        Column("alpha", "float64"),
        Column("tail_stats", "float64", width="n_stats"),
        Column("samples", "float32", width="n_samples"),
        Column("loss", "float64"),
        Column("cov_trace", "float64"),
        Column("cov_participation", "float64"),
        Column("cov_rank", "int64"),
        Column("cov_eigenvalues", "float64", width="cov_k"),
        Column("k1", "int64", static=True),
        Column("sample_index", "int64", static=True),
        Column("step", "int64"),
    ),
    "hessian": (
        Column("eigenvalues", "float64", width="k"),
        Column("residuals", "float64", width="k"),
        Column("iterations", "int64"),
        Column("trace", "float64"),
        Column("trace_se", "float64"),
        Column("slq_nodes", "float64", width="n_nodes"),
        Column("slq_weights", "float64", width="n_nodes"),
        Column("noise_trace", "float64"),
        Column("hd_trace", "float64"),
        Column("hd_trace_se", "float64"),
        Column("overlap", "float64"),
        Column("align_k", "int64"),
        Column("block_eigenvalues", "float64", width=("n_blocks", "k")),
        Column("block_residuals", "float64", width=("n_blocks", "k")),
        Column("block_iterations", "int64", width="n_blocks"),
        Column("block_trace", "float64", width="n_blocks"),
        Column("block_trace_se", "float64", width="n_blocks"),
        Column("step", "int64"),
    ),
    "landscape": tuple(Column(name, dtype, static=True) for name, dtype in (
        ("x", "float64"), ("y", "float64"), ("loss", "float64"), ("done", "bool"), ("path", "float64"),
        ("path_step", "int64"))),
}
#: Groups grown one row per probe run (a recorder probe writes one of them).
ROW_GROUPS = ("eval", "noise", "hessian")
#: Attributes of a row group that a resumed run must keep although no row shape shows
#: them: the names along a dataset's group axis (the Hessian's diagonal blocks).
FIXED_ATTRS: dict[str, tuple[str, ...]] = {"hessian": ("block_groups",)}
#: Rows of a row-group dataset per HDF5 chunk.
ROW_CHUNK = 256


@dataclass(frozen=True)
class RowGroup:
    """A row group to lay out before the first snapshot: a probe's ``/eval``, ``/noise`` or ``/hessian``.

    Attributes
    ----------
    name : {"eval", "noise", "hessian"}
        The group.
    attrs : dict
        Its attributes; they also fix the row shapes (:func:`row_columns`).
    static : dict of str to ndarray
        Datasets written once (``k1``, ``sample_index`` of ``/noise``).

    Examples
    --------
    >>> RowGroup("hessian", {"k": 20}).name
    'hessian'
    """

    name: str
    attrs: dict
    static: dict = field(default_factory=dict)


def row_columns(group: str, attrs: dict) -> dict[str, tuple[np.dtype, tuple[int, ...]]]:
    """The datasets of a row group given its attributes: name -> (dtype, shape of one row).

    Parameters
    ----------
    group : {"eval", "noise", "hessian"}
        The group.
    attrs : dict
        Its attributes (those named by the columns' ``width`` and ``per``).

    Returns
    -------
    dict
        In writing order, ``"step"`` last.

    Raises
    ------
    ValueError
        Not a row group, or an attribute a column needs is missing.

    Examples
    --------
    >>> row_columns("hessian", {"k": 3, "n_nodes": 0, "n_blocks": 2})["block_eigenvalues"]
    (dtype('float64'), (2, 3))
    >>> list(row_columns("eval", {"sets": ["test"], "accuracy_sets": []}))
    ['loss_test', 'step']
    """
    if group not in ROW_GROUPS:
        raise ValueError(f"group must be one of {ROW_GROUPS} (a group grown one row per probe run), got {group!r}")
    columns: dict[str, tuple[np.dtype, tuple[int, ...]]] = {}
    for column in GROUPS[group]:
        if column.static:
            continue
        widths = (column.width,) if isinstance(column.width, str) else column.width or ()
        shape = tuple(int(_attr(group, attrs, width)) for width in widths)
        if 0 in shape:
            continue
        sets = [""] if column.per is None else _attr(group, attrs, column.per)
        names = [column.name.format(s) for s in sets]
        columns.update((name, (np.dtype(column.dtype), shape)) for name in names)
    return columns


def _attr(group: str, attrs: dict, key: str):
    if key not in attrs:
        raise ValueError(f"/{group}: the attribute {key!r} is needed to lay out the group's datasets")
    return attrs[key]


def column_dtype(group: str, name: str) -> np.dtype | None:
    """The dtype the definition gives dataset ``name`` of ``group`` (``landscape/<x>`` counts as
    ``landscape``), or None for a dataset it does not define.

    Examples
    --------
    >>> column_dtype("eval", "loss_test"), column_dtype("landscape/final", "done")
    (dtype('float64'), dtype('bool'))
    """
    for column in GROUPS.get(group.partition("/")[0], ()):
        if matches(column.name, name) is not None:
            return np.dtype(column.dtype)
    return None


def matches(template: str, name: str) -> str | None:
    """The part of ``name`` that fills the ``"{}"`` of ``template`` ("" when it has none), or None.

    Examples
    --------
    >>> matches("loss_{}", "loss_test"), matches("loss_{}", "step"), matches("step", "step")
    ('test', None, '')
    """
    head, brace, tail = template.partition("{}")
    if not brace:
        return "" if name == template else None
    ok = name.startswith(head) and name.endswith(tail) and len(name) > len(head) + len(tail)
    return name[len(head):len(name) - len(tail)] if ok else None


def group_rows(group: h5py.Group) -> dict[str, np.ndarray]:
    """Every dataset of a stored group, the row datasets cut to the rows present in all of them.

    A writer grows ``step`` last, so rows of an interrupted probe write (a killed run)
    are left out. Static datasets and those the definition does not know are read whole.

    Parameters
    ----------
    group : h5py.Group
        ``/eval``, ``/noise``, ``/hessian`` or a ``/landscape/<name>`` group.

    Returns
    -------
    dict of str to ndarray

    Examples
    --------
    >>> with pyengine.open("run.h5") as traj:  # doctest: +SKIP
    ...     rows = group_rows(traj.group("eval"))
    """
    kind = group.name.strip("/").partition("/")[0]
    static = {c.name for c in GROUPS.get(kind, ()) if c.static}
    datasets = {name: obj for name, obj in group.items() if isinstance(obj, h5py.Dataset)}
    rows = [name for name in datasets
            if kind in ROW_GROUPS and name not in static and column_dtype(kind, name) is not None]
    n = min((datasets[name].shape[0] for name in rows), default=0)
    return {name: ds[:n] if name in rows else ds[()] for name, ds in datasets.items()}
