"""Box counts of point sets and curves in R^d: quantise, Morton-encode, sort once."""

from __future__ import annotations

import numpy as np

#: Upper bound on the points a curve is densified to.
MAX_DENSE_POINTS = 20_000_000


def morton_keys(cells: np.ndarray, bits: int) -> np.ndarray:
    """Interleave the low ``bits`` bits of each column of ``cells`` (shape (m, d)) into uint64.

    Bit ``b`` of axis ``a`` goes to bit ``b * d + a``, so ``key >> (k * d)`` is the key of
    the box of ``2**k`` cells that holds the point.
    """
    m, d = cells.shape
    keys = np.zeros(m, dtype=np.uint64)
    c = cells.astype(np.uint64)
    for b in range(bits):
        for a in range(d):
            keys |= ((c[:, a] >> np.uint64(b)) & np.uint64(1)) << np.uint64(b * d + a)
    return keys


def densify(points: np.ndarray, max_step: float) -> np.ndarray:
    """Insert points on each segment of a polyline so that no step exceeds ``max_step``
    (max-norm), keeping the vertices."""
    steps = np.abs(np.diff(points, axis=0)).max(axis=1)
    pieces = np.maximum(1, np.ceil(steps / max_step)).astype(np.int64)
    total = int(pieces.sum()) + 1
    if total > MAX_DENSE_POINTS:
        raise ValueError(f"densifying the curve would make {total} points (> {MAX_DENSE_POINTS}); "
                         "pass larger sizes")
    seg = np.repeat(np.arange(pieces.size), pieces)
    first = np.cumsum(pieces) - pieces
    frac = (np.arange(seg.size) - first[seg]) / pieces[seg]
    dense = points[seg] + frac[:, None] * (points[seg + 1] - points[seg])
    return np.vstack([dense, points[-1:]])


def dyadic_counts(points: np.ndarray, curve: bool) -> tuple[np.ndarray, np.ndarray]:
    """Occupied boxes at box sizes ``extent / 2**k`` from one sort of Morton keys.

    The grid is the bounding cube of the points, split into ``2**bits`` cells per axis;
    sizes run from a quarter of the cube down to where the counts are no longer informative
    (more than an eighth of the points, for point sets; the median step, for curves).
    """
    m, d = points.shape
    lo = points.min(axis=0)
    extent = float((points.max(axis=0) - lo).max())
    if extent == 0.0:
        raise ValueError("points: all points coincide; no box size resolves them")
    bits = min(20, 63 // d)
    finest = 0.0
    if curve:  # resolved down to its median step; cells of half that, steps of a quarter
        finest = float(np.median(np.abs(np.diff(points, axis=0)).max(axis=1)))
        if finest > 0.0:
            bits = min(bits, max(1, int(np.ceil(np.log2(extent / finest))) + 1))
        points = densify(points, extent / 2**bits / 2)
    cell = extent / 2**bits
    cells = np.minimum(((points - lo) / cell).astype(np.int64), 2**bits - 1)
    keys = np.sort(morton_keys(cells, bits))
    sizes, counts = [], []
    for k in range(bits - 1):  # up to a quarter of the cube
        box = keys >> np.uint64(k * d)
        n = 1 + int(np.count_nonzero(box[1:] != box[:-1]))
        if (curve and cell * 2**k >= finest) or (not curve and n <= max(m // 8, 1)):
            sizes.append(cell * 2**k)
            counts.append(n)
    return np.array(sizes), np.array(counts, dtype=np.float64)


def counts_at(points: np.ndarray, sizes: np.ndarray, curve: bool) -> np.ndarray:
    """Occupied boxes of side ``sizes[i]`` on a grid anchored at the points' minimum corner."""
    lo = points.min(axis=0)
    if curve:
        points = densify(points, float(sizes.min()) / 2)
    out = []
    for s in sizes:
        cells = ((points - lo) / s).astype(np.int64)
        bits = max(1, int(cells.max()).bit_length())
        if bits * points.shape[1] > 63:
            out.append(np.unique(cells, axis=0).shape[0])
            continue
        keys = np.sort(morton_keys(cells, bits))
        out.append(1 + int(np.count_nonzero(keys[1:] != keys[:-1])))
    return np.array(out, dtype=np.float64)
