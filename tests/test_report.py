"""The report's files: figures as PNG (2×) and SVG, the training settings of the file as a
table, a self-contained report to mail, everything from results.json escaped."""

import html as htmllib
import json
import struct
import xml.etree.ElementTree as ET

import numpy as np
import pytest

import pyengine as pe
from pyengine.cli import main
from pyengine.output import MANIFEST
from pyengine.report import SELF_CONTAINED, render
from pyengine.store import TrajectoryWriter

HOSTILE = "<img src=x onerror=alert(1)>"
SETTINGS = {
    "model": {"class": "tests.MLP", "n_params": 12, "summary": "MLP(\n  (fc): Linear(3, 4)\n  (out): Linear(4, 1)\n)"},
    "optimizer": {"class": "torch.optim.sgd.SGD", "param_groups": [{"lr": 0.05, "momentum": 0.9, "foreach": None}]},
    "recorder": {"every": 1, "params": [f"layer{i}.weight" for i in range(40)]},
    "batch_size": 32,
    "seed": 7,
    "dataset": "digits",
    "note": HOSTILE,
}


@pytest.fixture(scope="module")
def run_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("runs") / "trained.h5"
    x = pe.models.brownian(321, 12, seed=3).astype(np.float32)
    with TrajectoryWriter(path, 12, attrs=SETTINGS) as w:
        w.append(x, np.arange(321), (x.astype(np.float64) ** 2).mean(axis=1))
    return path


@pytest.fixture(scope="module")
def analysis(run_file):
    return pe.analyze(run_file, window=40, lags=8, progress=False, skip=("path", "msl", "tails"))


def test_source_carries_the_settings_stored_in_the_file(run_file, analysis):
    with pe.open(run_file) as traj:
        assert analysis.source["settings"] == traj.attrs
        assert pe.analyze(traj, window=40, lags=8, progress=False, only=["msd"]).source["settings"] == traj.attrs
    assert analysis.source["settings"]["optimizer"]["param_groups"][0]["lr"] == 0.05
    assert pe.analyze(np.zeros((50, 3)) + np.arange(50)[:, None], window=10, lags=4, progress=False,
                      only=["msd"]).source["settings"] == {}


def test_training_settings_are_a_readable_escaped_table(analysis, tmp_path):
    out = analysis.save(tmp_path / "out", figures=False)
    page = (out / "index.html").read_text()
    section = page[page.index("<h2>Training run</h2>"):page.index("<h2>Settings</h2>")]
    for name, value in [("optimizer.lr", "0.05"), ("optimizer.momentum", "0.9"), ("batch_size", "32"),
                        ("seed", "7"), ("model.class", "tests.MLP"), ("optimizer.class", "torch.optim.sgd.SGD")]:
        assert f"<td class='text key'>{name}</td><td class='text'>{value}</td>" in section
    # Nested settings are flattened; the first ones come first, the recorder's own are folded away.
    assert section.index("model.class") < section.index("optimizer.lr") < section.index("batch_size")
    assert section.index("<details>") < section.index("recorder.params")
    assert "40 items: layer0.weight, layer1.weight" in section and "layer39.weight …" not in section
    assert "<pre>MLP(\n  (fc): Linear(3, 4)" in section and "param_groups" not in section
    assert HOSTILE not in page and htmllib.escape(HOSTILE) in section


def test_figures_are_png_at_twice_the_resolution_and_svg(analysis, tmp_path):
    out = analysis.save(tmp_path / "out")
    doc = json.loads((out / "results.json").read_text())
    assert doc["figures"]
    for entry in doc["figures"]:
        name = entry["file"][len("figures/"):-len(".png")]
        assert entry["files"] == {"png": f"figures/{name}.png", "svg": f"figures/{name}.svg"}
        png = (out / entry["files"]["png"]).read_bytes()
        width, height = struct.unpack(">II", png[16:24])
        assert (width, height) == (round((4.2 * entry["panels"] + 1.2) * 220), round(4.2 * 220))
        root = ET.parse(out / entry["files"]["svg"]).getroot()
        assert root.tag == "{http://www.w3.org/2000/svg}svg"
    page = (out / "index.html").read_text()
    assert all(f"<a href='{e['files']['svg']}'>SVG</a>" in page for e in doc["figures"])

    out = analysis.save(tmp_path / "png-only", formats=("png",), report=False)
    assert sorted(p.suffix for p in (out / "figures").iterdir()) == [".png"] * len(doc["figures"])
    with pytest.raises(ValueError, match="formats must be"):
        analysis.save(tmp_path / "bad", formats=("jpeg",))
    assert not (tmp_path / "bad").exists()


def test_self_contained_report_embeds_every_image(analysis, tmp_path):
    out = analysis.save(tmp_path / "out", formats=("png",), self_contained=True)
    mailed = (out / SELF_CONTAINED).read_text()
    index = (out / "index.html").read_text()
    n = index.count("<img ")
    assert n == len(json.loads((out / "results.json").read_text())["figures"]) > 0
    assert mailed.count("<img src='data:image/png;base64,") == n
    assert "figures/" not in mailed and "href=" not in mailed
    assert SELF_CONTAINED in json.loads((out / MANIFEST).read_text())["entries"]


def test_cli_self_contained_flags_and_the_folder_stays_replaceable(run_file, tmp_path, capsys):
    out = tmp_path / "cli"
    assert main(["analyze", str(run_file), "--out", str(out), "--window", "80", "--lags", "6", "--quiet",
                 "--only", "msd,diffusion", "--self-contained"]) == 0
    assert f"mailable report: {out / SELF_CONTAINED}" in capsys.readouterr().out
    (out / SELF_CONTAINED).unlink()
    assert main(["report", str(out), "--self-contained"]) == 0
    assert (out / SELF_CONTAINED).is_file() and "mailable report" in capsys.readouterr().out
    # The re-rendered file is in the manifest: a later analysis may replace the folder.
    assert main(["analyze", str(run_file), "--out", str(out), "--window", "80", "--lags", "6", "--quiet",
                 "--only", "msd"]) == 0
    assert not (out / SELF_CONTAINED).exists()


def test_report_of_an_edited_results_file_embeds_only_images_inside_the_folder(tmp_path):
    (tmp_path / "secret.txt").write_text("not an image")
    (tmp_path / "figures").mkdir()
    (tmp_path / "figures" / "a.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    doc = {"source": {"settings": {HOSTILE: {"x": HOSTILE}}}, "results": {},
           "figures": [{"file": "secret.txt", "title": "t"}, {"file": "../outside.png", "title": "t"},
                       {"file": "figures/a.png", "title": HOSTILE, "files": {"svg": "javascript:alert(1)"}}]}
    (tmp_path / "results.json").write_text(json.dumps(doc))
    render(tmp_path, self_contained=True)
    for name in ("index.html", SELF_CONTAINED):
        page = (tmp_path / name).read_text()
        assert page.count("<img ") == 1 and "secret.txt" not in page and "javascript:" not in page
        assert HOSTILE not in page and htmllib.escape(HOSTILE) in page
    assert not (tmp_path / MANIFEST).exists()  # not an output folder: nothing to list
