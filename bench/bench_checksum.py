"""Cost of end-to-end checksums of ``/weights``: pyengine's CRC-32 table against HDF5's Fletcher-32 filter.

A file of a few hundred MB (N x P float32, uncompressed, default chunks) is written in
appends of 64 snapshots, as the recorder does, with and without ``/weights_crc32``; the
same data is written by h5py with and without the Fletcher-32 filter. Reading: one pass
over all column blocks (``Trajectory.blocks``, what the engine does; the page cache is
warm) against :func:`pyengine.store.verify` (the same pass plus the CRCs), and a column
block pass of the Fletcher-32 file (HDF5 checks every chunk; such chunks cannot be mapped
or read raw). Medians; the machine is shared, so compare the ratios of one run.

Run: ``python -m bench checksum`` or ``python -m bench.bench_checksum [--quick]``.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import h5py
import numpy as np

from bench.common import Row, format_table, median_time
from pyengine.store import TrajectoryWriter, open_trajectory, verify
from pyengine.store._format import chunk_shape

SUITE = "checksum"
APPEND_ROWS = 64


def write_pyengine(path: Path, x: np.ndarray, checksum: bool) -> None:
    with TrajectoryWriter(path, x.shape[1], checksum=checksum, overwrite=True) as w:
        for i in range(0, len(x), APPEND_ROWS):
            rows = x[i:i + APPEND_ROWS]
            w.append(rows, np.arange(i, i + len(rows)), np.zeros(len(rows)))


def write_h5py(path: Path, x: np.ndarray, fletcher32: bool) -> None:
    with h5py.File(path, "w", libver="latest") as f:
        ds = f.create_dataset("weights", shape=(0, x.shape[1]), maxshape=(None, x.shape[1]), dtype=x.dtype,
                              chunks=chunk_shape(x.shape[1], None, None), fletcher32=fletcher32)
        for i in range(0, len(x), APPEND_ROWS):
            rows = x[i:i + APPEND_ROWS]
            ds.resize(i + len(rows), axis=0)
            ds[i:i + len(rows)] = rows
            f.flush()


def read_blocks(path: Path) -> None:
    with open_trajectory(path, validate=False) as traj:
        for _ in traj.blocks():
            pass


def read_h5py_blocks(path: Path) -> None:
    with h5py.File(path, "r") as f:
        ds = f["weights"]
        width = ds.chunks[1] * 8
        for j0 in range(0, ds.shape[1], width):
            j1 = min(j0 + width, ds.shape[1])
            ds.read_direct(np.empty((ds.shape[0], j1 - j0), ds.dtype), np.s_[:, j0:j1])


def measure(n: int, p: int, repeats: int) -> list[Row]:
    x = np.random.default_rng(0).normal(size=(n, p)).astype(np.float32)
    size = f"{x.nbytes / 2**20:.0f} MiB ({n} x {p} float32)"
    with tempfile.TemporaryDirectory() as tmp:
        paths = {name: Path(tmp) / f"{name}.h5" for name in ("plain", "crc", "h5", "fletcher")}
        t = {
            "write plain": median_time(lambda: write_pyengine(paths["plain"], x, False), repeats),
            "write crc": median_time(lambda: write_pyengine(paths["crc"], x, True), repeats),
            "write h5": median_time(lambda: write_h5py(paths["h5"], x, False), repeats),
            "write fletcher": median_time(lambda: write_h5py(paths["fletcher"], x, True), repeats),
            "read plain": median_time(lambda: read_blocks(paths["crc"]), repeats),
            "verify": median_time(lambda: verify(paths["crc"]), repeats),
            "read h5": median_time(lambda: read_h5py_blocks(paths["h5"]), repeats),
            "read fletcher": median_time(lambda: read_h5py_blocks(paths["fletcher"]), repeats),
        }
        assert verify(paths["crc"]).ok
    return [
        _row(f"write {size} with /weights_crc32", t["write crc"], "TrajectoryWriter, no checksum", t["write plain"]),
        _row(f"write {size} with Fletcher-32 (h5py)", t["write fletcher"], "h5py, no filter", t["write h5"]),
        _row(f"verify {size} (read + CRC-32)", t["verify"], "Trajectory.blocks pass", t["read plain"]),
        _row(f"read {size} with Fletcher-32 (h5py)", t["read fletcher"], "h5py, no filter", t["read h5"]),
    ]


def _row(case: str, seconds: float, peer: str, peer_seconds: float) -> Row:
    return Row(SUITE, case, seconds, peer, peer_seconds,
               note=f"{seconds / peer_seconds - 1:+.0%} time; {seconds:.2f} s against {peer_seconds:.2f} s")


def run(quick: bool = False) -> list[Row]:
    return measure(256, 20_000, 1) if quick else measure(2048, 50_000, 3)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20 MB, one repeat")
    args = parser.parse_args(argv)
    print(format_table(run(args.quick)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
