"""The engine settings of one pass, checked once: one object, handed to every statistic.

Every streaming statistic (``pe.msd``, ``pe.msl``, ``pe.path_geometry``, ``pe.increments``,
``pe.increment_tails``, ``pe.tail_index`` on 2-D data, ``pe.analyze``) takes the same
keyword arguments, :data:`ENGINE_KEYS`, and turns them into one :class:`EngineOptions`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from pyengine import dispatch
from pyengine.engine.source import Source

__all__ = ["EngineOptions", "ENGINE_KEYS", "NONFINITE", "resolve"]

NONFINITE = ("raise", "skip")
ENGINE_KEYS = ("backend", "block_cols", "workers", "progress", "scheduler", "nonfinite")


def _check_count(name: str, value, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


@dataclass(frozen=True)
class EngineOptions:
    """How one pass runs (not what it computes).

    Attributes
    ----------
    backend : {"auto", "cuda", "cpp", "numba", "numpy"}
        Kernel backend. ``"auto"`` takes CUDA for data on the GPU, else C++, Numba,
        NumPy (the first available). ``"cuda"`` on host data (a file, a NumPy array)
        copies each block to the GPU; it is refused up front where no GPU is usable.
        GEMM and FFT come from BLAS/pocketfft on the host and cuBLAS/cuFFT on the GPU,
        whichever CPU backend is named.
    block_cols : int, optional
        Parameters per column block (default: from the memory budget, ``pyengine.config``).
    workers : int
        Blocks computed at once; kernels get ``cores // workers`` threads each.
    progress : bool, optional
        Show progress (default: when stderr is a terminal).
    scheduler : distributed.Client or str, optional
        Run the blocks as Dask tasks on this cluster (the input must be a file path that
        every worker can read).
    nonfinite : {"raise", "skip"}
        NaN/Inf weights: stop at the first location, or leave those parameters out.
    """

    backend: str = "auto"
    block_cols: int | None = None
    workers: int = 1
    progress: bool | None = None
    scheduler: object = None
    nonfinite: str = "raise"

    def __post_init__(self):
        if self.backend != "auto" and self.backend not in dispatch.NAMES:
            raise ValueError(f"backend must be 'auto' or one of {dispatch.NAMES}, got {self.backend!r}")
        _check_count("block_cols", self.block_cols, allow_none=True)
        _check_count("workers", self.workers)
        if self.progress not in (None, True, False):
            raise ValueError(f"progress must be True, False or None (automatic), got {self.progress!r}")
        if self.nonfinite not in NONFINITE:
            raise ValueError(f"nonfinite must be one of {NONFINITE}, got {self.nonfinite!r}")

    @classmethod
    def from_kwargs(cls, engine: dict) -> "EngineOptions":
        """Options from keyword arguments; unknown names are a TypeError that lists the known ones."""
        unknown = sorted(set(engine) - set(ENGINE_KEYS))
        if unknown:
            raise TypeError(f"unexpected keyword argument(s) {', '.join(map(repr, unknown))}; "
                            f"the engine settings are {', '.join(ENGINE_KEYS)}")
        return cls(**engine)


def resolve(src: Source, options: EngineOptions) -> tuple[Source, EngineOptions]:
    """Pick the backend for this input once, and stage blocks onto the GPU for ``"cuda"``.

    Returns
    -------
    src : Source
        ``src``, or a source whose blocks are copied to the GPU.
    options : EngineOptions
        With ``backend`` the concrete name that every kernel of the pass will use.

    Raises
    ------
    ValueError
        For a backend that is not available here (with the reason), a CPU backend for
        data on the GPU, or ``"cuda"`` with a Dask scheduler.
    """
    wants_gpu = options.backend == "cuda" or (options.backend == "auto" and src.on_gpu)
    if wants_gpu and options.scheduler is not None:
        raise ValueError("the Dask path computes on the workers' CPUs: use backend='auto' or a CPU backend "
                         "with a scheduler")
    name = dispatch.resolve(options.backend, on_gpu=src.on_gpu or wants_gpu)
    if name == "cuda" and not src.on_gpu:
        src = _staged(src)
    return src, dataclasses.replace(options, backend=name)


def _staged(src: Source) -> Source:
    """The same source, each block copied to the GPU as it is read."""
    import cupy

    def read(j0: int, j1: int, out=None):
        return cupy.asarray(src.read(j0, j1, out))

    return dataclasses.replace(src, read=read, on_gpu=True, map_cols=0)
