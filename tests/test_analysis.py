import html as htmllib
import json

import numpy as np
import pytest

import pyengine as pe
from pyengine.analyses import select
from pyengine.cli import main
from pyengine.report import render


@pytest.fixture(scope="module")
def run_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("runs") / "brownian.h5"
    return pe.models.write_synthetic(path, "brownian", 1601, 24, seed=4)


@pytest.fixture(scope="module")
def analysis(run_file):
    return pe.analyze(run_file, window=400, lags=20, progress=False)


def test_analyze_runs_everything_in_one_pass_and_is_right(run_file, analysis):
    res = analysis
    assert {"msd", "diffusion", "beta", "increments", "loss"} <= set(res.results)
    # Brownian weights: the whole-window exponent of every window is 1.
    alphas = res["diffusion"].alpha
    assert np.allclose(alphas, 1.0, atol=0.1)
    # The shared pass gives what the estimator alone gives.
    alone = pe.msd(run_file, window=400, lags=20, progress=False)
    np.testing.assert_allclose(res["msd"].msd, alone.msd, rtol=1e-12)
    # The conclusions ran on threads, each after the rows it needs; timings keep table order.
    assert list(res.timings)[1:] == [row.name for row in select() if row.name in res.timings]


def test_save_writes_results_figures_and_report_atomically(run_file, analysis, tmp_path):
    out = tmp_path / "out"
    analysis.save(out)
    doc = json.loads((out / "results.json").read_text())
    assert doc["source"]["n_params"] == 24 and doc["results"]["msd"]["method"] in ("spectral", "lagband")
    assert doc["figures"] and all((out / f["file"]).stat().st_size > 1000 for f in doc["figures"])
    html = (out / "index.html").read_text()
    assert all(f["file"] in html and htmllib.escape(f["caption"]) in html for f in doc["figures"])
    # Saving again replaces the earlier output; no temporary folders remain.
    pe.analyze(run_file, window=800, lags=12, progress=False, skip=("path", "msl", "tails")).save(out, figures=False)
    assert json.loads((out / "results.json").read_text())["settings"]["window"] == 800
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_save_refuses_a_foreign_directory_and_leaves_it_alone(analysis, tmp_path):
    (tmp_path / "thesis.tex").write_text("precious")
    with pytest.raises(FileExistsError, match="pyengine did not write"):
        analysis.save(tmp_path)
    assert (tmp_path / "thesis.tex").read_text() == "precious"


def test_failed_save_leaves_previous_output(analysis, tmp_path, monkeypatch):
    out = tmp_path / "out"
    analysis.save(out, figures=False)
    before = (out / "results.json").read_text()

    def boom(folder):
        raise RuntimeError("disk full")

    monkeypatch.setattr("pyengine.report.render", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        analysis.save(out, figures=False)
    assert (out / "results.json").read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_cli_analyze_and_report(run_file, tmp_path, capsys):
    out = tmp_path / "cli"
    assert main(["analyze", str(run_file), "--out", str(out), "--window", "800", "--lags", "10", "--quiet"]) == 0
    assert "index.html" in capsys.readouterr().out
    (out / "index.html").unlink()
    assert main(["report", str(out)]) == 0 and (out / "index.html").exists()


def test_cli_errors_exit_1_with_a_message(tmp_path, capsys):
    assert main(["analyze", str(tmp_path / "missing.h5"), "--out", str(tmp_path / "o")]) == 1
    assert "no such file" in capsys.readouterr().err
    assert main(["report", str(tmp_path)]) == 1
    assert "no results.json" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["analyze", "x.h5", "--out", "o", "--window", "1"])
    assert exc.value.code == 2


def test_report_shows_only_sections_with_data(tmp_path):
    (tmp_path / "results.json").write_text(json.dumps({"source": {"n_params": 3}, "results": {}, "figures": []}))
    html = render(tmp_path).read_text()
    assert "Diffusion exponents" not in html and "Figures" not in html


def test_recorded_probe_groups_reach_the_results_and_report(tmp_path):
    from pyengine.store import TrajectoryWriter

    path = tmp_path / "probed.h5"
    x = pe.models.brownian(801, 8, seed=1).astype(np.float32)
    with TrajectoryWriter(path, 8) as w:
        w.append(x, np.arange(801), np.linspace(2, 0.1, 801) * np.random.default_rng(0).uniform(0.9, 1.1, 801))
        w.write_group("eval", {"step": np.array([0, 400, 800]), "loss_test": np.array([2.0, 1.0, 0.5]),
                               "accuracy_test": np.array([0.1, 0.6, 0.9])})
        w.write_group("noise", {"step": np.array([0, 800]), "alpha": np.array([1.4, 1.7]),
                                "grad_norm": np.array([3.0, 1.0]), "noise_norm": np.array([2.0, 0.5])})
    res = pe.analyze(path, window=400, lags=8, progress=False, skip=("path", "msl", "tails", "increments"))
    np.testing.assert_array_equal(res["eval"].losses["test"], [2.0, 1.0, 0.5])
    np.testing.assert_array_equal(res["noise"].alpha, [1.4, 1.7])
    out = res.save(tmp_path / "out")
    html = (out / "index.html").read_text()
    assert "figures/eval.png" in html and "figures/noise.png" in html


def test_short_run_shortens_the_loss_variance_window():
    x = pe.models.brownian(60, 5, seed=3)
    res = pe.analyze(x, window=20, lags=5, loss=np.linspace(1, 0, 60) ** 2, progress=False)
    assert res["loss"].var_window == 30 and np.isfinite(res["loss"].moving_var).all()


def test_ill_posed_estimates_are_skipped_with_reasons_not_fatal(tmp_path):
    frozen = np.ones((400, 6))  # weights that never move: no path, no tails
    res = pe.analyze(frozen, window=100, lags=8, loss=np.linspace(1, 0, 400) ** 2, progress=False)
    assert {"msd", "diffusion", "loss"} <= set(res.results)
    assert {"tails", "path", "msl"} <= set(res.skipped) and all(res.skipped.values())
    out = res.save(tmp_path / "out")
    assert json.loads((out / "results.json").read_text())["skipped"] == res.skipped
    assert "Not computed" in (out / "index.html").read_text()
