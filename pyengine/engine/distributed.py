"""The Dask path: the same one-pass program on a cluster.

Each task opens the trajectory file itself, reads its own column block and returns fresh
accumulator states; states merge in a tree of tasks. Only block coordinates, the file path
and the (small) states travel; nothing large passes through the scheduler. Tasks on a
worker that dies are re-run by Dask, so the result stays exact.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import socket
from collections.abc import Sequence

from pyengine.engine.accumulator import Accumulator, RunMeta
from pyengine.engine.passes import BufferPool, accumulate
from pyengine.engine.source import as_source

__all__ = ["client_for", "run_dask"]

#: A task reads its column range in this many parts, reading the next while computing one
#: (or maps it one chunk column at a time, where the file allows that).
SUB_BLOCKS = 4

#: Read buffers kept for the worker process's life, so that its tasks read into the same
#: few sub-block buffers instead of fresh memory.
_BUFFERS = BufferPool()


def client_for(scheduler):
    """A ``distributed.Client`` from a Client (returned as is) or a scheduler address."""
    try:
        from distributed import Client
    except ImportError as exc:
        raise ImportError("the Dask path needs dask.distributed: pip install 'pyengine[dask]'") from exc
    if isinstance(scheduler, Client):
        return scheduler
    if isinstance(scheduler, str):
        return Client(scheduler)
    raise TypeError(f"scheduler must be a distributed.Client or an address such as 'tcp://host:8786', got {type(scheduler).__name__}")


def _reuse_chunk_buffers(chunk_bytes: int) -> None:
    """Let freed HDF5 chunk buffers be reused, as glibc does by default.

    Dask's nanny starts workers with ``MALLOC_TRIM_THRESHOLD_=65536``, which also freezes
    glibc's mmap threshold at 128 KiB: every chunk buffer HDF5 allocates while reading
    (one chunk, 4 MiB by default) is then a fresh mmap whose pages are faulted in and
    zeroed again (measured on a 4.3 GB file read through HDF5: worker system time 2.7 s
    instead of 0.8). Here, as glibc's adaptive thresholds would, chunk-sized blocks come
    from the heap and up to four chunks of freed memory stay there for reuse. Uncompressed
    whole chunks are read raw, without HDF5's buffer; this is for the chunks HDF5 reads
    (compressed, partial).
    """
    global _MALLOC_TUNED
    if _MALLOC_TUNED or "MALLOC_TRIM_THRESHOLD_" not in os.environ:
        return
    _MALLOC_TUNED = True
    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c")).mallopt
    except (OSError, AttributeError, TypeError):  # not glibc
        return
    m_trim_threshold, m_mmap_threshold = -1, -3  # glibc's malloc.h
    mallopt(m_mmap_threshold, max(2 * chunk_bytes, 128 * 1024))
    mallopt(m_trim_threshold, max(4 * chunk_bytes, 128 * 1024))


_MALLOC_TUNED = False


def _block_task(path: str, j0: int, j1: int, accumulators: Sequence[Accumulator], meta: RunMeta,
                nonfinite: str = "raise") -> list:
    from pyengine.store import open_trajectory

    if not os.path.exists(path):
        raise FileNotFoundError(
            f"worker on {socket.gethostname()} cannot read {path!r}: every worker needs the trajectory file "
            "at the same path (e.g. on a shared file system)"
        )
    with open_trajectory(path, validate=False) as traj:
        src = as_source(traj)
        _reuse_chunk_buffers(traj.chunk_shape[0] * traj.chunk_shape[1] * traj.dtype.itemsize)
        width = src.map_cols or max(src.chunk_cols, -(-(j1 - j0) // SUB_BLOCKS))  # mapped: a chunk column each
        sub_blocks = [(a, min(a + width, j1)) for a in range(j0, j1, width)]
        return accumulate(src, accumulators, meta, sub_blocks, nonfinite=nonfinite, buffers=_BUFFERS)


def _merge_task(accumulators: Sequence[Accumulator], a: list, b: list) -> list:
    return [acc.merge(x, y) for acc, x, y in zip(accumulators, a, b)]


def run_dask(path: str, accumulators: Sequence[Accumulator], meta: RunMeta, blocks: list[tuple[int, int]],
             scheduler, progress: bool = False, nonfinite: str = "raise") -> list:
    """Run the blocks as Dask tasks and merge their states in a tree; return merged states."""
    client = client_for(scheduler)
    try:
        return _reduce(client, path, accumulators, meta, blocks, progress, nonfinite)
    finally:
        if client is not scheduler:  # we opened it from an address: close it
            client.close()


def _reduce(client, path: str, accumulators, meta: RunMeta, blocks, progress: bool, nonfinite: str) -> list:
    level = [client.submit(_block_task, path, j0, j1, accumulators, meta, nonfinite, pure=False) for j0, j1 in blocks]
    if progress:
        from distributed import progress as show

        show(level)
    while len(level) > 1:
        pairs = [client.submit(_merge_task, accumulators, a, b, pure=False) for a, b in zip(level[::2], level[1::2])]
        level = pairs + ([level[-1]] if len(level) % 2 else [])
    return level[0].result()
