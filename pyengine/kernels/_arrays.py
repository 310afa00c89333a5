"""Array helpers shared by the kernel dispatchers."""

from __future__ import annotations

import dataclasses

import numpy as np

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def is_cupy(x) -> bool:
    """True for a CuPy array (without importing CuPy when it is not loaded)."""
    return type(x).__module__.startswith("cupy")


def as_rows(x, name: str = "x"):
    """Check a 2-D float array and make its rows contiguous (column views stay views).

    Integer and other dtypes are converted to float64; the result is float32 or float64.
    """
    xp = array_module(is_cupy(x))
    if getattr(x, "ndim", None) != 2:
        raise ValueError(f"{name}: expected a 2-D array of shape (n_snapshots, n_params), got shape {getattr(x, 'shape', None)}")
    if x.dtype not in FLOAT_DTYPES:
        if not (np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating)):
            raise TypeError(f"{name}: expected a real floating point array, got dtype {x.dtype}")
        x = x.astype(np.float64)
    if x.shape[1] > 1 and x.strides[1] != x.itemsize:
        x = xp.ascontiguousarray(x)
    return x


def array_module(on_gpu: bool):
    """CuPy for data on the GPU, NumPy otherwise."""
    if on_gpu:
        import cupy

        return cupy
    return np


def fft_module(on_gpu: bool):
    """cupyx.scipy.fft (cuFFT) for data on the GPU, scipy.fft (pocketfft) otherwise."""
    if on_gpu:
        import cupyx.scipy.fft

        return cupyx.scipy.fft
    import scipy.fft

    return scipy.fft


def to_host(x) -> np.ndarray:
    """A NumPy copy of a CuPy array; NumPy arrays and array-likes pass through as arrays."""
    return x.get() if is_cupy(x) else np.asarray(x)


def freeze(value):
    """Make every NumPy array in ``value`` (nested lists, tuples, dicts, dataclasses) read-only.

    Finalized accumulator results are shared by every statistic of an analysis; a
    statistic that needs a derived array makes its own instead of writing into them.
    Returns ``value``.
    """
    if isinstance(value, np.ndarray):
        value.flags.writeable = False
    elif isinstance(value, (list, tuple)):
        for v in value:
            freeze(v)
    elif isinstance(value, dict):
        for v in value.values():
            freeze(v)
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            freeze(getattr(value, f.name))
    return value
