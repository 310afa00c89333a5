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

import contextlib
import functools
import os
import sys
from concurrent.futures import ThreadPoolExecutor

__all__ = ["blas_single_threaded", "limit_numba", "pool"]


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


def pool(threads: int) -> ThreadPoolExecutor:
    """A pool of ``threads`` threads kept for the process: threads made afresh for every
    block each took a new malloc arena, and the pass's memory crept up block by block.
    Work on it must not wait for other work on the same pool."""
    return _process_pool(os.getpid(), threads)


@functools.cache
def _process_pool(pid: int, threads: int) -> ThreadPoolExecutor:
    # Keyed by the process: a forked child inherits the parent's pool without its threads,
    # and work submitted to it would wait forever.
    return ThreadPoolExecutor(threads, thread_name_prefix="pyengine-pool")
