"""Reading trajectory files: :class:`Trajectory` and :func:`open_trajectory` (``pyengine.open``)."""

from __future__ import annotations

import math
import os
import pathlib
from collections.abc import Iterator
from types import TracebackType

import h5py
import numpy as np

from pyengine import config
from pyengine.store._checks import (
    Layout,
    check_structure,
    find_nonfinite,
    format_errors,
    nonfinite_message,
    open_h5,
)
from pyengine.store._format import FormatError, ParamInfo
from pyengine.store._raw_chunks import RawChunks
from pyengine.store._watchdog import probe_metadata
from pyengine.store.reduction import Reduction, read_kept_index, read_reduction

#: Upper bound on the hash-table slots of the chunk cache of ``/weights``.
MAX_CACHE_SLOTS = 100_000


class Trajectory:
    """A trajectory file opened read-only: metadata in memory, weights read in column blocks.

    Use :func:`open_trajectory` (``pyengine.open``) to get one.

    Attributes
    ----------
    path : Path
        The file.
    file : h5py.File
        The open file (read-only).
    n_snapshots : int
        N, the number of complete snapshots (see ``warnings`` for an interrupted writer).
    n_params : int
        P, the number of parameters.
    dtype : numpy.dtype
        Dtype of ``/weights``.
    steps : ndarray of int64, shape (N,)
        Optimizer step of each snapshot.
    loss : ndarray of float64, shape (N,)
        Minibatch loss of each snapshot.
    params : list of ParamInfo
        The parameter table, in offset order.
    attrs : dict
        Model, optimizer and data settings (the JSON root attribute ``settings``).
    weights : h5py.Dataset
        ``/weights`` with a chunk cache of ``config.CHUNK_CACHE_BYTES``; it may hold
        rows beyond ``n_snapshots`` (an append in progress or interrupted).
    chunk_shape : tuple of int
        Chunk shape of ``/weights``: (steps, parameters).
    warnings : list of str
        Non-fatal findings, e.g. incomplete trailing snapshots ignored.
    reduction : Reduction or None
        For a sampled or sketched recording, how its columns relate to the full model
        (method, fraction or k, seed, P_full and the full parameter table); None when the
        file holds every parameter (``docs/format.md``, "Reduced recordings").

    Examples
    --------
    >>> with open_trajectory("run.h5") as traj:  # doctest: +SKIP
    ...     for j0, block in traj.blocks():
    ...         print(j0, block.shape)
    0 (100, 16384)
    16384 (100, 3616)
    """

    def __init__(self, path: str | pathlib.Path, *, validate: bool = True, watchdog: bool = True) -> None:
        self.path = pathlib.Path(path)
        self._validate = validate
        if watchdog:
            probe_metadata(self.path)
        self.file = open_h5(self.path)
        try:
            self._load(check_structure(self.file))
        except BaseException:
            self.file.close()
            raise
        self.weights = _open_with_cache(self.file, "weights")
        self.n_params = self.weights.shape[1]
        self.dtype = self.weights.dtype
        self.chunk_shape: tuple[int, int] = self.weights.chunks
        try:
            self.reduction: Reduction | None = read_reduction(self.file, self.n_params, os.stat(self.path).st_size)
        except BaseException:
            self.file.close()
            raise
        # Raw chunk reads skip HDF5's chunk buffer; not while a writer may still append (SWMR).
        self._raw = None if self.file.swmr_mode else RawChunks.open(self.weights)

    def _load(self, layout: Layout) -> None:
        if not layout.readable or (self._validate and layout.errors):
            raise FormatError(format_errors(self.path, layout.errors))
        self.n_snapshots = layout.n_snapshots
        self.steps = layout.steps
        self.loss = layout.loss
        self.params: list[ParamInfo] = layout.params
        self.attrs = layout.settings
        self.warnings = layout.warnings

    def read_block(self, j0: int, j1: int, out: np.ndarray | None = None) -> np.ndarray:
        """All complete snapshots of the columns ``[j0, j1)``.

        Parameters
        ----------
        j0, j1 : int
            Column range, ``0 <= j0 < j1 <= P``.
        out : ndarray, shape (N, j1 - j0), optional
            C-contiguous buffer to read into (a buffer used again saves the page faults
            and zeroing of fresh memory: about a third of the cost of a warm read).

        Returns
        -------
        ndarray, shape (N, j1 - j0)
            C-contiguous, in the file dtype (``out`` when given).

        Examples
        --------
        >>> traj.read_block(0, 3).shape  # doctest: +SKIP
        (100, 3)
        """
        self._check_columns(j0, j1)
        if out is None:
            out = np.empty((self.n_snapshots, j1 - j0), self.dtype)
        elif out.shape != (self.n_snapshots, j1 - j0) or not out.flags.c_contiguous:
            raise ValueError(f"out: expected a C-contiguous array of shape {(self.n_snapshots, j1 - j0)}, "
                             f"got shape {out.shape}")
        if not self.n_snapshots:
            return out
        if self._raw is not None and out.dtype == self.dtype:
            self._raw.read(self.n_snapshots, j0, j1, out)
        else:
            self.weights.read_direct(out, np.s_[: self.n_snapshots, j0:j1])
        return out

    def kept_index(self) -> np.ndarray | None:
        """The flat index in the full model of each column of a sampled recording.

        Returns
        -------
        ndarray of int64, shape (P,), or None
            Increasing; None unless ``reduction.method == "sample"``.

        Examples
        --------
        >>> traj.kept_index()[:3]  # doctest: +SKIP
        array([ 17, 230, 301])
        """
        return read_kept_index(self.file, self.reduction)

    def _check_columns(self, j0: int, j1: int) -> None:
        if not 0 <= j0 < j1 <= self.n_params:
            raise ValueError(f"column range must satisfy 0 <= j0 < j1 <= P = {self.n_params}, got [{j0}, {j1})")

    @property
    def map_cols(self) -> int:
        """Width of the column blocks :meth:`map_block` can map (one chunk column); 0 when this
        file cannot be mapped (compressed, chunks not page aligned, ``config.MAP_FILES`` off)."""
        return 0 if self._raw is None else self._raw.map_cols

    def map_block(self, j0: int, j1: int) -> np.ndarray | None:
        """All complete snapshots of the columns ``[j0, j1)``, read in place: a read-only view
        of the file's pages in the page cache, with no copy.

        Possible when the columns lie in one chunk column whose chunks are whole, uncompressed
        and page aligned (as :class:`TrajectoryWriter` writes them); otherwise returns None
        and :meth:`read_block` copies. The view keeps the file mapped while it lives;
        truncating the file meanwhile makes reading it crash with SIGBUS.

        Returns
        -------
        ndarray, shape (N, j1 - j0), or None
            Rows contiguous, row stride one chunk width; not writeable.
        """
        self._check_columns(j0, j1)
        if self._raw is None or not self.n_snapshots:
            return None
        return self._raw.map(self.n_snapshots, j0, j1)

    def blocks(self, block_cols: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
        """Iterate over column blocks ``(j0, X[:, j0:j0+B])`` covering every column once.

        Parameters
        ----------
        block_cols : int, optional
            Block width B. Default: as many columns as fit in ``config.BLOCK_BYTES``,
            rounded down to a multiple of the chunk width (at least one chunk), so
            every chunk is read once.

        Yields
        ------
        j0 : int
            First column of the block.
        block : ndarray, shape (N, B)
            The block (the last one may be narrower).

        Examples
        --------
        >>> sq = sum((b.astype(np.float64) ** 2).sum(axis=1) for _, b in traj.blocks())  # doctest: +SKIP
        """
        width = self.default_block_cols() if block_cols is None else block_cols
        if width < 1:
            raise ValueError(f"block_cols must be >= 1, got {block_cols}")
        for j0 in range(0, self.n_params, width):
            yield j0, self.read_block(j0, min(j0 + width, self.n_params))

    def default_block_cols(self) -> int:
        """Block width used by :meth:`blocks` when none is given.

        Examples
        --------
        >>> traj.default_block_cols() % traj.chunk_shape[1]  # doctest: +SKIP
        0
        """
        if not self.n_snapshots:
            return max(self.n_params, 1)  # empty blocks: one is enough, however many columns are declared
        chunk_cols = self.chunk_shape[1]
        fit = config.BLOCK_BYTES // (self.n_snapshots * self.dtype.itemsize)
        return max(chunk_cols, fit // chunk_cols * chunk_cols)

    def group(self, name: str) -> h5py.Group | None:
        """An optional group (``"eval"``, ``"noise"``, ``"hessian"``, ``"landscape/<name>"``), or None.

        Raises
        ------
        FormatError
            If the path cannot be followed (a soft-link cycle, a dangling or external link,
            damaged metadata); a validated file has none of these.

        Examples
        --------
        >>> traj.group("eval")["loss"][:]  # doctest: +SKIP
        array([2.3, 0.4])
        """
        try:
            obj = self.file.get(name)
        except (KeyError, RuntimeError, OSError) as exc:  # how h5py reports links it cannot follow
            raise FormatError(f"{self.path}: /{name} cannot be read ({exc})") from exc
        return obj if isinstance(obj, h5py.Group) else None

    def refresh(self) -> None:
        """Pick up snapshots appended since the file was opened (SWMR); no-op otherwise.

        Raises
        ------
        FormatError
            If the new rows break the format (e.g. steps that do not increase).

        Examples
        --------
        >>> traj.refresh(); traj.n_snapshots  # doctest: +SKIP
        120
        """
        if not self.file.swmr_mode:
            return
        for name in ("loss", "step"):
            self.file[name].refresh()
        self.weights.refresh()
        self._load(check_structure(self.file))

    def close(self) -> None:
        """Close the file; closing twice is harmless.

        Examples
        --------
        >>> traj.close()  # doctest: +SKIP
        """
        if self._raw is not None:
            self._raw.close()
        if self.file.id.valid:
            self.file.close()

    def __enter__(self) -> Trajectory:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        span = f", steps {self.steps[0]}..{self.steps[-1]}" if self.n_snapshots else ""
        reduced = "" if self.reduction is None else f", {self.reduction.method} of P_full={self.reduction.n_full}"
        return f"<Trajectory {str(self.path)!r}: N={self.n_snapshots} x P={self.n_params} {self.dtype}{span}{reduced}>"


def open_trajectory(path: str | pathlib.Path, *, validate: bool = True, check_values: bool = False,
                    watchdog: bool = True) -> Trajectory:
    """Open a trajectory file read-only (``pyengine.open``).

    Parameters
    ----------
    path : str or Path
        The file.
    validate : bool
        Reject a file that breaks the format (attributes, dtypes, lengths, increasing
        steps, finite losses, parameter table). Without it only an unreadable file
        (missing or ill-typed ``/weights``, ``/step``, ``/loss``) is rejected.
    check_values : bool
        Also scan every weight for NaN/Inf (reads the whole matrix once).
    watchdog : bool
        Read the metadata first in a forked child process that is killed after
        ``pyengine.store._watchdog.METADATA_TIMEOUT`` seconds, so that a corrupted file on
        which HDF5 loops forever (or crashes) is reported instead of hanging this process.
        Costs one fork and a second metadata read (25-35 ms measured), once per unchanged
        file per process; turn it off only for a file already opened with it, e.g. in a
        worker reopening it.

    Returns
    -------
    Trajectory

    Raises
    ------
    FileNotFoundError
        No such file.
    FormatError
        The file is not a valid trajectory; the message names each field at fault. Also
        when the file declares more data than it stores (checked whatever ``validate``
        says, before anything is read) or its metadata cannot be read (watchdog).

    Examples
    --------
    >>> import pyengine as pe
    >>> traj = pe.open("run.h5")  # doctest: +SKIP
    >>> traj.n_snapshots, traj.n_params  # doctest: +SKIP
    (100, 20000)
    """
    traj = Trajectory(path, validate=validate, watchdog=watchdog)
    if check_values:
        count, first = find_nonfinite(traj.blocks())
        if count:
            traj.close()
            raise FormatError(format_errors(traj.path, [nonfinite_message(count, first)]))
    return traj


def _open_with_cache(f: h5py.File, name: str) -> h5py.Dataset:
    """Open a chunked dataset with a chunk cache of ``config.CHUNK_CACHE_BYTES``.

    The cache has about 100 hash slots per chunk it can hold (a prime number, as HDF5
    recommends) and evicts fully read chunks first (w0 = 1): a column block reads every
    chunk it touches completely.
    """
    dataset = f[name]
    chunk_bytes = math.prod(dataset.chunks) * dataset.dtype.itemsize
    chunks_held = max(1, config.CHUNK_CACHE_BYTES // chunk_bytes)
    access = h5py.h5p.create(h5py.h5p.DATASET_ACCESS)
    access.set_chunk_cache(_next_prime(min(100 * chunks_held, MAX_CACHE_SLOTS)), config.CHUNK_CACHE_BYTES, 1.0)
    return h5py.Dataset(h5py.h5d.open(f.id, name.encode(), access))


def _next_prime(n: int) -> int:
    """Smallest prime >= n (n is small: trial division)."""
    candidate = max(n, 2)
    while any(candidate % d == 0 for d in range(2, math.isqrt(candidate) + 1)):
        candidate += 1
    return candidate
