"""Sampled and sketched recordings: fewer columns than parameters, computed where the weights live.

``Recorder(..., sample=f)`` keeps a seeded subset of the coordinates (:class:`Sample`);
``Recorder(..., sketch=k)`` keeps a seeded CountSketch of the flat weight vector
(:class:`Sketch`). Both are computed on the parameters' device at O(P) per step with no
P × k matrix: a sample is one ``index_select`` per tensor, a sketch one ``index_add_`` per
tensor (chunk) into 2k float64 sums, the coordinates with sign −1 going to the second k.
The file says what it holds (:class:`pyengine.store.reduction.Reduction`), and the
analysis scales or skips accordingly (``docs/estimators.md``, "Sampled and sketched
recordings").

Why a CountSketch and not a subsampled randomized Hadamard transform (SRHT): both are
unbiased for squared distances, but the CountSketch costs one pass over P with a scatter
add (the SRHT costs P·log₂P after padding P to a power of two: 24 passes and 1.5× the
memory for an 11 M-parameter model), needs no buffer of the whole vector (it sums tensor
by tensor as they lie in memory), and its variance is exact and no larger than a Gaussian
sketch's: Var ‖Sx‖² = (2/k)(‖x‖₂⁴ − ‖x‖₄⁴) (:func:`pyengine.store.reduction.countsketch_variance`).

On the CPU the recorder takes the sketch off the training thread (:class:`DeferredSketch`):
it copies the weights flat, as a full recording does, and its writer thread sketches the
copy on the other core while training goes on. On a GPU the kernels are queued on the
current stream and the training thread does not wait for them.

The hashes are functions of the flat index i and the seed only (two rounds of a 32-bit
multiply-xorshift mix, :func:`sketch_hash`), so the sketch is the same on every device
and after a resume; they are cached per tensor (4 bytes per parameter) up to
:data:`INDEX_CACHE_BYTES`, and recomputed chunk by chunk above it.
"""

from __future__ import annotations

import numbers
import queue
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from pyengine.store import ParamInfo
from pyengine.store.reduction import SKETCH_HASH, Reduction

__all__ = ["Sample", "Sketch", "SampleReducer", "SketchReducer", "DeferredSketch", "make_reducer", "reduction_spec",
           "sample_indices", "sketch_hash", "signed_buckets", "reduce_rows"]

#: Largest memory for the sketch's cached bucket indices (int32 per parameter), in bytes;
#: above it they are recomputed at every step, chunk by chunk (tests patch it to 0).
INDEX_CACHE_BYTES = 2**30
#: Elements per chunk of the sketch's float64 scratch buffer and of recomputed hashes.
CHUNK = 2**20
_M32 = 0xFFFFFFFF
_MIX = 0x45D9F3B  # a 32-bit multiply-xorshift constant (below 2^27: products stay in int64)


@dataclass(frozen=True)
class Sample:
    """Record a seeded subset of the coordinates, each kept with probability ``fraction``.

    Parameters
    ----------
    fraction : float
        f in (0, 1].
    stratified : bool
        Per parameter tensor (default): tensor t of n_t coordinates keeps ⌊f·n_t⌋ or
        ⌈f·n_t⌉ of them (a systematic allocation with a random start, so each coordinate's
        probability is exactly f; tensors smaller than 1/f may keep none), chosen uniformly
        inside the tensor. Otherwise round(f·P) coordinates uniformly over all.
    seed : int

    Examples
    --------
    >>> Sample(0.01).fraction
    0.01
    """

    fraction: float
    stratified: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        f = self.fraction
        if isinstance(f, bool) or not isinstance(f, numbers.Real) or not 0 < f <= 1:
            raise ValueError(f"sample must be a fraction in (0, 1], got {f!r}")
        _check_seed(self.seed)


@dataclass(frozen=True)
class Sketch:
    """Record a seeded CountSketch of the flat weight vector into ``k`` coordinates.

    Parameters
    ----------
    k : int
        Sketch size, 1 ≤ k < 2^30; the relative standard deviation of a sketched squared
        distance is at most √(2/k) (2.2% at k = 4096, 0.55% at k = 65536).
    seed : int

    Examples
    --------
    >>> Sketch(4096).k
    4096
    """

    k: int
    seed: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.k, bool) or not isinstance(self.k, numbers.Integral) or not 1 <= self.k < 2**30:
            raise ValueError(f"sketch must be an integer size k in [1, 2^30), got {self.k!r}")
        _check_seed(self.seed)


def _check_seed(seed: object) -> None:
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or not 0 <= seed < 2**63:
        raise ValueError(f"seed must be an integer in [0, 2^63), got {seed!r}")


def reduction_spec(sample: float | Sample | None, sketch: int | Sketch | None) -> Sample | Sketch | None:
    """The reduction a recorder was asked for: ``sample=f`` or ``Sample(...)``, ``sketch=k`` or
    ``Sketch(...)``, not both.

    Examples
    --------
    >>> reduction_spec(0.1, None)
    Sample(fraction=0.1, stratified=True, seed=0)
    """
    if sample is not None and sketch is not None:
        raise ValueError("give sample= or sketch=, not both")
    if sample is not None:
        return sample if isinstance(sample, Sample) else Sample(sample)
    if sketch is not None:
        return sketch if isinstance(sketch, Sketch) else Sketch(sketch)
    return None


# -- sampling ---------------------------------------------------------------------------


def sample_indices(sizes: Sequence[int], spec: Sample) -> np.ndarray:
    """The kept flat indices of a sample of tensors of these sizes, increasing.

    Parameters
    ----------
    sizes : sequence of int
        Coordinates per tensor, in flat order.
    spec : Sample

    Returns
    -------
    ndarray of int64

    Raises
    ------
    ValueError
        When the sample keeps no coordinate (f·P < 1).

    Examples
    --------
    >>> sample_indices([100, 100], Sample(0.05, seed=1)).size
    10
    """
    rng = np.random.default_rng(spec.seed)
    total = int(sum(sizes))
    if not spec.stratified:
        m = int(round(spec.fraction * total))
        kept = np.sort(rng.choice(total, m, replace=False)) if m else np.zeros(0, np.int64)
    else:
        start = rng.random()
        bounds = np.floor(spec.fraction * np.concatenate(([0], np.cumsum(sizes, dtype=np.float64))) + start)
        counts = np.diff(bounds).astype(np.int64)
        offsets = np.concatenate(([0], np.cumsum(sizes)))[:-1]
        kept = np.concatenate([off + np.sort(rng.choice(int(n), int(c), replace=False))
                               for off, n, c in zip(offsets, sizes, counts) if c] or [np.zeros(0, np.int64)])
    if kept.size == 0:
        raise ValueError(f"sample={spec.fraction} keeps no coordinate of the {total} parameters: f·P must be >= 1")
    return kept.astype(np.int64)


class SampleReducer:
    """Copies the sampled coordinates of the tensors into a row (one ``index_select`` per tensor).

    Parameters
    ----------
    spec : Sample
    table : list of ParamInfo
        The full parameter table (offsets tile [0, P_full)).
    device : torch.device
        Where the parameters live; the index tensors are made there.
    kept : array of int, optional
        The kept indices of a file being resumed (default: drawn from the seed).

    Attributes
    ----------
    reduction : Reduction
    kept : ndarray of int64, shape (P_kept,)
    table : list of ParamInfo
        The file's ``/params``: one entry per tensor that keeps coordinates, its ``size``
        the number kept and its ``shape`` ``(size,)``; the tensor's own shape is in the
        full table.
    n_cols : int
        P_kept.

    Examples
    --------
    >>> table = [ParamInfo("w", 0, 6, (2, 3), "weight")]
    >>> red = SampleReducer(Sample(0.5, seed=0), table, torch.device("cpu"))
    >>> row = torch.empty(red.n_cols)
    >>> red.copy_into([torch.arange(6.0).reshape(2, 3)], row)
    >>> bool((row == torch.as_tensor(red.kept, dtype=row.dtype)).all())
    True
    """

    def __init__(self, spec: Sample, table: Sequence[ParamInfo], device: torch.device,
                 kept: np.ndarray | None = None) -> None:
        table = list(table)
        n_full = table[-1].offset + table[-1].size
        self.kept = sample_indices([p.size for p in table], spec) if kept is None else np.asarray(kept, np.int64)
        fraction = self.kept.size / n_full if not spec.stratified else float(spec.fraction)
        self.reduction = Reduction("sample", n_full, int(self.kept.size), int(spec.seed), fraction,
                                   bool(spec.stratified), full_params=tuple(table))
        problems = self.reduction.problems(int(self.kept.size), self.kept)
        if problems:
            raise ValueError("; ".join(problems))
        self.n_cols = int(self.kept.size)
        self.table, self._index = [], []
        bounds = np.searchsorted(self.kept, [p.offset for p in table] + [n_full])
        for i, p in enumerate(table):
            a, b = int(bounds[i]), int(bounds[i + 1])
            if b > a:
                self.table.append(ParamInfo(p.name, a, b - a, (b - a,), p.kind))
                self._index.append((i, a, b, torch.as_tensor(self.kept[a:b] - p.offset, device=device)))
        self._staging: torch.Tensor | None = None

    def copy_into(self, tensors: Sequence[torch.Tensor], row: torch.Tensor) -> None:
        """Write the kept coordinates of ``tensors`` (the full table's, in order) into ``row``
        (1-D, length P_kept); asynchronous from a GPU into pinned memory."""
        device = tensors[0].device
        direct = row.device == device
        if not direct and (self._staging is None or self._staging.dtype != row.dtype):
            self._staging = torch.empty(self.n_cols, dtype=row.dtype, device=device)
        out = row if direct else self._staging
        for i, a, b, index in self._index:
            flat = _flat(tensors[i])
            if flat.dtype == out.dtype:
                torch.index_select(flat, 0, index, out=out[a:b])
            else:
                out[a:b] = flat.index_select(0, index)
        if not direct:
            row.copy_(out, non_blocking=True)


# -- sketching --------------------------------------------------------------------------


def _splitmix64(x: int) -> int:
    x = (x + 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    return x ^ (x >> 31)


def _keys(seed: int) -> tuple[int, int]:
    """The 64-bit keys of the bucket hash and of the sign hash of a seed."""
    return _splitmix64(2 * seed), _splitmix64(2 * seed + 1)


def _mix32(v: torch.Tensor) -> torch.Tensor:
    """A bijection of [0, 2^32) (multiply-xorshift), in place on an int64 tensor."""
    v.bitwise_xor_(v >> 16).mul_(_MIX).bitwise_and_(_M32)
    v.bitwise_xor_(v >> 16).mul_(_MIX).bitwise_and_(_M32)
    return v.bitwise_xor_(v >> 16)


def sketch_hash(index: torch.Tensor, key: int) -> torch.Tensor:
    """A 32-bit hash of flat indices under a 64-bit key, the same on every device.

    h(i) = mix(mix((i mod 2^32) ⊕ key_lo) ⊕ ((⌊i / 2^32⌋ + key_hi) mod 2^32)), with mix
    the multiply-xorshift ``x ^= x >> 16; x *= 0x45d9f3b`` (twice) ``; x ^= x >> 16`` mod 2^32.

    Parameters
    ----------
    index : int64 tensor
        Flat indices, >= 0.
    key : int
        64-bit key (from the seed).

    Returns
    -------
    int64 tensor of values in [0, 2^32), same shape and device

    Examples
    --------
    >>> sketch_hash(torch.arange(3), 0).tolist() == sketch_hash(torch.arange(3), 0).tolist()
    True
    """
    h = _mix32((index & _M32) ^ (key & _M32))
    return _mix32(h.bitwise_xor_(((index >> 32) + (key >> 32)) & _M32))


def signed_buckets(start: int, n: int, k: int, seed: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """Where the flat coordinates ``start … start + n − 1`` go in the sketch's 2k sums.

    Coordinate i goes to bucket h_b(i) mod k, plus k when its sign σ(i) is −1 (bit 16 of
    the sign hash); the sketch is then sums[:k] − sums[k:].

    Returns
    -------
    int32 tensor of shape (n,), on ``device``

    Examples
    --------
    >>> b = signed_buckets(0, 1000, 16, seed=0)
    >>> int(b.min()) >= 0 and int(b.max()) < 32
    True
    """
    bucket_key, sign_key = _keys(seed)
    index = torch.arange(start, start + n, dtype=torch.int64, device=device)
    bucket = sketch_hash(index, bucket_key).remainder_(k)
    sign = (sketch_hash(index, sign_key) >> 16).bitwise_and_(1)
    return bucket.add_(sign.mul_(k)).to(torch.int32)


class SketchReducer:
    """Writes the CountSketch y = S w of the tensors' flat vector into a row, on their device.

    Per tensor (in chunks of :data:`CHUNK`): its values in float64 are added into 2k sums
    at the signed bucket of each coordinate (``index_add_``); the row is the first k sums
    minus the last k. Float64 sums, so that the sketch adds no rounding of its own to the
    differences between snapshots.

    Parameters
    ----------
    spec : Sketch
    table : list of ParamInfo
        The full parameter table.
    device : torch.device

    Attributes
    ----------
    reduction : Reduction
    table : list of ParamInfo
        The file's ``/params``: one entry ``("sketch", 0, k, (k,), "other")`` — a sketch
        coordinate mixes parameters of every tensor and belongs to none.
    n_cols : int
        k.

    Examples
    --------
    >>> table = [ParamInfo("w", 0, 1000, (1000,), "weight")]
    >>> red = SketchReducer(Sketch(64, seed=0), table, torch.device("cpu"))
    >>> x = torch.zeros(1000, dtype=torch.float64); x[7] = 2.0     # a one-hot vector
    >>> row = torch.empty(64, dtype=torch.float64)
    >>> red.copy_into([x], row)
    >>> sorted(set(row.abs().tolist()))                            # lands as ±2 in one bucket
    [0.0, 2.0]
    """

    def __init__(self, spec: Sketch, table: Sequence[ParamInfo], device: torch.device) -> None:
        table = list(table)
        n_full = table[-1].offset + table[-1].size
        self.k, self.seed = int(spec.k), int(spec.seed)
        self.reduction = Reduction("sketch", n_full, self.k, self.seed, hash=SKETCH_HASH, full_params=tuple(table))
        self.n_cols = self.k
        self.table = [ParamInfo("sketch", 0, self.k, (self.k,), "other")]
        self._offsets = [p.offset for p in table]
        cache = 4 * n_full <= INDEX_CACHE_BYTES
        self._buckets = [signed_buckets(p.offset, p.size, self.k, self.seed, device) if cache else None for p in table]
        self._sums = torch.zeros(2 * self.k, dtype=torch.float64, device=device)
        self._result = torch.empty(self.k, dtype=torch.float64, device=device)
        self._scratch = torch.empty(min(CHUNK, max(p.size for p in table)), dtype=torch.float64, device=device)

    def copy_into(self, tensors: Sequence[torch.Tensor], row: torch.Tensor) -> None:
        """Write S·w into ``row`` (1-D, length k); asynchronous from a GPU into pinned memory."""
        sums = self._sums.zero_()
        for t, offset, buckets in zip(tensors, self._offsets, self._buckets):
            flat = _flat(t)
            for c0 in range(0, flat.numel(), CHUNK):
                c1 = min(c0 + CHUNK, flat.numel())
                index = buckets[c0:c1] if buckets is not None else signed_buckets(
                    offset + c0, c1 - c0, self.k, self.seed, flat.device)
                if flat.dtype == torch.float64:
                    sums.index_add_(0, index, flat[c0:c1])
                else:
                    scratch = self._scratch[: c1 - c0]
                    scratch.copy_(flat[c0:c1])
                    sums.index_add_(0, index, scratch)
        torch.sub(sums[: self.k], sums[self.k:], out=self._result)
        row.copy_(self._result, non_blocking=row.device != self._result.device)


class DeferredSketch:
    """A CPU sketch taken off the training thread: the weights are copied flat, in float64
    (one pass over P, about what a full recording costs the training thread), and the
    recorder's writer thread sketches the copy on the other core while training goes on.

    A pool of ``n_buffers`` flat copies bounds the memory (8 bytes per parameter each);
    :meth:`copy_into` waits for a free one when the writer falls behind.

    Parameters
    ----------
    reducer : SketchReducer
    n_buffers : int

    Examples
    --------
    >>> table = [ParamInfo("w", 0, 100, (10, 10), "weight")]
    >>> deferred = DeferredSketch(SketchReducer(Sketch(8), table, torch.device("cpu")))
    >>> row, jobs = torch.empty(8, dtype=torch.float64), []
    >>> deferred.copy_into([torch.ones(10, 10)], row, jobs.append)
    >>> jobs[0]()                                   # the writer thread runs it
    >>> float(row.abs().sum()) <= 100.0
    True
    """

    def __init__(self, reducer: SketchReducer, n_buffers: int = 2) -> None:
        self.reducer = reducer
        self._free: queue.Queue = queue.Queue()
        table = reducer.reduction.full_params
        for _ in range(n_buffers):
            flat = torch.empty(reducer.reduction.n_full, dtype=torch.float64)
            self._free.put((flat, [flat[p.offset:p.offset + p.size] for p in table]))

    def copy_into(self, tensors: Sequence[torch.Tensor], row: torch.Tensor,
                  put: Callable[[Callable[[], None]], None]) -> None:
        """Copy ``tensors`` (the full table's, in order) now and queue, with ``put``, the job
        that sketches the copy into ``row``."""
        flat, views = self._free.get()
        try:
            for view, t in zip(views, tensors):
                view.view(t.shape).copy_(t.detach())
        except BaseException:
            self._free.put((flat, views))
            raise

        def job() -> None:
            try:
                self.reducer.copy_into(views, row)
            finally:
                self._free.put((flat, views))

        put(job)


def _flat(t: torch.Tensor) -> torch.Tensor:
    t = t.detach()
    return t.view(-1) if t.is_contiguous() else t.reshape(-1)


def make_reducer(spec: Sample | Sketch, table: Sequence[ParamInfo], device: torch.device | str = "cpu",
                 kept: np.ndarray | None = None) -> SampleReducer | SketchReducer:
    """The reducer for a spec, over tensors with this full parameter table, on ``device``.

    ``kept`` (a sample only): the kept indices of a file being resumed.

    Examples
    --------
    >>> make_reducer(Sketch(8), [ParamInfo("w", 0, 100, (100,), "weight")]).n_cols
    8
    """
    device = torch.device(device)
    if isinstance(spec, Sample):
        return SampleReducer(spec, table, device, kept)
    if isinstance(spec, Sketch):
        if kept is not None:
            raise ValueError("a sketch keeps no coordinates: kept must be None")
        return SketchReducer(spec, table, device)
    raise TypeError(f"spec must be a Sample or a Sketch, got {type(spec).__name__}")


def reduce_rows(x, spec: Sample | Sketch, table: Sequence[ParamInfo] | None = None,
                dtype: torch.dtype = torch.float64) -> tuple[np.ndarray, SampleReducer | SketchReducer]:
    """Reduce the rows of an (N, P) array as a recorder would (for arrays and imported runs).

    Parameters
    ----------
    x : array_like or torch.Tensor, shape (N, P)
        Flat weight vectors, one per row.
    spec : Sample or Sketch
    table : list of ParamInfo, optional
        The parameter table (default one tensor of P coordinates); a stratified sample
        samples per entry.
    dtype : torch.dtype
        Dtype of the rows returned.

    Returns
    -------
    rows : ndarray, shape (N, n_cols)
    reducer : SampleReducer or SketchReducer
        Its ``reduction``, ``table`` and (sample) ``kept`` are what a file of these rows
        stores (``TrajectoryWriter(..., params=reducer.table, reduction=reducer.reduction,
        kept_index=getattr(reducer, "kept", None))``).

    Examples
    --------
    >>> rows, red = reduce_rows(np.ones((3, 100)), Sample(0.1, stratified=False))
    >>> rows.shape, red.reduction.sum_scale
    ((3, 10), 10.0)
    """
    x = torch.as_tensor(x)
    if x.ndim != 2:
        raise ValueError(f"x must have shape (N, P), got {tuple(x.shape)}")
    n, p = x.shape
    table = list(table) if table is not None else [ParamInfo("params", 0, p, (p,), "other")]
    reducer = make_reducer(spec, table, x.device)
    out = torch.empty((n, reducer.n_cols), dtype=dtype, device=x.device)
    for r in range(n):
        tensors = [x[r, q.offset:q.offset + q.size] for q in table]
        reducer.copy_into(tensors, out[r])
    return out.cpu().numpy(), reducer
