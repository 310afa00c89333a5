"""pe.compare and `pyengine compare`: runs with known differences (fBm of a stored Hurst
exponent), seeds grouped, trends of known slope, result folders and files read alike, the
tidy table, the page in headless Chromium, and a tiny `pyengine demo --sweep`."""

import dataclasses
import json
import math
import shutil

import numpy as np
import pytest

import pyengine as pe
from pyengine import cli
from pyengine.compare import QUANTITIES, Comparison, fit_trend, read_run
from pyengine.report import SELF_CONTAINED
from pyengine.store import TrajectoryWriter
from browser import IMAGES, console_errors

#: batch size → Hurst exponent: H = 0.25 + 0.25 log10(b), so α = 2H rises 0.5 per decade of b.
HURST = {1: 0.25, 10: 0.5, 100: 0.75}
SEEDS = (0, 1)
ANALYZE = {"window": 400, "lags": 12, "progress": False}
HOSTILE = "<script>document.title = 'pwned'</script>"


def _write(path, hurst: float, settings: dict, seed: int) -> None:
    x = pe.models.fbm(1201, 32, hurst, seed=seed).astype(np.float32)
    with TrajectoryWriter(path, 32, attrs=settings) as w:
        w.append(x, np.arange(1201), (x.astype(np.float64) ** 2).mean(axis=1))


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Six recorded runs: three batch sizes (each with its H, stored too) × two seeds."""
    folder = tmp_path_factory.mktemp("runs")
    out = []
    for b, h in HURST.items():
        for seed in SEEDS:
            path = folder / f"b{b}-s{seed}.h5"
            _write(path, h, {"batch_size": b, "seed": seed, "hurst": h, "note": HOSTILE,
                             "optimizer": {"class": "torch.optim.sgd.SGD", "param_groups": [{"lr": 0.1}]}}, seed)
            out.append(path)
    return out


@pytest.fixture(scope="module")
def analyses(files):
    return [pe.analyze(f, **ANALYZE) for f in files[::-1]]  # given in reverse: the comparison sorts them


@pytest.fixture(scope="module")
def folders(analyses, tmp_path_factory):
    root = tmp_path_factory.mktemp("folders")
    return [a.save(root / f"r{i}", figures=False, report=False) for i, a in enumerate(analyses)]


@pytest.fixture(scope="module")
def cmp(analyses):
    return pe.compare(analyses)


def _last(res, name):
    return res["diffusion"].summary()[name].iloc[-1], res["diffusion"].summary()[f"{name}_se"].iloc[-1]


def test_runs_are_labelled_by_the_settings_that_differ(cmp):
    assert cmp.varying == ["batch_size", "seed"]
    assert cmp.derived == {"hurst": ["batch_size"]}  # stored too, but it follows from batch_size
    assert cmp.labels == [f"batch_size={b}, seed={s}" for b in HURST for s in SEEDS]
    assert cmp.by == ["batch_size"] and cmp.groups == [[0, 1], [2, 3], [4, 5]]
    assert cmp.group_labels == ["batch_size=1", "batch_size=10", "batch_size=100"]
    assert cmp.headline() == "Comparison of 6 runs in 3 groups, varying batch_size, seed"
    assert len(repr(cmp).splitlines()) == 7


def test_fbm_exponents_follow_their_hurst_exponent(cmp):
    table = cmp.summary()
    assert list(table.run) == cmp.labels and (table.t_w == 800).all()
    expected = 2 * table.batch_size.map(HURST)
    assert np.all(np.abs(table.alpha - expected) < 0.1), table[["run", "alpha", "alpha_se"]]


def test_seeds_are_grouped_with_mean_and_both_standard_errors(cmp, analyses):
    by_label = {f"batch_size={a.source['settings']['batch_size']}, seed={a.source['settings']['seed']}": a
                for a in analyses}
    stats = [s for s in cmp.group_stats() if s["column"] == "alpha2" and s["t_w"] == 800]
    assert len(stats) == 3
    for g, stat in zip(range(3), stats):
        runs = [by_label[cmp.labels[i]] for i in cmp.groups[g]]
        values, ses = np.array([_last(r, "alpha2") for r in runs]).T
        assert stat["n"] == 2 and stat["mean"] == pytest.approx(values.mean())
        assert stat["se_runs"] == pytest.approx(values.std(ddof=1) / math.sqrt(2))
        assert stat["se_within"] == pytest.approx(math.sqrt((ses**2).sum()) / 2)
    table = cmp.group_summary()
    assert {"group", "batch_size", "statistic", "quantity", "t_w", "n", "mean", "se_runs", "se_within",
            "n_flagged"} <= set(table.columns)
    assert set(table.group) == set(cmp.group_labels)


def test_a_trend_recovers_the_known_slope(cmp):
    trend = cmp.trend("alpha", "batch_size")
    assert trend.scale == "log" and trend.n_points == 6 and trend.n_values == 3 and trend.flag is None
    assert abs(trend.slope - 0.5) < 0.06 and trend.slope_se < 0.05  # α = 2H rises 0.5 per decade of b
    x, y = np.log10(trend.x), trend.y
    (slope, intercept), cov = np.polyfit(x, y, 1, cov=True)
    assert trend.slope == pytest.approx(slope) and trend.intercept == pytest.approx(intercept)
    assert trend.slope_se == pytest.approx(math.sqrt(cov[0, 0]))
    assert "per decade" in trend.describe() and trend.summary().shape[0] == 1
    linear = cmp.trend("alpha", "batch_size", scale="linear")
    assert linear.slope == pytest.approx(np.polyfit(linear.x, linear.y, 1)[0])
    with pytest.raises(ValueError, match="numeric setting"):
        cmp.trend("alpha", "hurst")  # follows from batch_size: not a setting of its own
    with pytest.raises(ValueError, match="unknown headline number"):
        cmp.trend("nope", "batch_size")


def test_fit_trend_known_answers():
    fit = fit_trend([10, 100, 1000, 10000], [1.5, 2.0, 2.5, 3.0], [0.1, 0.1, 0.1, 0.1])
    assert fit["scale"] == "log" and fit["slope"] == pytest.approx(0.5) and fit["intercept"] == pytest.approx(1.0)
    assert fit["slope_se"] == pytest.approx(0, abs=1e-12)
    dx = np.log10([10, 100, 1000, 10000]) - 2.5
    assert fit["slope_se_within"] == pytest.approx(math.sqrt(((dx / (dx @ dx)) ** 2 * 0.01).sum()))
    assert fit_trend([0, 0.5, 0.9], [1, 2, 3])["scale"] == "linear"  # momentum 0: not a log scale
    assert fit_trend([16, 64], [1, 2])["flag"] == "2 setting values with a value, a line needs 3"
    assert math.isnan(fit_trend([16, 64, 256], [1, np.nan, 2])["slope"])
    with pytest.raises(ValueError, match="positive"):
        fit_trend([0, 1, 2], [1, 2, 3], scale="log")


def test_folders_files_and_analyses_give_the_same_comparison(files, analyses, folders, cmp):
    from_folders = pe.compare(folders)
    from_json = pe.compare([f / "results.json" for f in folders])
    from_files = pe.compare(files, **ANALYZE)
    expected = cmp.to_pandas().drop(columns="source")
    for other in (from_folders, from_json, from_files):
        assert other.labels == cmp.labels
        assert other.to_pandas().drop(columns="source").equals(expected)
    assert all(run.folder for run in from_folders.runs) and from_files.runs[0].folder is None
    assert set(from_folders.inputs()) >= {str(f) for f in folders}


def test_to_pandas_one_row_per_run_statistic_quantity_window(cmp):
    table = cmp.to_pandas()
    assert list(table.columns) == ["run", "group", "source", "batch_size", "seed", "statistic", "quantity", "t_w",
                                   "value", "se", "flag"]
    per_window = [q for q in QUANTITIES if q.quantity != "t0"]
    assert len(table) == 6 * (3 * len(per_window) + 1)  # 3 windows each, and t0 once per run
    assert not table.duplicated(["run", "statistic", "quantity", "t_w"]).any()
    t0 = table.query("quantity == 't0'")
    assert len(t0) == 6 and t0.t_w.isna().all()
    alpha = table.query("statistic == 'tails' and quantity == 'alpha'")
    assert len(alpha) == 18 and (alpha.value > 1).all()


def test_by_names_the_groups_and_bad_input_is_refused(analyses, tmp_path):
    by_hurst = pe.compare(analyses, by="hurst")
    assert by_hurst.by == ["hurst"] and len(by_hurst.groups) == 3
    assert len(pe.compare(analyses, by=[]).groups) == 1
    with pytest.raises(ValueError, match="no run has the setting"):
        pe.compare(analyses, by="nope")
    with pytest.raises(ValueError, match="no runs given"):
        pe.compare([])
    with pytest.raises(TypeError, match="sequence"):
        pe.compare("run.h5")
    with pytest.raises(TypeError, match="expected an Analysis"):
        pe.compare([42])
    with pytest.raises(FileNotFoundError, match="has no results.json"):
        pe.compare([tmp_path])
    with pytest.raises(FileNotFoundError, match="no such file"):
        pe.compare([tmp_path / "missing.h5"])
    (tmp_path / "bad.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="not a pyengine results file"):
        pe.compare([tmp_path / "bad.json"])


def test_an_edited_results_file_is_read_without_trusting_it(folders, tmp_path):
    doc = json.loads((folders[0] / "results.json").read_text())
    doc["results"]["diffusion"]["windows"][0]["late"]["slope"] = "1e9; drop table"
    doc["results"]["msl"]["fits"] = {"not": "a list"}
    doc["results"]["msd"]["msd"] = [[1, 2]]  # not (W, L)
    doc["source"]["settings"] = {"batch_size": [1, {"x": None}], "seed": None}
    run = read_run(doc, "edited")
    assert math.isnan(run.numbers["diffusion", "alpha2"].value[0])
    assert ("msl", "exponent") not in run.numbers and "msd" not in run.curves
    (tmp_path / "edited.json").write_text(json.dumps(doc))
    cmp = pe.compare([folders[1], tmp_path / "edited.json"])
    assert len(set(cmp.labels)) == 2 and cmp.varying[0] == "batch_size"


def test_compare_cli(files, tmp_path, capsys):
    out = tmp_path / "cmp"
    argv = ["compare", str(files[0]), str(files[2]), "--out", str(out), "--window", "400", "--lags", "12", "--quiet"]
    assert cli.main(argv) == 0
    printed = capsys.readouterr().out
    assert "Comparison of 2 runs, varying batch_size\n" in printed  # hurst follows from batch_size
    assert str(out / "index.html") in printed
    assert (out / "index.html").is_file() and (out / "comparison.json").is_file()
    assert json.loads((out / "comparison.json").read_text())["varying"] == ["batch_size"]
    assert cli.main(["compare", str(files[0]), "--out", str(files[0].parent)]) == 1
    assert "contains the input" in capsys.readouterr().err
    assert cli.main(["compare", str(tmp_path / "missing.h5"), "--out", str(tmp_path / "x")]) == 1
    assert "no such file" in capsys.readouterr().err


def test_repr_html_escapes_settings(analyses):
    a = analyses[0]
    tagged = [dataclasses.replace(a, source={**a.source, "settings": {**a.source["settings"], "tag": f"<b>{i}</b>"}})
              for i in range(2)]
    html = pe.compare(tagged)._repr_html_()
    assert "&lt;b&gt;0&lt;/b&gt;" in html and "<b>0</b>" not in html


# -- the page in headless Chromium ---------------------------------------------------------------

TABLE = ("const h = Array.from(document.querySelectorAll('h2')).find(e => e.textContent === arguments[0]);"
         "let t = h.nextElementSibling; while (!t.querySelector('table') && t.tagName !== 'TABLE') "
         "t = t.nextElementSibling; t = t.tagName === 'TABLE' ? t : t.querySelector('table');"
         "return Array.from(t.rows).map(r => Array.from(r.cells).map(c => c.innerText));")


@pytest.fixture(scope="module")
def page(folders, tmp_path_factory):
    """The comparison of the six result folders, one of them with a hostile varying setting."""
    hostile = tmp_path_factory.mktemp("hostile") / "run"
    shutil.copytree(folders[0], hostile)
    doc = json.loads((hostile / "results.json").read_text())
    doc["source"]["settings"]["tag"] = "<img src=x onerror=\"document.title='pwned'\">$x$"
    (hostile / "results.json").write_text(json.dumps(doc))
    (hostile / "index.html").write_text("<p>its report</p>")
    cmp = pe.compare([hostile, *folders[1:]])
    return cmp, cmp.save(tmp_path_factory.mktemp("page") / "cmp", self_contained=True)


def test_comparison_page_in_headless_chromium(page, driver):
    cmp, index = page
    driver.get(index.as_uri())
    assert driver.title == "pyengine comparison: 6 runs" and not driver.execute_script("return document.scripts.length")
    images = driver.execute_script(IMAGES)
    names = {src.split("/")[-1] for src, _ in images}
    assert {"msd.png", "exponents.png", "geometry.png", "tails.png", "loss.png", "trend-batch_size.png"} <= names
    assert all(ok for _, ok in images), images
    rows = driver.execute_script(TABLE, "Headline numbers")
    assert rows[0][:4] == ["run", "batch_size", "seed", "tag"]
    tagged = [r for r in rows[1:] if r[3] != "–"]
    assert len(tagged) == 1 and tagged[0][3] == "<img src=x onerror=\"document.title='pwned'\">$x$"  # text, never run
    assert all("±" in r[5] for r in rows[1:])  # α ± SE
    assert driver.find_elements("css selector", "table.headline a[href$='index.html']")  # the run's own report
    groups = driver.execute_script(TABLE, "Seeds")  # the hostile run is a group of its own
    assert [r[0] for r in groups[1:]] == cmp.group_labels and len(cmp.groups) == 4
    assert groups[1][1] == "2" and "±" in groups[1][2].split("\n")[0] and "within ±" in groups[1][2]
    trends = driver.execute_script(TABLE, "Trends")
    alpha = next(r for r in trends[1:] if r[0] == "alpha" and r[1] == "batch_size")
    assert "per decade" in alpha[4] and "±" in alpha[4]
    driver.execute_script("document.querySelectorAll('details').forEach(d => d.open = true)")
    assert HOSTILE in driver.find_element("tag name", "body").text  # the shared settings, as text
    assert driver.title == "pyengine comparison: 6 runs"
    assert not console_errors(driver)


def test_self_contained_comparison_needs_no_other_file(page, driver, tmp_path):
    _, index = page
    alone = tmp_path / "mail.html"
    alone.write_bytes((index.parent / SELF_CONTAINED).read_bytes())
    driver.get(alone.as_uri())
    images = driver.execute_script(IMAGES)
    assert len(images) >= 6 and all(src.startswith("data:image/png;base64,") and ok for src, ok in images)
    assert not driver.find_elements("css selector", "a[href]:not([href^='data:'])")


# -- the demo sweep ------------------------------------------------------------------------------


def test_sweep_driver_writes_each_run_and_the_comparison(tmp_path, monkeypatch, capsys):
    """The sweep's folders, manifest and comparison, with a stand-in for the training (fBm
    of a Hurst exponent set by the batch size)."""
    pytest.importorskip("torch")
    pytest.importorskip("sklearn")
    from pyengine import demo
    from pyengine.output import MANIFEST, claim_output

    def fake_run(out, config, progress=True):
        out = claim_output(out, ["run.h5", "report"])
        res = pe.analyze(pe.models.fbm(801, 16, 0.3 if config.batch_size == 16 else 0.7, seed=config.seed),
                         **ANALYZE)
        res.source["settings"] = dataclasses.asdict(config)
        res.save(out / "report", figures=False, report=False)
        return demo.DemoResult(out / "run.h5", out / "report" / "index.html", 0.0, 0.0, 0.5)

    monkeypatch.setattr(demo, "run_demo", fake_run)
    out = tmp_path / "sweep"
    argv = ["demo", "--out", str(out), "--sweep", "batch_size=16,64", "--seeds", "2", "--steps", "50"]
    assert cli.main(argv) == 0
    names = ["batch_size-16_seed-0", "batch_size-16_seed-1", "batch_size-64_seed-0", "batch_size-64_seed-1"]
    assert sorted(json.loads((out / MANIFEST).read_text())["entries"]) == sorted([MANIFEST, *names, "comparison"])
    assert "comparison: " + str(out / "comparison" / "index.html") in capsys.readouterr().out
    doc = json.loads((out / "comparison" / "comparison.json").read_text())
    assert doc["varying"] == ["batch_size", "seed"] and doc["group_labels"] == ["batch_size=16", "batch_size=64"]
    assert [r["name"] for r in doc["runs"]] == [str(out / n / "report") for n in names]
    alpha = {g["group"]: g["mean"] for g in doc["group_stats"] if g["column"] == "alpha" and g["t_w"] == 400}
    assert alpha[0] < 0.8 < 1.2 < alpha[1]  # α = 2H: 0.6 and 1.4
    assert "batch_size: fewer than 3 values, no line" in (out / "comparison" / "index.html").read_text()


@pytest.mark.slow  # about 25 s: two tiny runs trained, recorded and analysed with their reports
def test_demo_sweep_end_to_end(tmp_path, capsys, torch_one_thread):
    pytest.importorskip("sklearn")
    out = tmp_path / "sweep"
    argv = ["demo", "--out", str(out), "--steps", "80", "--width", "4", "--quiet", "--hessian-every", "0",
            "--surface-grid", "0", "--sweep", "batch_size=16,32"]
    assert cli.main(argv) == 0
    printed = capsys.readouterr().out
    assert str(out / "comparison" / "index.html") in printed
    for b in (16, 32):
        assert (out / f"batch_size-{b}" / "run.h5").is_file()
        assert (out / f"batch_size-{b}" / "report" / "results.json").is_file()
    doc = json.loads((out / "comparison" / "comparison.json").read_text())
    assert doc["varying"] == ["batch_size"] and doc["labels"] == ["batch_size=16", "batch_size=32"]
    assert {"eval.accuracy_test", "diffusion.alpha2"} <= set(doc["runs"][0]["numbers"])


def test_sweep_settings_are_parsed_and_checked(tmp_path, capsys):
    pytest.importorskip("torch")
    from pyengine.demo import DemoConfig, parse_sweep, sweep_configs

    assert parse_sweep("lr=0.05,0.1") == ("lr", [0.05, 0.1])
    assert parse_sweep("shortcut=true,false") == ("shortcut", [True, False])
    grid = sweep_configs(DemoConfig(seed=3), {"width": [4, 8], "lr": [0.1, 0.2]}, seeds=2)
    assert [(c.width, c.lr, c.seed) for c in grid][:3] == [(4, 0.1, 3), (4, 0.1, 4), (4, 0.2, 3)] and len(grid) == 8
    for bad, message in (("nope=1", "FIELD one of"), ("batch_size=a,b", "expected int"), ("lr=", "no values"),
                         ("lr=0.1,0.1", "repeated")):
        with pytest.raises(ValueError, match=message):
            parse_sweep(bad)
    with pytest.raises(ValueError, match="not both"):
        sweep_configs(DemoConfig(), {"seed": [0, 1]}, seeds=2)
    assert cli.main(["demo", "--out", str(tmp_path / "s"), "--sweep", "batch_size=16,5000", "--quiet"]) == 1
    assert "batch_size" in capsys.readouterr().err and not (tmp_path / "s").exists()  # refused before training


def test_comparison_class_is_importable():
    assert Comparison.__name__ == "Comparison"
