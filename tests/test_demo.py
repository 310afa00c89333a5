"""The demo run end to end, with tiny settings."""

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")

from pyengine import cli  # noqa: E402
from pyengine.demo import DigitsResNet, minibatches  # noqa: E402
from pyengine.store import open_trajectory  # noqa: E402


def test_demo_end_to_end(tmp_path, capsys):
    out = tmp_path / "demo"
    argv = ["demo", "--out", str(out), "--steps", "120", "--width", "4", "--batch-size", "16", "--quiet",
            "--hessian-every", "60", "--surface-grid", "5"]
    assert cli.main(argv) == 0
    printed = capsys.readouterr().out
    assert str(out / "run.h5") in printed and str(out / "report" / "index.html") in printed
    with open_trajectory(out / "run.h5") as traj:
        assert traj.n_snapshots == 120
        np.testing.assert_array_equal(traj.steps, np.arange(1, 121))
        assert traj.n_params == sum(p.numel() for p in DigitsResNet(4).parameters())
        assert traj.attrs["batch_size"] == 16 and traj.attrs["optimizer"]["class"].endswith("SGD")
        assert list(traj.group("eval")["step"][:]) == [50, 100]
    assert (out / "report" / "index.html").is_file()
    results = json.loads((out / "report" / "results.json").read_text())
    assert results["settings"]["window"] == 20 and "msd" in results["results"]  # window="auto": N/4, rounded
    assert {"hessian", "landscape/final", "eval"} <= set(results["results"])
    assert len(results["results"]["hessian"]["steps"]) == 2


def test_no_shortcut_variant_has_no_projection():
    with_sc, without = DigitsResNet(8, shortcut=True), DigitsResNet(8, shortcut=False)
    assert sum(p.numel() for p in with_sc.parameters()) - sum(p.numel() for p in without.parameters()) == 8 * 16 + 32
    assert without(torch.zeros(2, 1, 8, 8)).shape == (2, 10)


def test_minibatches_cover_epochs():
    batches = list(minibatches(10, 3, 7, seed=0))
    assert len(batches) == 7 and all(len(b) == 3 for b in batches)
    assert len(set(torch.cat(batches[:3]).tolist())) == 9


def test_demo_rejects_bad_settings(tmp_path, capsys):
    assert cli.main(["demo", "--out", str(tmp_path), "--batch-size", "0", "--quiet"]) == 1
    assert "batch_size" in capsys.readouterr().err
