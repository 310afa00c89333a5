"""Shared benchmark helpers: timing, machine description, result rows and tables."""

from __future__ import annotations

import os
import pathlib
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass


@dataclass
class Row:
    """One benchmark case: pyengine against a peer on the same data.

    ``ratio`` is peer time / pyengine time (higher is better for pyengine) unless the case
    defines it otherwise (``unit`` then says what ``value`` is).
    """

    suite: str
    case: str
    pyengine_s: float
    peer: str = ""
    peer_s: float | None = None
    target: str = ""
    met: bool | None = None
    note: str = ""
    value: float | None = None
    unit: str = ""

    @property
    def ratio(self) -> float | None:
        return None if self.peer_s is None else self.peer_s / self.pyengine_s

    def to_dict(self) -> dict:
        return {**asdict(self), "ratio": self.ratio}


def median_time(fn: Callable[[], object], repeat: int = 3, warmup: int = 1) -> float:
    """Median wall time of ``fn()`` over ``repeat`` runs after ``warmup`` runs (seconds)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def machine() -> dict:
    """CPU model, cores, memory and library versions, for the BENCHMARKS.md header."""
    import numpy
    import scipy

    import pyengine

    cpu, simd = platform.processor() or "unknown", "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            info = f.read().splitlines()
        cpu = next(line.split(":", 1)[1].strip() for line in info if line.startswith("model name"))
        flags = set(next(line for line in info if line.startswith("flags")).split())
        simd = ", ".join(f for f in ("avx512f", "avx2", "fma") if f in flags) or "sse2"
    except (OSError, StopIteration):
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    core = pyengine.backends()["cpp"].reason
    return {
        "cpu": cpu, "simd": simd, "cores": os.cpu_count(), "memory_gib": round(mem, 1), "python": platform.python_version(),
        "numpy": numpy.__version__, "scipy": scipy.__version__, "pyengine": pyengine.__version__, "extension": core,
    }


def format_table(rows: list[Row]) -> str:
    """A Markdown table of rows."""
    lines = ["| case | pyengine | peer | peer time | ratio | target | met | note |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        value = f"{r.value:.3g} {r.unit}" if r.value is not None else ""
        peer_s = f"{r.peer_s:.3g} s" if r.peer_s is not None else ""
        ratio = f"{r.ratio:.1f}×" if r.ratio is not None else value
        met = {True: "yes", False: "**no**", None: ""}[r.met]
        lines.append(f"| {r.case} | {r.pyengine_s:.3g} s | {r.peer} | {peer_s} | {ratio} | {r.target} | {met} | {r.note} |")
    return "\n".join(lines)


def h5py_read_time(path: str) -> float:
    """Seconds to read a trajectory's weights once with h5py, in the budget-sized column
    blocks the engine would copy (the reading term of a streaming bound)."""
    import h5py

    from pyengine.engine.runner import plan_blocks
    from pyengine.engine.source import as_source

    blocks = plan_blocks(as_source(path), mapped=False)
    with h5py.File(path, "r") as f:
        ds = f["weights"]
        t0 = time.perf_counter()
        for j0, j1 in blocks:
            ds[:, j0:j1]
        return time.perf_counter() - t0


def trajectory_file(n: int, p: int, seed: int = 1) -> pathlib.Path:
    """A float32 random-walk trajectory file of N × P, written once and reused.

    Files live in ``$PYENGINE_BENCH_DIR`` (default: /tmp/pyengine-bench); delete them to
    free the disk. Names end in ``_aligned``: written with page-aligned chunks, which the
    engine maps in place (files from before the writer aligned them are copied instead).
    """
    import numpy as np

    from pyengine.store import TrajectoryWriter

    folder = pathlib.Path(os.environ.get("PYENGINE_BENCH_DIR", "/tmp/pyengine-bench"))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"walk_{n}x{p}_s{seed}_aligned.h5"
    if path.exists():
        return path
    rng = np.random.default_rng(seed)
    x = np.zeros(p, dtype=np.float32)
    tmp = path.with_suffix(".h5.tmp")
    with TrajectoryWriter(tmp, p, dtype="float32", swmr=False, overwrite=True) as w:
        for t0 in range(0, n, 64):
            k = min(64, n - t0)
            block = x + rng.standard_normal((k, p), dtype=np.float32).cumsum(axis=0)
            x = block[-1]
            w.append(block, np.arange(t0, t0 + k), np.zeros(k))
    tmp.rename(path)
    return path
