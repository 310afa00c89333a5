"""Sampled and sketched recordings: the hashes, the sketch against its dense matrix, the exact
variance of a sketched squared distance, the sample's inclusion probabilities, the file
format, and the analysis' scaling, skipping and accuracy table."""

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import pyengine as pe  # noqa: E402
from pyengine.estimators.reduced import READS, scale_to_full  # noqa: E402
from pyengine.analyses import STATISTICS  # noqa: E402
from pyengine.record import reduce as red  # noqa: E402
from pyengine.record.reduce import Sample, Sketch, make_reducer, reduce_rows, sample_indices  # noqa: E402
from pyengine.store import FormatError, ParamInfo, TrajectoryWriter, open_trajectory, write_trajectory  # noqa: E402
from pyengine.store.reduction import Reduction, countsketch_variance, gaussian_sketch_variance  # noqa: E402

pytestmark = pytest.mark.usefixtures("torch_one_thread")

TABLE = [ParamInfo("a.weight", 0, 120, (10, 12), "weight"), ParamInfo("a.bias", 120, 10, (10,), "bias"),
         ParamInfo("b.weight", 130, 70, (7, 10), "weight")]


# -- the hashes and the sketch -------------------------------------------------------------


def naive_hash(i: np.ndarray, key: int) -> np.ndarray:
    """sketch_hash in plain NumPy uint64 arithmetic."""
    m32 = np.uint64(0xFFFFFFFF)

    def mix(v):
        for _ in range(2):
            v = ((v ^ (v >> np.uint64(16))) * np.uint64(0x45D9F3B)) & m32
        return v ^ (v >> np.uint64(16))

    i = i.astype(np.uint64)
    h = mix((i & m32) ^ np.uint64(key & 0xFFFFFFFF))
    return mix(h ^ ((i >> np.uint64(32)) + np.uint64(key >> 32)) & m32)


def test_hash_matches_a_numpy_reference_also_past_2_to_the_32():
    index = np.concatenate([np.arange(1000), 2**32 + np.arange(-5, 5), [2**40 + 12345]])
    for key in (0, 1, 0x9E3779B97F4A7C15, 2**64 - 1):
        got = red.sketch_hash(torch.as_tensor(index), key).numpy().astype(np.uint64)
        np.testing.assert_array_equal(got, naive_hash(index, key))


def test_buckets_are_uniform_and_signs_balanced():
    b = red.signed_buckets(0, 200_000, 64, seed=3).numpy()
    counts = np.bincount(b % 64, minlength=64)
    chi2 = ((counts - counts.mean()) ** 2 / counts.mean()).sum()
    assert chi2 < 63 + 5 * np.sqrt(2 * 63)  # 63 degrees of freedom
    assert abs((b >= 64).mean() - 0.5) < 5 * 0.5 / np.sqrt(b.size)


def dense_sketch(k: int, seed: int, n_full: int) -> np.ndarray:
    """The k × P matrix S of the CountSketch: S[h(i), i] = σ(i)."""
    b = red.signed_buckets(0, n_full, k, seed).numpy().astype(np.int64)
    s = np.zeros((k, n_full))
    s[b % k, np.arange(n_full)] = np.where(b >= k, -1.0, 1.0)
    return s


@pytest.mark.parametrize("cached", [True, False])
def test_sketch_is_its_dense_matrix_times_the_flat_vector(cached, monkeypatch):
    if not cached:  # recomputed hashes, in several chunks per tensor
        monkeypatch.setattr(red, "INDEX_CACHE_BYTES", 0)
        monkeypatch.setattr(red, "CHUNK", 32)
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(12, 10, generator=gen).t()  # not contiguous
    tensors = [a, torch.randn(10, generator=gen, dtype=torch.float64), torch.randn(7, 10, generator=gen)]
    reducer = make_reducer(Sketch(16, seed=5), TABLE)
    row = torch.empty(16, dtype=torch.float64)
    reducer.copy_into(tensors, row)
    flat = np.concatenate([t.double().reshape(-1).numpy() for t in tensors])
    np.testing.assert_allclose(row.numpy(), dense_sketch(16, 5, 200) @ flat, rtol=1e-12, atol=1e-12)
    assert reducer.table == [ParamInfo("sketch", 0, 16, (16,), "other")]


def test_variance_formula_on_known_vectors():
    ones = np.ones(100)
    assert countsketch_variance(ones, 10) == pytest.approx(2 / 10 * (100**2 - 100))
    assert gaussian_sketch_variance(ones, 10) == pytest.approx(2 / 10 * 100**2)
    assert countsketch_variance(np.eye(5)[2], 4) == 0.0  # one coordinate: never collides with another
    x = np.random.default_rng(0).standard_normal((3, 50))
    m = x.T @ x
    assert countsketch_variance(x, 7) == pytest.approx(2 / 7 * ((m**2).sum() - (np.diag(m) ** 2).sum()))


@pytest.mark.parametrize("rows", [1, 3])
def test_sketched_squared_norms_are_unbiased_with_the_stated_variance(rows):
    """Over 3000 seeds: the mean of Σ_t ‖S x_t‖² is Σ_t ‖x_t‖², its variance the formula's."""
    rng = np.random.default_rng(1)
    p, k, seeds = 400, 16, 3000
    x = rng.standard_normal((rows, p)) * np.geomspace(0.1, 3.0, p)  # unequal coordinates: ‖x‖₄ matters
    sums = np.empty(seeds)
    for s in range(seeds):
        b = red.signed_buckets(0, p, k, seed=s).numpy().astype(np.int64)
        signed = np.where(b >= k, -x, x)
        y = np.stack([np.bincount(b % k, weights=r, minlength=k) for r in signed])
        sums[s] = (y**2).sum()
    exact = (x**2).sum()
    var = countsketch_variance(x, k)
    assert abs(sums.mean() - exact) < 4 * np.sqrt(var / seeds)
    # The sample variance of n draws has relative SE about sqrt((κ − 1)/n) (κ the kurtosis).
    kurt = ((sums - sums.mean()) ** 4).mean() / sums.var() ** 2
    assert abs(sums.var(ddof=1) / var - 1) < 4 * np.sqrt((kurt - 1) / seeds)
    assert var <= gaussian_sketch_variance(x, k)


# -- the sample ----------------------------------------------------------------------------


def test_stratified_sample_keeps_each_coordinate_with_probability_f():
    sizes, f = [7, 300, 3, 40], 0.1
    hits = np.zeros(sum(sizes))
    for seed in range(2000):
        kept = sample_indices(sizes, Sample(f, seed=seed))
        assert np.all(np.diff(kept) > 0)
        per_tensor = np.bincount(np.searchsorted(np.cumsum(sizes), kept, side="right"), minlength=4)
        assert np.all((per_tensor >= np.floor(f * np.array(sizes))) & (per_tensor <= np.ceil(f * np.array(sizes))))
        hits[kept] += 1
    freq = hits / 2000
    assert np.all(np.abs(freq - f) < 5 * np.sqrt(f * (1 - f) / 2000))
    uniform = sample_indices(sizes, Sample(f, stratified=False, seed=0))
    assert uniform.size == round(f * sum(sizes))
    np.testing.assert_array_equal(sample_indices(sizes, Sample(f, seed=9)), sample_indices(sizes, Sample(f, seed=9)))


def test_sample_reducer_copies_the_kept_coordinates_and_tables_them():
    gen = torch.Generator().manual_seed(0)
    tensors = [torch.randn(10, 12, generator=gen), torch.randn(10, generator=gen), torch.randn(7, 10, generator=gen)]
    reducer = make_reducer(Sample(0.2, seed=1), TABLE)
    row = torch.empty(reducer.n_cols)
    reducer.copy_into(tensors, row)
    flat = torch.cat([t.reshape(-1) for t in tensors])
    np.testing.assert_array_equal(row.numpy(), flat[torch.as_tensor(reducer.kept)].numpy())
    assert [p.name for p in reducer.table] == ["a.weight", "a.bias", "b.weight"]
    assert sum(p.size for p in reducer.table) == reducer.n_cols == 40  # f·P exactly: every size divides
    assert reducer.reduction.sum_scale == 5.0


def test_bad_specs_are_refused():
    for bad in (0, 1.5, -0.1, True, "0.1"):
        with pytest.raises(ValueError, match="sample must be a fraction"):
            Sample(bad)
    for bad in (0, 2**30, 2.5):
        with pytest.raises(ValueError, match="sketch must be an integer"):
            Sketch(bad)
    with pytest.raises(ValueError, match="keeps no coordinate"):
        sample_indices([10], Sample(0.01, stratified=False))
    with pytest.raises(ValueError, match="not both"):
        red.reduction_spec(0.1, 64)


# -- the file ------------------------------------------------------------------------------


def write_reduced(path, x, spec, table=None):
    rows, reducer = reduce_rows(x, spec, table)
    write_trajectory(path, rows, params=reducer.table, reduction=reducer.reduction,
                     kept_index=getattr(reducer, "kept", None), dtype="float64")
    return rows, reducer


def test_the_file_says_what_it_holds(tmp_path):
    x = np.random.default_rng(0).standard_normal((5, 200))
    rows, reducer = write_reduced(tmp_path / "s.h5", x, Sample(0.1, seed=2), TABLE)
    with open_trajectory(tmp_path / "s.h5") as traj:
        assert traj.reduction == reducer.reduction and traj.reduction.full_params == tuple(TABLE)
        np.testing.assert_array_equal(traj.kept_index(), reducer.kept)
        np.testing.assert_array_equal(traj.read_block(0, traj.n_params), x[:, reducer.kept])
        assert json.loads(traj.file.attrs["reduction"]) == {"method": "sample", "n_full": 200, "n_kept": 20,
                                                           "seed": 2, "fraction": 0.1, "stratified": True}
    write_reduced(tmp_path / "k.h5", x, Sketch(8, seed=1))
    with open_trajectory(tmp_path / "k.h5") as traj:
        assert traj.reduction.k == 8 and traj.kept_index() is None and "sketch of P_full=200" in repr(traj)
        assert [p.name for p in traj.params] == ["sketch"]
    with open_trajectory(pe.models.write_synthetic(tmp_path / "f.h5", "brownian", 10, 4, seed=0)) as traj:
        assert traj.reduction is None and traj.kept_index() is None


def test_damaged_reduction_attributes_are_format_errors(tmp_path):
    x = np.random.default_rng(0).standard_normal((5, 200))
    write_reduced(tmp_path / "s.h5", x, Sample(0.1, seed=2), TABLE)
    import h5py

    for value, message in [("{", "not valid JSON"), ('{"method": "zip"}', "'method' must be one of"),
                           ('{"method": "sample", "n_full": 200, "n_kept": 21, "seed": 0, "fraction": 0.1, '
                            '"stratified": true}', r"/kept_index: expected \(21,\) integers"),
                           ('{"method": "sketch", "n_full": 200, "n_kept": 20, "seed": 0, "k": 20, "hash": "md5"}',
                            "hash 'md5' is unknown")]:
        with h5py.File(tmp_path / "s.h5", "a") as f:
            f.attrs["reduction"] = value
        with pytest.raises(FormatError, match=message):
            open_trajectory(tmp_path / "s.h5")


def test_writer_checks_and_resumes_the_reduction(tmp_path):
    x = np.random.default_rng(0).standard_normal((4, 200))
    rows, reducer = write_reduced(tmp_path / "s.h5", x, Sample(0.1, seed=2), TABLE)
    with TrajectoryWriter(tmp_path / "s.h5", 20, dtype="float64", mode="a", reduction=reducer.reduction,
                          kept_index=reducer.kept) as w:
        w.append(rows[0], step=10, loss=0.0)
    other = make_reducer(Sample(0.1, seed=3), TABLE)
    with pytest.raises(FormatError, match="the file holds sample of 20 of the 200 parameters"):
        TrajectoryWriter(tmp_path / "s.h5", 20, dtype="float64", mode="a", reduction=other.reduction,
                         kept_index=other.kept)
    with pytest.raises(ValueError, match="needs the kept_index"):
        TrajectoryWriter(tmp_path / "t.h5", 20, reduction=reducer.reduction)
    with pytest.raises(FormatError, match="kept_index"):
        TrajectoryWriter(tmp_path / "t.h5", 20, reduction=reducer.reduction, kept_index=reducer.kept[::-1])


# -- the analysis --------------------------------------------------------------------------


def test_every_statistic_is_classified_for_reduced_recordings():
    assert {s.name for s in STATISTICS} <= set(READS)


def test_sums_of_a_sample_are_scaled_and_per_parameter_means_are_not(tmp_path):
    x = pe.models.brownian(400, 300, seed=0)
    rows, reducer = write_reduced(tmp_path / "s.h5", x, Sample(0.2, stratified=False, seed=0))
    scale = 300 / 60
    got = pe.msd(tmp_path / "s.h5", window=100, lags=[1, 4, 16], progress=False)
    kept = pe.msd(rows, window=100, lags=[1, 4, 16], progress=False)
    np.testing.assert_allclose(got.msd, scale * kept.msd, rtol=1e-12)
    np.testing.assert_allclose(got.msd_se, scale * kept.msd_se, rtol=1e-12)
    np.testing.assert_allclose(got.nonaveraged, kept.nonaveraged, rtol=1e-12)  # ‖Δw‖²/d: a mean per parameter
    path = pe.path_geometry(tmp_path / "s.h5", window=100, progress=False)
    path_kept = pe.path_geometry(rows, window=100, progress=False)
    np.testing.assert_allclose(path.dr2, scale * path_kept.dr2, rtol=1e-10)
    np.testing.assert_allclose(path.ds, np.sqrt(scale) * path_kept.ds, rtol=1e-10)
    np.testing.assert_allclose(path.lam, path_kept.lam, rtol=1e-8)  # a power law's exponent does not see the factor


def test_a_sketch_divides_per_parameter_means_by_the_full_size(tmp_path):
    x = pe.models.brownian(300, 500, seed=1)
    rows, _ = write_reduced(tmp_path / "k.h5", x, Sketch(64, seed=0))
    got = pe.msd(tmp_path / "k.h5", window=100, lags=[1, 10], progress=False)
    raw = pe.msd(rows, window=100, lags=[1, 10], progress=False)
    np.testing.assert_allclose(got.msd, raw.msd, rtol=1e-12)
    np.testing.assert_allclose(got.nonaveraged, raw.nonaveraged * 64 / 500, rtol=1e-12)


def test_scale_to_full_leaves_full_recordings_alone():
    a = np.ones(3)
    assert scale_to_full(None, 3, (a, None), (a,)) == (a, None, a)
    r = Reduction("sketch", 100, 10, 0, hash="countsketch-mix32-v1")
    grams, band = scale_to_full(r, 10, ([a, a], a))
    assert grams[0] is not a and np.array_equal(grams[0], a)


def test_analyze_skips_per_coordinate_statistics_of_a_sketch_and_says_what_is_exact(tmp_path):
    x = pe.models.brownian(400, 400, seed=2)
    write_reduced(tmp_path / "k.h5", x, Sketch(128, seed=0))
    res = pe.analyze(tmp_path / "k.h5", window=100, progress=False)
    assert {"increments", "tails"} <= set(res.skipped) and "tails" not in res.results
    assert "not available on a sketched recording" in res.skipped["tails"]
    for standalone in (pe.increments, pe.increment_tails):
        with pytest.raises(ValueError, match="not available on a sketched recording"):
            standalone(tmp_path / "k.h5", window=100, progress=False)
    acc = res.source["accuracy"]
    assert acc["msd"]["status"] == "unbiased estimate" and acc["diffusion"]["status"] == "estimate"
    assert acc["tails"]["status"] == "not available" and acc["loss"]["status"] == "exact"
    assert res.source["reduction"]["k"] == 128
    out = res.save(tmp_path / "out", figures=False)
    html = (out / "index.html").read_text()
    assert "Reduced recording" in html and "not available" in html
    full = pe.analyze(x, window=100, progress=False)
    assert full.source["reduction"] is None and {v["status"] for v in full.source["accuracy"].values()} == {"exact"}


def test_state_noise_needs_every_parameter(tmp_path):
    from pyengine.estimators.state_noise import state_noise

    x = pe.models.brownian(50, 400, seed=3)
    rows, reducer = write_reduced(tmp_path / "s.h5", x, Sample(0.25, stratified=False, seed=0))
    probes = {"step": np.arange(10, 50, 10), "alpha": np.full(4, 1.8), "grad_norm": np.ones(4),
              "noise_norm": np.linspace(1.0, 2.0, 4)}
    with TrajectoryWriter(tmp_path / "s.h5", rows.shape[1], dtype="float64", mode="a",
                          reduction=reducer.reduction, kept_index=reducer.kept) as w:
        w.write_group("noise", probes)
    with pytest.raises(ValueError, match="state_noise: not available on a sampled recording .* needs every parameter"):
        state_noise(tmp_path / "s.h5")
    res = pe.analyze(tmp_path / "s.h5", window=25, progress=False)
    assert "not available on a sampled recording" in res.skipped["state_noise"]
    assert res.source["accuracy"]["state_noise"]["status"] == "not available"
    assert "noise_covariance" not in res.skipped  # probes of the full model: unaffected by the sample


def test_per_layer_sums_of_a_sample_estimate_the_full_layers(tmp_path):
    """Two layers of Brownian coordinates with step variances 1 and 9: the sampled file's
    per-layer MSD (kept columns × 1/f) is the full file's within its jackknife SE."""
    table = [ParamInfo("a.weight", 0, 4000, (4000,), "weight"), ParamInfo("b.weight", 4000, 4000, (4000,), "weight")]
    x = pe.models.brownian(201, 8000, seed=4)
    x[:, 4000:] *= 3.0
    write_reduced(tmp_path / "s.h5", x, Sample(0.25, seed=1), table)
    write_trajectory(tmp_path / "full.h5", x, params=table, dtype="float64")
    lags = [1, 4, 16]
    got = pe.msd(tmp_path / "s.h5", window=100, lags=lags, groups="layer", progress=False)
    full = pe.msd(tmp_path / "full.h5", window=100, lags=lags, groups="layer", progress=False)
    for name, scale in (("a", 1.0), ("b", 9.0)):
        est, ref = got.groups[name], full.groups[name]
        assert np.all(np.abs(est.msd - ref.msd) < 4 * est.msd_se), name
        np.testing.assert_allclose(est.msd[:, 0], 4000 * scale, rtol=0.1)  # Σ over the layer: P_L σ² τ
    x2 = pe.models.brownian(101, 500, seed=5)
    write_reduced(tmp_path / "k.h5", x2, Sketch(64, seed=0))
    with pytest.raises(ValueError, match="groups: this file holds a sketch"):
        pe.msd(tmp_path / "k.h5", window=50, groups="layer", progress=False)
