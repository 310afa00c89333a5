"""Numba fallback of the Mohammadi statistics (used when the C++ extension is not built)."""

import numba
import numpy as np

HEAD, PER_K1 = 5, 5


@numba.njit(cache=True)
def _emit(y, st, base):
    if y != 0.0 and np.isfinite(y):
        ly = np.log(abs(y))
        st[base] += ly
        st[base + 1] += ly * ly
        st[base + 2] += 1.0
    else:
        st[base + 3] += 1.0


@numba.njit(parallel=True, cache=True)
def _column_sums(x, k1, partial):
    n, p = x.shape
    n_k1 = k1.size
    for c in numba.prange(p):
        st = partial[c]
        run = np.zeros(n_k1)
        count = np.zeros(n_k1, np.int64)
        for t in range(n):
            v = np.float64(x[t, c])
            if v == 0.0:
                st[3] += 1.0
            elif not np.isfinite(v):
                st[4] += 1.0
            else:
                lv = np.log(abs(v))
                st[0] += lv
                st[1] += lv * lv
                st[2] += 1.0
                for g in range(n_k1):
                    run[g] += v
                    count[g] += 1
                    if count[g] == k1[g]:
                        _emit(run[g], st, HEAD + PER_K1 * g)
                        run[g] = 0.0
                        count[g] = 0
        for g in range(n_k1):
            st[HEAD + PER_K1 * g + 4] += count[g]


@numba.njit(parallel=True, cache=True)
def _norms(x, k1, row_sq, group_sq):
    n, p = x.shape
    for t in numba.prange(n):
        acc = 0.0
        for c in range(p):
            acc += np.float64(x[t, c]) ** 2
        row_sq[t] += acc
    off = 0
    for g in range(k1.size):
        k = k1[g]
        m = n // k
        for i in numba.prange(m):
            acc = 0.0
            for c in range(p):
                s = 0.0
                for t in range(i * k, (i + 1) * k):
                    s += np.float64(x[t, c])
                acc += s * s
            group_sq[off + i] += acc
        off += m


def tail_sums(x, k1, stats):
    partial = np.zeros((x.shape[1], stats.size))
    _column_sums(x, k1, partial)
    stats += partial.sum(axis=0)


def tail_norms(x, k1, row_sq, group_sq):
    _norms(x, k1, row_sq, group_sq)
