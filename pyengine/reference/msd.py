import numpy as np


def time_averaged_msd(x: np.ndarray, start: int, n_origins: int, lag_rows, origins: str = "window") -> np.ndarray:
    """Chen et al. Eq. 3, directly: mean over origins of |x(t+τ) − x(t)|², float64.

    ``origins="window"``: t ∈ [start, start + n_origins) with t + τ inside the run;
    ``"within"``: t + τ < start + n_origins as well. NaN where no origin is left.
    """
    x = np.asarray(x, dtype=np.float64)
    end = x.shape[0] if origins == "window" else start + n_origins
    out = np.full(len(lag_rows), np.nan)
    for l, lag in enumerate(lag_rows):
        t = np.arange(start, min(start + n_origins, end - lag))
        if t.size:
            d = x[t + lag] - x[t]
            out[l] = np.mean(np.sum(d * d, axis=1))
    return out
