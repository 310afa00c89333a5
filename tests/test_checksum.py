"""End-to-end checksums of /weights: flipped bits are found, by row and chunk (`pyengine info --verify`)."""

import h5py
import numpy as np
import pytest

from pyengine.cli import main
from pyengine.store import FormatError, TrajectoryWriter, validate, verify, write_trajectory
from pyengine.store.checksum import row_checksums


@pytest.fixture
def x(rng):
    return rng.normal(size=(40, 300)).astype(np.float32)


def _flip_bits(path, row, cols):
    """Flip the lowest mantissa bit of weights[row, cols] in the file's bytes (the values stay finite)."""
    with h5py.File(path, "r") as f:
        ds = f["weights"]
        rows, width = ds.chunks
        c0 = cols[0] // width * width
        info = ds.id.get_chunk_info_by_coord((row // rows * rows, c0))
        offsets = [info.byte_offset + ((row % rows) * width + c - c0) * ds.dtype.itemsize for c in cols]
    with open(path, "r+b") as raw:
        for offset in offsets:
            raw.seek(offset)
            byte = raw.read(1)[0]
            raw.seek(offset)
            raw.write(bytes([byte ^ 1]))


def test_row_checksums_are_crc32_of_each_chunk_column():
    import zlib

    rows = np.arange(10, dtype=np.float32).reshape(2, 5)
    sums = row_checksums(rows, 2)
    assert sums.shape == (2, 3) and sums.dtype == np.uint32
    assert sums[1, 2] == zlib.crc32(rows[1, 4:].tobytes())


def test_flipped_bits_are_found_by_chunk(tmp_path, x):
    path = write_trajectory(tmp_path / "run.h5", x, chunk_steps=8, chunk_params=128)
    assert verify(path).ok and verify(path).n_rows == 40
    _flip_bits(path, 13, range(130, 178))  # 48 values, one row of chunk (1, 1)
    _flip_bits(path, 39, [299])  # the last, narrower chunk column
    assert validate(path).ok  # still a valid file: only the checksums see it
    report = verify(path)
    assert not report.ok and report.n_bad == 2
    assert report.bad == [(13, 1), (39, 2)] and report.bad_chunks == [(1, 1), (4, 2)]
    assert "CHECKSUM MISMATCH in 2 row segments of 2 chunks" in str(report) and "(13, 128:256)" in str(report)


def test_checksums_continue_when_appending(tmp_path, x):
    path = tmp_path / "run.h5"
    with TrajectoryWriter(path, 300, chunk_steps=8, compression="lz4") as w:
        w.append(x[:5], np.arange(5), np.ones(5))
    with TrajectoryWriter(path, 300, mode="a", checksum=False) as w:  # the file's choice is kept
        w.append(x[5:], np.arange(5, 40), np.ones(35))
    report = verify(path)
    assert report.ok and report.has_checksums and report.n_rows == 40


def test_files_without_checksums_say_so(tmp_path, x):
    path = write_trajectory(tmp_path / "plain.h5", x, checksum=False)
    report = verify(path)
    assert report.ok and not report.has_checksums and "not verified" in str(report)
    with h5py.File(path, "r+") as f:
        f["weights_crc32"] = np.zeros((40, 2), np.uint32)  # one chunk column of 300
    with pytest.raises(FormatError, match=r"/weights_crc32: shape \(40, 2\), dtype uint32, expected \(N, 1\)"):
        verify(path)


def test_info_verify(tmp_path, x, capsys):
    path = write_trajectory(tmp_path / "run.h5", x, chunk_steps=8)
    assert main(["info", str(path), "--verify"]) == 0
    assert "checksums ok (40 snapshots" in capsys.readouterr().out
    _flip_bits(path, 0, [0])
    assert main(["info", str(path), "--verify"]) == 1
    assert "CHECKSUM MISMATCH" in capsys.readouterr().err
