"""Bad input: every case fails with an error naming the problem and leaves no partial output.

Covers missing, truncated and malformed trajectory files, settings outside the run, fits
that cannot be made, degenerate data, unsupported dtypes, a file still being written, and
that an input file is never opened for writing.
"""

import hashlib
import json
import os
import stat

import h5py
import numpy as np
import pytest

import pyengine as pe
from pyengine.cli import main as cli
from pyengine.heavytail import tail_index
from pyengine.store import FormatError, TrajectoryWriter, validate, write_trajectory

N, P = 64, 7


@pytest.fixture
def walk():
    return np.cumsum(np.random.default_rng(3).normal(size=(N, P)), axis=0)


@pytest.fixture
def good(tmp_path, walk):
    return write_trajectory(tmp_path / "good.h5", walk, loss=np.linspace(2, 1, N), chunk_steps=16)


def _edit(path, fn):
    with h5py.File(path, "r+") as f:
        fn(f)
    return path


def _assert_rejected(path, *fragments):
    """pe.open, validate and `pyengine info` all reject the file, naming the problem."""
    with pytest.raises(FormatError) as err:
        pe.open(path)
    for fragment in fragments:
        assert fragment in str(err.value)
    report = validate(path)
    assert not report.ok
    assert any(fragment in e for e in report.errors for fragment in fragments[:1])


def _no_output(tmp_path, out):
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(f".{out.name}")], "temporary output left behind"


# ---- the file ---------------------------------------------------------------------------


def test_missing_file(tmp_path, capsys):
    path = tmp_path / "nope.h5"
    with pytest.raises(FileNotFoundError, match="nope.h5"):
        pe.open(path)
    with pytest.raises(FileNotFoundError, match="nope.h5"):
        pe.analyze(path)
    out = tmp_path / "out"
    assert cli(["analyze", str(path), "--out", str(out), "--quiet"]) == 1
    assert "nope.h5" in capsys.readouterr().err
    _no_output(tmp_path, out)


@pytest.mark.parametrize("keep", [0.1, 0.5, 0.9])
def test_truncated_file(tmp_path, good, keep):
    data = good.read_bytes()
    bad = tmp_path / "cut.h5"
    bad.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises((FormatError, OSError)) as err:
        with pe.open(bad) as traj:
            traj.read_block(0, P)
    assert "cut.h5" in str(err.value) or isinstance(err.value, OSError)
    assert not validate(bad).ok
    out = tmp_path / "out"
    assert cli(["analyze", str(bad), "--out", str(out), "--quiet"]) == 1
    _no_output(tmp_path, out)


def test_not_hdf5(tmp_path):
    path = tmp_path / "notes.h5"
    path.write_text("step,loss\n0,1.0\n")
    with pytest.raises(FormatError, match="is not an HDF5 file"):
        pe.open(path)


def test_wrong_format_version(good):
    _edit(good, lambda f: f.attrs.__setitem__("format_version", np.int64(99)))
    _assert_rejected(good, "format_version", "99")


def test_not_a_trajectory(good):
    _edit(good, lambda f: f.attrs.__delitem__("format"))
    _assert_rejected(good, "'format' is missing")


def _lengthen_step(f):
    f["step"].resize(N + 3, axis=0)
    f["step"][N:] = np.arange(N, N + 3)


def test_mismatched_lengths(good):
    _edit(good, _lengthen_step)
    _assert_rejected(good, "length mismatch", f"/weights has {N} rows, /step {N + 3}")


def test_non_increasing_steps(good):
    _edit(good, lambda f: f["step"].__setitem__(10, 5))
    _assert_rejected(good, "/step: not strictly increasing at row 10")


def test_nonfinite_loss_is_located(good):
    def poison(f):
        f["loss"][7] = np.nan
        f["loss"][20] = np.inf

    _edit(good, poison)
    _assert_rejected(good, "/loss: 2 non-finite values", "[7, 20]")


def test_nonfinite_weights_are_located(good):
    _edit(good, lambda f: f["weights"].__setitem__((12, 3), np.nan))
    with pytest.raises(FormatError, match=r"\(12, 3\)"):
        pe.open(good, check_values=True)
    report = validate(good)
    assert report.n_nonfinite == 1 and report.nonfinite == [(12, 3)]


def test_nonfinite_weights_stop_the_analysis(walk):
    walk[12, 3] = np.inf
    with pytest.raises(ValueError, match=r"row 12, parameter 3"):
        pe.msd(walk, window=16, progress=False)


def test_nonfinite_weights_can_be_left_out_and_are_reported(walk):
    clean = walk.copy()
    clean[:, 3] = 0.0  # what leaving parameter 3 out means: it never moves
    walk[12, 3] = np.nan
    with pytest.warns(RuntimeWarning, match="left out 1 parameters.*parameter 3, snapshot row 12"):
        res = pe.msd(walk, window=16, progress=False, nonfinite="skip")
    np.testing.assert_allclose(res.msd, pe.msd(clean, window=16, progress=False).msd, rtol=1e-12)
    with pytest.warns(RuntimeWarning):
        analysis = pe.analyze(walk, window=16, lags=4, progress=False, nonfinite="skip", skip=("path", "msl", "tails"))
    assert any("left out 1 parameters" in w for w in analysis.source["warnings"])


def test_unsupported_weight_dtype_in_file(good):
    def to_int(f):
        del f["weights"]
        f.create_dataset("weights", data=np.zeros((N, P), np.int32), chunks=(16, P), maxshape=(None, P))

    _edit(good, to_int)
    _assert_rejected(good, "/weights: dtype int32")


@pytest.mark.parametrize("dtype", [np.complex128, np.dtype("U1"), object])
def test_unsupported_array_dtype(dtype):
    x = np.ones((8, 3), dtype=dtype)
    with pytest.raises(TypeError, match="dtype"):
        pe.msd(x, window=4, progress=False)
    with pytest.raises(TypeError, match="dtype"):
        pe.kernels.lag_band(x, [1])


def test_weights_not_chunked(good):
    def unchunk(f):
        w = f["weights"][:]
        del f["weights"]
        f.create_dataset("weights", data=w)

    _edit(good, unchunk)
    _assert_rejected(good, "/weights: not chunked")


def test_too_few_snapshots(walk):
    with pytest.raises(ValueError, match="at least 2 snapshots"):
        pe.msd(walk[:1], window=None, progress=False)


# ---- settings outside the run -----------------------------------------------------------


def test_window_outside_run(walk):
    with pytest.raises(ValueError, match="needs 2 … 64 snapshots in this run of 64 snapshots"):
        pe.msd(walk, window=500, progress=False)
    with pytest.raises(ValueError, match="outside the run"):
        pe.msd(walk, window=16, t_w=[60], progress=False)
    with pytest.raises(ValueError, match="outside the run"):
        pe.msd(walk, window=16, t_w=[-1], progress=False)


def test_lags_outside_run(walk):
    with pytest.raises(ValueError, match="lags"):
        pe.msd(walk, window=16, lags=[0], progress=False)
    with pytest.raises(ValueError, match="longer than the run"):
        pe.msd(walk, window=16, lags=[N], progress=False)
    with pytest.raises(ValueError, match="shorter than the window"):
        pe.msd(walk, window=16, lags=[16], origins="within", progress=False)


def test_window_not_multiple_of_snapshot_interval(tmp_path, walk):
    path = write_trajectory(tmp_path / "every10.h5", walk, steps=np.arange(N) * 10)
    with pytest.raises(ValueError, match="multiples of the snapshot interval"):
        pe.msd(path, window=15, progress=False)


def test_uneven_steps_are_refused_by_msd(tmp_path, walk):
    steps = np.arange(N)
    steps[30:] += 5
    path = write_trajectory(tmp_path / "gap.h5", walk, steps=steps)
    with pytest.raises(ValueError, match="evenly spaced"):
        pe.msd(path, window=16, progress=False)


# ---- ill-posed estimates report so ----------------------------------------------------------


def test_window_too_short_for_a_fit(walk):
    fit = pe.fit_diffusion(pe.msd(walk[:6], window=3, progress=False))
    for w in fit.windows:
        assert np.isnan(w.whole.slope) and "fewer than 5" in w.whole.flag
    assert fit.t0 is None and fit.t0_reason


def test_motionless_run_gives_no_exponent():
    fit = pe.fit_diffusion(pe.msd(np.ones((40, 3)), window=20, progress=False))
    assert all(np.isnan(w.whole.slope) and w.whole.flag for w in fit.windows)


def test_empty_bins_give_no_numbers(walk):
    res = pe.msl(walk, np.linspace(1, 0, N), window=16, bins=np.array([1e6, 1e7]), progress=False)
    assert (res.counts == 0).all()
    assert np.isnan(res.msl).all() and np.isnan(res.exponent).all()


@pytest.mark.parametrize("multivariate", [False, True])
def test_tail_index_of_all_zero_increments(multivariate):
    res = tail_index(np.zeros((400, 3)), multivariate=multivariate)
    assert np.isnan(res.alpha)
    assert "no usable samples" in res.reason
    assert res.n_used == 0


def test_tail_index_k1_too_large():
    with pytest.raises(ValueError, match="K1|k1"):
        tail_index(np.random.default_rng(0).standard_cauchy(50), k1=100)


def test_loss_with_nan_is_located():
    loss = np.linspace(2, 1, 60)
    loss[[4, 9]] = np.nan
    with pytest.raises(ValueError, match="2 non-finite values.*index 4"):
        pe.loss_stats(loss, window=None)


# ---- a file still being written (SWMR) -------------------------------------------------------


def test_reader_follows_a_file_being_written(tmp_path, walk):
    path = tmp_path / "live.h5"
    with TrajectoryWriter(path, P, dtype="float64", chunk_steps=8, swmr=True) as writer:
        writer.append(walk[:20], np.arange(20), np.ones(20))
        with pe.open(path) as traj:
            assert traj.n_snapshots == 20
            writer.append(walk[20:40], np.arange(20, 40), np.ones(20))
            traj.refresh()
            assert traj.n_snapshots == 40
            np.testing.assert_array_equal(traj.read_block(0, P), walk[:40])


def _interrupted_append(path, walk):
    """A file whose writer died mid-append: /weights holds 5 rows more than /step and /loss."""
    write_trajectory(path, walk[:40], chunk_steps=8, dtype="float64")

    def grow(f):
        f["weights"].resize(45, axis=0)
        f["weights"][40:45] = walk[40:45]

    return _edit(path, grow)


def test_interrupted_append_reads_complete_snapshots(tmp_path, walk):
    path = _interrupted_append(tmp_path / "partial.h5", walk)
    with pe.open(path) as traj:
        assert traj.n_snapshots == 40
        assert any("incomplete snapshots" in w and "40 complete" in w for w in traj.warnings)
    res = pe.msd(path, window=20, lags=[1, 5], progress=False)
    ref = pe.msd(walk[:40], window=20, lags=[1, 5], progress=False)
    np.testing.assert_allclose(res.msd, ref.msd, rtol=1e-12)


def test_analysis_says_it_read_a_partial_file(tmp_path, walk):
    path = _interrupted_append(tmp_path / "partial.h5", walk)
    res = pe.analyze(path, window=20, progress=False)
    assert "incomplete snapshots" in str(res.to_dict())


# ---- no partial output, input never written -------------------------------------------------


def test_failed_analysis_leaves_no_output(tmp_path, good):
    out = tmp_path / "out"
    assert cli(["analyze", str(good), "--out", str(out), "--window", "500", "--quiet"]) == 1
    _no_output(tmp_path, out)


def test_failed_save_keeps_previous_output(tmp_path, walk, monkeypatch):
    out = tmp_path / "out"
    res = pe.analyze(walk, window=16, progress=False, skip=("increments",))
    res.save(out, figures=False, report=False)
    before = (out / "results.json").read_bytes()

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(pe.Analysis, "to_dict", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        res.save(out, figures=False, report=False)
    assert (out / "results.json").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def _fingerprint(path):
    return path.stat().st_mtime_ns, path.stat().st_size, hashlib.sha256(path.read_bytes()).hexdigest()


def test_input_is_never_opened_for_writing(tmp_path, good, capsys):
    os.chmod(good, stat.S_IRUSR | stat.S_IRGRP)
    before = _fingerprint(good)
    try:
        res = pe.analyze(good, window=16, progress=False)
        res.save(tmp_path / "out", figures=False, report=False)
        assert validate(good).ok
        assert cli(["info", str(good), "--check-values"]) == 0
        assert cli(["analyze", str(good), "--out", str(tmp_path / "out2"), "--window", "16", "--quiet"]) == 0
        with pe.open(good) as traj:
            traj.refresh()
            assert traj.file.mode == "r"
        pe.msl(good, window=16, progress=False)
    finally:
        os.chmod(good, stat.S_IRUSR | stat.S_IWUSR)
    assert _fingerprint(good) == before
    capsys.readouterr()


# ---- the binding layer: pyengine._core checks what it is given --------------------------------

_core = pytest.importorskip("pyengine._core")
_X = np.zeros((6, 4))
_OUT = np.zeros((1, 6))
_F64 = np.zeros(8)

BAD_CORE_CALLS = {
    "lag_band 1-D x": lambda: _core.lag_band(np.zeros(6), np.array([1]), _OUT),
    "lag_band out shape": lambda: _core.lag_band(_X, np.array([1]), np.zeros((2, 6))),
    "lag_band out dtype": lambda: _core.lag_band(_X, np.array([1]), np.zeros((1, 6), np.float32)),
    "lag_band out strided": lambda: _core.lag_band(_X, np.array([1]), np.zeros((1, 12))[:, ::2]),
    "lag_band out read-only": lambda: _core.lag_band(_X, np.array([1]), np.broadcast_to(0.0, (1, 6))),
    "lag_band lag 0": lambda: _core.lag_band(_X, np.array([0]), _OUT),
    "lag_band x columns strided": lambda: _core.lag_band(np.zeros((6, 8))[:, ::2], np.array([1]), _OUT),
    "lag_band x int": lambda: _core.lag_band(np.zeros((6, 4), np.int32), np.array([1]), _OUT),
    "pair_bin not square": lambda: _core.pair_bin(np.zeros((4, 5)), np.zeros(4), np.array([0.0, 1.0]), False,
                                                  np.zeros((4, 1))),
    "pair_bin float32": lambda: _core.pair_bin(np.zeros(4, np.float32), np.zeros(4), np.array([0.0, 1.0]), False,
                                               np.zeros((4, 1))),
    "pair_bin sizes differ": lambda: _core.pair_bin(np.zeros(4), np.zeros(5), np.array([0.0, 1.0]), False,
                                                    np.zeros((4, 1))),
    "pair_bin one edge": lambda: _core.pair_bin(np.zeros(4), np.zeros(4), np.array([1.0]), False, np.zeros((4, 0))),
    "pair_bin edges decrease": lambda: _core.pair_bin(np.zeros(4), np.zeros(4), np.array([2.0, 1.0]), False,
                                                      np.zeros((4, 1))),
    "pair_bin log edges <= 0": lambda: _core.pair_bin(np.zeros(4), np.zeros(4), np.array([0.0, 1.0]), True,
                                                      np.zeros((4, 1))),
    "pair_bin vector strided": lambda: _core.pair_bin(np.zeros(8)[::2], np.zeros(4), np.array([0.0, 1.0]), False,
                                                      np.zeros((4, 1))),
    "box_counts negative origin": lambda: _core.box_counts(_X, -1, 0, np.array([1]), np.array([1.0]), 0.0, 0,
                                                           np.zeros((1, 1)), np.zeros((1, 1))),
    "box_counts size 0": lambda: _core.box_counts(_X, 0, 0, np.array([0]), np.array([1.0]), 0.0, 0,
                                                  np.zeros((1, 1)), np.zeros((1, 1))),
    "box_counts rule 7": lambda: _core.box_counts(_X, 0, 0, np.array([1]), np.array([1.0]), 0.0, 7,
                                                  np.zeros((1, 1)), np.zeros((1, 1))),
    "box_counts heights": lambda: _core.box_counts(_X, 0, 0, np.array([1, 2]), np.array([1.0]), 0.0, 0,
                                                   np.zeros((1, 2)), np.zeros((1, 2))),
    "box_counts counts shape": lambda: _core.box_counts(_X, 0, 0, np.array([1]), np.array([1.0]), 0.0, 0,
                                                        np.zeros((1, 3)), np.zeros((1, 1))),
    "box_counts int16": lambda: _core.box_counts(np.zeros((6, 4), np.int16), 0, 0, np.array([1]), np.array([1.0]),
                                                 0.0, 0, np.zeros((1, 1)), np.zeros((1, 1))),
    "surface_stats empty": lambda: _core.surface_stats(np.zeros((0, 3))),
    "tail_sums k1 1": lambda: _core.tail_sums(_X, np.array([1]), np.zeros(10)),
    "tail_sums stats length": lambda: _core.tail_sums(_X, np.array([2]), np.zeros(3)),
    "tail_norms group_sq length": lambda: _core.tail_norms(_X, np.array([2]), np.zeros(6), np.zeros(2)),
    "stable_loglik short table": lambda: _core.stable_loglik(_F64, 0.0, 1.0, np.zeros(2), np.zeros(2), 0.5, 1.0,
                                                             np.zeros(3), np.zeros(3), 1.5, np.zeros(4)),
    "stable_loglik scale 0": lambda: _core.stable_loglik(_F64, 0.0, 0.0, np.zeros(50), np.zeros(50), 0.02, 1.0,
                                                         np.zeros(3), np.zeros(3), 1.5, np.zeros(4)),
    "stable_loglik logp length": lambda: _core.stable_loglik(_F64, 0.0, 1.0, np.zeros(50), np.zeros(50), 0.02, 1.0,
                                                             np.zeros(3), np.zeros(3), 1.5, np.zeros(4), np.zeros(3)),
}


@pytest.mark.parametrize("case", sorted(BAD_CORE_CALLS))
def test_core_rejects_bad_arrays(case):
    with pytest.raises((ValueError, TypeError)):
        BAD_CORE_CALLS[case]()


def test_complex_samples_are_refused_not_silently_truncated():
    x = np.random.default_rng(0).standard_normal(500) * (1 + 1j)
    with pytest.raises(TypeError, match="complex"):
        pe.fit_levy_stable(x)
    with pytest.raises(TypeError, match="complex"):
        pe.fit_kappa(x)


def test_stored_names_with_mathtext_or_300_characters_do_not_break_the_figures(tmp_path):
    from pyengine.store import TrajectoryWriter

    path = tmp_path / "names.h5"
    x = pe.models.brownian(201, 6, seed=2).astype(np.float32)
    hostile = "$\\frac{$" + "x" * 300
    with TrajectoryWriter(path, 6) as w:
        w.append(x, np.arange(201), np.linspace(2, 1, 201))
        w.write_group("eval", {"step": np.array([0, 100, 200]), f"loss_{hostile}": np.array([2.0, 1.0, 0.5])})
    out = pe.analyze(path, window=100, lags=6, progress=False).save(tmp_path / "out")
    doc = json.loads((out / "results.json").read_text())
    assert "figure eval" not in doc["skipped"] and any(f["file"] == "figures/eval.png" for f in doc["figures"])


def test_an_edited_results_json_cannot_inject_html_through_any_field(tmp_path):
    from pyengine.report import render

    payload = "<img src=x onerror=alert(1)>"
    doc = {"source": {"path": payload, "n_params": payload}, "settings": {"backend": payload},
           "results": {"diffusion": {"windows": [{"t_w": payload, "tau0": payload, "regime_early": payload,
                                                  "regime_late": payload, "early": {"flag": payload},
                                                  "late": {"slope": payload}, "whole": {"rmse": payload},
                                                  "reason": payload}],
                                     "t0": payload, "t0_reason": payload, "threshold": payload}},
           "skipped": {payload: payload}, "figures": [{"file": payload, "title": payload, "caption": payload}]}
    (tmp_path / "results.json").write_text(json.dumps(doc))
    html = render(tmp_path).read_text()
    assert "<img src=x" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html


def test_a_huge_lag_count_means_every_lag_and_costs_no_more(walk):
    import time

    t0 = time.perf_counter()
    every = pe.msd(walk, window=16, lags=10**9, progress=False)
    assert time.perf_counter() - t0 < 10 and every.lags.tolist() == list(range(1, 17))
    np.testing.assert_array_equal(every.msd, pe.msd(walk, window=16, lags=None, progress=False).msd)
