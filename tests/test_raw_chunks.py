"""Raw chunk reads (os.preadv straight into the block) and chunk columns mapped in place
(mmap), against h5py's own reads."""

import mmap
import os

import h5py
import numpy as np
import pytest

import pyengine as pe
from pyengine import config
from pyengine.engine import LagBandAccumulator, run
from pyengine.engine.runner import plan_blocks
from pyengine.engine.source import as_source
from pyengine.store import TrajectoryWriter, open_trajectory, write_trajectory
from pyengine.store._raw_chunks import RawChunks

needs_cpp = pytest.mark.skipif(not pe.backends()["cpp"].available, reason="needs the C++ extension")


def make(tmp_path, n, p, dtype=np.float32, compression=None, chunk_steps=8, chunk_params=16):
    x = np.random.default_rng(n * p).standard_normal((n, p)).astype(dtype)
    path = write_trajectory(tmp_path / f"t_{n}_{p}_{compression}.h5", x, compression=compression,
                            chunk_steps=chunk_steps, chunk_params=chunk_params)
    return path, x


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n, p", [(8, 16), (30, 50), (65, 33), (2, 1)])
def test_raw_reads_equal_the_data_for_any_block(tmp_path, n, p, dtype, monkeypatch):
    # Rows not a multiple of the chunk rows, columns past the last whole chunk, blocks that
    # start and end inside chunks (read a row segment at a time), and blocks exactly one
    # chunk wide (one read per chunk).
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
            assert not h5py_reads, (j0, j1)  # whole chunks, and row segments of the others


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


# Mapping in place: chunks of 64 x 1024 float32 are 256 KiB, which the writer page-aligns.
MAP_ROWS, MAP_COLS = 64, 1024


def make_mappable(tmp_path, n=200, p=2500, dtype=np.float32):
    """Rows past the last whole chunk row, and an edge chunk column of 452 parameters."""
    return make(tmp_path, n, p, dtype, chunk_steps=MAP_ROWS, chunk_params=MAP_COLS)


def chunk_offsets(path):
    with h5py.File(path) as f:
        ds = f["weights"]
        return [ds.id.get_chunk_info(i).byte_offset for i in range(ds.id.get_num_chunks())]


def test_the_writer_page_aligns_big_chunks_also_when_appending(tmp_path):
    path, x = make_mappable(tmp_path)
    with TrajectoryWriter(path, x.shape[1], dtype="float32", mode="a", chunk_steps=MAP_ROWS,
                          chunk_params=MAP_COLS) as w:
        w.append(x[:100], np.arange(200, 300), np.zeros(100))
    offsets = chunk_offsets(path)
    assert len(offsets) == 3 * 5  # 300 rows: 5 chunk rows of 3 chunk columns
    assert all(o % 4096 == 0 for o in offsets)


@needs_cpp
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_mapped_blocks_equal_the_data_and_are_read_only(tmp_path, dtype):
    path, x = make_mappable(tmp_path, dtype=dtype)
    with open_trajectory(path) as traj:
        assert traj.map_cols == MAP_COLS
        for j0, j1 in [(0, 1024), (1024, 2048), (2048, 2500), (0, 512), (1030, 2048), (2100, 2500)]:
            block = traj.map_block(j0, j1)
            np.testing.assert_array_equal(block, x[:, j0:j1])
            assert not block.flags.writeable and not block.flags.owndata
            with pytest.raises(ValueError, match="read-only"):
                block[0, 0] = 1
        # two chunk columns, or under half of one (mapping would populate the whole chunk
        # column): copied instead
        for j0, j1 in [(1000, 1030), (5, 17), (1024, 1535), (2499, 2500)]:
            assert traj.map_block(j0, j1) is None
            np.testing.assert_array_equal(as_source(traj).read(j0, j1), x[:, j0:j1])
        with pytest.raises(ValueError, match="column range"):
            traj.map_block(0, 2501)
        kept = traj.map_block(1024, 2048)
    np.testing.assert_array_equal(kept, x[:, 1024:2048])  # the view outlives the closed file


@needs_cpp
def test_mappings_are_released_with_their_arrays(tmp_path):
    path, x = make_mappable(tmp_path)

    def mapped_regions():
        with open("/proc/self/maps") as maps:
            return sum(str(path) in line for line in maps)

    with open_trajectory(path) as traj:
        before = mapped_regions()
        block = traj.map_block(0, 1024)
        assert mapped_regions() > before
        del block
        assert mapped_regions() == before


def test_files_that_cannot_be_mapped_are_copied(tmp_path, monkeypatch):
    unaligned, x = make(tmp_path, 200, 2048, chunk_steps=MAP_ROWS, chunk_params=MAP_COLS // 4)  # 64 KiB chunks
    compressed, _ = make(tmp_path, 200, 2048, compression="gzip", chunk_steps=MAP_ROWS, chunk_params=MAP_COLS)
    for path in (unaligned, compressed):
        with open_trajectory(path) as traj:
            assert traj.map_cols == 0 and traj.map_block(0, 256) is None
            np.testing.assert_array_equal(as_source(traj).read(0, 256), x[:, :256])
    path, _ = make_mappable(tmp_path)
    monkeypatch.setattr(config, "MAP_FILES", False)
    with open_trajectory(path) as traj:
        assert traj.map_cols == 0 and traj.map_block(0, 1024) is None


@needs_cpp
def test_unallocated_chunks_are_not_mapped(tmp_path):
    path = tmp_path / "holes.h5"
    with h5py.File(path, "w", alignment_threshold=1, alignment_interval=4096) as f:
        ds = f.create_dataset("weights", (128, 3072), np.float32, chunks=(MAP_ROWS, MAP_COLS))
        ds[:, :MAP_COLS] = 1.0
        ds[:, 2 * MAP_COLS:] = 1.0
        ds[:MAP_ROWS, MAP_COLS : 2 * MAP_COLS] = 2.0  # chunk (64, 1024) is never written
    with h5py.File(path) as f:
        raw = RawChunks.open(f["weights"])
        try:
            np.testing.assert_array_equal(raw.map(128, 0, MAP_COLS), 1.0)
            assert raw.map(128, MAP_COLS, 2 * MAP_COLS) is None
        finally:
            raw.close()


@needs_cpp
def test_map_chunks_rejects_what_it_cannot_map(tmp_path):
    from pyengine import _core

    path, _ = make_mappable(tmp_path)
    page = mmap.PAGESIZE
    size = os.path.getsize(path)
    fd = os.open(path, os.O_RDONLY)
    try:
        for offsets, nbytes in [([page + 64], page), ([0], page + 1), ([size - page + page], page), ([-page], page),
                                ([], page)]:
            with pytest.raises(ValueError, match="map_chunks"):
                _core.map_chunks(fd, np.array(offsets, np.int64), nbytes)
    finally:
        os.close(fd)
    with pytest.raises(OSError):
        _core.map_chunks(fd, np.array([0], np.int64), page)  # closed


@needs_cpp
def test_the_engine_maps_one_chunk_column_per_block_and_agrees_with_copies(tmp_path, monkeypatch):
    path, x = make_mappable(tmp_path, n=300, p=2500)
    x[:, 7] = np.nan  # screened columns are zeroed in a copy, never in the read-only view
    write_trajectory(path, x, chunk_steps=MAP_ROWS, chunk_params=MAP_COLS, overwrite=True)
    assert plan_blocks(as_source(path)) == [(0, 1024), (1024, 2048), (2048, 2500)]
    maps = []
    original = RawChunks.map
    monkeypatch.setattr(RawChunks, "map", lambda self, *a: maps.append(original(self, *a)) or maps[-1])
    kwargs = dict(window=100, lags=12, skip=("path", "msl"), progress=False, nonfinite="skip")
    with pytest.warns(RuntimeWarning, match="left out 1 parameters"):
        mapped = pe.analyze(path, **kwargs)
    assert maps and all(m is not None for m in maps)
    monkeypatch.setattr(config, "MAP_FILES", False)
    with pytest.warns(RuntimeWarning, match="left out 1 parameters"):
        copied = pe.analyze(path, **kwargs)
    x[:, 7] = 0.0
    in_memory = pe.analyze(x, **{**kwargs, "nonfinite": "raise"})
    for other in (copied, in_memory):
        np.testing.assert_allclose(mapped["msd"].msd, other["msd"].msd, rtol=1e-12)
        np.testing.assert_allclose(mapped["increments"].power_mean, other["increments"].power_mean, rtol=1e-12)


@needs_cpp
@pytest.mark.parametrize("budget_cols, mapped", [(700, [True] * 5), (300, [False] * 8 + [True] * 2)])
def test_blocks_narrower_than_a_chunk_column_never_span_two(tmp_path, monkeypatch, budget_cols, mapped):
    """A budget below one chunk column cuts each chunk column into equal blocks: cut in two
    they still map in place (a block spanning two chunk columns was copied into fresh
    memory); cut finer they are copied, each from one chunk column (the 452-column edge
    chunk column cut in two still maps). Either way the pass gives what the array gives."""
    path, x = make_mappable(tmp_path, n=300, p=2500)
    monkeypatch.setattr(config, "BLOCK_BYTES", budget_cols * 300 * 4)
    blocks = plan_blocks(as_source(path))
    assert blocks[0][0] == 0 and blocks[-1][1] == 2500
    assert all(a == b for (_, a), (b, _) in zip(blocks, blocks[1:]))
    assert all(j1 - j0 <= budget_cols and j0 // MAP_COLS == (j1 - 1) // MAP_COLS for j0, j1 in blocks)
    if budget_cols == 700:
        assert blocks == [(0, 512), (512, 1024), (1024, 1536), (1536, 2048), (2048, 2500)]
    maps = []
    original = RawChunks.map
    monkeypatch.setattr(RawChunks, "map", lambda self, *a: maps.append(original(self, *a)) or maps[-1])
    (band,) = run(path, [LagBandAccumulator((1, 5))])
    assert [m is not None for m in maps] == mapped
    np.testing.assert_allclose(band, run(x, [LagBandAccumulator((1, 5))])[0], rtol=1e-12)

def test_a_block_inside_chunks_of_a_truncated_file_is_a_short_read(tmp_path):
    """Row segments are checked as whole chunks are: a file cut under an open reader reports
    a short read rather than returning part of a block."""
    path, x = make(tmp_path, 64, 48)
    with open_trajectory(path) as traj:
        np.testing.assert_array_equal(traj.read_block(5, 11), x[:, 5:11])  # chunk metadata read
        offset = traj._raw._chunk_offset(56, 0)
        os.truncate(path, offset + 100)  # into the last chunk row of the first chunk column
        with pytest.raises(OSError, match="short read"):
            traj.read_block(5, 11)
