"""Mohammadi et al. (2015) tail-index estimator, as used by Şimşekli et al. (2019), Eq. 15.

    1/α̂ = (1 / log K1) · ( mean_i log|Y_i| − mean_j log|X_j| ),  Y_i = sum of K1 consecutive X.

Block order. Samples run down axis 0: a 1-D input is one sequence; a 2-D input (n_samples,
n_cols) is n_cols sequences, and every K1-group lies inside one column. In the 1-D form
zeros and non-finite values are counted and dropped from their column's sequence before
grouping, and a column's last incomplete group is dropped (counted in ``n_truncated``).
In the multivariate form rows are the sample vectors, X_j is a row's norm and Y_i the norm
of the sum of K1 consecutive rows. Either way the statistics are sums over columns, so
any split of the columns into blocks gives the same result: :class:`TailIndexAccumulator`
is an engine accumulator, and :func:`tail_index` runs it through the engine's one pass
(threads, prefetch, Dask) like every other streaming statistic.

The mean of log|X| uses every usable sample (not only those in complete groups); with
K = K1·K2 samples and nothing dropped this is exactly Eq. 15.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from pyengine.engine.accumulator import RunMeta
from pyengine.engine.runner import run
from pyengine.engine.options import EngineOptions
from pyengine.heavytail._input import as_array, is_h5
from pyengine.heavytail.results import TailIndexResult
from pyengine.kernels._arrays import to_host
from pyengine.kernels.tail_index import HEAD, PER_K1, n_stats, tail_norms, tail_sums

__all__ = ["TailState", "TailIndexAccumulator", "tail_index", "finalize", "choose_k1", "k1_grid", "resolve_k1"]


@dataclasses.dataclass
class TailState:
    """Additive state of the Mohammadi estimator (its size does not grow with the columns).

    1-D form: ``stats`` (see :func:`pyengine.kernels.tail_index.tail_sums`). Multivariate
    form: ``row_sq`` (squared norm of every row) and ``group_sq`` (squared norms of the
    K1-group sums, the K1 in order).
    """

    k1: np.ndarray
    multivariate: bool
    stats: np.ndarray | None = None
    row_sq: np.ndarray | None = None
    group_sq: np.ndarray | None = None
    backend: str = "auto"


@dataclasses.dataclass(frozen=True)
class TailIndexAccumulator:
    """The Mohammadi estimator as an engine accumulator (see :mod:`pyengine.engine.accumulator`).

    Rows of a block are samples, columns are sequences (or, ``multivariate``, the
    coordinates of sample vectors); the state holds sums over columns.

    Examples
    --------
    >>> import numpy as np
    >>> from pyengine.engine import run
    >>> x = np.random.default_rng(0).standard_cauchy((4000, 6))
    >>> (r,) = run(x, [TailIndexAccumulator((40,))], block_cols=2)
    >>> bool(abs(r.alpha - 1.0) < 0.2)
    True
    """

    k1: tuple[int, ...]
    multivariate: bool = False
    name: str = "tail_index"

    def __post_init__(self):
        if len(self.k1) == 0 or min(self.k1) < 2:
            raise ValueError(f"k1: every K1 must be >= 2 (log K1 = 0 for K1 = 1), got {self.k1}")

    def prepare(self, meta: RunMeta) -> TailState:
        k1 = np.array(self.k1, dtype=np.int64)
        if not self.multivariate:
            return TailState(k1, False, stats=np.zeros(n_stats(k1.size)), backend=meta.backend)
        n_groups = int(sum(meta.n_rows // k for k in k1))
        return TailState(k1, True, row_sq=np.zeros(meta.n_rows), group_sq=np.zeros(n_groups), backend=meta.backend)

    def update(self, state: TailState, block, cols: slice) -> None:
        if state.multivariate:
            row_sq, group_sq = tail_norms(block, state.k1, backend=state.backend)
            state.row_sq += to_host(row_sq)
            state.group_sq += to_host(group_sq)
        else:
            state.stats += to_host(tail_sums(block, state.k1, backend=state.backend))

    def merge(self, a: TailState, b: TailState) -> TailState:
        if a.multivariate:
            return dataclasses.replace(a, row_sq=a.row_sq + b.row_sq, group_sq=a.group_sq + b.group_sq)
        return dataclasses.replace(a, stats=a.stats + b.stats)

    def finalize(self, state: TailState) -> TailIndexResult:
        return finalize(state)


def finalize(state: TailState) -> TailIndexResult:
    """The estimate from accumulated statistics (also from sums stored by the recorder's noise probe)."""
    k1 = state.k1
    if state.multivariate:
        return _finalize_multivariate(state)
    st = state.stats
    per = st[HEAD:].reshape(k1.size, PER_K1)
    return _estimate(k1, st[0], st[1], st[2], per[:, 0], per[:, 1], per[:, 2], int(st[3]), int(st[4]),
                     per[:, 3], per[:, 4], multivariate=False)


def _finalize_multivariate(state: TailState) -> TailIndexResult:
    def log_norms(sq):
        ok = np.isfinite(sq) & (sq > 0)
        return 0.5 * np.log(sq[ok]), ok

    lx, ok = log_norms(state.row_sq)
    n_zero = int(np.count_nonzero(state.row_sq == 0))
    n = state.row_sq.size
    sy, sy2, ny, deg, trunc = (np.zeros(state.k1.size) for _ in range(5))
    off = 0
    for g, k in enumerate(state.k1):
        m = n // k
        ly, okg = log_norms(state.group_sq[off : off + m])
        sy[g], sy2[g], ny[g], deg[g], trunc[g] = ly.sum(), (ly**2).sum(), ly.size, m - ly.size, n - m * k
        off += m
    return _estimate(state.k1, lx.sum(), (lx**2).sum(), lx.size, sy, sy2, ny, n_zero, n - lx.size - n_zero,
                     deg, trunc, multivariate=True)


def _estimate(k1, sx, sx2, nx, sy, sy2, ny, n_zero, n_nonfinite, deg, trunc, *, multivariate) -> TailIndexResult:
    k1 = np.asarray(k1)
    reasons = []
    with np.errstate(divide="ignore", invalid="ignore"):
        mx = sx / nx
        vx = max(sx2 / nx - mx**2, 0.0)
        my = sy / ny
        vy = np.maximum(sy2 / ny - my**2, 0.0)
        inv = (my - mx) / np.log(k1)
        alpha = np.where(inv > 0, 1.0 / inv, np.nan)
        se = np.sqrt(vy / ny + vx / nx) / np.log(k1) * alpha**2
    if nx == 0:
        reasons.append("no usable samples (all zero or non-finite)")
    for k, n_g, d in zip(k1, ny, inv):
        if n_g == 0:
            reasons.append(f"K1={k}: no complete group")
        elif not d > 0:
            reasons.append(f"K1={k}: mean log|Y| - mean log|X| = {d * math.log(k):.3g} <= 0, so 1/alpha "
                           "would be non-positive (no heavy-tailed scaling); alpha left undefined")
    valid = np.isfinite(alpha)
    if valid.any():
        a, lo, hi = np.percentile(alpha[valid], [50, 25, 75])
        s = float(np.median(se[valid]))
    else:
        a = lo = hi = s = math.nan
    return TailIndexResult(
        alpha=float(a), alpha_se=s, alpha_range=(float(lo), float(hi)), k1=k1.copy(), alpha_by_k1=alpha,
        inv_alpha_by_k1=inv, alpha_se_by_k1=se, n_used=int(nx), n_zero=int(n_zero), n_nonfinite=int(n_nonfinite),
        n_groups=np.asarray(ny, dtype=np.int64), n_degenerate=np.asarray(deg, dtype=np.int64),
        n_truncated=np.asarray(trunc, dtype=np.int64), multivariate=multivariate, reason="; ".join(reasons))


def choose_k1(n: int, target: float) -> int:
    """The divisor of ``n`` in [2, n] closest to ``target`` (in ratio); if none lies within a
    factor 2 of it (n prime, say), ``round(target)`` clipped to [2, n], the remainder dropped.

    Examples
    --------
    >>> choose_k1(100_000, 100_000 ** 0.5), choose_k1(997, 997 ** 0.5)
    (250, 32)
    """
    if n < 2:
        raise ValueError(f"need at least 2 samples per sequence to form a group, got {n}")
    target = min(max(target, 2.0), float(n))
    divisors = [d for d in range(2, int(math.isqrt(n)) + 1) if n % d == 0]
    divisors = np.array(sorted(set(divisors + [n // d for d in divisors] + [n])))
    best = int(divisors[np.argmin(np.abs(divisors - target))])
    if abs(math.log(best / target)) <= math.log(2.0):
        return best
    return int(min(max(round(target), 2), n))


def k1_grid(n: int, k_max: int = 1000, size: int = 20) -> np.ndarray:
    """Log-spaced group sizes from 2 to min(k_max, n // 2) (at most ``size`` of them)."""
    top = min(k_max, n // 2)
    if top < 2:
        raise ValueError(f"a K1 grid needs at least 4 samples per sequence, got {n}")
    return np.unique(np.round(np.geomspace(2, top, size)).astype(np.int64))


def tail_index(x, k1=None, multivariate: bool = False, **engine) -> TailIndexResult:
    """Estimate the tail index α of (symmetric) α-stable samples with the Mohammadi estimator.

    Parameters
    ----------
    x : array_like of shape (K,) or (n_samples, n_cols)
        NumPy, CuPy, torch (CPU or GPU), anything ``np.asarray`` takes, or an h5py dataset
        (read in column blocks by the engine). A 1-D input is one
        sequence; columns of a 2-D input are separate sequences (1-D form) or rows are
        sample vectors (``multivariate=True``).
    k1 : int, sequence of int, "grid" or None
        Group size(s), each >= 2. None: the divisor of n_samples closest to √K (K = all
        samples; Şimşekli et al.), or √n_samples in the multivariate form. "grid": the
        sizes of :func:`k1_grid`; α̂ is then the median and ``alpha_range`` the spread.
    multivariate : bool
        Treat rows as vectors and use norms (Mohammadi et al. 2015, multivariate form).
    **engine
        Engine settings (``backend``, ``block_cols``, ``workers``, ``progress`` (default
        off here), ``scheduler``, ``nonfinite``; see :class:`pyengine.engine.EngineOptions`).

    Returns
    -------
    TailIndexResult
        ``.alpha`` and its standard error, per-K1 values and counts of what was dropped.
        A non-positive difference gives ``alpha = nan`` with the reason, never a negative
        or inverted value.

    Raises
    ------
    ValueError
        For K1 < 2, K1 larger than the number of samples, or too few samples.

    References
    ----------
    Mohammadi, Mohammadpour & Ogata (2015), Metrika 78:549; Şimşekli, Sagun &
    Gürbüzbalaban (2019), Eq. 15.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.random.default_rng(1).standard_cauchy(100_000)     # α = 1
    >>> r = tail_index(x, k1=100)
    >>> bool(abs(r.alpha - 1.0) < 0.05), r.k1.tolist(), r.n_groups.tolist()
    (True, [100], [1000])
    """
    if not is_h5(x):
        x = as_array(x)
    if len(x.shape) not in (1, 2):
        raise ValueError(f"x: expected a 1-D or 2-D array, got shape {x.shape}")
    if multivariate and len(x.shape) != 2:
        raise ValueError("x: the multivariate form needs a 2-D array (n_samples, dim)")
    if len(x.shape) == 1:
        x = x[:, None] if not is_h5(x) else x[()][:, None]
    k1 = resolve_k1(k1, x.shape[0], x.shape[1], multivariate)
    options = EngineOptions.from_kwargs({"progress": False, **engine})
    (result,) = run(x, [TailIndexAccumulator(tuple(int(k) for k in k1), bool(multivariate))], options,
                    desc="tail index")
    return result


def resolve_k1(k1, n: int, n_cols: int, multivariate: bool) -> np.ndarray:
    """The group sizes :func:`tail_index` uses for ``k1`` on n samples of ``n_cols`` sequences."""
    if n < 2:
        raise ValueError(f"x: need at least 2 samples along axis 0, got {n}")
    if k1 is None:
        target = math.sqrt(n if multivariate else n * n_cols)
        return np.array([choose_k1(n, target)])
    if isinstance(k1, str):
        if k1 != "grid":
            raise ValueError(f"k1: expected an int, a sequence of ints, 'grid' or None, got {k1!r}")
        return k1_grid(n)
    k1 = np.atleast_1d(np.asarray(k1))
    if not np.issubdtype(k1.dtype, np.integer):
        raise TypeError(f"k1: expected integers, got dtype {k1.dtype}")
    if k1.min() < 2:
        raise ValueError(f"k1: every K1 must be >= 2 (log K1 = 0 for K1 = 1), got {k1.min()}")
    if k1.max() > n:
        raise ValueError(f"k1: K1 = {k1.max()} exceeds the {n} samples along axis 0: no complete group")
    return k1.astype(np.int64)
