"""The local pass: read ahead, compute blocks on threads, merge states in block order.

A reader thread reads block k+1 while the kernels (which release the GIL) work on
block k; ``workers`` blocks may be computed at once, each into a fresh state. States are
merged in block order, so the result does not depend on thread timing. A Dask task runs
the same :func:`accumulate` on its own column range (``pyengine.engine.distributed``).
"""

from __future__ import annotations

import dataclasses
import sys
import warnings
from collections import defaultdict, deque
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from pyengine import config
from pyengine.engine.accumulator import Accumulator, RunMeta
from pyengine.engine.source import Source
from pyengine.kernels._arrays import array_module, to_host
from pyengine.progress import progress_bar
from pyengine.threads import limit_numba

__all__ = ["BufferPool", "accumulate", "run_block", "show_progress", "screen_nonfinite"]


def run_block(accumulators: Sequence[Accumulator], meta: RunMeta, block, j0: int, j1: int) -> list:
    """Fresh states for one block, updated with it (also the unit of work of a Dask task)."""
    limit_numba(meta.threads)
    states = [acc.prepare(meta) for acc in accumulators]
    for acc, state in zip(accumulators, states):
        acc.update(state, block, slice(j0, j1))
    return states


def show_progress(progress: bool | None) -> bool:
    """Whether to show progress: as asked, or (None) when stderr is a terminal."""
    if progress is None:
        return sys.stderr.isatty()
    return bool(progress)


class BufferPool:
    """Buffers of finished blocks, read into again: fresh memory costs a page fault and
    zeroing per page, a third of a warm-cache read. Safe to share between threads."""

    def __init__(self) -> None:
        self._free: defaultdict = defaultdict(list)  # (shape, dtype) -> buffers

    def take(self, shape: tuple[int, int], dtype) -> np.ndarray | None:
        try:
            return self._free[shape, np.dtype(dtype)].pop()
        except IndexError:
            return None

    def give(self, block) -> None:
        """Keep a block for reuse if it is a buffer of its own (not a view of the user's array)."""
        if isinstance(block, np.ndarray) and block.flags.owndata and block.flags.c_contiguous:
            self._free[block.shape, block.dtype].append(block)


def accumulate(src: Source, accumulators: Sequence[Accumulator], meta: RunMeta, blocks: list[tuple[int, int]],
               workers: int = 1, progress: bool | None = False, desc: str = "pyengine",
               nonfinite: str = "raise", buffers: BufferPool | None = None) -> list:
    """The pass itself: read ahead, compute ``workers`` blocks at once, merge in block order.

    Returns the merged (not finalized) states, so a Dask task can run it on its own
    column range and merge with the other tasks' states. NaN/Inf weights always reach the
    states (they are sums of the data), so the pass runs unscreened and only when a state
    is not finite does a second, screened pass stop at the location or skip the columns.
    ``buffers`` lets a caller keep read buffers across passes (a Dask worker's tasks).
    """
    buffers = BufferPool() if buffers is None else buffers
    total = _pass(src.read, accumulators, meta, blocks, workers, progress, desc, buffers)
    if _all_finite(total):
        return total
    skipped: list[tuple[int, int, int]] = []  # (first parameter, its first bad row, parameters left out)

    def screened(j0: int, j1: int, out=None):
        return screen_nonfinite(src.read(j0, j1, out), j0, nonfinite, skipped)

    total = _pass(screened, accumulators, meta, blocks, workers, progress, desc, buffers)
    if skipped:
        col, row, _ = skipped[0]
        warnings.warn(f"left out {sum(n for *_, n in skipped)} parameters with NaN/Inf weights (the first: parameter "
                      f"{col}, snapshot row {row}); their columns count as constant", RuntimeWarning, stacklevel=3)
    return total


def _pass(read, accumulators: Sequence[Accumulator], meta: RunMeta, blocks: list[tuple[int, int]], workers: int,
          progress: bool | None, desc: str, buffers: BufferPool) -> list:
    total = None
    reads: deque = deque()
    computes: deque = deque()

    def read_block(j0: int, j1: int):
        return read(j0, j1, buffers.take((meta.n_rows, j1 - j0), meta.dtype))
    with ThreadPoolExecutor(1, thread_name_prefix="pyengine-read") as reader, \
            ThreadPoolExecutor(workers, thread_name_prefix="pyengine-compute") as pool, \
            progress_bar(progress, desc, sum(j1 - j0 for j0, j1 in blocks), "params") as bar:

        def collect(limit: int) -> None:
            nonlocal total
            while len(computes) > limit:
                width, future, block = computes.popleft()
                states = future.result()
                buffers.give(block)
                total = states if total is None else [a.merge(s, t) for a, s, t in zip(accumulators, total, states)]
                bar.update(width)

        next_read = 0
        for j0, j1 in blocks:
            while next_read < len(blocks) and len(reads) <= config.PREFETCH:
                reads.append(reader.submit(read_block, *blocks[next_read]))
                next_read += 1
            block = reads.popleft().result()
            computes.append((j1 - j0, pool.submit(run_block, accumulators, meta, block, j0, j1), block))
            del block
            collect(workers - 1)
        collect(0)
    return total


def _all_finite(state) -> bool:
    """Whether every floating array in a (nested) state is finite."""
    if isinstance(state, (list, tuple)):
        return all(_all_finite(s) for s in state)
    if dataclasses.is_dataclass(state) and not isinstance(state, RunMeta):
        return all(_all_finite(getattr(state, f.name)) for f in dataclasses.fields(state))
    if isinstance(state, (np.ndarray, np.generic, float, complex)):
        return bool(np.isfinite(state).all())
    if hasattr(state, "__cuda_array_interface__"):
        import cupy

        return bool(cupy.isfinite(state).all())
    return True


def screen_nonfinite(block, j0: int, policy: str, skipped: list):
    """Stop at NaN/Inf weights (policy "raise"), or zero the affected columns ("skip")."""
    xp = array_module(not isinstance(block, np.ndarray))
    bad = ~xp.isfinite(block).all(axis=0)
    if not bool(bad.any()):
        return block
    cols = np.flatnonzero(to_host(bad))
    row = int(np.argmax(~np.isfinite(to_host(block[:, cols[0]]))))
    if policy == "raise":
        raise ValueError(f"non-finite weight at snapshot row {row}, parameter {j0 + cols[0]} ({cols.size} parameters "
                         f"with NaN/Inf in columns {j0}…{j0 + block.shape[1] - 1}); pass nonfinite='skip' to leave "
                         "them out, or find them all with `pyengine info FILE --check-values`")
    block = block.copy()
    block[:, cols] = 0
    skipped.append((j0 + int(cols[0]), row, int(cols.size)))
    return block
