"""Plain NumPy Mohammadi statistics (the ``numpy`` backend and the test reference)."""

import numpy as np

HEAD, PER_K1 = 5, 5  # layout of the statistics vector, as in csrc/include/pyengine/tail_index.hpp


def tail_sums(x: np.ndarray, k1: np.ndarray, stats: np.ndarray) -> np.ndarray:
    """Add the 1-D Mohammadi statistics of the columns of ``x`` (n_rows, n_cols) to ``stats``.

    Per column: zeros and non-finite values are counted and dropped; the remaining values,
    in order, form groups of K1 consecutive values (the last incomplete group is dropped
    and its size counted). ``stats`` = [Σ log|x|, Σ log²|x|, n used, n zero, n non-finite]
    followed, per K1, by [Σ log|y|, Σ log²|y|, groups used, degenerate groups, n truncated].
    """
    x = np.asarray(x, dtype=np.float64)
    for col in x.T:
        finite = np.isfinite(col)
        stats[3] += np.count_nonzero(col == 0)
        stats[4] += np.count_nonzero(~finite)
        v = col[finite & (col != 0)]
        lx = np.log(np.abs(v))
        stats[:3] += lx.sum(), (lx**2).sum(), v.size
        for g, k in enumerate(k1):
            st = stats[HEAD + PER_K1 * g : HEAD + PER_K1 * (g + 1)]
            m = v.size // k * k
            with np.errstate(over="ignore"):
                y = v[:m].reshape(-1, k).sum(axis=1)
            ok = np.isfinite(y) & (y != 0)
            ly = np.log(np.abs(y[ok]))
            st += ly.sum(), (ly**2).sum(), ok.sum(), (~ok).sum(), v.size - m
    return stats


def tail_norms(x: np.ndarray, k1: np.ndarray, row_sq: np.ndarray, group_sq: np.ndarray) -> None:
    """Add squared row norms of ``x`` to ``row_sq`` and squared norms of the sums of K1
    consecutive rows to ``group_sq`` (the K1 in order, ``n_rows // K1`` entries each)."""
    x = np.asarray(x, dtype=np.float64)
    n = x.shape[0]
    with np.errstate(invalid="ignore", over="ignore"):  # non-finite values propagate, as in the kernels
        row_sq += np.einsum("ij,ij->i", x, x)
        off = 0
        for k in k1:
            m = n // k
            s = x[: m * k].reshape(m, k, x.shape[1]).sum(axis=1)
            group_sq[off : off + m] += np.einsum("ij,ij->i", s, s)
            off += m
