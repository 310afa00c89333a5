"""Open a real report in headless Chromium: every image loads, no console error; a run with
many windows and stored training settings shows its settings table and colour bars, and the
self-contained report loads its images from data URIs alone."""

import io

import numpy as np
import pytest

import pyengine as pe
from pyengine.report import SELF_CONTAINED
from pyengine.store import TrajectoryWriter
from browser import IMAGES, console_errors

def test_report_in_headless_chromium(tmp_path, driver):
    x = pe.models.brownian(1201, 16, seed=2)
    out = pe.analyze(x, window=400, lags=10, loss=(x**2).mean(axis=1), progress=False).save(tmp_path / "report")
    driver.get((out / "index.html").as_uri())
    images = driver.execute_script(IMAGES)
    assert len(images) >= 4
    assert all(ok for _, ok in images), images
    assert not console_errors(driver)


@pytest.fixture(scope="module")
def many_windows(tmp_path_factory):
    """A recorded run (settings stored as the recorder stores them) analysed in 8 windows."""
    folder = tmp_path_factory.mktemp("many")
    path = folder / "run.h5"
    x = pe.models.brownian(801, 16, seed=5).astype(np.float32)
    settings = {"model": {"class": "MLP", "n_params": 16},
                "optimizer": {"class": "torch.optim.sgd.SGD", "param_groups": [{"lr": 0.025, "momentum": 0.9}]},
                "batch_size": 48, "seed": 11, "note": "<script>document.title = 'pwned'</script>"}
    with TrajectoryWriter(path, 16, attrs=settings) as w:
        w.append(x, np.arange(801), (x.astype(np.float64) ** 2).mean(axis=1))
    res = pe.analyze(path, window=100, lags=10, progress=False)
    assert len(res["msd"].t_w) == 8
    return res, res.save(folder / "report", self_contained=True)


def _colour_bar_columns(png: bytes) -> int:
    """Pixel columns of an image that are mostly saturated colour: a colour bar's strip (the
    curves of a plot are thin lines and never fill a column)."""
    from PIL import Image

    rgb = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)
    saturated = rgb.max(axis=2) - rgb.min(axis=2) > 60
    return int((saturated.mean(axis=0) > 0.5).sum())


def test_many_windows_report_shows_settings_table_and_colour_bars(many_windows, driver):
    res, out = many_windows
    driver.get((out / "index.html").as_uri())
    assert driver.title.startswith("pyengine report") and not driver.execute_script("return document.scripts.length")
    rows = driver.execute_script(
        "const h = Array.from(document.querySelectorAll('h2')).find(e => e.textContent === 'Training run');"
        "let t = h.nextElementSibling; while (t.tagName !== 'TABLE') t = t.nextElementSibling;"
        "return Array.from(t.rows).map(r => Array.from(r.cells).map(c => c.innerText));")
    table = {name: value for name, value in rows[1:]}
    assert table["optimizer.lr"] == "0.025" and table["batch_size"] == "48" and table["seed"] == "11"
    assert table["optimizer.momentum"] == "0.9" and table["model.class"] == "MLP"
    assert table["note"] == "<script>document.title = 'pwned'</script>"  # shown as text, never run
    images = driver.execute_script(IMAGES)
    assert len(images) >= 8 and all(ok for _, ok in images), images
    # The MSD figure as the browser draws it: a colour bar strip, and none in the single-series tails figure.
    shots = {name: driver.find_element("css selector", f"img[src='figures/{name}.png']").screenshot_as_png
             for name in ("msd", "beta", "tails")}
    assert _colour_bar_columns(shots["msd"]) >= 5 and _colour_bar_columns(shots["beta"]) >= 5
    assert _colour_bar_columns(shots["tails"]) == 0
    assert not console_errors(driver)


def test_many_windows_figures_have_a_colour_bar_axis(many_windows):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    res, _ = many_windows
    fig = plt.figure()
    try:
        res["msd"].plot(ax=fig.subplots())
        bars = [a for a in fig.axes if a.get_ylabel() == "waiting time t_w (steps)"]
        assert len(fig.axes) == 2 and len(bars) == 1 and fig.axes[0].get_legend() is None
    finally:
        plt.close(fig)


def test_self_contained_report_loads_its_images_from_data_uris_alone(many_windows, driver, tmp_path):
    _, out = many_windows
    alone = tmp_path / "mail" / "report.html"  # as a recipient opens it: no figures folder beside it
    alone.parent.mkdir()
    alone.write_bytes((out / SELF_CONTAINED).read_bytes())
    driver.get(alone.as_uri())
    images = driver.execute_script(IMAGES)
    assert len(images) >= 8
    assert all(src.startswith("data:image/png;base64,") and ok for src, ok in images), [s[:40] for s, _ in images]
    external = driver.execute_script(
        "return Array.from(document.querySelectorAll('[src], [href], link, object, iframe'))"
        ".map(e => e.getAttribute('src') || e.getAttribute('href') || e.tagName)"
        ".filter(s => !s.startsWith('data:'))")
    assert external == []
    assert "optimizer.lr" in driver.find_element("tag name", "body").text
    assert not console_errors(driver)
