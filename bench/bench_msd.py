"""MSD benchmarks (issue 3): spectral MSD and lag band against peers, and streaming a file.

Run: ``python -m bench msd`` (``--quick`` for smaller sizes).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import numpy as np

import pyengine as pe
from bench.common import Row, format_table, h5py_read_time, median_time, trajectory_file
from bench.peers import tidynamics_msd_loop, wk_msd_batched
from pyengine.kernels import lag_band

SUITE = "msd"


def walk(n: int, p: int, seed: int = 0) -> np.ndarray:
    """Float32 random walk generated in column chunks (no full-size float64 temporary)."""
    rng = np.random.default_rng(seed)
    x = np.empty((n, p), dtype=np.float32)
    for c0 in range(0, p, 1024):
        c1 = min(p, c0 + 1024)
        x[:, c0:c1] = rng.standard_normal((n, c1 - c0), dtype=np.float32).cumsum(axis=0)
    return x


def log_lags(n_lags: int, max_lag: int) -> np.ndarray:
    """Exactly n_lags distinct log-spaced lags in [1, max_lag]."""
    k = n_lags
    while np.unique(np.geomspace(1, max_lag, k).round()).size < n_lags:
        k += 1
    return np.unique(np.geomspace(1, max_lag, k).round()).astype(np.int64)[:n_lags]


def bench_spectral(n: int, p: int) -> list[Row]:
    x = walk(n, p)
    ours = lambda: pe.msd(x, window=None, origins="within", method="spectral", progress=False)  # noqa: E731
    got = ours().msd[0]
    sub = 512
    want = wk_msd_batched(x[:, :sub])[1:]
    check = pe.msd(x[:, :sub], window=None, origins="within", method="spectral", progress=False).msd[0]
    err = float(np.max(np.abs(check - want) / want))
    assert err < 1e-6, f"spectral MSD disagrees with the peer: {err}"
    t_ours = median_time(ours, repeat=3)
    t_wk = median_time(lambda: wk_msd_batched(x), repeat=1)
    n_tidy = 128
    t_tidy = median_time(lambda: tidynamics_msd_loop(x[:, :n_tidy]), repeat=1, warmup=0) * p / n_tidy
    assert got.shape == (n - 1,)
    case = f"spectral MSD, N={n} × P={p} float32, all lags, one window"
    return [
        Row(SUITE, case, t_ours, "tidynamics.msd per coordinate", t_tidy, "≥ 50×", t_tidy / t_ours >= 50,
            f"peer timed on {n_tidy} coordinates and scaled to P; max rel. diff vs float64 peer {err:.1e}"),
        Row(SUITE, case, t_ours, "batched float64 scipy.fft WK (inverts every coordinate)", t_wk, "≥ 1.8×",
            t_wk / t_ours >= 1.8),
    ]


def bench_lagband(n: int, p: int) -> list[Row]:
    x = walk(n, p)
    lags = log_lags(64, n // 2)
    pairs = float(sum((n - l) * p for l in lags))
    out = np.zeros((lags.size, n))
    t_ours = median_time(lambda: lag_band(x, lags, out=np.zeros_like(out), backend="cpp"), repeat=3)
    cols = 512
    ref = lambda: lag_band(x[:, :cols], lags, backend="numpy")  # noqa: E731
    np.testing.assert_allclose(lag_band(x[:, :cols], lags, backend="cpp"), ref(), rtol=1e-6)
    t_ref = median_time(ref, repeat=1, warmup=0) * p / cols
    rate = pairs / t_ours
    case = f"lag band, N={n} × P={p} float32, 64 log-spaced lags"
    return [
        Row(SUITE, case, t_ours, "NumPy reference (float64)", t_ref, "≥ 10×", t_ref / t_ours >= 10,
            f"reference timed on {cols} columns and scaled"),
        Row(SUITE, case + ": throughput", t_ours, target="≥ 5e9 pair-elements/s", met=rate >= 5e9,
            value=rate, unit="pair-elements/s"),
    ]


_STREAM_CHILD = r"""
import json, sys, time
import pyengine as pe
import pyengine.store  # import h5py/hdf5plugin outside the timed region
path, n_lags = sys.argv[1], int(sys.argv[2])
pe.config.MAP_FILES = sys.argv[3] == "map"
walls = []
for _ in range(2):  # first pass in a fresh process, then again with warm buffers and threads
    t0 = time.perf_counter()
    res = pe.msd(path, window=None, lags=n_lags, method="lagband", progress=False)
    walls.append(time.perf_counter() - t0)
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over exec from the forking parent.
peak = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM"))
print(json.dumps({"fresh": walls[0], "warm": walls[1], "rss_mib": peak / 1024}))
"""


def bench_streaming(n: int, p_big: int, n_lags: int = 16, repeat: int = 3) -> list[Row]:
    """Rounds of (h5py read, in-memory compute, a fresh process streaming the file twice),
    all in the same page-cache state; the shared machine's load drifts, so each round's
    streaming time is compared with that round's bound, and the median ratio is judged. Like
    the bound's terms (h5py after a warm-up, data already in memory) the target is judged
    warm, on the child's second pass; its first pass (which also faults in fresh block
    buffers) is reported beside it, and so is one streaming run that copies every block
    instead of mapping it (``config.MAP_FILES = False``)."""
    rss, rows = {}, []
    path = str(trajectory_file(n, p_big // 2))
    h5py_read_time(path)  # warms the page cache
    rss[p_big // 2] = max(_stream_in_child(path, n_lags)["rss_mib"] for _ in range(repeat))
    path = str(trajectory_file(n, p_big))
    h5py_read_time(path)
    x = pe.open(path).read_block(0, p_big)
    rounds = []
    for _ in range(repeat):
        t_read = h5py_read_time(path)
        t_compute = median_time(lambda: pe.msd(x, window=None, lags=n_lags, method="lagband", progress=False),
                                repeat=1, warmup=0)
        child = _stream_in_child(path, n_lags)
        rounds.append((child["warm"] / max(t_read, t_compute), child, t_read, t_compute))
    copied = _stream_in_child(path, n_lags, mapped=False)["warm"] / max(t_read, t_compute)
    del x
    rss[p_big] = max(r[1]["rss_mib"] for r in rounds)
    ratio, child, t_read, t_compute = sorted(rounds, key=lambda r: r[0])[len(rounds) // 2]  # the median round
    bound = max(t_read, t_compute)
    rows.append(Row(SUITE, f"streaming a {n * p_big * 4 / 1e9:.1f} GB file (N={n}, P={p_big}, {n_lags} lags)",
                    child["warm"], "max(h5py read, in-memory compute)", bound, "wall ≤ 1.3 × bound", ratio <= 1.3,
                    f"median of {repeat} rounds (ratios {', '.join(f'{r[0]:.2f}' for r in rounds)}); its h5py read "
                    f"{t_read:.2f} s, compute {t_compute:.2f} s (warm), streaming pass 2 of a fresh process; its "
                    f"first pass {child['fresh']:.2f} s = {child['fresh'] / bound:.2f}× bound; blocks "
                    f"{'mapped in place' if _maps(path) else 'copied'} (copying them instead: "
                    f"{copied:.2f}× the last round's bound)"))
    small, big = sorted(rss)
    rows.append(Row(SUITE, f"peak RSS, P={small} vs P={big}", 0.0, target="< 2 GB, independent of P",
                    met=max(rss.values()) < 2048 and rss[big] < 1.25 * rss[small],
                    value=rss[big], unit=f"MiB (P={small}: {rss[small]:.0f} MiB)"))
    return rows


def bench_cold(n: int, p: int, n_lags: int = 16, repeat: int = 2) -> list[Row]:
    """A pass over a file evicted from the page cache (``POSIX_FADV_DONTNEED``), blocks mapped
    in place against blocks copied; informative (no target), runs alternate."""
    path = str(trajectory_file(n, p))
    walls: dict[bool, list[float]] = {True: [], False: []}
    setting = pe.config.MAP_FILES
    try:
        for _ in range(repeat):
            for mapped in (True, False):
                fd = os.open(path, os.O_RDONLY)
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
                os.close(fd)
                pe.config.MAP_FILES = mapped
                t0 = time.perf_counter()
                pe.msd(path, window=None, lags=n_lags, method="lagband", progress=False)
                walls[mapped].append(time.perf_counter() - t0)
    finally:
        pe.config.MAP_FILES = setting
    mapped, copied = (float(np.median(walls[m])) for m in (True, False))
    return [Row(SUITE, f"streaming a {n * p * 4 / 1e9:.1f} GB file from a cold page cache ({n_lags} lags)", mapped,
                "the same pass copying every block (config.MAP_FILES = False)", copied,
                note=f"median of {repeat} alternating runs each; this VM's disk reads ≈ 1–2 GB/s cold: on slower "
                     "disks reading dominates both")]


def _maps(path: str) -> bool:
    with pe.open(path) as traj:
        return traj.map_cols > 0


def _stream_in_child(path: str, n_lags: int, mapped: bool = True) -> dict:
    """Two passes in a fresh process, with blocks mapped in place where the file allows
    (``config.MAP_FILES``) or always copied."""
    child = subprocess.run([sys.executable, "-c", _STREAM_CHILD, path, str(n_lags), "map" if mapped else "copy"],
                           capture_output=True, text=True, check=True)
    return json.loads(child.stdout.strip().splitlines()[-1])


def run(quick: bool = False) -> list[Row]:
    if quick:
        return (bench_spectral(1024, 2048) + bench_lagband(1024, 2048) + bench_streaming(256, 2**16)
                + bench_cold(256, 2**16))
    return (bench_spectral(8192, 16384) + bench_lagband(8192, 16384) + bench_streaming(1024, 2**20)
            + bench_cold(1024, 2**19))


def main() -> None:
    print(format_table(run("--quick" in sys.argv)))


if __name__ == "__main__":
    main()
