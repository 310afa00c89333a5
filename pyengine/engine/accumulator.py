"""The accumulator protocol: every statistic is a sum over parameters.

An accumulator has four verbs (DESIGN.md, "The engine")::

    prepare(meta) -> state          a fresh, empty state (never shared between parts)
    update(state, block, cols)      add the column block X[:, cols] to the state, in place
    merge(a, b) -> state            combine two states (threads, GPUs, Dask partitions alike)
    finalize(state) -> result       divide / transform once, at the end

States hold raw sums and counts whose size does not grow with P, so blocks can be
processed in any order and split any way: n parts give the same answer as one part.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np


@dataclass(frozen=True)
class RunMeta:
    """What an accumulator may know about the run before it sees any block."""

    n_rows: int
    n_cols: int
    dtype: np.dtype
    steps: np.ndarray
    backend: str = "auto"
    threads: int = 0
    on_gpu: bool = False


class Accumulator(Protocol):
    """See the module docstring."""

    name: str

    def prepare(self, meta: RunMeta) -> Any: ...

    def update(self, state: Any, block: Any, cols: slice) -> None: ...

    def merge(self, a: Any, b: Any) -> Any: ...

    def finalize(self, state: Any) -> Any: ...


class Request(Protocol):
    """An estimator split around the pass: the accumulators it needs, then the conclusion.

    ``pe.analyze`` gathers the requests of every estimator it runs and feeds all their
    accumulators in one pass; a single estimator runs its request alone.
    """

    def accumulators(self) -> list[Accumulator]: ...

    def conclude(self, results: list) -> Any: ...
