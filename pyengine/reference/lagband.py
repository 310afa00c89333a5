import numpy as np


def lag_band(x: np.ndarray, lags: np.ndarray, out: np.ndarray) -> np.ndarray:
    """out[l, t] += sum_c (x[t + lags[l], c] - x[t, c])**2, in float64."""
    n = x.shape[0]
    for l, lag in enumerate(lags):
        if lag < n:
            d = x[lag:].astype(np.float64) - x[: n - lag].astype(np.float64)
            out[l, : n - lag] += np.einsum("ij,ij->i", d, d)
    return out
