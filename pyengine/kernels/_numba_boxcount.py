"""Numba fallback of box counting (used when the C++ extension is not built).

The same algorithm as csrc/cpu/boxcount.cpp: one min/max pyramid for the powers of two,
a direct block scan for every other size.
"""

import math

import numba
import numpy as np


@numba.njit(cache=True, inline="always")
def _boxes(lo, hi, zmin, inv_h, rule):
    if rule == 0:
        return math.floor((hi - zmin) * inv_h) - math.floor((lo - zmin) * inv_h) + 1.0
    if rule == 1:
        return max(1.0, math.ceil((hi - lo) * inv_h))
    return 1.0 if (hi != 0 or lo != 0) else 0.0


@numba.njit(parallel=True, cache=True)
def _next_level(lo_in, hi_in, lo, hi, zmin, inv_h, rule, count_it):
    by, bx = lo.shape
    total = 0.0
    for i in numba.prange(by):
        acc = 0.0
        for j in range(bx):
            a = min(min(lo_in[2 * i, 2 * j], lo_in[2 * i, 2 * j + 1]),
                    min(lo_in[2 * i + 1, 2 * j], lo_in[2 * i + 1, 2 * j + 1]))
            b = max(max(hi_in[2 * i, 2 * j], hi_in[2 * i, 2 * j + 1]),
                    max(hi_in[2 * i + 1, 2 * j], hi_in[2 * i + 1, 2 * j + 1]))
            lo[i, j] = a
            hi[i, j] = b
            if count_it:
                acc += _boxes(np.float64(a), np.float64(b), zmin, inv_h, rule)
        total += acc
    return total


@numba.njit(parallel=True, cache=True)
def _direct(z, s, zmin, inv_h, rule):
    by, bx = z.shape[0] // s, z.shape[1] // s
    total = 0.0
    for i in numba.prange(by):
        acc = 0.0
        for j in range(bx):
            block = z[i * s : (i + 1) * s, j * s : (j + 1) * s]
            acc += _boxes(np.float64(block.min()), np.float64(block.max()), zmin, inv_h, rule)
        total += acc
    return total


def box_counts(z, origin, sizes, inv_heights, zmin, rule, counts, n_blocks):
    """See pyengine.reference.boxcount.box_counts."""
    region = z[origin[0] :, origin[1] :]
    h, w = region.shape
    level_of = {int(s).bit_length() - 1: i for i, s in enumerate(sizes) if s >= 2 and s & (s - 1) == 0}
    top = max((k for k in level_of if 2**k <= min(h, w)), default=0)
    lo = hi = region
    for k in range(1, top + 1):
        i = level_of.get(k, -1)
        new_lo = np.empty((h >> k, w >> k), dtype=region.dtype)
        new_hi = np.empty_like(new_lo)
        inv_h = inv_heights[i] if i >= 0 else 0.0
        total = _next_level(lo, hi, new_lo, new_hi, zmin, inv_h, rule, i >= 0)
        if i >= 0:
            counts[i] += total
            n_blocks[i] += new_lo.size
        lo, hi = new_lo, new_hi
    for i, s in enumerate(sizes):
        by, bx = h // s, w // s
        if by and bx and (s == 1 or s & (s - 1)):
            counts[i] += _direct(region, int(s), zmin, inv_heights[i], rule)
            n_blocks[i] += by * bx
    return counts, n_blocks


@numba.njit(parallel=True, cache=True)
def _row_stats(z, ref, out):
    for i in numba.prange(z.shape[0]):
        mn, mx, total, sq, nans = np.inf, -np.inf, 0.0, 0.0, 0.0
        for j in range(z.shape[1]):
            v = np.float64(z[i, j])
            if math.isnan(v):
                nans += 1.0
                continue
            mn = min(mn, v)
            mx = max(mx, v)
            total += v - ref
            sq += (v - ref) * (v - ref)
        out[i, 0], out[i, 1], out[i, 2], out[i, 3], out[i, 4] = mn, mx, total, sq, nans


def surface_stats(z):
    """See pyengine.reference.boxcount.surface_stats."""
    z0 = float(z[0, 0])
    rows = np.empty((z.shape[0], 5))
    _row_stats(z, 0.0 if math.isnan(z0) else z0, rows)
    return np.array([rows[:, 0].min(), rows[:, 1].max(), rows[:, 2].sum(), rows[:, 3].sum(), rows[:, 4].sum()])
