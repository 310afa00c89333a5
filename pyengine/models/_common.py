"""Argument checks and chunked filling shared by the trajectory generators."""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Iterator

import numpy as np

#: Target size in bytes of the float64 temporaries of one generated chunk. Tests turn it
#: down to exercise multi-chunk paths on tiny sizes; the output never depends on it for
#: the row-chunked generators (brownian, ballistic, levy_flight, ornstein_uhlenbeck).
CHUNK_BYTES = 32 * 2**20


def check_size(value: int, name: str) -> int:
    """Return ``value`` as an int after checking it is a positive integer."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be a positive integer, got {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be a positive integer (>= 1), got {value}")
    return int(value)


def check_range(value: float, name: str, low: float, high: float, *, closed: str) -> float:
    """Check ``low < value < high`` with the ends included as ``closed`` says.

    ``closed`` is one of ``"neither"``, ``"left"``, ``"right"``, ``"both"``; the error
    message states the valid interval in interval notation.
    """
    value = float(value)
    left_ok = value >= low if closed in ("left", "both") else value > low
    right_ok = value <= high if closed in ("right", "both") else value < high
    if not (math.isfinite(value) and left_ok and right_ok):
        lb = "[" if closed in ("left", "both") else "("
        rb = "]" if closed in ("right", "both") else ")"
        raise ValueError(f"{name} must be in {lb}{low}, {high}{rb}, got {value}")
    return value


def check_nonnegative(value: float, name: str) -> float:
    """Check that ``value`` is a finite number >= 0."""
    value = float(value)
    if not (math.isfinite(value) and value >= 0.0):
        raise ValueError(f"{name} must be a finite number >= 0, got {value}")
    return value


def check_dtype(dtype) -> np.dtype:
    """Return ``dtype`` as a NumPy float dtype (float32 or float64)."""
    dtype = np.dtype(dtype)
    if dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise TypeError(f"dtype must be float32 or float64, got {dtype}")
    return dtype


def start_point(x0, n_params: int) -> np.ndarray:
    """The starting point as a float64 array of shape ``(n_params,)``."""
    x0 = np.zeros(n_params) if x0 is None else np.asarray(x0, dtype=np.float64)
    if x0.ndim > 1 or x0.size not in (1, n_params):
        raise ValueError(f"x0 must be a scalar or an array of shape ({n_params},), got shape {x0.shape}")
    if not np.all(np.isfinite(x0)):
        raise ValueError("x0 must be finite")
    return np.broadcast_to(x0, (n_params,)).copy()


def row_chunks(start: int, stop: int, row_bytes: int) -> Iterator[tuple[int, int]]:
    """Consecutive ``(r0, r1)`` row ranges of ``[start, stop)`` within :data:`CHUNK_BYTES`."""
    step = max(1, CHUNK_BYTES // max(1, row_bytes))
    for r0 in range(start, stop, step):
        yield r0, min(r0 + step, stop)


def column_chunks(n_params: int, column_bytes: int, *, even: bool = False) -> Iterator[tuple[int, int]]:
    """Consecutive ``(c0, c1)`` column ranges within :data:`CHUNK_BYTES` (widths even if asked)."""
    width = max(1, CHUNK_BYTES // max(1, column_bytes))
    if even:
        width = max(2, width - width % 2)
    for c0 in range(0, n_params, width):
        yield c0, min(c0 + width, n_params)


def walk(
    n_steps: int,
    n_params: int,
    x0: np.ndarray,
    dtype: np.dtype,
    draw: Callable[[int], np.ndarray],
) -> np.ndarray:
    """Fill ``x[0] = x0, x[t] = x[t-1] + draw(...)`` row chunk by row chunk.

    ``draw(r)`` returns ``r`` float64 increment rows of shape ``(r, n_params)`` (it may
    write into them). Positions are summed sequentially in float64 and rounded to
    ``dtype`` once, so the result does not depend on the chunk size.
    """
    out = np.empty((n_steps, n_params), dtype=dtype)
    out[0] = x0
    position = x0
    for r0, r1 in row_chunks(1, n_steps, 8 * n_params):
        inc = draw(r1 - r0)
        inc[0] += position
        np.cumsum(inc, axis=0, out=inc)
        out[r0:r1] = inc
        position = inc[-1].copy()
    return out
