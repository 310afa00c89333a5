"""Shared benchmark helpers: timing, machine description, result rows and tables."""

from __future__ import annotations

import os
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

    cpu = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    core = pyengine.backends()["cpp"].reason
    return {
        "cpu": cpu, "cores": os.cpu_count(), "memory_gib": round(mem, 1), "python": platform.python_version(),
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
