import numpy as np
import pytest

import pyengine as pe
from pyengine import config, reference
from pyengine.engine import RunMeta, run, run_block
from pyengine.heavytail.mohammadi import TailIndexAccumulator, choose_k1, tail_index
from pyengine.kernels.tail_index import n_stats, tail_norms, tail_sums
from pyengine.models import stable_samples

CPU_BACKENDS = [b for b in ("cpp", "numba", "numpy") if pe.backends()[b].available]
K1 = [2, 5, 64]


def dirty(shape, dtype, rng):
    """Cauchy samples with zeros, NaN and ±Inf sprinkled in."""
    x = rng.standard_cauchy(shape)
    x[rng.random(shape) < 0.05] = 0.0
    x.flat[::97] = np.nan
    x.flat[5::131] = np.inf
    x.flat[7::173] = -np.inf
    return x.astype(dtype)


@pytest.mark.parametrize("backend", CPU_BACKENDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(1, 1), (9, 3), (333, 37), (1201, 5)])
def test_sums_match_reference(backend, dtype, shape, rng):
    x = dirty(shape, dtype, rng)
    want = reference.tail_index.tail_sums(x, np.array(K1), np.zeros(n_stats(len(K1))))
    got = tail_sums(x, K1, backend=backend)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-9)


@pytest.mark.parametrize("backend", CPU_BACKENDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(1, 1), (9, 3), (333, 37), (130, 300)])
def test_norms_match_reference(backend, dtype, shape, rng):
    x = dirty(shape, dtype, rng)
    n_groups = sum(shape[0] // k for k in K1)
    want = np.zeros(shape[0]), np.zeros(n_groups)
    reference.tail_index.tail_norms(x, np.array(K1), *want)
    for g, w in zip(tail_norms(x, K1, backend=backend), want):
        np.testing.assert_allclose(g, w, rtol=1e-12)  # NaN/Inf in the same places


def test_sums_known_answer():
    # column [1, 2, 0, 4, 8, nan]: zero and NaN dropped; groups of 2: (1+2), (4+8)
    x = np.array([[1.0], [2.0], [0.0], [4.0], [8.0], [np.nan]])
    s = tail_sums(x, [2, 3])
    np.testing.assert_allclose(s[:5], [np.log(64.0), sum(np.log([1, 2, 4, 8.0]) ** 2), 4, 1, 1])
    np.testing.assert_allclose(s[5:10], [np.log(36.0), np.log(3) ** 2 + np.log(12) ** 2, 2, 0, 0])
    np.testing.assert_allclose(s[10:15], [np.log(7.0), np.log(7.0) ** 2, 1, 0, 1])


def test_column_blocks_and_merge_give_the_same_result(rng):
    x = dirty((500, 70), np.float64, rng)
    acc = TailIndexAccumulator(tuple(K1))
    (whole,) = run(x, [acc])
    meta = RunMeta(500, 70, x.dtype, np.arange(500), "auto")
    parts = [run_block([acc], meta, x[:, j : j + 23], j, j + 23)[0] for j in range(0, 70, 23)]  # strided views
    split = acc.finalize(acc.merge(acc.merge(parts[2], parts[0]), acc.merge(parts[1], parts[3])))
    np.testing.assert_allclose(split.alpha_by_k1, whole.alpha_by_k1, rtol=1e-12)
    assert (split.n_used, split.n_zero, split.n_nonfinite) == (whole.n_used, whole.n_zero, whole.n_nonfinite)
    np.testing.assert_array_equal(split.n_truncated, whole.n_truncated)
    (blocked,) = run(x, [acc], block_cols=9, workers=2)
    np.testing.assert_allclose(blocked.alpha_by_k1, whole.alpha_by_k1, rtol=1e-12)


def test_multivariate_blocks_merge(rng):
    x = rng.standard_cauchy((300, 40))
    acc = TailIndexAccumulator(tuple(K1), multivariate=True)
    (whole,) = run(x, [acc])
    (split,) = run(x, [acc], block_cols=17)
    np.testing.assert_allclose(split.alpha_by_k1, whole.alpha_by_k1, rtol=1e-12)
    np.testing.assert_allclose(tail_index(x, K1, multivariate=True).alpha_by_k1, whole.alpha_by_k1, rtol=1e-12)


def test_h5py_dataset_streams_in_column_blocks(tmp_path, monkeypatch, rng):
    h5py = pytest.importorskip("h5py")
    x = rng.standard_cauchy((400, 50))
    with h5py.File(tmp_path / "x.h5", "w") as f:
        f["x"] = x
    monkeypatch.setattr(config, "BLOCK_BYTES", 400 * 8 * 7)  # 7 columns per block
    with h5py.File(tmp_path / "x.h5", "r") as f:
        got = tail_index(f["x"], k1=20)
    assert got.alpha == pytest.approx(tail_index(x, k1=20).alpha, rel=1e-12)


@pytest.mark.parametrize("alpha", [0.7, 1.0, 1.5, 1.9])
def test_recovers_known_tail_index(alpha):
    x = stable_samples(100_000, alpha, seed=int(alpha * 10))
    r = tail_index(x, k1=100)
    # stderr is ~0.01-0.03 here; 4 standard errors
    assert abs(r.alpha - alpha) < 4 * r.alpha_se + 0.01, (r.alpha, r.alpha_se)
    assert r.n_groups[0] == 1000 and r.reason == ""


def test_multivariate_recovers_cauchy(rng):
    r = tail_index(rng.standard_cauchy((20_000, 5)), multivariate=True)
    assert abs(r.alpha - 1.0) < 0.1
    assert r.multivariate and r.k1[0] == choose_k1(20_000, 20_000**0.5)


def test_grid_reports_median_and_spread(rng):
    r = tail_index(rng.standard_cauchy(50_000), k1="grid")
    assert r.k1.size > 5 and r.k1.min() == 2
    assert r.alpha_range[0] <= r.alpha <= r.alpha_range[1]
    assert abs(r.alpha - 1.0) < 0.05


def test_zeros_and_nonfinite_are_counted_and_dropped(rng):
    x = rng.standard_cauchy(10_000)
    clean = tail_index(x, k1=10)
    dirty_x = np.insert(x, [5, 500, 5000], [0.0, np.nan, np.inf])
    r = tail_index(dirty_x, k1=10)
    assert (r.n_used, r.n_zero, r.n_nonfinite) == (10_000, 1, 2)
    assert r.alpha == pytest.approx(clean.alpha, rel=1e-12)  # dropped, not grouped


def test_remainder_is_truncated_and_reported():
    r = tail_index(np.arange(1.0, 104.0), k1=10)
    assert r.n_groups.tolist() == [10] and r.n_truncated.tolist() == [3]


def test_nonpositive_difference_is_reported_not_inverted():
    x = np.tile([2.0, -1.0], 500)  # |Y| = 1 while mean log|X| = log(2)/2 > 0
    r = tail_index(x, k1=2)
    assert np.isnan(r.alpha) and "non-positive" in r.reason
    assert r.inv_alpha_by_k1[0] < 0


def test_k1_guards():
    x = np.random.default_rng(0).standard_cauchy(100)
    with pytest.raises(ValueError, match=">= 2"):
        tail_index(x, k1=1)
    with pytest.raises(ValueError, match="exceeds"):
        tail_index(x, k1=101)
    with pytest.raises(ValueError, match="grid"):
        tail_index(x, k1="all")
    with pytest.raises(ValueError, match="2-D"):
        tail_index(x, multivariate=True)
    with pytest.raises(ValueError, match="at least 2"):
        tail_index(x[:1])


def test_choose_k1():
    assert choose_k1(100_000, 100_000**0.5) == 250  # divisor closest to √K
    assert choose_k1(997, 997**0.5) == 32  # prime: √K rounded, remainder dropped
    assert choose_k1(10, 100) == 10


def test_torch_input(rng):
    torch = pytest.importorskip("torch")
    x = rng.standard_cauchy(5000)
    assert tail_index(torch.from_numpy(x), k1=50).alpha == pytest.approx(tail_index(x, k1=50).alpha)


def test_result_to_dict(rng):
    d = tail_index(rng.standard_cauchy(1000), k1=[10, 20]).to_dict()
    assert isinstance(d["alpha"], float) and d["k1"] == [10, 20] and isinstance(d["n_groups"], list)


@pytest.mark.skipif(not pe.backends()["cuda"].available, reason="no CUDA device")
def test_cuda_matches_cpu(rng):
    import cupy

    x = dirty((333, 37), np.float64, rng)
    np.testing.assert_allclose(tail_sums(cupy.asarray(x), K1).get(), tail_sums(x, K1, backend="numpy"), rtol=1e-12)
    got = tail_norms(cupy.asarray(x), K1)
    want = tail_norms(x, K1, backend="numpy")
    for g, w in zip(got, want):
        np.testing.assert_allclose(g.get(), w, rtol=1e-12)
