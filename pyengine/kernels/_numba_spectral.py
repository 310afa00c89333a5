"""Numba fallback of the transposed displacements (used when the C++ extension is not built)."""

import numba
import numpy as np


@numba.njit(parallel=True, cache=True, fastmath=False)
def _transpose(x, y, sq):
    n, p = x.shape
    for t in numba.prange(n):
        acc = 0.0
        for c in range(p):
            d = np.float64(x[t, c]) - np.float64(x[0, c])
            y[c, t] = d
            acc += d * d
        sq[t] += acc


def transposed_displacements(x, y, sq):
    _transpose(x, y, sq)
