"""BLAS ``dsyrk`` in place, without the GIL: C += Y Yᵀ on one triangle.

NumPy's ``Y @ Y.T`` calls SYRK too, but into a new T × T product whose lower triangle it
then fills, which the window Gram must add to its sums: three passes over T² float64 per
column piece. SciPy's BLAS wrappers add in place (beta = 1) but hold the GIL, so the
engine's threads would take turns. Calling the Fortran routine that SciPy exports for
Cython (``scipy.linalg.cython_blas``, whose capsules are its public C interface) through
ctypes does neither: ctypes releases the GIL for the call, and the sums are updated in
place. BLAS threads are limited as any SciPy BLAS call's (:mod:`pyengine.threads`).
"""

from __future__ import annotations

import ctypes
import functools

import numpy as np

__all__ = ["syrk_upper"]

_int_p, _double_p = ctypes.POINTER(ctypes.c_int), ctypes.POINTER(ctypes.c_double)
_ONE = ctypes.c_double(1.0)


@functools.cache
def _dsyrk():
    """The Fortran ``dsyrk`` behind SciPy's Cython BLAS, as a ctypes function."""
    from scipy.linalg import cython_blas

    capsule = cython_blas.__pyx_capi__["dsyrk"]
    get_name, get_pointer = ctypes.pythonapi.PyCapsule_GetName, ctypes.pythonapi.PyCapsule_GetPointer
    get_name.restype, get_name.argtypes = ctypes.c_char_p, [ctypes.py_object]
    get_pointer.restype, get_pointer.argtypes = ctypes.c_void_p, [ctypes.py_object, ctypes.c_char_p]
    address = get_pointer(capsule, get_name(capsule))
    signature = ctypes.CFUNCTYPE(None, ctypes.c_char_p, ctypes.c_char_p, _int_p, _int_p, _double_p, _double_p,
                                 _int_p, _double_p, _double_p, _int_p)
    return signature(address)


def syrk_upper(c: np.ndarray, y: np.ndarray) -> None:
    """Add Y Yᵀ to the upper triangle (i ≤ j) of ``c``, in place; the rest of ``c`` is untouched.

    Parameters
    ----------
    c : float64 array of shape (T, T), C-contiguous and writeable
    y : float64 array of shape (T, k), C-contiguous

    Examples
    --------
    >>> import numpy as np
    >>> y = np.arange(6.0).reshape(3, 2)
    >>> c = np.zeros((3, 3))
    >>> syrk_upper(c, y)
    >>> bool(np.array_equal(np.triu(c), np.triu(y @ y.T))), float(c[2, 0])
    (True, 0.0)
    """
    t, k = y.shape
    if c.shape != (t, t) or c.dtype != np.float64 or y.dtype != np.float64:
        raise ValueError(f"syrk_upper needs float64 c of shape ({t}, {t}) and float64 y, got {c.dtype} {c.shape} "
                         f"and {y.dtype} {y.shape}")
    if not (c.flags.c_contiguous and c.flags.writeable and y.flags.c_contiguous):
        raise ValueError("syrk_upper needs a C-contiguous writeable c and a C-contiguous y")
    if t == 0 or k == 0:
        return
    # Row-major y (T, k) is the column-major k × T matrix A = Yᵀ, so AᵀA = Y Yᵀ ("T"); the
    # row-major upper triangle of c is the column-major lower one ("L").
    n, depth = ctypes.c_int(t), ctypes.c_int(k)
    _dsyrk()(b"L", b"T", ctypes.byref(n), ctypes.byref(depth), ctypes.byref(_ONE), y.ctypes.data_as(_double_p),
             ctypes.byref(depth), ctypes.byref(_ONE), c.ctypes.data_as(_double_p), ctypes.byref(n))
