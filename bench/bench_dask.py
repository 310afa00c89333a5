"""The Dask path (issue 9): LocalCluster with 2 processes vs the threaded runner on the same
file, and the reduction's cost in simulated splits of the block list over 1–8 workers."""

from __future__ import annotations

import sys
import time

import numpy as np

import pyengine as pe
from bench.common import Row, format_table, median_time, trajectory_file
from pyengine.engine import LagBandAccumulator, RunMeta, as_source, plan_blocks, run_block

SUITE = "dask"


def bench_cluster(n: int, p: int, n_lags: int) -> list[Row]:
    import logging

    from distributed import Client, LocalCluster

    path = trajectory_file(n, p)
    threaded = lambda: pe.msd(path, window=None, lags=n_lags, method="lagband", progress=False)  # noqa: E731
    want = threaded().msd
    t_threaded = median_time(threaded, repeat=1)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                      silence_logs=logging.ERROR) as cluster, Client(cluster) as client:
        on_dask = lambda: pe.msd(path, window=None, lags=n_lags, method="lagband", scheduler=client)  # noqa: E731
        np.testing.assert_allclose(on_dask().msd, want, rtol=1e-9)
        t_dask = median_time(on_dask, repeat=1, warmup=0)
    overhead = t_dask / t_threaded - 1
    return [Row(SUITE, f"LocalCluster (2 processes) vs threaded runner, {n * p * 4 / 1e9:.1f} GB file, {n_lags} lags",
                t_dask, "threaded runner (1 process, 2 threads)", t_threaded, "overhead ≤ 20%", overhead <= 0.20,
                f"overhead {overhead * 100:+.0f}%")]


def bench_splits(n: int, p: int, n_lags: int) -> list[Row]:
    """Compute each worker's share of blocks serially, then time the tree merge of W states."""
    path = trajectory_file(n, p)
    src = as_source(path)
    lags = tuple(int(l) for l in np.unique(np.geomspace(1, n - 1, n_lags).round()))
    acc = LagBandAccumulator(lags)
    meta = RunMeta(src.n_rows, src.n_cols, src.dtype, src.steps, "auto", 1)  # one core per worker
    blocks = plan_blocks(src, block_cols=max(1, p // 32))
    width = blocks[0][1] - blocks[0][0]
    buffer = np.empty((src.n_rows, width), src.dtype)  # as a worker's reads: into a reused buffer
    t0 = time.perf_counter()
    for j0, j1 in blocks:
        src.read(j0, j1, buffer if j1 - j0 == width else None)
    per_read = (time.perf_counter() - t0) / len(blocks)
    data = [src.read(j0, j1) for j0, j1 in blocks]
    t0 = time.perf_counter()
    states = [run_block([acc], meta, block, j0, j1)[0] for block, (j0, j1) in zip(data, blocks)]
    per_block = (time.perf_counter() - t0) / len(blocks)
    del data
    rows = []
    for workers in (1, 2, 4, 8):
        parts = np.array_split(np.arange(len(states)), workers)
        t0 = time.perf_counter()
        level = [_merge_all(acc, [states[i] for i in part]) for part in parts]
        while len(level) > 1:  # the tree reduction across workers
            level = [acc.merge(a, b) for a, b in zip(level[::2], level[1::2])] + (level[-1:] if len(level) % 2 else [])
        merge = time.perf_counter() - t0
        expected = max(len(p) for p in parts) * per_block + merge
        rows.append(Row(SUITE, f"simulated {workers} worker(s), {len(blocks)} blocks", expected,
                        target="reduction small vs compute", met=merge < 0.05 * expected, value=merge * 1e3,
                        unit=f"ms in merges ({merge / expected * 100:.2f}% of the expected wall)"))
    return rows + projection(n, p, per_read, per_block, merge_per_pair=_merge_time(acc, states[:2]))


def _merge_time(acc, pair) -> float:
    return median_time(lambda: acc.merge(*pair), repeat=5)


def projection(n: int, p: int, per_read: float, per_block: float, merge_per_pair: float,
               terabytes: float = 1.0, cores: int = 16) -> list[Row]:
    """Expected wall time for a 1 TB file on M machines of 16 cores, from the per-block costs
    measured here: ceil(blocks / workers) × (read + compute) + log2(workers) merges. Assumes the
    aggregate read bandwidth grows with the machines (a parallel file system) and one worker per core."""
    block_bytes = n * (p // 32) * 4
    blocks = int(terabytes * 1e12 // block_bytes)
    rows = []
    for machines in (1, 4, 16, 64):
        workers = machines * cores
        wall = -(-blocks // workers) * (per_read + per_block) + np.ceil(np.log2(workers)) * merge_per_pair
        rows.append(Row(SUITE, f"projected: {terabytes:g} TB, {machines} machine(s) × {cores} cores", wall,
                        note=f"{blocks} blocks of {block_bytes / 1e6:.0f} MB at {per_read * 1e3:.0f} ms read + "
                             f"{per_block * 1e3:.0f} ms compute each (measured here, one core); "
                             f"merges {merge_per_pair * 1e3:.2f} ms per pair"))
    return rows


def _merge_all(acc, states):
    total = states[0]
    for s in states[1:]:
        total = acc.merge(total, s)
    return total


def run(quick: bool = False) -> list[Row]:
    if quick:
        return bench_cluster(256, 2**16, 8) + bench_splits(256, 2**16, 8)
    return bench_cluster(1024, 2**20, 16) + bench_splits(1024, 2**18, 16)


def main() -> None:
    print(format_table(run("--quick" in sys.argv)))


if __name__ == "__main__":
    main()
