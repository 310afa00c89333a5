"""Reduced recordings: a seeded sample of coordinates, or a CountSketch, described in the file.

A trajectory file may hold, instead of every parameter, either

- a **sample**: the columns of ``/weights`` are a seeded subset of the model's P_full
  coordinates, every coordinate kept with the same probability f (``/kept_index`` lists
  them), or
- a **sketch**: the columns are the k coordinates of a seeded CountSketch y = S w of the
  model's flat weight vector, y_j = Σ_{i: h(i) = j} σ(i) w_i (h a bucket hash, σ a sign
  hash of the flat index i), so that E‖S x‖² = ‖x‖² for every vector x.

The root attribute ``reduction`` (JSON) says which, with its seed and sizes, and
``/params_full`` keeps the model's parameter table; the writer, the reader and the
analysis share :class:`Reduction` (``docs/format.md``, "Reduced recordings"). The torch
side (the sampling and the sketch computed where the weights live) is
:mod:`pyengine.record.reduce`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import h5py
import numpy as np

from pyengine.store._format import FormatError, ParamInfo, check_params, params_from_table, params_to_table
from pyengine.store._storage import storage_problem

__all__ = ["Reduction", "countsketch_variance", "gaussian_sketch_variance", "read_reduction", "write_reduction",
           "read_kept_index", "REDUCTION_ATTR", "KEPT_DATASET", "FULL_PARAMS_DATASET", "SKETCH_HASH"]

#: Root attribute holding the reduction (JSON); absent in a file of every parameter.
REDUCTION_ATTR = "reduction"
#: (P_kept,) int64: the flat index, in the full model's vector, of each column of a sampled file.
KEPT_DATASET = "kept_index"
#: The parameter table of the full model (same compound type as ``/params``).
FULL_PARAMS_DATASET = "params_full"
#: Name and version of the sketch's hash family (pyengine.record.reduce.sketch_hash).
SKETCH_HASH = "countsketch-mix32-v1"
METHODS = ("sample", "sketch")
#: Largest parameter table a reader accepts in ``/params_full`` (rows).
MAX_TENSORS = 2**22


@dataclass(frozen=True)
class Reduction:
    """How the columns of a reduced recording relate to the full model's parameters.

    Attributes
    ----------
    method : {"sample", "sketch"}
    n_full : int
        P_full, the parameters of the model (the recorded selection) that are reduced.
    n_kept : int
        Columns of ``/weights``: the kept coordinates, or the sketch size k.
    seed : int
        Seed of the sample or of the sketch's hashes.
    fraction : float or None
        Sample: the probability with which each coordinate is kept (``n_kept / n_full``
        for a uniform sample, the requested f for a stratified one).
    stratified : bool or None
        Sample: drawn per parameter tensor (each tensor keeps ⌊f·n⌋ or ⌈f·n⌉ of its n
        coordinates) or uniformly over all of them.
    hash : str or None
        Sketch: the hash family, :data:`SKETCH_HASH`.
    full_params : tuple of ParamInfo
        The full model's parameter table (``/params_full``).

    Examples
    --------
    >>> r = Reduction("sample", 1000, 10, seed=0, fraction=0.01, stratified=False)
    >>> r.sum_scale
    100.0
    >>> Reduction("sketch", 1000, 64, seed=0, hash=SKETCH_HASH).describe()
    'CountSketch of the 1,000 parameters into k = 64 coordinates (seed 0)'
    """

    method: str
    n_full: int
    n_kept: int
    seed: int
    fraction: float | None = None
    stratified: bool | None = None
    hash: str | None = None
    full_params: tuple[ParamInfo, ...] = field(default=(), repr=False)

    @property
    def k(self) -> int | None:
        """The sketch size k (None for a sample)."""
        return self.n_kept if self.method == "sketch" else None

    @property
    def sum_scale(self) -> float:
        """The factor that turns a sum over the recorded columns (a squared distance, an MSD)
        into an unbiased estimate of the same sum over all P_full parameters: 1/f for a sample
        (= P_full / P_kept, exactly for a uniform sample, to within one coordinate for a
        stratified one), 1 for a sketch (E‖Sx‖² = ‖x‖²)."""
        return 1.0 / self.fraction if self.method == "sample" else 1.0

    def describe(self) -> str:
        """One line for reports and reprs."""
        if self.method == "sketch":
            return (f"CountSketch of the {self.n_full:,} parameters into k = {self.n_kept:,} coordinates "
                    f"(seed {self.seed})")
        how = "stratified per tensor" if self.stratified else "uniform"
        return (f"sample of {self.n_kept:,} of the {self.n_full:,} parameters (f = {self.fraction:.4g}, {how}, "
                f"seed {self.seed})")

    def to_dict(self) -> dict:
        """The JSON fields stored in the root attribute ``reduction``."""
        out = {"method": self.method, "n_full": self.n_full, "n_kept": self.n_kept, "seed": self.seed}
        if self.method == "sample":
            out.update(fraction=self.fraction, stratified=self.stratified)
        else:
            out.update(k=self.n_kept, hash=self.hash)
        return out

    @classmethod
    def from_dict(cls, d: dict, full_params: tuple[ParamInfo, ...] = ()) -> Reduction:
        """The inverse of :meth:`to_dict`; FormatError naming the field at fault."""
        where = f"root attribute {REDUCTION_ATTR!r}"
        if not isinstance(d, dict) or d.get("method") not in METHODS:
            got = d.get("method") if isinstance(d, dict) else d
            raise FormatError(f"{where}: 'method' must be one of {METHODS}, got {got!r}")
        ints = {}
        for name in ("n_full", "n_kept", "seed"):
            value = d.get(name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise FormatError(f"{where}: {name!r} must be an integer, got {value!r}")
            ints[name] = value
        if d["method"] == "sample":
            fraction, stratified = d.get("fraction"), d.get("stratified")
            if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction <= 1:
                raise FormatError(f"{where}: 'fraction' must be a number in (0, 1], got {fraction!r}")
            if not isinstance(stratified, bool):
                raise FormatError(f"{where}: 'stratified' must be true or false, got {stratified!r}")
            return cls("sample", **ints, fraction=float(fraction), stratified=stratified, full_params=full_params)
        if d.get("hash") != SKETCH_HASH:
            raise FormatError(f"{where}: sketch hash {d.get('hash')!r} is unknown; this pyengine reads {SKETCH_HASH!r}")
        return cls("sketch", **ints, hash=SKETCH_HASH, full_params=full_params)

    def problems(self, n_cols: int, kept: np.ndarray | None = None) -> list[str]:
        """What is wrong with this reduction for a ``/weights`` of ``n_cols`` columns (and, for a
        sample, these kept indices when given); empty when it is consistent."""
        where = f"root attribute {REDUCTION_ATTR!r}"
        out = []
        if self.n_kept != n_cols:
            out.append(f"{where}: n_kept = {self.n_kept}, but /weights has {n_cols} columns")
        if not 1 <= self.n_kept <= self.n_full and self.method == "sample":
            out.append(f"{where}: a sample keeps 1 to n_full = {self.n_full} coordinates, got n_kept = {self.n_kept}")
        if self.method == "sketch" and not 1 <= self.n_kept < 2**30:
            out.append(f"{where}: sketch size k = {self.n_kept} must be in [1, 2^30)")
        if self.n_full < 1:
            out.append(f"{where}: n_full = {self.n_full}, expected >= 1")
        if self.full_params:
            out += [f"/{FULL_PARAMS_DATASET}" + p.removeprefix("/params") for p in
                    check_params(list(self.full_params), self.n_full)]
        if kept is not None:
            out += _kept_problems(np.asarray(kept), self.n_kept, self.n_full)
        return out


def _kept_problems(kept: np.ndarray, n_kept: int, n_full: int) -> list[str]:
    where = f"/{KEPT_DATASET}"
    if kept.ndim != 1 or kept.dtype.kind not in "iu" or kept.size != n_kept:
        return [f"{where}: expected {n_kept} integers (one per column), got shape {kept.shape}, dtype {kept.dtype}"]
    if kept.size and (kept[0] < 0 or kept[-1] >= n_full or np.any(np.diff(kept) <= 0)):
        return [f"{where}: indices must increase strictly inside [0, {n_full})"]
    return []


def write_reduction(f: h5py.File, reduction: Reduction, kept: np.ndarray | None) -> None:
    """Store a reduction in a new file: the root attribute, ``/params_full`` and (sample) ``/kept_index``."""
    f.attrs[REDUCTION_ATTR] = json.dumps(reduction.to_dict(), sort_keys=True)
    f.create_dataset(FULL_PARAMS_DATASET, data=params_to_table(list(reduction.full_params)))
    if kept is not None:
        f.create_dataset(KEPT_DATASET, data=np.asarray(kept, dtype=np.int64))


def read_reduction(f: h5py.File, n_cols: int, file_size: int) -> Reduction | None:
    """The reduction of an open file (None for a file of every parameter).

    Checks the attribute's fields, that ``/params_full`` tiles [0, P_full) and that
    ``/kept_index`` (a sample's) has one entry per column; the indices themselves are read
    by :func:`read_kept_index`.

    Raises
    ------
    FormatError
        Naming the attribute or dataset at fault.
    """
    try:
        raw = f.attrs.get(REDUCTION_ATTR)
        if raw is None:
            return None
        text = raw.decode("utf-8") if isinstance(raw, bytes) else str(raw)
        try:
            fields = json.loads(text)
        except ValueError as exc:
            raise FormatError(f"root attribute {REDUCTION_ATTR!r} is not valid JSON ({exc})") from None
        table = _stored_dataset(f, FULL_PARAMS_DATASET, file_size, MAX_TENSORS)
        reduction = Reduction.from_dict(fields, tuple(params_from_table(table[()])))
        if reduction.method == "sample":
            kept = _stored_dataset(f, KEPT_DATASET, file_size, reduction.n_kept)
            if kept.shape != (reduction.n_kept,) or kept.dtype.kind not in "iu":
                raise FormatError(f"/{KEPT_DATASET}: expected ({reduction.n_kept},) integers, got shape {kept.shape}, "
                                  f"dtype {kept.dtype}")
    except (OSError, KeyError, RuntimeError, TypeError, UnicodeError) as exc:  # damaged metadata
        raise FormatError(f"the reduction of this file cannot be read ({exc})") from exc
    problems = reduction.problems(n_cols)
    if problems:
        raise FormatError("; ".join(problems))
    return reduction


def _stored_dataset(f: h5py.File, name: str, file_size: int, max_rows: int) -> h5py.Dataset:
    link = f.get(name, getlink=True)
    if link is None or not isinstance(link, h5py.HardLink) or not isinstance(f.get(name), h5py.Dataset):
        raise FormatError(f"/{name}: missing (a reduced recording stores it as a dataset in the file)")
    ds = f[name]
    if ds.ndim != 1 or ds.shape[0] > max_rows:
        raise FormatError(f"/{name}: shape {ds.shape}, expected at most {max_rows:,} rows")
    problem = storage_problem(ds, f"/{name}", ds.shape[0], file_size)
    if problem:
        raise FormatError(problem)
    return ds


def read_kept_index(f: h5py.File, reduction: Reduction | None) -> np.ndarray | None:
    """The kept flat indices of a sampled file, (P_kept,) int64, checked; None otherwise."""
    if reduction is None or reduction.method != "sample":
        return None
    kept = np.asarray(f[KEPT_DATASET][()], dtype=np.int64)
    problems = _kept_problems(kept, reduction.n_kept, reduction.n_full)
    if problems:
        raise FormatError("; ".join(problems))
    return kept


def countsketch_variance(x, k: int) -> float:
    """Exact variance of a CountSketch estimate of a sum of squared norms.

    For vectors x_1 … x_n (rows of ``x``) and a CountSketch S with k buckets (bucket and
    sign hashes independent and uniform), Q = Σ_t ‖S x_t‖² is unbiased for Σ_t ‖x_t‖² and

        Var Q = (2/k) · (‖M‖_F² − Σ_i M_ii²),   M = Σ_t x_t x_tᵀ  (P × P),

    computed here through the n × n Gram matrix (‖M‖_F² = Σ_{t,u} (x_t·x_u)²). For one
    vector it is (2/k)(‖x‖₂⁴ − ‖x‖₄⁴): at most 2/k relative, a little below the 2/k of a
    Gaussian sketch (:func:`gaussian_sketch_variance`), and at most (2/k)·(Σ_t ‖x_t‖²)² for a
    sum (Cauchy–Schwarz; equal when the x_t are parallel, smaller when they point apart).

    Derivation: ‖Sx‖² = Σ_i x_i² + Σ_{i≠l} σ_i σ_l [h(i) = h(l)] x_i x_l; the cross terms
    have mean 0, and only the pairs (i, l) and (l, i) correlate, each collision with
    probability 1/k.

    Parameters
    ----------
    x : array_like, shape (P,) or (n, P)
        The vector(s) whose squared norms are summed (e.g. the displacements of the pairs
        of an MSD).
    k : int
        Sketch size.

    Returns
    -------
    float

    Examples
    --------
    >>> countsketch_variance(np.ones(100), 10)    # (2/10)(100² − 100)
    1980.0
    """
    x = np.atleast_2d(np.asarray(x, dtype=np.float64))
    gram = x @ x.T
    diag = (x * x).sum(axis=0)
    return float(2.0 / k * ((gram * gram).sum() - (diag * diag).sum()))


def gaussian_sketch_variance(x, k: int) -> float:
    """Variance of Q = Σ_t ‖G x_t‖² for a dense Gaussian sketch G (k × P, entries N(0, 1/k)):
    (2/k)·‖M‖_F², M = Σ_t x_t x_tᵀ; for one vector 2‖x‖⁴/k, the "2/k relative" of JL.

    Examples
    --------
    >>> gaussian_sketch_variance(np.ones(100), 10)
    2000.0
    """
    x = np.atleast_2d(np.asarray(x, dtype=np.float64))
    gram = x @ x.T
    return float(2.0 / k * (gram * gram).sum())
