"""Loss surfaces: filter-normalized directions, resumable evaluation, storage, box counting."""

import copy
import json
import shutil

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402

from pyengine.landscape import (  # noqa: E402
    filter_normalized,
    interpolate,
    landscape_results,
    loss_surface,
    random_directions,
)
from pyengine.record import Recorder  # noqa: E402
from pyengine.store import open_trajectory  # noqa: E402


pytestmark = pytest.mark.usefixtures("torch_one_thread")

def _mlp(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(5, 12), torch.nn.BatchNorm1d(12), torch.nn.ReLU(),
                               torch.nn.Dropout(0.2), torch.nn.Linear(12, 3))


def _data(n=64, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, 5, generator=gen), torch.randint(0, 3, (n,), generator=gen)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """A recorded run of 30 SGD steps: the file, the trained model and the data."""
    model, (x, y) = _mlp(), _data()
    opt = torch.optim.SGD(model.parameters(), lr=0.2)
    path = tmp_path_factory.mktemp("recorded") / "run.h5"
    with Recorder(model, path, optimizer=opt) as rec:
        for _ in range(30):
            opt.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            rec.step(loss)
    return path, model, (x, y)


@pytest.fixture
def run(recorded, tmp_path):
    """A fresh copy of the recorded file and model for one test."""
    path, model, data = recorded
    shutil.copy(path, tmp_path / "run.h5")
    return tmp_path / "run.h5", copy.deepcopy(model), data


class Interrupted(Exception):
    pass


class FailAfter:
    """A loss function that raises after ``n`` calls (an interrupted evaluation)."""

    __name__ = "cross_entropy"

    def __init__(self, n):
        self.n = n

    def __call__(self, out, y):
        if self.n == 0:
            raise Interrupted
        self.n -= 1
        return F.cross_entropy(out, y)


def test_filter_normalization():
    weights = [torch.randn(4, 3, 3, 3), torch.randn(6, 4), torch.randn(6), torch.tensor(2.0)]
    d = filter_normalized(weights, torch.Generator().manual_seed(0))
    for w, di in zip(weights[:2], d[:2]):
        torch.testing.assert_close(di.flatten(1).norm(dim=1), w.flatten(1).norm(dim=1))
        assert di.shape == w.shape and di.dtype == w.dtype
    assert not d[2].any() and not d[3].any()
    kept = filter_normalized(weights, torch.Generator().manual_seed(0), keep_1d=True)
    torch.testing.assert_close(kept[2].norm(), weights[2].norm())
    torch.testing.assert_close(kept[3].abs(), weights[3].abs())
    a1, a2 = random_directions(weights, seed=3)
    b1, _ = random_directions(weights, seed=3)
    assert torch.equal(a1[0], b1[0]) and not torch.equal(a1[0], a2[0])


def test_surface_resumes_after_interruption(run):
    path, model, data = run
    full = loss_surface(model, F.cross_entropy, data, grid=11, batch_size=40)
    with pytest.raises(Interrupted):
        loss_surface(model, FailAfter(2 * 37), data, grid=11, batch_size=40, path=path, name="cut")
    with open_trajectory(path) as traj:
        g = traj.group("landscape/cut")
        loss, done = g["loss"][()], g["done"][()]
        assert g.attrs["n_done"] == 37 and not g.attrs["complete"]
    assert done.sum() == 37 and np.isnan(loss[~done]).all() and np.isfinite(loss[done]).all()
    np.testing.assert_array_equal(loss[done], full.loss[done])
    calls = FailAfter(10**6)
    resumed = loss_surface(model, calls, data, grid=11, batch_size=64, path=path, name="cut")
    assert 10**6 - calls.n == 121 - 37  # one batch per point: only the unfinished points were evaluated
    np.testing.assert_allclose(resumed.loss, full.loss, rtol=1e-6)
    assert resumed.complete


def test_surface_attributes_and_layout(run):
    path, model, data = run
    res = loss_surface(model, F.cross_entropy, data, center=-1, grid=(11, 9), span=(-0.5, 1.0), seed=7,
                       path=path, name="snap", keep_1d=True)
    with open_trajectory(path) as traj:
        g = traj.group("landscape/snap")
        assert g["loss"].shape == (9, 11)
        np.testing.assert_allclose(g["x"][()], np.linspace(-0.5, 1.0, 11))
        np.testing.assert_allclose(g["y"][()], np.linspace(-0.5, 1.0, 9))
        attrs = dict(g.attrs)
    assert attrs["directions"] == "random" and attrs["normalization"] == "filter" and attrs["seed"] == 7
    assert bool(attrs["keep_1d"]) and list(attrs["grid"]) == [11, 9] and list(attrs["span"]) == [-0.5, 1.0]
    assert attrs["center"] == "snapshot" and attrs["center_index"] == 29 and attrs["center_step"] == 30
    assert attrs["n_samples"] == 64 and attrs["loss_fn"] == "cross_entropy" and attrs["complete"]
    assert res.loss.shape == (9, 11) and res.settings["center_step"] == 30
    with pytest.raises(ValueError, match="other settings"):
        loss_surface(model, F.cross_entropy, data, center=-1, grid=(11, 9), span=(-0.5, 1.0), seed=8,
                     path=path, name="snap")


def test_surface_restores_model(run):
    path, model, data = run
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    with pytest.raises(Interrupted):
        loss_surface(model, FailAfter(5), data, grid=5, batch_size=64)
    loss_surface(model, F.cross_entropy, data, center=0, grid=5, path=path, name="first")
    assert all(m.training for m in model.modules())
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert torch.equal(torch.get_rng_state(), rng)


def test_surface_center_is_snapshot_loss(run):
    path, model, data = run
    res = loss_surface(model, F.cross_entropy, data, center=10, grid=5, path=path, name="c10", directions="pca",
                       pca_window=(0, 30))
    with open_trajectory(path) as traj:
        row = torch.from_numpy(traj.weights[10].astype(np.float32))
    twin = _mlp()
    twin.load_state_dict(model.state_dict())
    torch.nn.utils.vector_to_parameters(row, twin.parameters())
    twin.eval()
    with torch.no_grad():
        expected = float(F.cross_entropy(twin(data[0]), data[1]))
    assert res.loss[2, 2] == pytest.approx(expected, rel=1e-6)
    # PCA: the path in units of the directions fits [-1, 1] and passes through the centre at snapshot 10
    assert res.path.shape == (30, 2) and np.abs(res.path).max() == pytest.approx(1.0)
    np.testing.assert_allclose(res.path[10], 0.0, atol=1e-6)
    assert res.settings["explained_variance"][0] >= res.settings["explained_variance"][1] > 0


def test_landscape_results_box_counting(run, tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path, model, data = run
    loss_surface(model, F.cross_entropy, data, grid=17, span=(-2, 2), path=path, name="wide")
    with pytest.raises(Interrupted):
        loss_surface(model, FailAfter(3), data, grid=11, path=path, name="partial")
    results = landscape_results(path)
    assert sorted(results) == ["partial", "wide"]
    wide, partial = results["wide"], results["partial"]
    assert np.isfinite(wide.surface.dimension) and wide.surface.kind == "surface"
    assert [s.quantile for s in wide.level_sets] == [0.25, 0.5, 0.75]
    assert all(0.5 <= s.boxcount.dimension <= 2.2 for s in wide.level_sets)
    assert partial.surface is None and "incomplete" in partial.note
    doc = json.loads(json.dumps(partial.to_dict(), allow_nan=False))
    assert doc["n_done"] == 3 and None not in doc["loss"][0][:3] and doc["loss"][0][3] is None
    json.dumps(wide.to_dict(), allow_nan=False)
    fig, axes = plt.subplots(1, 2)
    wide.plot(axes)
    partial.plot(axes)
    plt.close(fig)


def test_interpolate_between_snapshots(run):
    path, model, data = run
    res = interpolate(model, F.cross_entropy, data, 0, -1, n=5, path=path)
    ends = [loss_surface(model, F.cross_entropy, data, center=i, grid=3, path=path, name=f"end{i}").loss[1, 1]
            for i in (0, -1)]
    np.testing.assert_allclose(res.loss[[0, -1]], ends, rtol=1e-6)
    assert res.loss[0] > res.loss[-1] and res.settings["distance"] > 0


def test_bad_arguments(run):
    path, model, data = run
    with pytest.raises(ValueError, match="directions"):
        loss_surface(model, F.cross_entropy, data, directions="hessian")
    with pytest.raises(ValueError, match="path="):
        loss_surface(model, F.cross_entropy, data, directions="pca")
    with pytest.raises(ValueError, match="path="):
        loss_surface(model, F.cross_entropy, data, center=3)
    with pytest.raises(IndexError, match="out of range"):
        loss_surface(model, F.cross_entropy, data, center=99, path=path)
    with pytest.raises(ValueError, match="span"):
        loss_surface(model, F.cross_entropy, data, span=(1, -1))
    with pytest.raises(ValueError, match="as many targets"):
        loss_surface(model, F.cross_entropy, (data[0], data[1][:3]))
