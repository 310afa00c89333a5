"""The assembled job: ``pe.analyze`` equals each standalone statistic and a known answer.

Issue "one plan, one protocol, results that agree": the MSL inside ``analyze`` was wrong
(its Gram matrices were overwritten by the path geometry), windows differed between the
statistics of one report, and fits were published without a quality gate.
"""

import json
import multiprocessing
import os
import time

import numpy as np
import pytest
from resultcheck import assert_same

import pyengine as pe
from pyengine.analyses import PUBLIC, STATISTICS, select
from pyengine.cli import main
from pyengine.engine import GramWindow, LagBandAccumulator, WindowGramAccumulator, run
from pyengine.threads import map_threads
from pyengine.estimators.loss import loss_stats
from pyengine.fits import power_fit
from pyengine.store import write_trajectory

WINDOW, LAGS = 300, 16


def linear_loss(x):
    """A loss linear in one coordinate: (L_a − L_b)² ∝ Δr² on average, so MSL has 2H = 2."""
    return 5.0 + 0.1 * x[:, 0]


@pytest.fixture(scope="module")
def walk():
    x = np.random.default_rng(21).standard_normal((1000, 40)).cumsum(axis=0)
    return x, linear_loss(x)


@pytest.fixture(scope="module")
def walk_file(tmp_path_factory, walk):
    x, loss = walk
    return write_trajectory(tmp_path_factory.mktemp("pipeline") / "walk.h5", x.astype(np.float32), loss=loss)


def standalone(x, loss):
    """Every statistic computed on its own, with the settings analyze uses."""
    msd = pe.msd(x, window=WINDOW, lags=LAGS, progress=False)
    return {
        "msd": msd,
        "diffusion": pe.fit_diffusion(msd),
        "beta": pe.log_derivative(msd, method="local"),
        "path": pe.path_geometry(x, window=WINDOW, progress=False),
        "msl": pe.msl(x, loss, window=WINDOW, progress=False),
        "increments": pe.increments(x, window=WINDOW, progress=False),
        "tails": pe.increment_tails(x, window=WINDOW, progress=False),
        "loss": pe.loss_stats(loss, window=WINDOW),
    }


def _assert_analysis_equals_standalone(analysis, alone):
    assert set(alone) <= set(analysis.results)
    for name, result in alone.items():
        assert_same(analysis[name], result, where=name)


def test_analyze_on_an_array_equals_every_standalone_function(walk):
    x, loss = walk
    analysis = pe.analyze(x, window=WINDOW, lags=LAGS, loss=loss, progress=False)
    _assert_analysis_equals_standalone(analysis, standalone(x, loss))


def test_analyze_on_a_file_equals_every_standalone_function(walk_file):
    with pe.open(walk_file) as traj:
        x, loss = traj.read_block(0, traj.n_params).astype(np.float32), np.asarray(traj.loss)
    analysis = pe.analyze(walk_file, window=WINDOW, lags=LAGS, progress=False)
    _assert_analysis_equals_standalone(analysis, standalone(walk_file, loss))
    # and the file equals its own data held in memory
    _assert_analysis_equals_standalone(analysis, standalone(x, loss))


def test_msl_in_analyze_bins_all_pairs_and_has_the_known_exponent(walk):
    x, loss = walk
    analysis = pe.analyze(x, window=WINDOW, lags=LAGS, loss=loss, only=["msl", "path"], progress=False)
    msl = analysis["msl"]
    # every pair of every window, not only the adjacent ones (the bug left 299 of 44850)
    assert np.all(msl.counts.sum(axis=1) + msl.n_flagged == WINDOW * (WINDOW - 1) // 2)
    assert np.all(np.abs(msl.exponent - 2) < 0.2), msl.exponent  # linear loss: 2H = 2
    assert np.all(np.abs(analysis["path"].fractal_dim[:, 1] - 2) < 0.3)  # a random walk: D_f = 2


def test_known_answers_of_a_brownian_run(walk):
    x, loss = walk
    analysis = pe.analyze(x, window=WINDOW, lags=LAGS, loss=loss, progress=False)
    assert np.all(np.abs(analysis["diffusion"].alpha - 1) < 0.1)
    assert np.all(np.abs(analysis["increments"].spectral_slope) < 0.15)  # white increments
    assert np.all(np.abs(analysis["tails"].alpha - 2) < 0.15)  # Gaussian increments


def test_every_result_of_one_analysis_has_the_same_windows(walk):
    x, loss = walk
    x = x[:901]  # 3 windows of 300 and one snapshot left over
    analysis = pe.analyze(x, window=WINDOW, lags=LAGS, loss=loss[:901], progress=False)
    expected = [0, 300, 600]
    for name in ("msd", "diffusion", "beta", "path", "msl", "increments", "tails", "loss"):
        assert analysis[name].t_w.tolist() == expected, name
    assert analysis.settings["plan"]["t_w"] == expected
    assert "1 snapshot(s) after the last whole window (steps 900 … 900)" in analysis.skipped["windows"]


def test_a_200_snapshot_recording_analyses_with_defaults(tmp_path):
    path = pe.models.write_synthetic(tmp_path / "short.h5", "brownian", 200, 16, seed=2)
    out = tmp_path / "out"
    assert main(["analyze", str(path), "--out", str(out), "--quiet"]) == 0
    doc = json.loads((out / "results.json").read_text())
    assert doc["settings"]["plan"]["window"] == 50 and doc["settings"]["plan"]["t_w"] == [0, 50, 100, 150]
    assert {"msd", "diffusion", "beta", "path", "msl", "increments", "tails", "loss"} <= set(doc["results"])
    assert doc["skipped"] == {}


def test_without_a_loss_the_loss_statistics_are_skipped_with_the_reason(walk, tmp_path):
    x, _ = walk
    analysis = pe.analyze(x, window=WINDOW, lags=LAGS, progress=False)
    assert "msl" not in analysis.results and "loss" not in analysis.results
    assert analysis.skipped["msl"].startswith("no loss") and analysis.skipped["loss"].startswith("no loss")
    html = (analysis.save(tmp_path / "out", figures=False) / "index.html").read_text()
    assert "Not computed" in html and "no loss" in html


def test_finalized_results_are_read_only_and_shared_results_survive(walk):
    x, _ = walk
    grams, band = run(x, [WindowGramAccumulator((GramWindow(0, 50),)), LagBandAccumulator((1,))], progress=False)
    assert not grams[0].flags.writeable and not band.flags.writeable
    with pytest.raises(ValueError, match="read-only"):
        grams[0] *= 2


def test_one_fit_rule_passes_a_long_clean_power_law_and_flags_a_short_noisy_one():
    x = np.geomspace(1, 1000, 40)
    clean = power_fit(x, 2.0 * x**0.7 * np.exp(0.01 * np.random.default_rng(0).standard_normal(40)))
    assert clean.ok and abs(clean.slope - 0.7) < 0.01 and clean.decades == pytest.approx(3)
    short = np.geomspace(10, 10**1.5, 8)  # half a decade
    noisy = power_fit(short, short**0.7 * np.exp(0.3 * np.random.default_rng(1).standard_normal(8)))
    assert not noisy.ok and "decades" in noisy.flag
    few = power_fit(x[:4], x[:4] ** 2)
    assert not few.ok and "4 points" in few.flag


def test_flagged_fits_are_grey_with_their_reason_in_the_report(walk, tmp_path):
    x, loss = walk
    analysis = pe.analyze(x[:200], window=40, lags=LAGS, loss=loss[:200], progress=False)
    flagged = [w.early for w in analysis["diffusion"].windows if not w.early.ok]
    flagged += [f for f in analysis["msl"].fits if not f.ok]
    assert flagged, "short windows should give some fits that fail the rule"
    html = (analysis.save(tmp_path / "out", figures=False) / "index.html").read_text()
    assert "class='flagged'" in html and "Fitted exponents" in html
    assert any(f.flag in html for f in flagged)


def test_the_backend_used_is_recorded_and_cuda_is_refused_up_front(walk, walk_file, capsys):
    x, _ = walk
    analysis = pe.analyze(x[:200], window=100, lags=8, progress=False, backend="numpy", only=["msd"])
    assert analysis.settings["backend"] == "numpy"
    auto = pe.analyze(x[:200], window=100, lags=8, progress=False, only=["msd"]).settings["backend"]
    assert auto in ("cpp", "numba", "numpy")
    if pe.backends()["cuda"].available:
        pytest.skip("a GPU is here: backend='cuda' stages blocks onto it (tests/test_gpu.py)")
    assert main(["analyze", str(walk_file), "--out", "never", "--backend", "cuda", "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "backend 'cuda' is not available" in err and "Traceback" not in err


def test_the_table_drives_selection_the_cli_and_the_report(walk, tmp_path, capsys):
    assert [s.name for s in select(only=["msl"])] == ["distances", "msl"]
    assert "msd" not in [s.name for s in select(skip=PUBLIC)]
    with pytest.raises(ValueError, match="unknown statistic"):
        select(only=["msdd"])
    with pytest.raises(SystemExit):
        main(["analyze", "x.h5", "--out", "o", "--only", "msdd"])
    assert "unknown statistic" in capsys.readouterr().err
    x, loss = walk
    analysis = pe.analyze(x[:400], window=200, lags=8, loss=loss[:400], skip=["tails", "path"], progress=False)
    assert "tails" not in analysis.results and "path" not in analysis.results and "msl" in analysis.results
    out = analysis.save(tmp_path / "out")
    names = {f["file"] for f in json.loads((out / "results.json").read_text())["figures"]}
    drawn = {f"figures/{f.name}.png" for s in STATISTICS for f in s.figures if f.available(analysis.results)}
    assert names == drawn and "figures/msl.png" in names and "figures/tails.png" not in names


def test_engine_settings_are_checked_once_with_clear_errors(walk):
    x, _ = walk
    with pytest.raises(TypeError, match="the engine settings are"):
        pe.analyze(x, window=100, worker=2)
    with pytest.raises(ValueError, match="workers must be a positive integer"):
        pe.msl(x, np.zeros(len(x)), window=100, workers=0)
    with pytest.raises(ValueError, match="backend must be"):
        pe.increments(x, window=100, backend="gpu")
    with pytest.raises(ValueError, match="nonfinite must be"):
        pe.path_geometry(x, window=100, nonfinite="ignore")


def test_loss_stats_of_a_plan_equals_the_standalone_function(walk):
    _, loss = walk
    assert_same(pe.analyze(np.zeros((1000, 2)) + np.arange(1000)[:, None], window=WINDOW, lags=LAGS, loss=loss,
                           only=["loss"], progress=False)["loss"], loss_stats(loss, window=WINDOW))


def test_auto_windows_of_a_long_run_are_at_most_16_spread_evenly():
    from pyengine.plan import AUTO_MAX_WINDOWS, make_plan

    plan = make_plan(np.arange(40_000))
    assert plan.window == 1000 and plan.t_w.size == AUTO_MAX_WINDOWS == 16
    assert plan.t_w[0] == 0 and plan.t_w[-1] == 39_000 and np.all(plan.t_w % 1000 == 0)
    assert plan.gaps == 40_000 - 16 * 1000 and plan.leftover is None
    x = np.zeros((2000, 2)) + np.arange(2000)[:, None]
    analysis = pe.analyze(x, window=100, lags=4, only=["msd"], progress=False)
    assert analysis["msd"].t_w.size == 20  # a given window tiles the run: no cap


def _msl_and_msd(x):
    a = pe.analyze(x, window=100, loss=linear_loss(x), only=["msd", "msl"], progress=False)
    return a["msd"].msd, a["msl"].msl


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_a_forked_child_analyses_after_its_parent_did(walk):
    """A child forked after the parent ran the kernels (multiprocessing's "fork") gives the
    same results instead of waiting forever: in a child the kernels run one thread (GNU
    OpenMP cannot start a team there), and the Gram's thread pool is the child's own."""
    x = walk[0][:400]
    parent = _msl_and_msd(x)
    with multiprocessing.get_context("fork").Pool(1) as pool:
        child = pool.apply_async(_msl_and_msd, (x,)).get(timeout=120)
    for a, b in zip(parent, child):
        np.testing.assert_allclose(b, a, rtol=1e-12)


def test_threads_return_or_raise_only_once_every_call_has_ended():
    """The calls read views of a block whose buffer is reused (or unmapped) as soon as the
    caller lets go: an error in one call must not leave the others running."""
    ended = []

    def work(i):
        if i == 0:
            raise ValueError("the first call fails at once")
        time.sleep(0.05)
        ended.append(i)
        return i

    with pytest.raises(ValueError, match="fails at once"):
        map_threads(2, work, range(5))
    assert sorted(ended) == [1, 2, 3, 4]
    assert map_threads(2, lambda i: i * i, range(5)) == [0, 1, 4, 9, 16]
