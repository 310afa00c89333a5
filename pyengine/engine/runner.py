"""One pass over a trajectory: plan column blocks, prefetch, compute, merge.

A reader thread reads block k+1 while the kernels (which release the GIL) work on
block k; ``workers`` blocks may be computed at once, each into a fresh state. States are
merged in block order, so the result does not depend on thread timing.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import warnings
from collections import defaultdict, deque
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from tqdm.auto import tqdm

from pyengine import config
from pyengine.engine.accumulator import Accumulator, Request, RunMeta
from pyengine.engine.source import Source, as_source

NONFINITE = ("raise", "skip")

__all__ = ["BufferPool", "accumulate", "pass_requests", "plan_blocks", "run", "run_block", "run_requests"]


def plan_blocks(src: Source, block_cols: int | None = None, workers: int = 1,
                mapped: bool = True) -> list[tuple[int, int]]:
    """Split [0, P) into column blocks that fit the memory budget.

    The width targets ``config.BLOCK_BYTES`` per block, capped so that the blocks in
    flight (``workers`` computing plus ``config.PREFETCH + 1`` read ahead) stay within
    ``config.MEMORY_BUDGET``; it is rounded down to whole file chunks where possible, and
    with ``mapped``, to one chunk column where the file's blocks can be mapped in place
    (``src.map_cols``). Dask tasks plan without: each maps its chunk columns in turn.
    """
    if block_cols is None:
        col_bytes = src.n_rows * src.dtype.itemsize
        in_flight = workers + config.PREFETCH + 1
        budget = min(config.BLOCK_BYTES, config.MEMORY_BUDGET // in_flight)
        block_cols = max(1, budget // col_bytes)
        if mapped and src.map_cols and block_cols >= src.map_cols:
            block_cols = src.map_cols
        elif block_cols >= src.chunk_cols:
            block_cols -= block_cols % src.chunk_cols
    elif block_cols < 1:
        raise ValueError(f"block_cols must be >= 1, got {block_cols}")
    return [(j, min(j + block_cols, src.n_cols)) for j in range(0, src.n_cols, block_cols)]


def run_block(accumulators: Sequence[Accumulator], meta: RunMeta, block, j0: int, j1: int) -> list:
    """Fresh states for one block, updated with it (also the unit of work of a Dask task)."""
    states = [acc.prepare(meta) for acc in accumulators]
    for acc, state in zip(accumulators, states):
        acc.update(state, block, slice(j0, j1))
    return states


def _show_progress(progress: bool | None) -> bool:
    if progress is None:
        return sys.stderr.isatty()
    return bool(progress)


def run(
    x,
    accumulators: Sequence[Accumulator],
    *,
    block_cols: int | None = None,
    workers: int = 1,
    backend: str = "auto",
    progress: bool | None = None,
    desc: str = "pyengine",
    scheduler=None,
    nonfinite: str = "raise",
) -> list:
    """Feed every column block of ``x`` once to every accumulator; return their results.

    Parameters
    ----------
    x : path, Trajectory, h5py.Dataset, ndarray or cupy.ndarray of shape (N, P), or Source
    accumulators : sequence of Accumulator
        All share the one pass over the data.
    block_cols : int, optional
        Parameters per block (default: from ``config.BLOCK_BYTES`` and the memory budget).
    workers : int
        Blocks computed at once. Kernels get ``cores // workers`` threads each.
    backend : str
        Passed to the kernels (``"auto"``, ``"cpp"``, ...).
    progress : bool, optional
        Show a progress bar (default: when stderr is a terminal).
    scheduler : distributed.Client or str, optional
        Run the blocks as Dask tasks on this cluster (a Client or a scheduler address).
        ``x`` must then be a trajectory file that every worker can read at the same path.
    nonfinite : {"raise", "skip"}
        NaN/Inf weights: stop with the first location (default), or leave the affected
        parameters out (their columns count as constant) and warn with how many and where.

    Returns
    -------
    list
        ``accumulator.finalize(merged_state)`` for each accumulator, in order.
    """
    src = x if isinstance(x, Source) else as_source(x)
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    if nonfinite not in NONFINITE:
        raise ValueError(f"nonfinite must be one of {NONFINITE}, got {nonfinite!r}")
    cores = config.THREADS or os.cpu_count() or 1
    meta = RunMeta(src.n_rows, src.n_cols, src.dtype, src.steps, backend,
                   max(1, cores // workers), src.on_gpu)
    if scheduler is not None:
        if src.path is None:
            raise ValueError("the Dask path reads the trajectory file on the workers: pass a file path, not an array")
        from pyengine.engine.distributed import run_dask

        meta = RunMeta(src.n_rows, src.n_cols, src.dtype, src.steps, backend, 1, False)
        blocks = plan_blocks(src, block_cols, workers, mapped=False)
        states = run_dask(src.path, accumulators, meta, blocks, scheduler, _show_progress(progress), nonfinite)
    else:
        blocks = plan_blocks(src, block_cols, workers)
        states = accumulate(src, accumulators, meta, blocks, workers, progress, desc, nonfinite)
    return [acc.finalize(state) for acc, state in zip(accumulators, states)]


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
            tqdm(total=sum(j1 - j0 for j0, j1 in blocks), unit="param", unit_scale=True, desc=desc,
                 disable=not _show_progress(progress)) as bar:

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
    xp = np if isinstance(block, np.ndarray) else __import__("cupy")
    bad = ~xp.isfinite(block).all(axis=0)
    if not bool(bad.any()):
        return block
    cols = np.flatnonzero(_host(bad))
    row = int(np.argmax(~np.isfinite(_host(block[:, cols[0]]))))
    if policy == "raise":
        raise ValueError(f"non-finite weight at snapshot row {row}, parameter {j0 + cols[0]} ({cols.size} parameters "
                         f"with NaN/Inf in columns {j0}…{j0 + block.shape[1] - 1}); pass nonfinite='skip' to leave "
                         "them out, or find them all with `pyengine info FILE --check-values`")
    block = block.copy()
    block[:, cols] = 0
    skipped.append((j0 + int(cols[0]), row, int(cols.size)))
    return block


def _host(a):
    return a.get() if hasattr(a, "get") else a


def pass_requests(x, requests: Sequence[Request], **engine) -> list[list]:
    """Run several estimators' accumulators in one pass; return each request's raw results.

    ``engine`` takes the keyword arguments of :func:`run`. Conclude with
    ``request.conclude(raw)`` (see :func:`run_requests`).
    """
    accs = [request.accumulators() for request in requests]
    results = run(x, [a for group in accs for a in group], **engine)
    out, i = [], 0
    for group in accs:
        out.append(results[i : i + len(group)])
        i += len(group)
    return out


def run_requests(x, requests: Sequence[Request], **engine) -> list:
    """Run several estimators in one pass; return each request's conclusion."""
    return [request.conclude(raw) for request, raw in zip(requests, pass_requests(x, requests, **engine))]
