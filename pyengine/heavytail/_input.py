"""Turn what users pass (NumPy, CuPy, torch, h5py, lists) into arrays the kernels take."""

from __future__ import annotations

import numpy as np

from pyengine import config
from pyengine.kernels._arrays import is_cupy


def as_array(x):
    """A NumPy array, or a CuPy array for data already on the GPU (torch via DLPack)."""
    if type(x).__module__.startswith("torch"):
        x = x.detach()
        if x.is_cuda:
            try:
                import cupy

                return cupy.from_dlpack(x)
            except ImportError:
                x = x.cpu()
        return x.numpy()
    if is_cupy(x):
        return x
    return np.asarray(x)


def to_host(x) -> np.ndarray:
    """A NumPy copy of a CuPy array; NumPy arrays pass through."""
    return x.get() if is_cupy(x) else np.asarray(x)


def is_h5(x) -> bool:
    return type(x).__module__.startswith("h5py")


def column_blocks(x):
    """Yield column blocks of a 2-D h5py dataset ([:, j:j+B], about config.BLOCK_BYTES each)."""
    width = max(1, config.BLOCK_BYTES // max(1, x.shape[0] * x.dtype.itemsize))
    for j in range(0, x.shape[1], width):
        yield x[:, j : j + width]


def finite_values(x) -> np.ndarray:
    """All finite entries of x as a flat float64 NumPy array, and the count dropped."""
    v = np.asarray(to_host(as_array(x[()] if is_h5(x) else x)), dtype=np.float64).ravel()
    ok = np.isfinite(v)
    return (v if ok.all() else v[ok]), int(v.size - ok.sum())
