"""Numba fallback of the transposed increments and weights (used when the C++ extension is not built)."""

import numba
import numpy as np


@numba.njit(parallel=True, cache=True, fastmath=False)
def _transpose(x, d, y):
    n, p = x.shape
    for c in numba.prange(p):
        x0 = np.float64(x[0, c])
        total = 0.0
        for t in range(n):
            total += np.float64(x[t, c]) - x0
        mean = total / n
        drift = (np.float64(x[n - 1, c]) - x0) / (n - 1)
        for t in range(n):
            y[c, t] = (np.float64(x[t, c]) - x0) - mean
        for t in range(n - 1):
            d[c, t] = (np.float64(x[t + 1, c]) - np.float64(x[t, c])) - drift


def transposed_increments(x, d, y):
    """As :func:`pyengine.reference.transposed_increments`, one thread per column."""
    _transpose(x, d, y)
