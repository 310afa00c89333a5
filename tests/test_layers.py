"""Per-layer statistics (issue 25): every statistic per named group of parameters, in the pass.

A synthetic trajectory whose tensors move with known, different laws (fBm H = 0.3 and 0.7,
Lévy-stable steps α = 1.5, Brownian) must give each group its own exponent within its own
SE; the groups' MSDs must add up to the whole model's; a file and Dask must agree; and
without groups nothing may change.
"""

import json
import logging

import numpy as np
import pytest

import pyengine as pe
from pyengine import config
from pyengine.cli import main
from pyengine.engine.groups import ColumnGroups, NamedGroups
from pyengine.layers import param_groups
from pyengine.store import ParamInfo, write_trajectory

N = 1001
#: Per layer: its tensors (name, size, kind), the walk and the known answers. 1024 parameters
#: each: a named group has min(32, P / 64) jackknife groups (pyengine.engine.groups), 16 here.
LAYERS = {
    "a": {"tensors": [("a.weight", 1024, "weight")], "alpha": 0.6, "tail": 2.0},
    "b": {"tensors": [("b.weight", 1024, "weight")], "alpha": 1.4, "tail": 2.0},
    "c": {"tensors": [("c.weight", 896, "weight"), ("c.bias", 128, "bias")], "alpha": None, "tail": 1.5},
    "d": {"tensors": [("d.weight", 1024, "weight")], "alpha": 1.0, "tail": 2.0},
}


def synthetic(seed: int = 0):
    """(x, parameter table): fBm H = 0.3 (a), fBm H = 0.7 (b), Lévy flight α = 1.5 (c: weight and
    bias), Brownian (d)."""
    walks = [pe.models.fbm(N, 1024, 0.3, seed=seed), pe.models.fbm(N, 1024, 0.7, seed=seed + 1),
             pe.models.levy_flight(N, 1024, 1.5, seed=seed + 2), pe.models.brownian(N, 1024, seed=seed + 3)]
    params, offset = [], 0
    for layer in LAYERS.values():
        for name, size, kind in layer["tensors"]:
            params.append(ParamInfo(name, offset, size, (size,), kind))
            offset += size
    return np.concatenate(walks, axis=1), params


@pytest.fixture(scope="module")
def run_file(tmp_path_factory):
    x, params = synthetic()
    return write_trajectory(tmp_path_factory.mktemp("layers") / "layers.h5", x, params=params,
                            loss=1.0 + 0.01 * x[:, 0]), x


@pytest.fixture(scope="module")
def layered(run_file):
    path, _ = run_file
    return pe.analyze(path, window=1000, lags=40, groups="layer", only=["diffusion", "tails", "kappa"],
                      progress=False)


def test_each_layer_recovers_its_own_exponent_and_tail_index(layered):
    got = layered.groups
    assert list(got) == list(LAYERS)
    for name, known in LAYERS.items():
        fit, tails = got[name]["diffusion"], got[name]["tails"]
        if known["alpha"] is not None:  # α of a Lévy flight's MSD is not defined (infinite variance)
            assert abs(fit.alpha[0] - known["alpha"]) < 4 * fit.alpha_se[0], (name, fit.alpha, fit.alpha_se)
        assert abs(tails.alpha[0] - known["tail"]) < 4 * tails.alpha_se[0], (name, tails.alpha, tails.alpha_se)
        assert tails.tail[0].se_method == "jackknife" and tails.columns.size == 64  # max(32, 256 / 4)
        kappa = got[name]["kappa"]
        assert kappa.n_sampled == kappa.n_params == sum(size for _, size, _ in known["tensors"])


def test_the_groups_msd_add_up_to_the_whole_model(run_file):
    path, _ = run_file
    for groups in ("layer", "tensor", "kind"):
        msd = pe.msd(path, window=500, lags=20, groups=groups, progress=False)
        total = sum(r.msd for r in msd.groups.values())  # Eq. 3 is a sum over parameters
        np.testing.assert_allclose(total, msd.msd, rtol=1e-12)
        single = sum(r.nonaveraged * r.n_params for r in msd.groups.values()) / msd.n_params
        np.testing.assert_allclose(single, msd.nonaveraged, rtol=1e-12)
        assert sum(r.n_params for r in msd.groups.values()) == msd.n_params
        assert np.isfinite(np.stack([r.msd_se for r in msd.groups.values()])).all()
    assert list(pe.msd(path, window=500, lags=5, groups="kind", progress=False).groups) == ["weight", "bias"]


def test_with_groups_the_whole_model_is_the_same_and_without_groups_nothing_changes(run_file):
    path, x = run_file
    alone = pe.analyze(x, window=500, lags=16, loss=1.0 + 0.01 * x[:, 0], progress=False)
    named = {"first": slice(0, 1500), "second": np.arange(2000, 3000)}
    grouped = pe.analyze(x, window=500, lags=16, loss=1.0 + 0.01 * x[:, 0], groups=named, progress=False)
    assert set(grouped.results) == set(alone.results) | {"kappa"}
    for key in ("msd", "path", "msl", "increments"):
        a, b = alone[key], grouped[key]
        for field in ("msd", "dr2", "msl", "power_mean"):
            if hasattr(a, field):
                np.testing.assert_allclose(getattr(b, field), getattr(a, field), rtol=1e-10, equal_nan=True)
    np.testing.assert_array_equal(grouped["tails"].alpha, alone["tails"].alpha)  # the same sample
    assert list(grouped.groups) == ["first", "second", "other"]
    assert alone.groups == {} and all(r.groups is None for r in alone.results.values())
    assert "groups" not in alone.settings and "group" in alone.to_pandas().columns
    assert alone.to_pandas()["group"].isna().all()
    again = pe.analyze(x, window=500, lags=16, loss=1.0 + 0.01 * x[:, 0], groups=None, progress=False)
    assert json.dumps(again.to_dict()["results"]) == json.dumps(alone.to_dict()["results"])


def test_blocks_and_workers_do_not_change_the_groups(run_file):
    path, _ = run_file
    one = pe.increments(path, window=500, groups="tensor", progress=False)
    many = pe.increments(path, window=500, groups="tensor", block_cols=37, workers=2, progress=False)
    for name in one.groups:
        np.testing.assert_allclose(many.groups[name].power_mean, one.groups[name].power_mean, rtol=1e-9)
        np.testing.assert_allclose(many.groups[name].power_mean_se, one.groups[name].power_mean_se, rtol=1e-9)
    tails = pe.increment_tails(path, window=500, groups="tensor", block_cols=41, stable=False, progress=False)
    # 5 tensors: max(32, 256 / 5) = 52 coordinates each, evenly spaced (every 3rd of the bias's 128)
    assert tails.groups["c.bias"].columns.tolist() == list(range(2944, 3072, 3))


def test_pairs_per_group_and_their_memory_limit(run_file, monkeypatch):
    path, x = run_file
    loss = 1.0 + 0.01 * x[:, 0]
    path_res = pe.path_geometry(path, window=250, groups="layer", progress=False)
    assert set(path_res.groups) == set(LAYERS)
    lam = path_res.groups["d"].lam  # Brownian: λ = 1 above the crossover, D_f = 2
    assert np.all(np.abs(lam[:, 1] - 1) < 0.25)
    assert np.isfinite(path_res.groups["a"].lam_se).all()
    msl = pe.msl(path, window=250, groups={"first": ["a.*"]}, progress=False)
    assert list(msl.groups) == ["first", "other"] and msl.groups["first"].n_params == 1024
    monkeypatch.setattr(config, "GROUP_PAIRS_BYTES", 2**20)
    with pytest.raises(ValueError, match="GROUP_PAIRS_BYTES"):
        pe.path_geometry(path, window=250, groups="layer", progress=False)
    res = pe.analyze(x, window=250, lags=8, loss=loss, groups={"a": slice(0, 1024)}, progress=False)
    assert "GROUP_PAIRS_BYTES" in res.skipped["path[groups]"] and "GROUP_PAIRS_BYTES" in res.skipped["msl[groups]"]
    assert res["path"].groups is None and res["msd"].groups is not None  # the whole model's pairs stay


def test_bad_groups_are_refused_with_a_clear_message(run_file):
    path, x = run_file
    with pytest.raises(ValueError, match="needs a parameter table"):
        pe.msd(x, window=500, groups="layer")
    with pytest.raises(ValueError, match="needs a parameter table"):
        pe.msd(x, window=500, groups={"a": ["a.*"]})
    with pytest.raises(ValueError, match=r"tensor 'c.bias' is in group 'c' and in group 'biases'"):
        pe.msd(path, window=500, groups={"c": ["c.*"], "biases": ["*.bias"]})
    with pytest.raises(ValueError, match="matches no tensor"):
        pe.msd(path, window=500, groups={"e": "e.*"})
    with pytest.raises(ValueError, match="groups must be one of"):
        pe.analyze(path, groups="layers")
    with pytest.raises(ValueError, match="contiguous ranges"):
        param_groups({"even": np.arange(0, 200_000, 2)}, None, 200_000)
    with pytest.raises(ValueError, match="per group only"):
        pe.analyze(x, window=500, only=["kappa"])
    table = param_groups({"odd": [1, 3], "mask": np.arange(10) >= 8}, None, 10)
    assert table.names == ("odd", "mask", "other") and table.of(np.arange(10)).tolist() == [2, 0, 2, 0, 2, 2, 2, 2,
                                                                                              1, 1]


def test_named_runs_give_each_group_a_balanced_jackknife():
    named = NamedGroups(("big", "small", "tiny"), (0, 60_000, 90_000, 99_990), (0, 1, 0, 2), 100_000)
    groups = ColumnGroups.for_params(100_000, 32, named)
    sizes = groups.sizes().reshape(3, 32)
    assert sizes.sum(axis=1).tolist() == named.sizes().tolist() == [69_990, 30_000, 10]
    assert (sizes[0] > 0).all() and (sizes[1] > 0).all() and sizes[0].max() - sizes[0].min() <= 2188  # one run
    assert (sizes[2] > 0).sum() == 1  # 10 columns: one run (at least MIN_NAMED_RUN wide), one jackknife group
    split = [r for j0 in range(0, 100_000, 7777) for r in groups.runs(j0, min(j0 + 7777, 100_000))]
    labels = np.empty(100_000, np.int64)
    for g, a, b in split:
        labels[a:b] = g
    np.testing.assert_array_equal(labels, groups.of(np.arange(100_000)))
    plain = ColumnGroups.for_params(100_000, 32)  # without names: the jackknife of the uncertainty issue
    np.testing.assert_array_equal(plain.of(np.arange(100_000)), plain.group_of_runs(np.arange(100_000) // plain.width))


def test_tidy_tables_json_report_and_cli_carry_the_groups(layered, run_file, tmp_path):
    table = layered.to_pandas()
    assert set(table["group"].dropna()) == set(LAYERS)
    alpha = table.query("statistic == 'diffusion' and quantity == 'alpha' and group == 'b'")
    assert alpha["value"].iloc[0] == layered.groups["b"]["diffusion"].alpha[0]
    assert list(layered.summary()["group"].dropna().unique()) == list(LAYERS)
    out = layered.save(tmp_path / "out", formats=("png",))
    doc = json.loads((out / "results.json").read_text())
    assert set(doc["results"]["diffusion"]["groups"]) == set(LAYERS) and doc["settings"]["groups"]["spec"] == "layer"
    page = (out / "index.html").read_text()
    assert "Per-group statistics" in page and "class='heat'" in page
    path, _ = run_file
    assert main(["analyze", str(path), "--out", str(tmp_path / "cli"), "--groups", "kind", "--window", "500",
                 "--only", "tails", "--quiet"]) == 0
    doc = json.loads((tmp_path / "cli" / "results.json").read_text())
    assert list(doc["results"]["tails"]["groups"]) == ["weight", "bias"]


def test_plot_groups_draws_every_group(layered):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from pyengine.report.groups import plot_groups

    for key in ("diffusion", "tails"):
        ax = plot_groups(layered[key])
        assert len(ax.get_legend().get_texts()) == len(LAYERS)
        plt.close(ax.figure)


@pytest.fixture(scope="module")
def client():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  silence_logs=logging.CRITICAL) as cluster, distributed.Client(cluster) as c:
        yield c


def test_a_file_and_dask_give_the_same_groups(run_file, client):
    path, _ = run_file
    kwargs = dict(window=500, lags=12, groups="layer", only=["diffusion", "increments", "tails", "path"],
                  progress=False, block_cols=200)
    local = pe.analyze(path, **kwargs)
    on_dask = pe.analyze(str(path), scheduler=client, **kwargs)
    for name in LAYERS:
        a, b = local.groups[name], on_dask.groups[name]
        np.testing.assert_allclose(b["msd"].msd, a["msd"].msd, rtol=1e-12)
        np.testing.assert_allclose(b["msd"].msd_se, a["msd"].msd_se, rtol=1e-9)
        np.testing.assert_allclose(b["diffusion"].alpha, a["diffusion"].alpha, rtol=1e-12)
        np.testing.assert_allclose(b["increments"].power_mean, a["increments"].power_mean, rtol=1e-12)
        np.testing.assert_array_equal(b["tails"].alpha, a["tails"].alpha)
        np.testing.assert_allclose(b["path"].dr2, a["path"].dr2, rtol=1e-9, equal_nan=True)
