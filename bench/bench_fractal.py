"""Box-counting benchmark (issue 6): all dyadic scales of a 4096 × 4096 surface.

Times the full ``pe.boxcount`` call (stats pass, NaN check, every dyadic size from 2 to
n/4) per method on the fastest CPU backend (and on CUDA where there is a GPU), against
the straightforward NumPy implementation of the same method (the ``numpy`` backend: one
reshape-based block min/max per box size, in a Python loop over sizes). Every backend
must give the reference counts before anything is timed.
Run ``python -m bench fractal`` or ``python -m bench.bench_fractal [--quick] [--n 4096] [--repeat 7]``.
"""

from __future__ import annotations

import argparse

import numpy as np

import pyengine as pe
from bench.common import Row, format_table, median_time
from pyengine.fractal import boxcount, fbm_surface

SUITE = "fractal"


def check(z: np.ndarray, backends: list[str]) -> None:
    """Every backend gives the reference counts."""
    want = boxcount(z, method="idbc", backend="numpy").counts
    for b in backends:
        got = boxcount(z, method="idbc", backend=b).counts
        if not np.array_equal(got, want):
            raise AssertionError(f"{b}: box counts differ from the NumPy reference")


def measure(n: int, repeat: int) -> list[Row]:
    """Per method: the time target and the ratio to the NumPy implementation, per fast backend."""
    z = fbm_surface(n, 0.5, seed=0)
    cpu = next(b for b in ("cpp", "numba") if pe.backends()[b].available)
    check(z[:1024, :1024], [cpu])
    timed = {cpu: lambda method: boxcount(z, method=method, backend=cpu)}
    if pe.backends()["cuda"].available:
        import cupy

        dz = cupy.asarray(z)

        def on_gpu(method):
            boxcount(dz, method=method, backend="cuda")
            cupy.cuda.get_current_stream().synchronize()

        timed["cuda"] = on_gpu
    rows = []
    for method in ("dbc", "idbc"):
        ref = median_time(lambda: boxcount(z, method=method, backend="numpy"), max(3, repeat // 2))
        for backend, fn in timed.items():
            sec = median_time(lambda: fn(method), repeat)
            case = f"{method.upper()}, {n}×{n} float64 surface, all dyadic scales ({backend})"
            rows += [Row(SUITE, case, sec, target="≤ 0.2 s", met=sec <= 0.2),
                     Row(SUITE, case, sec, "NumPy implementation (numpy backend)", ref, "≥ 50×", ref / sec >= 50)]
    return rows


def run(quick: bool = False) -> list[Row]:
    return measure(1024, 3) if quick else measure(4096, 7)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="1024 × 1024, 3 repeats")
    p.add_argument("--n", type=int, default=4096)
    p.add_argument("--repeat", type=int, default=7)
    args = p.parse_args(argv)
    print(format_table(run(True) if args.quick else measure(args.n, args.repeat)))


if __name__ == "__main__":
    main()
