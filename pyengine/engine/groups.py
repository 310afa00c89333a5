"""Column groups: a fixed partition of the parameters, and accumulators that keep per-group parts.

Every accumulator is a sum over columns, so a statistic's state is the sum of the states
of any partition of the columns. :class:`ColumnGroups` is one such partition: the columns
fall into runs of ``width`` consecutive parameters, and each run into one of ``count``
groups by a fixed hash of the run's index. The group of a column depends on its index and
P only, never on the block size or the Dask split, so every runner gives identical parts.

:class:`GroupedAccumulator` wraps any accumulator: besides the usual total state it keeps,
for each group, a reduced part (a linear function of the group's state: what the
statistic's conclusion needs, e.g. the window sums of a lag band), so that the conclusion
can recompute the statistic with any one group deleted. That is the delete-one-group
jackknife of the uncertainty (docs/estimators.md, "Uncertainty").
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pyengine.engine.accumulator import Accumulator, RunMeta

__all__ = ["ColumnGroups", "GroupedAccumulator", "Grouped", "column_groups", "replicates"]

#: Runs are at most this wide (kernels are efficient on a few thousand columns) and at
#: least this narrow (whole 64-byte lines of float32).
MAX_RUN, MIN_RUN = 4096, 16
#: Runs per group aimed at: few enough that a block holds whole runs (each group's share of
#: a block is one kernel call), enough that every group samples the parameters widely.
RUNS_PER_GROUP = 2


def _stride(n_runs: int) -> int:
    """A multiplier coprime with ``n_runs`` near 0.618 · n_runs: r ↦ r · stride mod n_runs is
    then a fixed permutation of the runs that sends neighbouring runs far apart."""
    stride = max(1, int(0.6180339887 * n_runs))
    while np.gcd(stride, n_runs) != 1:
        stride += 1
    return stride


@dataclass(frozen=True)
class ColumnGroups:
    """The partition of P columns into ``count`` groups of scrambled runs.

    Run r (columns [r·width, (r + 1)·width)) belongs to group (r · stride mod R) mod count,
    R the number of runs and ``stride`` coprime with R: every group gets ⌊R/count⌋ or
    ⌈R/count⌉ runs, and neighbouring runs (one tensor's weights) go to different groups.

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

    @classmethod
    def for_params(cls, n_params: int, count: int) -> "ColumnGroups":
        """``count`` groups of runs about P / (2 · count) wide (16 … 4096 columns)."""
        if count < 1:
            raise ValueError(f"the number of column groups must be >= 1, got {count}")
        width = int(np.clip(-(-n_params // (RUNS_PER_GROUP * count)), MIN_RUN, MAX_RUN))  # whole runs per group
        return cls(int(n_params), int(count), width)

    @property
    def n_runs(self) -> int:
        return -(-self.n_params // self.width)

    def group_of_runs(self, runs: np.ndarray) -> np.ndarray:
        runs = np.asarray(runs, dtype=np.int64)
        return (runs * _stride(self.n_runs) % self.n_runs) % self.count

    def runs(self, j0: int, j1: int) -> list[tuple[int, int, int]]:
        """(group, a, b) for the runs [a, b) that make up the columns [j0, j1), in order."""
        first, last = j0 // self.width, (j1 - 1) // self.width
        index = np.arange(first, last + 1)
        groups = self.group_of_runs(index)
        return [(int(g), max(j0, int(r) * self.width), min(j1, (int(r) + 1) * self.width))
                for g, r in zip(groups, index)]

    def of(self, cols: np.ndarray) -> np.ndarray:
        """The group of each column index."""
        return self.group_of_runs(np.asarray(cols) // self.width)

    def sizes(self) -> np.ndarray:
        """Columns per group, shape (count,)."""
        return np.bincount(self.of(np.arange(self.n_params)), minlength=self.count)


@dataclass
class GroupedState:
    total: Any
    parts: list  # per group: the reduced part (None until the group is seen)
    meta: RunMeta


@dataclass(frozen=True)
class Grouped:
    """A grouped accumulator's result: the inner accumulator's finalized total and each
    group's reduced part (None for groups without columns)."""

    total: Any
    parts: list
    groups: ColumnGroups


def _add(a, b):
    """Sum of two parts: numbers, arrays, dataclasses of them, or tuples/lists of those."""
    if a is None:
        return b
    if isinstance(a, (tuple, list)):
        return type(a)(_add(x, y) for x, y in zip(a, b))
    if dataclasses.is_dataclass(a):
        return dataclasses.replace(a, **{f.name: _add(getattr(a, f.name), getattr(b, f.name))
                                         for f in dataclasses.fields(a)})
    return a + b


@dataclass(frozen=True)
class GroupedAccumulator:
    """Any accumulator, with a reduced part kept per column group.

    Parameters
    ----------
    inner : Accumulator
    groups : ColumnGroups
    reduce : callable (inner state) -> part
        Linear in the state (parts of disjoint columns add up), small (its size does not
        grow with P), computed on host arrays. Default: ``inner.finalize``.
    """

    inner: Accumulator
    groups: ColumnGroups
    reduce: Callable[[Any], Any] | None = field(default=None, compare=False)

    @property
    def name(self) -> str:
        return f"{self.inner.name}[groups]"

    def prepare(self, meta: RunMeta) -> GroupedState:
        return GroupedState(self.inner.prepare(meta), [None] * self.groups.count, meta)

    def update(self, state: GroupedState, block, cols: slice) -> None:
        reduce = self.reduce or self.inner.finalize
        by_group: dict[int, list[tuple[int, int]]] = {}
        for g, a, b in self.groups.runs(cols.start, cols.stop):
            by_group.setdefault(g, []).append((a, b))
        for g, runs in by_group.items():
            scratch = self.inner.prepare(state.meta)
            for a, b in runs:
                self.inner.update(scratch, block[:, a - cols.start : b - cols.start], slice(a, b))
            state.parts[g] = _add(state.parts[g], reduce(scratch))
            state.total = self.inner.merge(state.total, scratch)

    def merge(self, a: GroupedState, b: GroupedState) -> GroupedState:
        parts = [_add(x, y) if y is not None else x for x, y in zip(a.parts, b.parts)]
        return GroupedState(self.inner.merge(a.total, b.total), parts, a.meta)

    def finalize(self, state: GroupedState) -> Grouped:
        return Grouped(self.inner.finalize(state.total), state.parts, self.groups)


def column_groups(n_params: int) -> ColumnGroups | None:
    """The jackknife's groups for P parameters (``config.JACKKNIFE_GROUPS``), or None when
    the jackknife is off or P is too small for two groups."""
    from pyengine import config

    count = int(config.JACKKNIFE_GROUPS)
    if count < 2 or n_params < 2 * MIN_RUN:
        return None
    return ColumnGroups.for_params(n_params, count)


def replicates(total, grouped: Grouped, value: Callable[[Any], np.ndarray]) -> np.ndarray | None:
    """Delete-one-group replicates of a statistic that is a sum over parameters.

    ``value(part)`` is the statistic of a part (linear: the statistic of the total is the
    sum over parts); replicate g is (value(total) − value(part g)) · P / (P − P_g): the
    statistic without group g, rescaled to all P parameters. Shape (groups seen, ...);
    None for fewer than two groups.
    """
    sizes = grouped.groups.sizes()
    seen = [g for g, part in enumerate(grouped.parts) if part is not None]
    if len(seen) < 2:
        return None
    p = grouped.groups.n_params
    return np.stack([(total - value(grouped.parts[g])) * (p / (p - sizes[g])) for g in seen])
