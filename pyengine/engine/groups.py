"""Column groups: a fixed partition of the parameters, and accumulators that keep per-group parts.

Every accumulator is a sum over columns, so a statistic's state is the sum of the states
of any partition of the columns. :class:`ColumnGroups` is one such partition, with a
label per column that combines two things:

- an optional **named group** (:class:`NamedGroups`: a tensor, a layer, a kind of
  parameter or a user's mapping; each a union of contiguous column ranges), and
- a **jackknife group**: the columns of each named group (all P columns when there are
  none) fall into runs of consecutive parameters, and each run into one of ``count``
  groups by a fixed hash of the run's index.

The label of a column depends on its index, P and the named groups only, never on the
block size or the Dask split, so every runner gives identical parts.

:class:`GroupedAccumulator` wraps any accumulator: besides the usual total state it keeps,
for each label, a reduced part (a linear function of the label's state: what the
statistic's conclusion needs, e.g. the window sums of a lag band). The whole model is the
total (the sum of all parts); named group L is Σ_g part(L, g), and its delete-one-group
jackknife replicate g is that sum less part(L, g), rescaled (:func:`replicates`). That is
the jackknife of the uncertainty (docs/estimators.md, "Uncertainty") and the per-group
statistics ("Per-layer statistics") in one mechanism, so groups and error bars compose.
"""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from pyengine import config
from pyengine.engine.accumulator import Accumulator, RunMeta
from pyengine.kernels._arrays import to_host
from pyengine.threads import cores, map_threads

__all__ = ["ColumnGroups", "NamedGroups", "GroupedAccumulator", "Grouped", "ColumnSampleAccumulator", "column_groups",
           "replicates"]

#: Runs are at most this wide (kernels are efficient on a few thousand columns) and at
#: least this narrow (whole 64-byte lines of float32).
MAX_RUN, MIN_RUN = 4096, 16
#: Runs per group aimed at: few enough that a block holds whole runs (each group's share of
#: a block is one kernel call), enough that every group samples the parameters widely.
RUNS_PER_GROUP = 2
#: Inside a named group: one run per jackknife group, at least this wide. A named group of
#: P_L columns then has min(count, P_L / 64) jackknife groups (16 for a 1024-parameter
#: layer, 32 from 2048 on). Each label of a block costs a kernel call whose output is the
#: statistic's whole state (the lag band is lags × N) and its reduction, so narrow runs are
#: dear: 32 layers of 1024 parameters, MSD pass 1.95× with 32-column runs, 1.6× with 64,
#: 0.9–1.1× from 128 on (8 layers of 4096); increments 2.6×, 1.7×, 1.3× (measured on 2 cores).
MIN_NAMED_RUN = 64
#: Bytes of a block's columns that a CPU kernel gives one thread at a time (the lag band's
#: strips, csrc/cpu/lagband.cpp).
KERNEL_STRIP_BYTES = 1 << 20


def _stride(n_runs: int) -> int:
    """A multiplier coprime with ``n_runs`` near 0.618 · n_runs: r ↦ r · stride mod n_runs is
    then a fixed permutation of the runs that sends neighbouring runs far apart."""
    stride = max(1, int(0.6180339887 * n_runs))
    while np.gcd(stride, n_runs) != 1:
        stride += 1
    return stride


def _run_width(n_cols: int, count: int) -> int:
    """Runs about n / (2 · count) wide (MIN_RUN … MAX_RUN columns): whole runs per group."""
    return int(np.clip(-(-n_cols // (RUNS_PER_GROUP * count)), MIN_RUN, MAX_RUN))


@dataclass(frozen=True)
class NamedGroups:
    """A partition of P columns into named groups, each a union of contiguous column ranges.

    Range k is the columns [starts[k], starts[k + 1]) (the last one ends at P) and belongs
    to group ``owners[k]``, an index into ``names``. Built from a parameter table or a
    mapping by :func:`pyengine.layers.param_groups`.

    Examples
    --------
    >>> g = NamedGroups(("a", "b"), (0, 10, 15), (0, 1, 0), 20)
    >>> g.sizes().tolist(), g.of(np.array([0, 12, 19])).tolist()
    ([15, 5], [0, 1, 0])
    """

    names: tuple[str, ...]
    starts: tuple[int, ...]
    owners: tuple[int, ...]
    n_params: int

    @classmethod
    def whole(cls, n_params: int) -> "NamedGroups":
        """One group, ``"all"``, of every column."""
        return cls(("all",), (0,), (0,), int(n_params))

    def __post_init__(self):
        starts = np.asarray(self.starts)
        if (not self.names or len(self.starts) != len(self.owners) or starts[0] != 0 or np.any(np.diff(starts) <= 0)
                or starts[-1] >= self.n_params or not all(0 <= o < len(self.names) for o in self.owners)):
            raise ValueError(f"named groups: ranges must start at 0, increase and lie in [0, {self.n_params}), each "
                             f"owned by one of {len(self.names)} names; got starts {self.starts[:8]}…")

    @cached_property
    def _table(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(starts, ends, owners, rank of each range's first column inside its group)."""
        starts = np.asarray(self.starts, dtype=np.int64)
        ends = np.append(starts[1:], self.n_params)
        owners = np.asarray(self.owners, dtype=np.int64)
        ranks = np.zeros(starts.size, np.int64)
        seen = np.zeros(len(self.names), np.int64)
        for k, (a, b, o) in enumerate(zip(starts, ends, owners)):
            ranks[k], seen[o] = seen[o], seen[o] + (b - a)
        return starts, ends, owners, ranks

    def sizes(self) -> np.ndarray:
        """Columns per named group, shape (len(names),)."""
        starts, ends, owners, _ = self._table
        return np.bincount(owners, weights=ends - starts, minlength=len(self.names)).astype(np.int64)

    def of(self, cols) -> np.ndarray:
        """The named group (index into ``names``) of each column index."""
        starts, _, owners, _ = self._table
        return owners[np.searchsorted(starts, np.asarray(cols), side="right") - 1]

    def ranges(self, j0: int, j1: int):
        """(owner, first column, end, rank of the first column in its group) of each range
        that meets [j0, j1), cut to it, in order."""
        starts, ends, owners, ranks = self._table
        k0 = int(np.searchsorted(starts, j0, side="right")) - 1
        k1 = int(np.searchsorted(starts, j1, side="left"))
        for k in range(max(k0, 0), k1):
            a, b = max(j0, int(starts[k])), min(j1, int(ends[k]))
            yield int(owners[k]), a, b, int(ranks[k]) + a - int(starts[k])

    def sample(self, j0: int, j1: int, per_group: int) -> np.ndarray:
        """Columns in [j0, j1) of an evenly spaced sample of at most ``per_group`` columns
        of every group (all of a smaller group): those whose rank inside their group is a
        multiple of ⌈P_L / per_group⌉. Depends on the column only, not on the blocks."""
        steps = np.maximum(1, -(-self.sizes() // int(per_group)))
        out = [np.arange(a + (-rank) % steps[owner], b, steps[owner]) for owner, a, b, rank in self.ranges(j0, j1)]
        return np.concatenate(out) if out else np.zeros(0, np.int64)

    def to_dict(self) -> dict:
        return {"names": list(self.names), "sizes": self.sizes().tolist()}


@dataclass(frozen=True)
class ColumnGroups:
    """The partition of P columns into labels: named group × jackknife group.

    Without named groups, run r (columns [r·width, (r + 1)·width)) belongs to jackknife
    group (r · stride mod R) mod count, R the number of runs and ``stride`` coprime with R:
    every group gets ⌊R/count⌋ or ⌈R/count⌉ runs, and neighbouring runs (one tensor's
    weights) go to different groups; the label of a column is its jackknife group.

    With ``named`` groups, the same rule applies inside each named group L, to the ranks of
    its columns (its ranges laid end to end), with runs of its own width (P_L / count, at
    least MIN_NAMED_RUN) and the groups rotated by L; the label of a column is
    L · count + g. Every named group then has its own balanced jackknife, and the jackknife
    group g of the whole model is the union over L of the labels (L, g).

    Examples
    --------
    >>> g = ColumnGroups.for_params(1000, 8)
    >>> g.width, g.runs(0, 40)[:2]
    (63, [(0, 0, 40)])
    >>> int(g.sizes().sum())
    1000
    """

    n_params: int
    count: int
    width: int
    named: NamedGroups | None = None

    @classmethod
    def for_params(cls, n_params: int, count: int, named: NamedGroups | None = None) -> "ColumnGroups":
        """``count`` jackknife groups of runs about P / (2 · count) wide (16 … 4096 columns)."""
        if count < 1:
            raise ValueError(f"the number of column groups must be >= 1, got {count}")
        if named is not None and named.n_params != n_params:
            raise ValueError(f"named groups cover {named.n_params} columns, the data has {n_params}")
        return cls(int(n_params), int(count), _run_width(n_params, count), named)

    @property
    def n_runs(self) -> int:
        return -(-self.n_params // self.width)

    @property
    def n_named(self) -> int:
        """Named groups (1 when there are none: all columns)."""
        return 1 if self.named is None else len(self.named.names)

    @property
    def n_labels(self) -> int:
        return self.n_named * self.count

    @cached_property
    def _rules(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per named group: run width, number of runs, stride of the permutation."""
        if self.named is None:
            return np.array([self.width]), np.array([self.n_runs]), np.array([_stride(self.n_runs)])
        sizes = self.named.sizes()
        widths = np.clip(-(-sizes // self.count), MIN_NAMED_RUN, MAX_RUN).astype(np.int64)
        runs = -(-sizes // widths)
        return widths, runs, np.array([_stride(int(r)) for r in runs], dtype=np.int64)

    @cached_property
    def _named(self) -> NamedGroups:
        return NamedGroups.whole(self.n_params) if self.named is None else self.named

    def _jackknife_of(self, owner, rank_runs):
        widths, runs, strides = self._rules
        return (rank_runs * strides[owner] % runs[owner] + owner) % self.count

    def group_of_runs(self, runs: np.ndarray) -> np.ndarray:
        """The jackknife group of runs of the whole model (without named groups)."""
        runs = np.asarray(runs, dtype=np.int64)
        return (runs * _stride(self.n_runs) % self.n_runs) % self.count

    def _pieces(self, j0: int, j1: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Labels, first columns and ends of the runs that make up the columns [j0, j1)."""
        widths, _, _ = self._rules
        labels, firsts, ends = [], [], []
        for owner, a, b, rank in self._named.ranges(j0, j1):
            w = int(widths[owner])
            index = np.arange(rank // w, (rank + b - a - 1) // w + 1)
            origin = a - rank  # where rank 0 of the group would be, were its ranges one
            labels.append(owner * self.count + self._jackknife_of(owner, index))
            firsts.append(np.maximum(a, origin + index * w))
            ends.append(np.minimum(b, origin + (index + 1) * w))
        if not labels:
            return (np.zeros(0, np.int64),) * 3
        return np.concatenate(labels), np.concatenate(firsts), np.concatenate(ends)

    def runs(self, j0: int, j1: int) -> list[tuple[int, int, int]]:
        """(label, a, b) for the runs [a, b) that make up the columns [j0, j1), in order."""
        labels, firsts, ends = self._pieces(j0, j1)
        return list(zip(labels.tolist(), firsts.tolist(), ends.tolist()))

    def of(self, cols) -> np.ndarray:
        """The label of each column index (its jackknife group without named groups)."""
        cols = np.asarray(cols, dtype=np.int64)
        named = self._named
        starts, _, owners, ranks = named._table
        k = np.searchsorted(starts, cols, side="right") - 1
        owner = owners[k]
        widths, _, _ = self._rules
        rank_runs = (cols - starts[k] + ranks[k]) // widths[owner]
        return owner * self.count + self._jackknife_of(owner, rank_runs)

    def jackknife_of(self, cols) -> np.ndarray:
        """The jackknife group of each column index."""
        return self.of(cols) % self.count

    def sizes(self) -> np.ndarray:
        """Columns per label, shape (n_labels,)."""
        return self._sizes.copy()

    @cached_property
    def _sizes(self) -> np.ndarray:
        labels, firsts, ends = self._pieces(0, self.n_params)
        return np.bincount(labels, weights=ends - firsts, minlength=self.n_labels).astype(np.int64)


@dataclass
class GroupedState:
    total: Any
    parts: dict  # label -> the reduced part of its columns (absent until the label is seen)
    meta: RunMeta


@dataclass(frozen=True)
class Grouped:
    """A grouped accumulator's result: the inner accumulator's finalized total and each
    label's reduced part.

    Attributes
    ----------
    total : the whole model's finalized result
    parts : dict of int to part
        Per label (named group × jackknife group) seen, its reduced part.
    groups : ColumnGroups
    named : list or None
        Per named group, what the accumulator keeps of its columns beside the parts (the
        window Gram matrices of :class:`~pyengine.engine.gram.WindowGramAccumulator`); None
        when the parts are all there is.
    """

    total: Any
    parts: dict
    groups: ColumnGroups
    named: list | None = None

    def jackknife(self, group: int | None = None) -> tuple[list, np.ndarray]:
        """Per jackknife group, the part of the whole model (``group=None``) or of one named
        group (None where it has no columns), and the columns in each."""
        g = self.groups
        sizes = g.sizes().reshape(g.n_named, g.count)
        owners = range(g.n_named) if group is None else [int(group)]
        parts = []
        for j in range(g.count):
            part = None
            for owner in owners:
                piece = self.parts.get(owner * g.count + j)
                part = piece if part is None else (part if piece is None else _add(part, piece))
            parts.append(part)
        return parts, sizes[list(owners)].sum(axis=0)

    def named_total(self, group: int):
        """The sum of a named group's parts (what the whole model's total is to all columns)."""
        parts, _ = self.jackknife(group)
        total = None
        for part in parts:
            total = part if total is None else (total if part is None else _add(total, part))
        return total


def _combine(op, a, b):
    """``op`` leaf by leaf of two parts: numbers, arrays, dataclasses of them, or tuples/lists of those."""
    if isinstance(a, (tuple, list)):
        return type(a)(_combine(op, x, y) for x, y in zip(a, b))
    if dataclasses.is_dataclass(a):
        return dataclasses.replace(a, **{f.name: _combine(op, getattr(a, f.name), getattr(b, f.name))
                                         for f in dataclasses.fields(a)})
    return op(a, b)


def _copy(part):
    """A part with arrays of its own (a finalized state may hold the state's arrays)."""
    return _combine(lambda a, _: a.copy() if isinstance(a, np.ndarray) else a, part, part)


def _add(a, b):
    """Sum of two parts (None: nothing yet)."""
    return b if a is None else _combine(operator.add, a, b)


def _add_into(a, b):
    """a + b, into a's arrays where they can hold it (a is consumed)."""
    if isinstance(a, np.ndarray) and a.dtype == np.result_type(a, b):
        a += b
        return a
    return a + b


def merge_parts(a: dict, b: dict) -> dict:
    """The parts of two states of disjoint columns, added label by label into a's (both
    states are consumed: new arrays for every merge were a third of the page faults of a
    pass with the jackknife)."""
    for label, part in b.items():
        a[label] = part if label not in a else _combine(_add_into, a[label], part)
    return a


@dataclass(frozen=True)
class GroupedAccumulator:
    """Any accumulator, with a reduced part kept per label (named group × jackknife group).

    Parameters
    ----------
    inner : Accumulator
    groups : ColumnGroups
    reduce : callable (inner state) -> part
        Linear in the state (parts of disjoint columns add up), small (its size does not
        grow with P), computed on host arrays, new (not views of the state: each label's
        part is the change in the reduction of a state its runs are added to).
        Default: a copy of ``inner.finalize``.
    """

    inner: Accumulator
    groups: ColumnGroups
    reduce: Callable[[Any], Any] | None = field(default=None, compare=False)

    @property
    def name(self) -> str:
        return f"{self.inner.name}[groups]"

    def prepare(self, meta: RunMeta) -> GroupedState:
        return GroupedState(self.inner.prepare(meta), {}, meta)

    def update(self, state: GroupedState, block, cols: slice) -> None:
        by_label: dict[int, list[tuple[int, int]]] = {}
        for g, a, b in self.groups.runs(cols.start, cols.stop):
            by_label.setdefault(g, []).append((a, b))
        labels = list(by_label.items())
        meta = state.meta
        threads = 1 if meta.on_gpu else meta.threads or cores()
        chunks = np.array_split(np.arange(len(labels)), min(len(labels), threads))
        if len(chunks) > 1 and block.nbytes < len(labels) * threads * KERNEL_STRIP_BYTES:
            # Labels with less than a kernel strip per thread (32 layers of 1024 parameters:
            # runs of 64 columns, one strip, which the kernel runs on one thread) go to the
            # threads instead, one contiguous chunk each, merged in chunk order (the result does
            # not depend on timing). Wider labels keep the kernels' threads: each chunk holds a
            # state in its thread's malloc arena, 25 MB more peak memory on N = 16000.
            meta = dataclasses.replace(meta, threads=1)
            results = map_threads(threads, lambda index: self._labels(meta, block, cols, [labels[i] for i in index]),
                                  chunks)
        else:
            results = [self._labels(meta, block, cols, labels)]
        for own in results:
            state.total = self.inner.merge(state.total, own.total)
            state.parts = merge_parts(state.parts, own.parts)

    def _labels(self, meta: RunMeta, block, cols: slice, labels: list) -> GroupedState:
        """The labels' runs, label after label, into one fresh state. A label's part is the
        change its runs made to the state's reduction (which is linear): no label needs a
        state of its own to make, reduce and merge (two state-sized passes over memory each)."""
        own = GroupedState(self.inner.prepare(meta), {}, meta)
        before = None
        for g, runs in labels:
            for a, b in runs:
                self.inner.update(own.total, block[:, a - cols.start : b - cols.start], slice(a, b))
            after = self.reduce(own.total) if self.reduce else _copy(self.inner.finalize(own.total))
            own.parts[g] = after if before is None else _combine(operator.sub, after, before)
            before = after
        return own

    def merge(self, a: GroupedState, b: GroupedState) -> GroupedState:
        return GroupedState(self.inner.merge(a.total, b.total), merge_parts(a.parts, b.parts), a.meta)

    def finalize(self, state: GroupedState) -> Grouped:
        return Grouped(self.inner.finalize(state.total), state.parts, self.groups)


def column_groups(n_params: int, named: NamedGroups | None = None) -> ColumnGroups | None:
    """The groups of P parameters: the jackknife's (``config.JACKKNIFE_GROUPS``) inside each
    named group. None when there are no named groups and the jackknife is off or P is too
    small for two groups; with named groups, one jackknife group (no SEs) in those cases."""
    count = int(config.JACKKNIFE_GROUPS)
    if count < 2 or n_params < 2 * MIN_RUN:
        if named is None:
            return None
        count = 1
    return ColumnGroups.for_params(n_params, count, named)


def replicates(total, grouped: Grouped, value: Callable[[Any], np.ndarray],
               group: int | None = None) -> np.ndarray | None:
    """Delete-one-group replicates of a statistic that is a sum over parameters.

    ``value(part)`` is the statistic of a part (linear: the statistic of the total is the
    sum over parts); replicate g is (value(total) − value(part g)) · P / (P − P_g): the
    statistic without jackknife group g, rescaled to all P parameters. With ``group`` (a
    named group's index), ``total`` is that group's and P, P_g count its columns only.
    Shape (groups seen, ...); None for fewer than two groups.
    """
    parts, sizes = grouped.jackknife(group)
    seen = [g for g, part in enumerate(parts) if part is not None]
    if len(seen) < 2:
        return None
    p = grouped.groups.n_params if group is None else int(sizes.sum())
    out = None  # filled in place: the pair distances' replicates are 32 × W × 50,000 values
    for k, g in enumerate(seen):
        part = value(parts[g])
        if out is None:
            out = np.empty((len(seen),) + np.shape(total), np.result_type(total, part))
        np.subtract(total, part, out=out[k])
        out[k] *= p / (p - sizes[g])
    return out


@dataclass
class SampleState:
    cols: list  # per block: the sampled column indices
    values: list  # per block: per row range, (length, k) float64 values
    meta: RunMeta


@dataclass(frozen=True)
class ColumnSampleAccumulator:
    """The values of an evenly spaced sample of columns of every named group, in row ranges.

    Which columns are kept depends only on their index (:meth:`NamedGroups.sample`), so any
    split into blocks keeps the same ones; merge concatenates and finalize orders them by
    column. Size: at most ``per_group`` columns per named group × the rows, whatever P is.

    Parameters
    ----------
    rows : tuple of (start, length)
        Row ranges kept (the windows, or one snapshot).
    named : NamedGroups
    per_group : int
        Columns kept per named group (all of a smaller one).
    """

    rows: tuple[tuple[int, int], ...]
    named: NamedGroups
    per_group: int
    name: str = "column_sample"

    def prepare(self, meta: RunMeta) -> SampleState:
        for start, length in self.rows:
            if start < 0 or length < 1 or start + length > meta.n_rows:
                raise ValueError(f"rows [{start}, {start + length}) do not fit in rows [0, {meta.n_rows})")
        return SampleState([], [], meta)

    def update(self, state: SampleState, block, cols: slice) -> None:
        keep = self.named.sample(cols.start, cols.stop, self.per_group)
        if keep.size == 0:
            return
        local = keep - cols.start
        state.cols.append(keep)
        state.values.append([to_host(block[s : s + n, local]).astype(np.float64) for s, n in self.rows])

    def merge(self, a: SampleState, b: SampleState) -> SampleState:
        return SampleState(a.cols + b.cols, a.values + b.values, a.meta)

    def finalize(self, state: SampleState) -> tuple[np.ndarray, list[np.ndarray]]:
        """(columns, increasing; per row range the (length, k) values in that order)."""
        if not state.cols:
            return np.zeros(0, np.int64), [np.empty((n, 0)) for _, n in self.rows]
        cols = np.concatenate(state.cols)
        order = np.argsort(cols, kind="stable")
        return cols[order], [np.concatenate([part[i] for part in state.values], axis=1)[:, order]
                             for i in range(len(self.rows))]
