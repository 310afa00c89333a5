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
import sys

__all__ = ["blas_single_threaded", "limit_numba"]


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
