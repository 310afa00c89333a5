"""Box counting, the plain way: one reshape-based block min/max per box size."""

import numpy as np

DBC, IDBC, OCCUPIED = 0, 1, 2


def boxes_in_blocks(lo: np.ndarray, hi: np.ndarray, zmin: float, inv_h: float, rule: int) -> np.ndarray:
    """Boxes needed by each block with minimum ``lo`` and maximum ``hi`` (see boxcount.hpp)."""
    if rule == DBC:
        return np.floor((hi - zmin) * inv_h) - np.floor((lo - zmin) * inv_h) + 1.0
    if rule == IDBC:
        return np.maximum(1.0, np.ceil((hi - lo) * inv_h))
    return ((hi != 0) | (lo != 0)).astype(np.float64)


def box_counts(z, origin, sizes, inv_heights, zmin, rule, counts, n_blocks):
    """counts[i] += boxes over the whole sizes[i]-blocks of z[oy:, ox:]; n_blocks[i] += blocks."""
    oy, ox = origin
    region = np.asarray(z, dtype=np.float64)[oy:, ox:]
    for i, (s, inv_h) in enumerate(zip(sizes, inv_heights)):
        by, bx = region.shape[0] // s, region.shape[1] // s
        if by == 0 or bx == 0:
            continue
        blocks = region[: by * s, : bx * s].reshape(by, s, bx, s)
        lo, hi = blocks.min(axis=(1, 3)), blocks.max(axis=(1, 3))
        counts[i] += boxes_in_blocks(lo, hi, zmin, inv_h, rule).sum()
        n_blocks[i] += by * bx
    return counts, n_blocks


def surface_stats(z) -> np.ndarray:
    """[min, max, sum(z - z0), sum((z - z0)**2), NaN count] over the non-NaN values, z0 = z[0, 0]."""
    z = np.asarray(z, dtype=np.float64)
    ok = z[~np.isnan(z)]
    if ok.size == 0:
        return np.array([np.inf, -np.inf, 0.0, 0.0, float(z.size)])
    z0 = z.flat[0] if not np.isnan(z.flat[0]) else 0.0
    d = ok - z0
    return np.array([ok.min(), ok.max(), d.sum(), (d * d).sum(), float(z.size - ok.size)])
