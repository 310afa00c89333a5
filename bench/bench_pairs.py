"""Pairs-inside-windows benchmark: the window Gram (GEMM) and the pair-binning kernel.

Cases, each against its peer in the same process (medians):
- window Gram of T = 1024 snapshots × P = 65536 float32 parameters through the engine
  (float64 conversion, centring, BLAS) against a plain NumPy float64 DGEMM of the same
  shape (target: ≥ 70% of its GFLOP/s; both counted as 2·T²·P flops);
- pair binning of T = 8192 (33.5 M pairs) into 64 log bins (count, Σkey, Σvalue, Σvalue²)
  against an ``np.histogram``-based reference (target ≥ 20×) and against an exact-value
  group-by of pairs in Python, as published MSL code does (target ≥ 1000×; timed on a
  small T and scaled by the pair count).
Run ``python bench/bench_pairs.py [--quick]``.
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict

import numpy as np

import pyengine as pe
from bench.common import Row, format_table, median_time
from pyengine.engine import GramWindow, WindowGramAccumulator, run as engine_run
from pyengine.kernels import pair_bin


def gram_case(t: int, p: int, repeat: int) -> Row:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((t, p), dtype=np.float32).cumsum(axis=0)
    acc = WindowGramAccumulator((GramWindow(0, t),))
    ours = median_time(lambda: engine_run(x, [acc], block_cols=p, progress=False), repeat)
    a = rng.standard_normal((t, p))
    b = rng.standard_normal((p, t))
    gemm = median_time(lambda: a @ b, repeat)
    flops = 2.0 * t * t * p
    ratio = gemm / ours
    return Row("pairs", f"window Gram T={t}, P={p} (float32 in)", ours, "NumPy DGEMM (T×P)·(P×T)", gemm,
               target="≥ 0.7× DGEMM GFLOP/s", met=ratio >= 0.7,
               note=f"{flops / ours / 1e9:.1f} vs {flops / gemm / 1e9:.1f} GFLOP/s")


def pair_inputs(t: int, bins: int):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((t, 64)).cumsum(axis=0)
    sq = np.einsum("ij,ij->i", x, x)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2 * x @ x.T, 0.0)
    loss = rng.standard_normal(t)
    positive = d2[d2 > 0]
    edges = np.geomspace(np.sqrt(positive.min()), np.sqrt(d2.max()) * (1 + 1e-9), bins + 1)
    return d2, loss, edges


def histogram_reference(d2, loss, edges):
    """The straightforward NumPy way: all pairs as flat arrays, one np.histogram per statistic."""
    a, b = np.triu_indices(d2.shape[0], 1)
    r = np.sqrt(d2[a, b])
    v = (loss[b] - loss[a]) ** 2
    return np.stack([np.histogram(r, edges, weights=w)[0] for w in (None, r * r, v, v * v)])


def groupby_reference(d2, loss):
    """Exact-value group-by of pairs: mean (L_a − L_b)² per distinct distance, in Python."""
    groups = defaultdict(list)
    t = d2.shape[0]
    for a in range(t):
        for b in range(a + 1, t):
            groups[float(np.sqrt(d2[a, b]))].append((loss[a] - loss[b]) ** 2)
    return {r: sum(v) / len(v) for r, v in groups.items()}


def binning_cases(t: int, bins: int, small_t: int, repeat: int) -> list[Row]:
    d2, loss, edges = pair_inputs(t, bins)
    ours = median_time(lambda: pair_bin(d2, loss, edges**2, backend="cpp"), repeat)
    want = histogram_reference(d2, loss, edges)
    got = pair_bin(d2, loss, edges**2, backend="cpp")
    if not np.array_equal(got[0], want[0]) or not np.allclose(got[2], want[2], rtol=1e-9):
        raise AssertionError("pair_bin differs from the np.histogram reference")
    hist = median_time(lambda: histogram_reference(d2, loss, edges), 1, warmup=0)
    n_pairs = t * (t - 1) / 2
    small = pair_inputs(small_t, bins)
    t0 = time.perf_counter()
    groupby_reference(small[0], small[1])
    group = (time.perf_counter() - t0) * n_pairs / (small_t * (small_t - 1) / 2)
    return [
        Row("pairs", f"pair binning T={t} ({n_pairs / 1e6:.1f} M pairs), {bins} bins", ours,
            "np.histogram ×4", hist, target="≥ 20×", met=hist / ours >= 20,
            note=f"{ours / n_pairs * 1e9:.2f} ns/pair"),
        Row("pairs", f"pair binning T={t} vs exact-value group-by", ours, "Python group-by", group,
            target="≥ 1000×", met=group / ours >= 1000, note=f"group-by timed at T={small_t}, scaled by pairs"),
    ]


def run(quick: bool = False) -> list[Row]:
    """All cases (smaller sizes with ``quick``)."""
    if not pe.backends()["cpp"].available:
        raise RuntimeError("bench_pairs needs the C++ extension (tools/dev-build)")
    if quick:
        return [gram_case(512, 16384, 3), *binning_cases(2048, 64, 128, 3)]
    return [gram_case(1024, 65536, 5), *binning_cases(8192, 64, 256, 5)]


def main(argv=None) -> None:
    """Print the table of cases."""
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--quick", action="store_true")
    args = p.parse_args(argv)
    print(format_table(run(args.quick)))


if __name__ == "__main__":
    main()
