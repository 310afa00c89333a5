"""One thread budget for the process: pyengine's own threads do the parallel work.

Inside a pass and its conclusions the engine runs ``workers`` compute threads whose
kernels get ``cores // workers`` threads each (C++ OpenMP with passive waits, Numba,
pocketfft), plus one reader. BLAS (OpenBLAS, MKL) keeps a pool of its own whose idle
threads spin for a while after each call; next to the engine's threads, on a loaded
machine, they made a 1000 × 1000 ``eigh`` 30× slower. So while pyengine works, BLAS runs
one thread per call (threadpoolctl) and the engine parallelises the GEMMs itself (the
window Gram's column chunks go to its threads), and Numba's pool is sized per compute
thread.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import functools
import os
import sys
from collections.abc import Callable, Sequence

from pyengine import config

__all__ = ["blas_single_threaded", "cores", "limit_numba", "map_threads"]


def cores() -> int:
    """The threads pyengine's parallel work uses: ``config.THREADS``, or every core."""
    return config.THREADS or os.cpu_count() or 1


@contextlib.contextmanager
def blas_single_threaded():
    """BLAS runs one thread per call inside this block (process-wide, restored after)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        yield


def limit_numba(threads: int) -> None:
    """Numba's parallel loops called from this thread use at most ``threads`` threads."""
    numba = sys.modules.get("numba")  # only if a Numba kernel has been loaded: no import here
    if numba is not None:
        numba.set_num_threads(max(1, min(threads, numba.config.NUMBA_NUM_THREADS)))


def map_threads(threads: int, fn: Callable, items: Sequence) -> list:
    """``[fn(item) for item in items]`` on a pool of ``threads`` threads kept for the process
    (threads made afresh for every block each took a new malloc arena, and the pass's memory
    crept up block by block). Every call has ended when this returns or raises: the items
    are views of a block, whose buffer is reused or unmapped once the caller lets go of it.
    ``fn`` must not wait for work on the same pool."""
    futures = [_process_pool(os.getpid(), threads).submit(fn, item) for item in items]
    concurrent.futures.wait(futures)
    return [future.result() for future in futures]


@functools.cache
def _process_pool(pid: int, threads: int) -> concurrent.futures.ThreadPoolExecutor:
    # Keyed by the process: a forked child inherits the parent's pool without its threads,
    # and work submitted to it would wait forever.
    return concurrent.futures.ThreadPoolExecutor(threads, thread_name_prefix="pyengine-pool")
