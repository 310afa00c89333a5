"""Numba fallback of the pair binning (used when the C++ extension is not built)."""

import numba
import numpy as np


@numba.njit(inline="always")
def _pair(mat, vec, a, b, key):
    # A source is a (n, n) matrix or, when mat is empty, a vector u: |u_b - u_a| or (u_b - u_a)^2.
    if mat.shape[0]:
        return mat[a, b]
    d = vec[b] - vec[a]
    return abs(d) if key else d * d


@numba.njit(cache=True)
def _bin(edges, x):
    if not (x >= edges[0] and x <= edges[-1]):
        return -1
    return min(np.searchsorted(edges, x, side="right") - 1, edges.size - 2)


@numba.njit(parallel=True, cache=True)
def _pair_bin(n, key_mat, key_vec, value_mat, value_vec, edges, out, n_chunks):
    n_bins = edges.size - 1
    local = np.zeros((n_chunks, 4, n_bins))  # one histogram per chunk of rows, reduced at the end
    for c in numba.prange(n_chunks):
        for a in range(c, n - 1, n_chunks):  # rows dealt out cyclically: balanced work
            for b in range(a + 1, n):
                x = _pair(key_mat, key_vec, a, b, True)
                k = _bin(edges, x)
                v = _pair(value_mat, value_vec, a, b, False)
                if k < 0 or not np.isfinite(v):
                    continue
                local[c, 0, k] += 1.0
                local[c, 1, k] += x
                local[c, 2, k] += v
                local[c, 3, k] += v * v
    out += local.sum(axis=0)


def _split(source):
    if source.ndim == 2:
        return source, np.empty(0)
    return np.empty((0, 0)), source


def pair_bin(key, value, edges, out, threads):
    _pair_bin(key.shape[0], *_split(key), *_split(value), edges, out, max(1, threads or numba.get_num_threads()))
