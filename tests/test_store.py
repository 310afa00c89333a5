"""The trajectory file format v1: round trips, appending, SWMR, crash recovery, validation, `pyengine info`."""

import h5py
import numpy as np
import pytest

import pyengine as pe
from pyengine import config
from pyengine.cli import main
from pyengine.store import (
    FORMAT_NAME,
    FormatError,
    ParamInfo,
    TrajectoryWriter,
    describe,
    open_trajectory,
    validate,
    write_trajectory,
)

P = 37  # not a multiple of the chunk width below
N = 20
PARAMS = [
    ParamInfo("fc.weight", 0, 30, (6, 5), "weight"),
    ParamInfo("fc.bias", 30, 6, (6,), "bias"),
    ParamInfo("scale", 36, 1, (), "other"),
]


@pytest.fixture
def x(rng):
    return rng.normal(size=(N, P)).astype(np.float32)


@pytest.fixture
def good(tmp_path, x):
    steps = np.arange(N) * 10
    loss = np.linspace(2.0, 0.5, N)
    return write_trajectory(tmp_path / "good.h5", x, steps, loss, params=PARAMS, attrs={"lr": 0.1}, chunk_params=16)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("compression", [None, "lz4", "gzip"])
def test_round_trip(tmp_path, rng, dtype, compression):
    x = rng.normal(size=(N, P)).astype(dtype)
    steps, loss = np.arange(N) * 3 + 5, rng.random(N)
    path = write_trajectory(tmp_path / "t.h5", x, steps, loss, params=PARAMS, attrs={"model": {"depth": 2}},
                            compression=compression, chunk_steps=8, chunk_params=16)
    with pe.open(path) as traj:
        assert (traj.n_snapshots, traj.n_params, traj.dtype) == (N, P, np.dtype(dtype))
        assert traj.steps.dtype == np.int64 and np.array_equal(traj.steps, steps)
        assert traj.loss.dtype == np.float64 and np.array_equal(traj.loss, loss)
        assert traj.params == PARAMS and traj.attrs == {"model": {"depth": 2}}
        assert traj.chunk_shape == (8, 16)
        block = traj.read_block(3, 29)
        assert block.flags.c_contiguous and block.dtype == dtype
        np.testing.assert_array_equal(block, x[:, 3:29])
        np.testing.assert_array_equal(traj.weights[:], x)
        buffer = np.empty((N, 26), dtype=dtype)
        assert traj.read_block(3, 29, out=buffer) is buffer
        np.testing.assert_array_equal(buffer, x[:, 3:29])
        with pytest.raises(ValueError, match="shape"):
            traj.read_block(3, 28, out=buffer)


def test_blocks_cover_every_column_once(good, x, monkeypatch):
    with open_trajectory(good) as traj:
        for width in (1, 5, P, 100):
            starts, parts = zip(*traj.blocks(width))
            assert starts == tuple(range(0, P, width))
            np.testing.assert_array_equal(np.hstack(parts), x)
        monkeypatch.setattr(config, "BLOCK_BYTES", N * 4 * 40)  # room for 40 columns: 2 chunks of 16
        assert traj.default_block_cols() == 32
        assert [j0 for j0, _ in traj.blocks()] == [0, 32]


def test_default_chunks_avoid_padded_edge_chunks(tmp_path, monkeypatch):
    monkeypatch.setattr(config, "CHUNK_PARAMS", 16)
    path = write_trajectory(tmp_path / "t.h5", np.zeros((2, 33), np.float32))
    with open_trajectory(path) as traj:
        assert traj.chunk_shape == (config.CHUNK_STEPS, 11)  # 3 chunks of 11, not 16 + 16 + 1
        assert traj.weights.maxshape == (None, 33)


def test_default_chunk_widths_are_whole_pages_from_256_columns():
    from pyengine.store._format import chunk_shape

    assert chunk_shape(20000, None, None) == (64, 10000)  # already a multiple of 16
    assert chunk_shape(24378, None, None) == (64, 12192)  # 12189 rounded up: 6 padding columns
    assert chunk_shape(1000001, None, None) == (64, 16144)
    assert chunk_shape(300, None, None) == (64, 300)  # one chunk: never wider than P
    for p in (24378, 1000001, 40000):
        steps, cols = chunk_shape(p, None, None)
        assert steps * cols * 4 % 4096 == 0


def test_writer_refuses_to_overwrite_and_checks_input(tmp_path, good):
    with pytest.raises(FileExistsError, match="overwrite=True"):
        TrajectoryWriter(good, P)
    with TrajectoryWriter(tmp_path / "w.h5", 4, swmr=False) as w:
        with pytest.raises(ValueError, match="P = 4"):
            w.append(np.zeros(5), 0, 1.0)
        w.append(np.zeros(4), 3, 1.0)
        with pytest.raises(ValueError, match="increase strictly: step 3 after 3"):
            w.append(np.zeros((2, 4)), [3, 4], [1.0, 1.0])
    with pytest.raises(FormatError, match=r"/params\[1\].*offset 3, expected 2"):
        TrajectoryWriter(tmp_path / "p.h5", 4, params=[ParamInfo("a", 0, 2, (2,), "weight"),
                                                        ParamInfo("b", 3, 1, (1,), "bias")])
    with pytest.raises(ValueError, match="compression"):
        TrajectoryWriter(tmp_path / "c.h5", 4, compression="zip")


def test_append_mode_resumes_a_run(good, x):
    with TrajectoryWriter(good, P, mode="a", attrs={"resumed": True}) as w:
        assert w.n_snapshots == N
        with pytest.raises(ValueError, match="increase strictly"):
            w.append(x[0], step=10 * (N - 1), loss=0.1)
        w.append(x[:2], step=[1000, 1010], loss=[0.4, 0.3])
    with open_trajectory(good) as traj:
        assert traj.n_snapshots == N + 2 and traj.steps[-1] == 1010
        assert traj.attrs == {"lr": 0.1, "resumed": True}
        np.testing.assert_array_equal(traj.read_block(0, P)[N:], x[:2])


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"n_params": P + 1}, "n_params=38"), ({"dtype": "float64"}, "dtype=float64"),
     ({"params": [ParamInfo("all", 0, P, (P,), "other")]}, "/params: the stored parameter table differs")],
)
def test_append_mode_rejects_a_different_run(good, kwargs, field):
    kwargs = {"n_params": P, **kwargs}
    with pytest.raises(FormatError, match="cannot append") as info:
        TrajectoryWriter(good, mode="a", **kwargs)
    assert field in str(info.value)


def test_swmr_reader_follows_a_file_being_written(tmp_path, x):
    with TrajectoryWriter(tmp_path / "live.h5", P, params=PARAMS) as w:
        w.append(x[:3], [0, 1, 2], [1.0, 0.9, 0.8])
        with open_trajectory(w.path) as traj:
            assert traj.n_snapshots == 3
            w.append(x[3:5], [3, 4], [0.7, 0.6])
            w.write_group("eval", {"step": [0, 4], "loss": [1.1, 0.7]}, {"split": "test"})
            traj.refresh()
            assert traj.n_snapshots == 5 and list(traj.steps) == [0, 1, 2, 3, 4]
            np.testing.assert_array_equal(traj.read_block(0, P), x[:5])
    with open_trajectory(tmp_path / "live.h5") as traj:
        assert traj.group("eval").attrs["split"] == "test" and traj.group("noise") is None


def test_write_group_replaces_and_checks_names(good):
    with TrajectoryWriter(good, P, mode="a") as w:
        w.write_group("landscape/pca", {"loss": np.ones((3, 4))}, {"directions": {"norm": "filter"}})
        w.write_group("landscape/pca", {"loss": np.zeros((2, 2))})
        with pytest.raises(ValueError, match="landscape/<name>"):
            w.write_group("extras", {"a": [1]})
    with open_trajectory(good) as traj:
        assert traj.group("landscape/pca")["loss"].shape == (2, 2)
        assert "landscape/pca (loss)" in describe(good)


def test_interrupted_append_keeps_the_complete_snapshots(good, x):
    with h5py.File(good, "r+") as f:  # rows of /weights and /step written, /loss not yet
        for name, rows in (("weights", 3), ("step", 1)):
            f[name].resize(N + rows, axis=0)
        f["step"][N] = 10_000
    with open_trajectory(good) as traj:
        assert traj.n_snapshots == N and traj.read_block(0, P).shape == (N, P)
        assert "incomplete snapshots" in traj.warnings[0]
    assert validate(good).ok
    with TrajectoryWriter(good, P, mode="a") as w:  # resuming drops the partial rows
        w.append(x[0], step=10 * N, loss=0.1)
    with open_trajectory(good) as traj:
        assert traj.n_snapshots == N + 1 and traj.weights.shape == (N + 1, P) and not traj.warnings


def _break(path, how):
    with h5py.File(path, "r+") as f:
        how(f)


def _replace(name, data):
    def how(f):
        del f[name]
        f[name] = data
    return how


def _set_attr(name, value):
    def how(f):
        f.attrs[name] = value
    return how


def _del(name):
    def how(f):
        del f[name]
    return how


def _bad_params(f):
    table = f["params"][()]
    table["offset"][2] = 35
    _replace("params", table)(f)


MALFORMED = {
    "missing weights": (_del("weights"), "missing dataset /weights"),
    "missing loss": (_del("loss"), "missing dataset /loss"),
    "missing params": (_del("params"), "missing dataset /params"),
    "format name": (_set_attr("format", "something-else"), "root attribute 'format'"),
    "format version": (_set_attr("format_version", 2), "'format_version' is 2"),
    "missing created": (lambda f: f.attrs.__delitem__("created"), "'created' is missing"),
    "settings json": (_set_attr("settings", "{oops"), "'settings' is not valid JSON"),
    "step dtype": (_replace("step", np.arange(N, dtype=np.float64)), "/step: dtype float64"),
    "weights ndim": (_replace("weights", np.zeros(N, np.float32)), "/weights: 1-D, expected 2-D"),
    "weights dtype": (_replace("weights", np.zeros((N, P), np.int32)), "/weights: dtype int32"),
    "steps not increasing": (_replace("step", np.r_[0, 2, 2, 3:N].astype(np.int64)),
                             "/step: not strictly increasing at row 2"),
    "loss too long": (_replace("loss", np.zeros(N + 2)), "length mismatch: /weights has 20 rows, /step 20, /loss 22"),
    "nan loss": (_replace("loss", np.r_[np.zeros(N - 1), np.nan]),
                 "/loss: 1 non-finite values (NaN/Inf), first at rows [19]"),
    "params gap": (_bad_params, r"/params[2] ('scale'): offset 35, expected 36"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_file_is_rejected_naming_the_field(good, case):
    how, message = MALFORMED[case]
    _break(good, how)
    report = validate(good)
    assert not report.ok and any(message in e for e in report.errors), report.errors
    with pytest.raises(FormatError) as info:
        open_trajectory(good)
    assert message in str(info.value)


def test_non_hdf5_file_is_rejected(tmp_path):
    path = tmp_path / "text.h5"
    path.write_text("not hdf5")
    with pytest.raises(FormatError, match="is not an HDF5 file"):
        open_trajectory(path)
    assert "is not an HDF5 file" in validate(path).errors[0]
    with pytest.raises(FileNotFoundError):
        open_trajectory(tmp_path / "absent.h5")


def test_nonfinite_weights_are_located(good):
    with h5py.File(good, "r+") as f:
        f["weights"][7, 33] = np.inf
        f["weights"][3, 20] = np.nan
        f["weights"][3, 2] = np.nan
    report = validate(good)
    assert report.n_nonfinite == 3 and report.nonfinite == [(3, 2), (3, 20), (7, 33)]
    assert "/weights: 3 non-finite values" in str(report)
    assert not validate(good, check_values=False).errors
    open_trajectory(good).close()  # values are scanned only on request
    with pytest.raises(FormatError, match=r"first at \(row, column\) \[\(3, 2\)"):
        open_trajectory(good, check_values=True)


def test_unvalidated_open_reads_a_slightly_broken_file(good):
    _break(good, _replace("loss", np.r_[np.zeros(N - 1), np.nan]))
    with open_trajectory(good, validate=False) as traj:
        assert traj.n_snapshots == N and np.isnan(traj.loss[-1])


def test_root_attributes(good):
    with open_trajectory(good) as traj:
        root = traj.file.attrs
        assert root["format"] == FORMAT_NAME and root["format_version"] == 1
        assert root["producer"] == f"pyengine {pe.__version__}" and root["created"].endswith("+00:00")
        assert traj.file.mode == "r"
        assert f"N={N} x P={P} float32" in repr(traj)


def test_info_prints_summary(good, capsys):
    assert main(["info", str(good), "--check-values"]) == 0
    out = capsys.readouterr().out
    for text in (f"N = {N}, steps 0..190, stride 10", f"P = {P}, float32", "chunks 64 x 16",
                 "3 tensors: 1 bias (6 values), 1 other (1 values), 1 weight (30 values)",
                 'lr = 0.1', "validation  ok (all values checked)"):
        assert text in out


def test_info_rejects_a_bad_file(good, capsys):
    _break(good, _replace("step", np.zeros(N, np.int64)))
    assert main(["info", str(good)]) == 1
    err = capsys.readouterr().err
    assert "pyengine info: error:" in err and "/step: not strictly increasing at row 1" in err
