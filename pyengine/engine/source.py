"""Trajectory-like inputs as a uniform source of column blocks X[:, j0:j1]."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from pyengine.kernels._arrays import FLOAT_DTYPES, is_cupy


@dataclass
class Source:
    """Everything the engine needs to know about an input, and how to read a block.

    Attributes
    ----------
    n_rows, n_cols : int
        Snapshots N and parameters P.
    dtype : numpy.dtype
        float32 or float64 (blocks are returned in this dtype).
    steps : ndarray of int64, shape (N,)
        Optimizer step of each snapshot.
    read : callable (j0, j1, out=None) -> array of shape (N, j1 - j0)
        Reads a column block; rows contiguous, never to be written to. A file source maps
        the block in place where it can, else reads into ``out`` (a C-contiguous buffer of
        that shape and ``dtype``) when given; an array source returns views and ignores it.
    chunk_cols : int
        Preferred alignment of block widths (the file's chunk width; 1 for arrays).
    map_cols : int
        Block width at which ``read`` returns zero-copy views of the file (one chunk column,
        see :meth:`Trajectory.map_block`); 0 when it never does.
    on_gpu : bool
        True when blocks are CuPy arrays.
    path : str or None
        The file behind the source, if any (Dask tasks reopen it by path).
    loss : ndarray or None
        The file's /loss, if any.
    warnings : list of str
        What the reader noticed (e.g. incomplete snapshots of a file being written).
    reduction : pyengine.store.reduction.Reduction or None
        A sampled or sketched recording's reduction (``Trajectory.reduction``): the columns
        are not the model's parameters, and sums over them are scaled (or, for per-coordinate
        statistics of a sketch, not made); None for every other input.
    """

    n_rows: int
    n_cols: int
    dtype: np.dtype
    steps: np.ndarray
    read: Callable[[int, int], object] = field(repr=False)
    chunk_cols: int = 1
    map_cols: int = 0
    on_gpu: bool = False
    path: str | None = None
    loss: np.ndarray | None = field(default=None, repr=False)
    warnings: list = field(default_factory=list)
    reduction: object | None = None


def as_source(x) -> Source:
    """Wrap a path, Trajectory, h5py dataset, or array of shape (N, P) as a Source.

    Arrays: NumPy and CuPy arrays are read in place; torch tensors go through DLPack
    (CUDA tensors stay on the GPU when CuPy is installed); anything else ``np.asarray``
    takes (lists of lists, say) is converted once.

    Raises
    ------
    TypeError
        For inputs that are none of these, or a non-numeric dtype.
    ValueError
        For arrays that are not 2-D or have fewer than 2 snapshots.
    """
    if isinstance(x, Source):
        return x
    if isinstance(x, (str, os.PathLike)):
        from pyengine.store import open_trajectory

        return _from_trajectory(open_trajectory(x))
    if type(x).__name__ == "Trajectory":
        return _from_trajectory(x)
    if type(x).__module__.startswith("h5py"):
        return _from_dataset(x)
    if (isinstance(x, np.ndarray) and not isinstance(x, np.ma.MaskedArray)) or is_cupy(x):
        return _from_array(x)
    return _from_array(_array_like(x))


def _array_like(x):
    """A torch tensor through DLPack, or anything else through ``np.asarray``."""
    if type(x).__module__.startswith("torch"):
        from pyengine.heavytail._input import as_array

        return as_array(x)
    if isinstance(x, np.ma.MaskedArray):
        raise TypeError("masked arrays are not supported: their masks would be ignored; fill or drop the masked "
                        "entries first (x.filled(np.nan) with nonfinite='skip', or select the columns you want)")
    try:
        arr = np.asarray(x)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"expected a trajectory file path, a pyengine Trajectory, an h5py dataset, or an array of "
                        f"shape (n_snapshots, n_params); got {type(x).__name__} ({exc})") from exc
    if arr.dtype == object:
        raise TypeError(f"expected a trajectory file path, a pyengine Trajectory, an h5py dataset, or an array of "
                        f"shape (n_snapshots, n_params); got {type(x).__name__} that is not a numeric array")
    return arr


def _check_shape(shape, dtype) -> np.dtype:
    if len(shape) != 2:
        raise ValueError(f"expected a 2-D trajectory of shape (n_snapshots, n_params), got shape {tuple(shape)}")
    if shape[0] < 2 or shape[1] < 1:
        raise ValueError(f"a trajectory needs at least 2 snapshots and 1 parameter, got shape {tuple(shape)}")
    dtype = np.dtype(dtype)
    if dtype in FLOAT_DTYPES:
        return dtype
    if np.issubdtype(dtype, np.integer) or np.issubdtype(dtype, np.floating):
        return np.dtype(np.float64)
    raise TypeError(f"expected real floating point weights, got dtype {dtype}")


def _from_array(x) -> Source:
    dtype = _check_shape(x.shape, x.dtype)
    xp = np if isinstance(x, np.ndarray) else __import__("cupy")

    def read(j0: int, j1: int, out=None):
        block = x[:, j0:j1]
        if block.dtype != dtype:
            return block.astype(dtype)
        if j1 - j0 > 1 and block.strides[1] != block.itemsize:
            return xp.ascontiguousarray(block)
        return block

    return Source(x.shape[0], x.shape[1], dtype, np.arange(x.shape[0], dtype=np.int64), read,
                  on_gpu=xp is not np)


def _from_dataset(ds) -> Source:
    dtype = _check_shape(ds.shape, ds.dtype)
    chunk = ds.chunks[1] if ds.chunks else 1

    def read(j0: int, j1: int, out=None):
        if out is None:
            return np.ascontiguousarray(ds[:, j0:j1], dtype=dtype)
        ds.read_direct(out, np.s_[:, j0:j1])
        return out

    return Source(ds.shape[0], ds.shape[1], dtype, np.arange(ds.shape[0], dtype=np.int64), read,
                  chunk_cols=chunk, path=ds.file.filename)


def _from_trajectory(traj) -> Source:
    dtype = _check_shape((traj.n_snapshots, traj.n_params), traj.dtype)
    mappable = dtype == traj.dtype

    def read(j0: int, j1: int, out=None):
        block = traj.map_block(j0, j1) if mappable else None
        return traj.read_block(j0, j1, out) if block is None else block

    return Source(traj.n_snapshots, traj.n_params, dtype, np.asarray(traj.steps, dtype=np.int64),
                  read, chunk_cols=traj.chunk_shape[1], map_cols=traj.map_cols if mappable else 0,
                  path=str(traj.path), loss=np.asarray(traj.loss, dtype=np.float64), warnings=list(traj.warnings),
                  reduction=traj.reduction)
