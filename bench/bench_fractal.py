"""Box-counting benchmark: all dyadic scales of a 4096 x 4096 surface, per backend and threads.

The peer is the straightforward NumPy implementation of the same method (the ``numpy``
backend: one reshape-based block min/max per box size, in a Python loop over sizes).
Run ``python bench/bench_fractal.py [--n 4096] [--repeat 7] [--json out.json]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np

import pyengine as pe
from pyengine import config
from pyengine.fractal import boxcount, fbm_surface


def setup(n: int) -> np.ndarray:
    """The benchmark surface: fBm with H = 0.5, float64."""
    return fbm_surface(n, 0.5, seed=0)


def check(z: np.ndarray, backends: list[str]) -> None:
    """Every backend gives the reference counts before anything is timed."""
    want = boxcount(z, method="idbc", backend="numpy").counts
    for b in backends:
        got = boxcount(z, method="idbc", backend=b).counts
        if not np.array_equal(got, want):
            raise AssertionError(f"{b}: box counts differ from the NumPy reference")


def median_time(fn, repeat: int) -> float:
    fn()  # warm-up (JIT compilation, page faults)
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def run(n: int = 4096, repeat: int = 7, threads=(1, 2)) -> list[dict]:
    """Time ``pe.boxcount`` on an n x n surface: every method, backend and thread count."""
    z = setup(n)
    cpu = [b for b in ("cpp", "numba") if pe.backends()[b].available]
    check(z[:1024, :1024], cpu)
    rows = []
    saved = config.THREADS
    try:
        for method in ("dbc", "idbc"):
            ref = median_time(lambda: boxcount(z, method=method, backend="numpy"), max(3, repeat // 2))
            rows.append({"method": method, "backend": "numpy", "threads": 1, "seconds": ref, "speedup": 1.0})
            for b in cpu:
                for t in threads:
                    config.THREADS = t
                    sec = median_time(lambda: boxcount(z, method=method, backend=b), repeat)
                    rows.append({"method": method, "backend": b, "threads": t, "seconds": sec, "speedup": ref / sec})
            if pe.backends()["cuda"].available:
                import cupy

                dz = cupy.asarray(z)

                def on_gpu():
                    boxcount(dz, method=method, backend="cuda")
                    cupy.cuda.get_current_stream().synchronize()

                sec = median_time(on_gpu, repeat)
                rows.append({"method": method, "backend": "cuda", "threads": 0, "seconds": sec, "speedup": ref / sec})
    finally:
        config.THREADS = saved
    for r in rows:
        r["n"] = n
    return rows


def main(argv=None) -> None:
    """Print the timing table (and optionally write it as JSON)."""
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--n", type=int, default=4096)
    p.add_argument("--repeat", type=int, default=7)
    p.add_argument("--json", default=None, help="write the rows to this file")
    args = p.parse_args(argv)
    rows = run(args.n, args.repeat)
    print(f"box counting, {args.n} x {args.n} float64 surface, all dyadic scales (median of {args.repeat})")
    print(f"{'method':<6} {'backend':<7} {'threads':>7} {'seconds':>9} {'vs numpy':>9}")
    for r in rows:
        print(f"{r['method']:<6} {r['backend']:<7} {r['threads']:>7} {r['seconds']:>9.4f} {r['speedup']:>8.1f}x")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
