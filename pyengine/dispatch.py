"""Backend discovery and dispatch: cuda, cpp, numba, numpy.

Each backend is detected once. :func:`backends` says which are available and why a
missing one is missing; :func:`resolve` turns ``backend="auto"`` into the best available
one. Set ``PYENGINE_DISABLE=cpp,cuda`` in the environment to switch backends off.
"""

from __future__ import annotations

import functools
import logging
import os
from dataclasses import dataclass

__all__ = ["BackendStatus", "available", "backends", "resolve", "NAMES"]

NAMES = ("cuda", "cpp", "numba", "numpy")  # order of preference
log = logging.getLogger("pyengine")


@dataclass(frozen=True)
class BackendStatus:
    """Whether a backend can be used here, and if not, why."""

    name: str
    available: bool
    reason: str

    def __str__(self) -> str:
        return f"{self.name}: {'available' if self.available else 'unavailable'} ({self.reason})"


def _disabled() -> set[str]:
    return {s.strip() for s in os.environ.get("PYENGINE_DISABLE", "").split(",") if s.strip()}


def _probe_cpp() -> tuple[bool, str]:
    try:
        from pyengine import _core
    except ImportError as exc:
        return False, f"the C++ extension pyengine._core is not built ({exc})"
    if _core.selfcheck() != 0:
        return False, "pyengine._core failed its self-check"
    return True, _core.build_info()


def _probe_numba() -> tuple[bool, str]:
    try:
        import numba
    except ImportError:
        return False, "numba is not installed (pip install numba)"
    return True, f"numba {numba.__version__}"


def _probe_cuda() -> tuple[bool, str]:
    try:
        from pyengine import _cuda
    except ImportError as exc:
        return False, f"pyengine was built without CUDA kernels ({exc})"
    n, why = _cuda.device_count()
    if n == 0:
        return False, f"no NVIDIA GPU with a working driver on this machine (the CUDA runtime says: {why})"
    try:
        import cupy
    except ImportError:
        return False, "cupy is not installed (pip install cupy-cuda13x)"
    return True, f"{n} device(s), cupy {cupy.__version__}"


_PROBES = {
    "cuda": _probe_cuda,
    "cpp": _probe_cpp,
    "numba": _probe_numba,
    "numpy": lambda: (True, "reference implementation, always available"),
}


@functools.cache
def _status(name: str) -> BackendStatus:
    if name in _disabled():
        return BackendStatus(name, False, "disabled by PYENGINE_DISABLE")
    ok, reason = _PROBES[name]()
    return BackendStatus(name, ok, reason)


def backends() -> dict[str, BackendStatus]:
    """Report every backend: available here or not, and why.

    Returns
    -------
    dict of str to BackendStatus
        Keys ``"cuda"``, ``"cpp"``, ``"numba"``, ``"numpy"`` in order of preference.

    Examples
    --------
    >>> import pyengine as pe
    >>> pe.backends()["numpy"].available
    True
    """
    return {name: _status(name) for name in NAMES}


def available(name: str) -> bool:
    """Whether backend ``name`` can be used here, probing that backend alone (:func:`backends`
    probes all of them, and importing Numba costs a fresh process 0.2 s).

    Examples
    --------
    >>> from pyengine.dispatch import available
    >>> available("numpy")
    True
    """
    return _status(name).available


@functools.cache
def _announce(name: str) -> None:
    skipped = [str(_status(n)) for n in NAMES[1 : NAMES.index(name)] if not _status(n).available]
    if skipped:
        log.warning("pyengine: using the %s backend; %s", name, "; ".join(skipped))


def resolve(backend: str = "auto", *, on_gpu: bool = False, supported: tuple[str, ...] = NAMES) -> str:
    """Pick the backend to run a kernel with.

    Parameters
    ----------
    backend : {"auto", "cuda", "cpp", "numba", "numpy"}
        ``"auto"`` takes the best available one: CUDA for data on the GPU, otherwise
        C++, then Numba, then NumPy.
    on_gpu : bool
        Whether the data are a GPU (CuPy) array.
    supported : tuple of str
        The backends the calling kernel implements.

    Raises
    ------
    ValueError
        For an unknown name, or a backend that is not available here (with the reason).
    """
    if backend == "auto":
        candidates = ("cuda",) if on_gpu else NAMES[1:]
        for name in candidates:
            if name in supported and _status(name).available:
                if not on_gpu:
                    _announce(name)
                return name
        raise ValueError(f"no available backend among {candidates}: {[str(_status(n)) for n in candidates]}")
    if backend not in NAMES:
        raise ValueError(f"backend must be 'auto' or one of {NAMES}, got {backend!r}")
    if backend not in supported:
        raise ValueError(f"this kernel has no {backend!r} implementation; use one of {supported}")
    status = _status(backend)
    if not status.available:
        raise ValueError(f"backend {backend!r} is not available: {status.reason}")
    if (backend == "cuda") != on_gpu:
        where = "a CuPy (GPU) array" if backend == "cuda" else "a host (NumPy) array"
        raise ValueError(f"backend {backend!r} needs {where}; move the data or pick another backend")
    return backend
