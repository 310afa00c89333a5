"""Numba fallback of the lag band (used when the C++ extension is not built)."""

import numba
import numpy as np


@numba.njit(parallel=True, cache=True, fastmath=False)
def _band(x, lags, out):
    n, p = x.shape
    for l in numba.prange(lags.size):
        lag = lags[l]
        for t in range(n - lag):
            acc = 0.0
            for c in range(p):
                d = x[t + lag, c] - x[t, c]
                acc += np.float64(d) * np.float64(d)
            out[l, t] += acc


def lag_band(x, lags, out):
    _band(x, lags, out)
