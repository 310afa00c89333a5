"""Tail index of a window's weight increments that measures tails, not drift or memory.

Grouping K1 consecutive increments of one coordinate (what :func:`~pyengine.heavytail.mohammadi.tail_index` does with
a (T, k) array, each column its own sequence) compares the displacement over K1 steps
with single steps. That is a scaling exponent of the path, and drift and memory change
it: a drift μ adds K1·μ to every group sum, and positively correlated steps make sums
grow faster than K1^{1/2}. On Gaussian increments (α = 2, T = 1000, k = 256, K1 = 500)
it gives about 1.69 for AR(1) φ = 0.5, 1.35 for φ = 0.9 and 1.20 for a drift of 0.2σ
(docs/heavytail.md has the table). This module keeps that grouping as
``grouping="displacement"`` and adds the protocol ``grouping="permuted"``, which
estimates the tail of the increments' distribution:

1. **Centre** each coordinate at its median increment in the window (removes its drift).
   The median, not the mean: for α ≤ 1 the mean does not exist, and for α < 2 the sample
   mean of T draws errs by about T^{1/α−1} scales (0.3 for α = 1.2, T = 1000), while the
   median errs by about T^{−1/2} for every α. For a symmetric law both estimate the same
   centre.
2. **Scale** each coordinate by its median absolute deviation (MAD) about that median.
   It exists for every α (the variance does not for α < 2), and for coordinates drawn
   from one law up to location and scale it makes them identically distributed, so
   pooling does not turn a spread of scales into a heavy-tailed scale mixture.
   Coordinates with zero MAD (more than half of their increments equal) or no finite
   increment are dropped and counted.
3. **Permute** the pooled T·k standardised values with a seeded random permutation, so
   a K1-group is a sum of K1 values from random times and coordinates: (nearly)
   independent draws from the pooled marginal, whatever the memory of each coordinate.
   The Mohammadi estimator needs exactly that (Şimşekli et al. 2019, Thm. 3, i.i.d. X_j).
4. **Estimate** with :func:`~pyengine.heavytail.mohammadi.tail_index` on the permuted sequence; by default K1 is the
   divisor of K closest to √K (Şimşekli et al.'s rule).

What remains is the tail of the window's marginal: a scale that changes within the
window (a decaying learning rate, say) makes Gaussian increments a scale mixture, which
is heavier-tailed than Gaussian; shorter windows reduce that.
"""

from __future__ import annotations

import dataclasses
import numbers

import numpy as np

from pyengine.heavytail._input import as_array, to_host
from pyengine.fits import jackknife_se
from pyengine.heavytail.mohammadi import TailState, finalize, resolve_k1
from pyengine.kernels.tail_index import tail_sums
from pyengine.heavytail.results import TailIndexResult

__all__ = ["GROUPINGS", "IncrementTailIndex", "increment_tail_index", "standardise", "check_options"]

#: Ways to form the K1-groups of a window's increments (see :func:`increment_tail_index`).
GROUPINGS = ("permuted", "displacement")


@dataclasses.dataclass(frozen=True, repr=False)
class IncrementTailIndex(TailIndexResult):
    """A :class:`TailIndexResult` of a window's increments, with how its groups were formed.

    Attributes
    ----------
    grouping : {"permuted", "displacement"}
        How the K1-groups were formed (see :func:`increment_tail_index`).
    seed : int
        Seed of the permutation (not used by ``"displacement"``).
    n_coords : int
        Coordinates used.
    n_flat : int
        Coordinates dropped because their MAD is zero or they have no finite increment
        (``"permuted"`` only; ``"displacement"`` drops single values, never coordinates).

    Notes
    -----
    The inherited counts refer to the sequence the estimator saw: with ``"permuted"``,
    ``n_zero`` counts increments equal to their coordinate's median (one per coordinate
    when T is odd), and ``n_nonfinite`` every non-finite increment of the sample.
    """

    grouping: str = "permuted"
    seed: int = 0
    n_coords: int = 0
    n_flat: int = 0


def check_options(grouping: str, seed: int) -> tuple[str, int]:
    """``(grouping, seed)`` if ``grouping`` is in :data:`GROUPINGS` and ``seed`` an integer >= 0.

    Raises ``ValueError`` (unknown grouping, negative seed) or ``TypeError`` (seed not an
    integer), so callers can check before a pass.
    """
    if grouping not in GROUPINGS:
        raise ValueError(f"grouping must be one of {GROUPINGS}, got {grouping!r}")
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"seed: expected a non-negative integer, got {seed!r}")
    if seed < 0:
        raise ValueError(f"seed: expected a non-negative integer, got {seed}")
    return grouping, int(seed)


def standardise(sample: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centre each coordinate at its median and divide it by its median absolute deviation.

    Parameters
    ----------
    sample : ndarray of float64, shape (T, k)
        T increments of k coordinates; non-finite values are ignored.

    Returns
    -------
    z : ndarray of float64, shape (T, m)
        The standardised increments of the m coordinates with a positive MAD (NaN where
        the increment was not finite).
    kept : ndarray of bool, shape (k,)
        Which coordinates are in ``z``.

    Examples
    --------
    >>> x = np.array([[1.0, 5.0], [2.0, 5.0], [4.0, 5.0]])
    >>> z, kept = standardise(x)
    >>> z.ravel().tolist(), kept.tolist()
    ([-1.0, 0.0, 2.0], [True, False])
    """
    x = np.where(np.isfinite(sample), sample, np.nan)
    median = np.median if np.isfinite(sample).all() else np.nanmedian  # np.median: 5× faster
    some = ~np.isnan(x).all(axis=0)
    centre = np.zeros(x.shape[1])
    scale = np.zeros(x.shape[1])
    centre[some] = median(x[:, some], axis=0)
    scale[some] = median(np.abs(x[:, some] - centre[some]), axis=0)
    kept = scale > 0
    return (x[:, kept] - centre[kept]) / scale[kept], kept


def increment_tail_index(sample, *, grouping: str = "permuted", k1=None, seed: int = 0,
                         backend: str = "auto", column_groups=None) -> IncrementTailIndex:
    """Mohammadi tail index of a window's increments, by the protocol of this module.

    Parameters
    ----------
    sample : array_like of shape (T, k)
        T increments Δw(t) = w(t+1) − w(t) of k coordinates (NumPy, CuPy or torch).
    grouping : {"permuted", "displacement"}
        ``"permuted"`` (default): centre each coordinate at its median, divide it by its
        MAD, pool, permute (seeded) and group K1 consecutive values of the permuted
        sequence: the tail index of the increments. ``"displacement"``: K1 consecutive
        raw increments of one coordinate, i.e. K1-step displacements against single steps
        (drift and memory lower α̂; see the module notes).
    k1 : int, sequence of int, "grid" or None
        Group sizes (see :func:`~pyengine.heavytail.mohammadi.tail_index`). None: the divisor of K closest to √K, K the
        number of values (T·k, less what is dropped, for ``"permuted"``).
    seed : int
        Seed (>= 0) of the permutation.
    backend : {"auto", "cuda", "cpp", "numba", "numpy"}
        Backend of the estimator's kernel.
    column_groups : array of int, shape (k,), optional
        The parameter group of each coordinate: ``alpha_se`` is then the delete-one-group
        jackknife SE (the same protocol on the sample without each group's coordinates,
        in the same permuted order; ``se_method="jackknife"``).

    Returns
    -------
    IncrementTailIndex
        The :class:`TailIndexResult` with ``grouping``, ``seed``, ``n_coords`` and
        ``n_flat``.

    Raises
    ------
    ValueError
        For a sample that is not 2-D, an unknown ``grouping``, or (``"permuted"``) fewer
        than 2 usable values, e.g. when no coordinate moves.
    TypeError
        For a seed that is not an integer.

    References
    ----------
    Mohammadi, Mohammadpour & Ogata (2015), Metrika 78:549; Şimşekli, Sagun &
    Gürbüzbalaban (2019), Eq. 15 and Thm. 3 (i.i.d. samples, K1 ≈ √K).

    Examples
    --------
    Gaussian increments (α = 2) with a drift of 0.5σ, scales over three decades:

    >>> rng = np.random.default_rng(0)
    >>> steps = (0.5 + rng.standard_normal((1000, 256))) * np.geomspace(1e-3, 1, 256)
    >>> r = increment_tail_index(steps)
    >>> bool(abs(r.alpha - 2) < 0.1), r.k1.tolist(), r.n_coords
    (True, [500], 256)
    >>> bool(increment_tail_index(steps, grouping="displacement").alpha < 1.1)
    True
    """
    x = np.asarray(to_host(as_array(sample)), dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"sample: expected a 2-D array (T increments, k coordinates), got shape {x.shape}")
    grouping, seed = check_options(grouping, seed)
    labels = np.zeros(x.shape[1], np.int64) if column_groups is None else np.asarray(column_groups)
    if labels.shape != (x.shape[1],):
        raise ValueError(f"column_groups: expected one group per coordinate, shape ({x.shape[1]},), got {labels.shape}")
    if grouping == "displacement":
        k = resolve_k1(k1, x.shape[0], x.shape[1], False)
        parts = [tail_sums(x[:, labels == g], k, backend=backend) for g in np.unique(labels)]
        n_coords, n_flat = x.shape[1], 0
    else:
        z, kept = standardise(x)
        pools = _permuted_pools(z, labels[kept], seed)
        total = sum(p.size for p in pools)
        if total < 2:
            raise ValueError(f"sample: {total} usable values after standardising; {int((~kept).sum())} of "
                             f"{kept.size} coordinates have zero median absolute deviation or no finite increment")
        k = resolve_k1(k1, total, 1, False)
        parts = [tail_sums(p[:, None], k, backend=backend) for p in pools]
        n_coords, n_flat = int(kept.sum()), int((~kept).sum())
    parts = [to_host(p) for p in parts]
    result = finalize(TailState(k, False, stats=sum(parts)))
    result = _labelled(dataclasses.replace(result, n_nonfinite=int(x.size - np.isfinite(x).sum())), grouping, seed,
                       n_coords, n_flat)
    if len(parts) < 2:
        return result
    se = float(jackknife_se(np.array([finalize(TailState(k, False, stats=sum(parts) - p)).alpha for p in parts])))
    return dataclasses.replace(result, alpha_se=se, se_method="jackknife") if np.isfinite(se) else result


def _permuted_pools(z: np.ndarray, labels: np.ndarray, seed: int) -> list[np.ndarray]:
    """Per column group, its coordinates' finite standardised increments in a seeded random
    order (K1-groups then never mix column groups, so deleting one is exact)."""
    rng = np.random.default_rng(seed)
    pools = []
    for g in np.unique(labels):
        values = z[:, labels == g]
        values = values[~np.isnan(values)]
        pools.append(values[rng.permutation(values.size)])
    return pools


def _labelled(result: TailIndexResult, grouping: str, seed: int, n_coords: int, n_flat: int) -> IncrementTailIndex:
    fields = {f.name: getattr(result, f.name) for f in dataclasses.fields(result)}
    return IncrementTailIndex(**fields, grouping=grouping, seed=seed, n_coords=n_coords, n_flat=n_flat)
