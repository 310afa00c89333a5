"""Turn what users pass (NumPy, CuPy, torch, h5py, lists) into arrays the kernels take."""

from __future__ import annotations

import numpy as np

from pyengine.kernels._arrays import is_cupy, to_host


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


def is_h5(x) -> bool:
    return type(x).__module__.startswith("h5py")


def finite_values(x) -> np.ndarray:
    """All finite entries of x as a flat float64 NumPy array, and the count dropped.

    Raises
    ------
    TypeError
        For complex or non-numeric input (never silently dropping an imaginary part).
    """
    v = np.asarray(to_host(as_array(x[()] if is_h5(x) else x)))
    if v.dtype.kind not in "biuf":
        raise TypeError(f"expected real numbers, got dtype {v.dtype}: pass x.real or abs(x) for complex data")
    v = v.astype(np.float64, copy=False).ravel()
    ok = np.isfinite(v)
    return (v if ok.all() else v[ok]), int(v.size - ok.sum())
