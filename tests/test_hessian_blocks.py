"""The Hessian's diagonal blocks per group of tensors (HessianProbe(groups=...)), against the
exact Hessian of a small model, read back from a recorded file and shown in the report."""

import json
import shutil

import h5py
import numpy as np
import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402

import pyengine as pe  # noqa: E402
from pyengine.landscape import (Curvature, HessianProbe, curvature_result, hessian_result,  # noqa: E402
                                hessian_spectrum, slq, snapshot_curvature)
from pyengine.layers import tensor_groups  # noqa: E402
from pyengine.record import Recorder, select_params  # noqa: E402
from pyengine.report import render  # noqa: E402
from pyengine.store import FormatError  # noqa: E402
from test_hessian import exact_hessian  # noqa: E402

pytestmark = pytest.mark.usefixtures("torch_one_thread")

HOSTILE = "<img src=x onerror=alert(1)>"


def _mlp(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2)).double()  # 16 + 10


def _data(seed=0, n=30):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, generator=gen, dtype=torch.float64), torch.randint(0, 2, (n,), generator=gen)


def _block(h: np.ndarray, named, g: int) -> np.ndarray:
    cols = np.flatnonzero(named.of(np.arange(h.shape[0])) == g)
    return h[np.ix_(cols, cols)]


def _record(path, groups, density=2, steps=4, mode="w"):
    model, data = _mlp(), _data()
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    probe = HessianProbe(data, k=3, every=2, density=density, density_steps=6, groups=groups)
    with Recorder(model, path, optimizer=opt, probes=[probe], mode=mode) as rec:
        for _ in range(steps):
            opt.zero_grad()
            loss = F.cross_entropy(model(data[0]), data[1])
            loss.backward()
            opt.step()
            rec.step(loss)
    return model, data


@pytest.fixture(scope="module")
def layered(tmp_path_factory):
    path = tmp_path_factory.mktemp("blocks") / "run.h5"
    model, data = _record(path, "layer")
    return path, model, data


def test_block_eigenvalues_are_those_of_the_exact_diagonal_blocks():
    model, data = _mlp(), _data()
    h = exact_hessian(model, data)
    params, table = select_params(model)
    named, tensors = tensor_groups("tensor", table)
    row = Curvature(k=3, groups=named).measure(model, F.cross_entropy, data, params)
    assert row["block_eigenvalues"].shape == row["block_residuals"].shape == (4, 3)
    for g, name in enumerate(named.names):
        exact = np.linalg.eigvalsh(_block(h, named, g))[::-1][:3]
        np.testing.assert_allclose(row["block_eigenvalues"][g, :len(exact)], exact, rtol=1e-6, atol=1e-12)
        assert np.isnan(row["block_eigenvalues"][g, len(exact):]).all()  # "2.bias" has 2 < k parameters
        assert tensors[name] == [name]
    assert np.isnan(row["block_trace"]).all()  # no density: no trace
    assert np.nanmax(row["block_eigenvalues"]) <= row["eigenvalues"][0]  # Cauchy interlacing


def test_block_traces_are_unbiased_and_add_up_to_the_whole_trace():
    model, data = _mlp(), _data()
    h = exact_hessian(model, data)
    params, table = select_params(model)
    named, _ = tensor_groups("layer", table)
    row = Curvature(k=2, density=400, density_steps=2, groups=named).measure(model, F.cross_entropy, data, params)
    exact = np.array([np.trace(_block(h, named, g)) for g in range(2)])
    assert (np.abs(row["block_trace"] - exact) < 4 * row["block_trace_se"]).all()
    assert row["block_trace"].sum() == pytest.approx(row["trace"], rel=1e-12)
    # a diagonal operator: z ⊙ Az is its diagonal for every ±1 vector, so each block's trace is exact
    d = torch.arange(1.0, 27.0, dtype=torch.float64)
    out = slq(lambda v: d * v, 26, vectors=3, steps=2, groups=named)
    np.testing.assert_allclose(out.block_trace, [d[:16].sum(), d[16:].sum()], rtol=1e-12)
    np.testing.assert_allclose(out.block_trace_se, 0, atol=1e-9)


def test_recorded_blocks_read_back_as_groups(layered):
    path, model, data = layered
    with h5py.File(path, "r") as f:
        group = f["hessian"]
        assert group["block_eigenvalues"].shape == group["block_residuals"].shape == (2, 2, 3)
        for name in ("block_iterations", "block_trace", "block_trace_se"):
            assert group[name].shape == (2, 2)
        assert group.attrs["block_spec"] == "layer" and group.attrs["n_blocks"] == 2
        assert json.loads(group.attrs["block_groups"]) == {"0": ["0.weight", "0.bias"], "2": ["2.weight", "2.bias"]}
        assert group.attrs["block_sizes"].tolist() == [16, 10]
        stored = {name: group[name][()] for name in ("block_eigenvalues", "block_trace", "block_trace_se")}
    res = hessian_result(path)
    assert list(res.groups) == ["0", "2"] and res.groups["2"].settings["n_params"] == 10
    np.testing.assert_array_equal(res.groups["0"].eigenvalues, stored["block_eigenvalues"][:, 0])
    # the last probe ran at the final weights: the blocks of the exact Hessian there
    h = exact_hessian(model, data)
    named, _ = tensor_groups("layer", select_params(model)[1])
    for g, name in enumerate(res.groups):
        exact = np.linalg.eigvalsh(_block(h, named, g))[::-1][:3]
        np.testing.assert_allclose(res.groups[name].eigenvalues[-1], exact, rtol=1e-6)
    curv = curvature_result(path)
    np.testing.assert_array_equal(curv.groups["2"].trace, stored["block_trace"][:, 1])
    np.testing.assert_array_equal(curv.groups["2"].trace_se, stored["block_trace_se"][:, 1])
    np.testing.assert_array_equal(curv.groups["0"].lambda_max, stored["block_eigenvalues"][:, 0, 0])
    table = res.to_pandas()
    top = table.query("group == '2' and quantity.str.startswith('eigenvalues') and x == 0", engine="python")
    assert set(table["group"].dropna()) == {"0", "2"} and top["value"].tolist() == res.groups["2"].eigenvalues[:, 0].tolist()
    # the standalone spectrum on the stored snapshot gives the same blocks
    again = hessian_spectrum(model, F.cross_entropy, data, path, [-1], k=3, groups="layer", store=False)
    np.testing.assert_allclose(again.groups["0"].eigenvalues[0], res.groups["0"].eigenvalues[-1], rtol=1e-10)


def test_snapshot_curvature_stores_the_blocks_of_a_mapping(layered, tmp_path):
    path = tmp_path / "copy.h5"
    shutil.copy(layered[0], path)
    model, data = layered[1], layered[2]
    res = snapshot_curvature(model, F.cross_entropy, data, path, [0, -1], density=3, density_steps=4, k=2,
                             groups={"first": ["0.*"], "last": ["2.*"]}, store=True)
    back = curvature_result(path)
    assert back.settings["block_spec"] == "mapping" and list(back.groups) == ["first", "last"]
    for name in back.groups:
        np.testing.assert_array_equal(back.groups[name].trace, res.groups[name].trace)
        np.testing.assert_array_equal(back.groups[name].lambda_max, res.groups[name].lambda_max)
    np.testing.assert_allclose(sum(r.trace for r in back.groups.values()), back.trace, rtol=1e-12)


@pytest.mark.parametrize("groups, error, match", [
    ({"head": slice(0, 4)}, ValueError, "tensor '0.weight' .* is split between groups 'head' and 'other'"),
    ({"a": ["nothing.*"]}, ValueError, "matches no tensor"),
    ("layers", ValueError, "groups must be one of"),
    (3, TypeError, "groups must be one of"),
])
def test_bad_groups_are_refused_before_anything_is_written(tmp_path, groups, error, match):
    path = tmp_path / "run.h5"
    with pytest.raises(error, match=match):
        _record(path, groups)
    assert not path.exists()


@pytest.mark.parametrize("attr, match", [('{"0": ["0.weight", "0.bias"]}', "block_eigenvalues: shape"),
                                         ("{not json", "'block_groups' is not JSON")])
def test_blocks_that_do_not_fit_their_datasets_are_refused(layered, tmp_path, attr, match):
    path = tmp_path / "edited.h5"
    shutil.copy(layered[0], path)
    with h5py.File(path, "a") as f:
        f["hessian"].attrs["block_groups"] = attr
    with pytest.raises(ValueError, match=match):
        hessian_result(path)


def test_a_resumed_run_keeps_its_blocks(tmp_path):
    path = tmp_path / "run.h5"
    _record(path, "layer", steps=2)
    with pytest.raises(FormatError, match="block_groups"):  # as many blocks, other tensors
        _record(path, "kind", steps=2, mode="a")
    _record(path, "layer", steps=2, mode="a")
    assert hessian_result(path).groups["0"].eigenvalues.shape == (2, 3)


def test_a_file_without_blocks_reads_as_before(tmp_path):
    path = tmp_path / "plain.h5"
    _record(path, None, steps=2)
    with h5py.File(path, "a") as f:  # a file from before the blocks: no n_blocks
        assert not any(name.startswith("block_") for name in f["hessian"])
        del f["hessian"].attrs["n_blocks"]
    res, curv = hessian_result(path), curvature_result(path)
    assert res.groups is None and curv.groups is None and "groups" not in res.to_dict()
    assert res.to_pandas()["group"].isna().all() and res.eigenvalues.shape == (1, 3)


def test_report_shows_the_blocks_beside_the_groups(layered, tmp_path):
    path, _, _ = layered
    out = pe.analyze(path, only=("hessian", "curvature"), progress=False).save(tmp_path / "out", formats=("png",))
    page = (out / "index.html").read_text()
    assert "Curvature per group" in page and "<td class='text'>2</td><td>10</td>" in page
    doc = json.loads((out / "results.json").read_text())
    doc["results"]["hessian"]["groups"] = {HOSTILE: doc["results"]["hessian"]["groups"]["0"]}
    doc["results"]["curvature"]["groups"] = {HOSTILE: doc["results"]["curvature"]["groups"]["0"]}
    (out / "results.json").write_text(json.dumps(doc))
    page = render(out).read_text()
    assert HOSTILE not in page and f"<td class='text'>{HOSTILE.replace('<', '&lt;').replace('>', '&gt;')}" in page
