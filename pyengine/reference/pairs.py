import numpy as np


def pair_values(source: np.ndarray, a: int, key: bool) -> np.ndarray:
    """f(a, b) for b > a: a matrix row, or |u_b - u_a| (key) / (u_b - u_a)**2 (value) of a vector."""
    if source.ndim == 2:
        return source[a, a + 1 :]
    d = source[a + 1 :] - source[a]
    return np.abs(d) if key else d * d


def pair_bin(key: np.ndarray, value: np.ndarray, edges: np.ndarray, out: np.ndarray) -> np.ndarray:
    """out[:, k] += (count, sum of keys, sum of values, sum of squared values) of the pairs
    a < b whose key lies in bin k = [edges[k], edges[k+1]) (the last bin includes its right
    edge); pairs with a key outside the edges or a non-finite value are skipped."""
    n = key.shape[0]
    n_bins = edges.size - 1
    for a in range(n - 1):
        k_row = pair_values(key, a, key=True)
        v_row = pair_values(value, a, key=False)
        ok = (k_row >= edges[0]) & (k_row <= edges[-1]) & np.isfinite(v_row)
        k_row, v_row = k_row[ok], v_row[ok]
        idx = np.minimum(np.searchsorted(edges, k_row, side="right") - 1, n_bins - 1)
        for stat, weights in enumerate((None, k_row, v_row, v_row * v_row)):
            out[stat] += np.bincount(idx, weights=weights, minlength=n_bins)
    return out
