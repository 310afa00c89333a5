"""Raw chunk reads (os.preadv straight into the block) against h5py's own reads."""

import h5py
import numpy as np
import pytest

from pyengine.store import open_trajectory, write_trajectory


def make(tmp_path, n, p, dtype=np.float32, compression=None, chunk_steps=8, chunk_params=16):
    x = np.random.default_rng(n * p).standard_normal((n, p)).astype(dtype)
    path = write_trajectory(tmp_path / f"t_{n}_{p}_{compression}.h5", x, compression=compression,
                            chunk_steps=chunk_steps, chunk_params=chunk_params)
    return path, x


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n, p", [(8, 16), (30, 50), (65, 33), (2, 1)])
def test_raw_reads_equal_the_data_for_any_block(tmp_path, n, p, dtype, monkeypatch):
    # Rows not a multiple of the chunk rows, columns past the last whole chunk, blocks that
    # start and end inside chunks, and blocks exactly one chunk wide (one read per chunk).
    path, x = make(tmp_path, n, p, dtype)
    h5py_reads = []
    read_direct = h5py.Dataset.read_direct
    monkeypatch.setattr(h5py.Dataset, "read_direct", lambda self, *a: h5py_reads.append(a) or read_direct(self, *a))
    with open_trajectory(path) as traj:
        assert traj._raw is not None, "an uncompressed file should be read raw"
        cc = traj.chunk_shape[1]
        for j0, j1 in {(0, p), (0, min(p, cc)), (3 % p, p), (min(5, p - 1), min(p, 21)), (p - 1, p)}:
            h5py_reads.clear()
            out = np.full((n, j1 - j0), np.nan, dtype)
            assert traj.read_block(j0, j1, out) is out
            np.testing.assert_array_equal(out, x[:, j0:j1])
            np.testing.assert_array_equal(traj.read_block(j0, j1), x[:, j0:j1])
            if j0 % cc == 0 and j1 % cc == 0:  # whole chunks only: no h5py
                assert not h5py_reads, (j0, j1)
            else:
                assert h5py_reads


def test_compressed_files_are_read_by_h5py(tmp_path):
    path, x = make(tmp_path, 30, 50, compression="gzip")
    with open_trajectory(path) as traj:
        assert traj._raw is None
        np.testing.assert_array_equal(traj.read_block(3, 40), x[:, 3:40])


def test_other_dtypes_are_converted_by_h5py(tmp_path):
    path, x = make(tmp_path, 30, 50)
    with open_trajectory(path) as traj:
        out = np.empty((30, 32), np.float64)
        traj.read_block(16, 48, out)
        np.testing.assert_array_equal(out, x[:, 16:48].astype(np.float64))


def test_closing_releases_the_raw_file_descriptor(tmp_path):
    import os

    path, _ = make(tmp_path, 8, 16)
    traj = open_trajectory(path)
    fd = traj._raw._fd
    os.fstat(fd)
    traj.close()
    traj.close()
    with pytest.raises(OSError):
        os.fstat(fd)
