import json

import numpy as np
import pytest

import pyengine as pe
from pyengine import reference
from pyengine.engine import GramWindow, WindowGramAccumulator, run
from pyengine.engine.gram import principal_coordinates, sq_distances
from pyengine.kernels import pair_bin

CPU_BACKENDS = [b for b in ("cpp", "numba", "numpy") if pe.backends()[b].available]


def direct_sq_distances(x):
    x = np.asarray(x, dtype=np.float64)
    return ((x[:, None, :] - x[None, :, :]) ** 2).sum(axis=2)


def gram_distances(x, block_cols=None, center="mean"):
    ((gram,),) = run(x, [WindowGramAccumulator((GramWindow(0, x.shape[0]),), center)], block_cols=block_cols, progress=False)
    return sq_distances(gram, x.shape[1])


def fbm_path(n, hurst, rng):
    t = np.arange(1, n + 1, dtype=np.float64)
    cov = 0.5 * (t[:, None] ** (2 * hurst) + t[None, :] ** (2 * hurst) - np.abs(t[:, None] - t[None, :]) ** (2 * hurst))
    return np.concatenate(([0.0], np.linalg.cholesky(cov) @ rng.standard_normal(n)))


# ---- the pair-binning kernel -------------------------------------------------------------------


@pytest.mark.parametrize("backend", CPU_BACKENDS)
@pytest.mark.parametrize("kinds", [("matrix", "vector"), ("vector", "matrix"), ("matrix", "matrix"), ("vector", "vector")])
@pytest.mark.parametrize("log_edges", [True, False])
@pytest.mark.parametrize("n", [2, 3, 57, 301])
def test_pair_bin_matches_reference(backend, kinds, log_edges, n, rng):
    x = rng.standard_normal((n, 5)).cumsum(0)
    d2 = direct_sq_distances(x)
    u = rng.standard_normal(n)
    u[n // 2] = np.nan  # a NaN point: its pairs are skipped when it is a value
    src = {"matrix": d2, "vector": np.cumsum(rng.random(n))}
    key, value = src[kinds[0]], (d2 if kinds[1] == "matrix" else u)
    hi = np.nanmax(key) if key.ndim == 2 else key[-1] - key[0]
    edges = np.geomspace(hi / 300, hi * 0.8, 13) if log_edges else np.sort(rng.random(9)) * hi
    got = pair_bin(key, value, edges, backend=backend)
    want = reference.pair_bin(key, value, edges, np.zeros((4, edges.size - 1)))
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12 * np.abs(want).max(initial=1))


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_pair_bin_known_answer_and_views(backend, rng):
    pos = np.array([0.0, 1.0, 3.0])  # keys 1, 3, 2
    loss = np.array([0.0, 1.0, 1.0])  # values 1, 1, 0
    got = pair_bin(pos, loss, [0.5, 1.5, 3.5], backend=backend)
    np.testing.assert_array_equal(got, [[1, 2], [1, 5], [1, 1], [1, 1]])
    # A square view of a bigger matrix (row stride > n) and the right edge included.
    big = rng.random((40, 50))
    view = big[:40, :40]
    edges = np.linspace(0, 1, 7)
    np.testing.assert_allclose(pair_bin(view, view, edges, backend=backend),
                               reference.pair_bin(view, view, edges, np.zeros((4, 6))), rtol=1e-13)
    hist = pair_bin(np.array([0.0, 1.0]), np.array([0.0, 2.0]), [0.0, 0.5, 1.0], backend=backend)
    np.testing.assert_array_equal(hist[0], [0, 1])


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("log_edges", [True, False])
@pytest.mark.parametrize("kind", ["trajectory", "random"])
def test_pair_bin_cpp_long_rows(kind, log_edges, threads, rng):
    # Rows longer than the C++ kernel's pieces: along a trajectory a piece's keys span few bins
    # (summed bin by bin), random keys many (binned pair by pair).
    pytest.importorskip("pyengine._core")
    n = 700
    key = direct_sq_distances(rng.standard_normal((n, 3)).cumsum(0)) if kind == "trajectory" else rng.random(n)
    value = rng.standard_normal(n)
    value[[5, 400]] = [np.nan, np.inf]
    hi = key.max() if key.ndim == 2 else 1.0
    edges = np.geomspace(hi / 1e3, hi * 0.9, 41) if log_edges else np.sort(rng.random(30)) * hi
    got = pair_bin(key, value, edges, backend="cpp", threads=threads)
    want = reference.pair_bin(key, value, edges, np.zeros((4, edges.size - 1)))
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12 * np.abs(want).max())


def test_pair_bin_cpp_keys_on_log_edges_and_unchecked_log_flag():
    # Keys exactly on log-spaced edges go where a search of the edges puts them; edges wrongly
    # flagged log-uniform when called directly take the binary search instead of the log2 estimate.
    core = pytest.importorskip("pyengine._core")
    pos = np.concatenate(([0.0], 2.0 ** np.arange(12)))  # keys |pos_b - pos_a| include every 2^k
    for edges in (2.0 ** np.arange(12), np.array([1.0, 2.0, 3.0, 10.0, 11.0, 100.0, 2000.0])):
        got = np.zeros((4, edges.size - 1))
        core.pair_bin(pos, pos, edges, True, got)
        want = reference.pair_bin(pos, pos, edges, np.zeros_like(got))
        np.testing.assert_array_equal(got, want)


def test_pair_bin_rejects_bad_input():
    with pytest.raises(ValueError, match="increasing"):
        pair_bin(np.arange(4.0), np.arange(4.0), [1.0, 1.0])
    with pytest.raises(ValueError, match="same points"):
        pair_bin(np.arange(4.0), np.arange(5.0), [0.0, 1.0])
    with pytest.raises(ValueError, match="square"):
        pair_bin(np.zeros((3, 4)), np.arange(3.0), [0.0, 1.0])
    with pytest.raises(TypeError, match="real"):
        pair_bin(np.arange(3.0), np.array(["a", "b", "c"]), [0.0, 1.0])


# ---- window Gram and distances -----------------------------------------------------------------


@pytest.mark.parametrize("center", ["mean", "first"])
def test_distances_match_direct_float64(center, rng):
    x = rng.standard_normal((120, 300)).cumsum(0)
    d2, n_flagged = gram_distances(x, center=center)
    want = direct_sq_distances(x)
    off = ~np.eye(x.shape[0], dtype=bool)
    assert n_flagged == 0
    assert np.max(np.abs(d2[off] - want[off]) / want[off]) <= 1e-9


def test_n_blocks_equal_one_block(rng):
    x = rng.standard_normal((90, 200)).cumsum(0)
    one, _ = gram_distances(x)
    many, _ = gram_distances(x, block_cols=37)
    np.testing.assert_allclose(many, one, rtol=1e-12, atol=1e-12 * one.max())


def test_far_from_origin_naive_float32_fails_ours_does_not(rng):
    # |w| / step ≈ 1e4: weights of norm ~1e4 moving by steps of norm ~1, stored in float32.
    n, p = 100, 400
    w0 = rng.standard_normal(p)
    w0 *= 1e4 / np.linalg.norm(w0)
    x = (w0 + rng.standard_normal((n, p)).cumsum(0) / np.sqrt(p)).astype(np.float32)
    want = direct_sq_distances(x)  # exact differences of the stored float32 values
    off = ~np.eye(n, dtype=bool)
    g32 = x @ x.T
    naive = np.diag(g32)[:, None] + np.diag(g32)[None, :] - 2 * g32
    assert np.median(np.abs(naive[off] - want[off]) / want[off]) > 0.1
    ours, n_flagged = gram_distances(x)
    assert n_flagged == 0
    assert np.max(np.abs(ours[off] - want[off]) / want[off]) <= 1e-9


def test_tiny_pairs_are_flagged_or_exact(rng):
    x = rng.standard_normal((30, 50)).cumsum(0)
    x[10] = x[9] + 1e-9  # a pair far below the Gram's resolution
    ((gram,),) = run(x, [WindowGramAccumulator((GramWindow(0, 30),))], progress=False)
    d2, n_flagged = sq_distances(gram.copy(), 50)
    assert n_flagged == 1 and np.isnan(d2[9, 10])
    exact = reference.lag_band(x, np.array([1]), np.zeros((1, 30)))
    d2, n_flagged = sq_distances(gram.copy(), 50, exact=exact)
    assert n_flagged == 0 and d2[9, 10] == pytest.approx(50 * 1e-18, rel=1e-6)


def test_principal_coordinates_of_a_plane(rng):
    t = np.linspace(0, 2 * np.pi, 60)
    basis = np.linalg.qr(rng.standard_normal((40, 2)))[0].T
    x = np.stack([3 * np.cos(t), np.sin(t)], axis=1) @ basis
    ((gram,),) = run(x, [WindowGramAccumulator((GramWindow(0, 60),))], progress=False)
    coords, explained = principal_coordinates(gram)
    assert explained.sum() == pytest.approx(1.0, abs=1e-9)
    assert explained[0] > explained[1]
    np.testing.assert_allclose(direct_sq_distances(coords), direct_sq_distances(x), atol=1e-9)


def test_principal_coordinates_match_the_svd_of_the_centred_window(rng):
    x = rng.standard_normal((300, 50)).cumsum(axis=0)  # large enough for the Lanczos path
    ((gram,),) = run(x, [WindowGramAccumulator((GramWindow(0, 300),))], progress=False)
    coords, explained = principal_coordinates(gram)
    u, s, _ = np.linalg.svd(x - x.mean(axis=0), full_matrices=False)
    want = u[:, :2] * s[:2]
    want *= np.sign(want[np.abs(want).argmax(axis=0), [0, 1]])  # the documented sign: largest entry positive
    np.testing.assert_allclose(coords, want, rtol=1e-7, atol=1e-7 * np.abs(want).max())
    np.testing.assert_allclose(explained, s[:2] ** 2 / (s**2).sum(), rtol=1e-9)


# ---- estimators --------------------------------------------------------------------------------


@pytest.mark.parametrize("hurst", [0.3, 0.7])
def test_msl_recovers_hurst_of_fbm_landscape(hurst, rng):
    # Loss = a 1-D fBm of the position along a straight line: MSL = Δr^{2H} in law. One path's
    # sample variogram scatters by ~±0.07 in 2H between seeds (docs/pairs.md), hence n = 2000.
    n = 2000
    direction = rng.standard_normal(16)
    x = np.arange(n)[:, None] * (direction / np.linalg.norm(direction)) + 3.0
    loss = fbm_path(n - 1, hurst, rng)
    res = pe.msl(x, loss=loss, window=None, bins=24)
    assert abs(res.exponent[0] - 2 * hurst) <= 0.1
    ok = res.counts[0] > 0
    assert res.counts[0].sum() == n * (n - 1) // 2
    assert np.all(res.msl_se[0, ok & (res.counts[0] > 1)] >= 0)


def test_msl_mean_of_squares_not_square_of_mean():
    # Two points per distance with loss differences +1 and -1: MSL = 1 (the square of the mean is 0).
    x = np.array([[0.0], [1.0], [2.0]])
    res = pe.msl(x, loss=np.array([0.0, 1.0, 0.0]), window=None, bins=[0.5, 1.5, 2.5])
    np.testing.assert_allclose(res.msl[0], [1.0, 0.0])
    np.testing.assert_array_equal(res.counts[0], [2, 1])


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_msl_backends_and_blocks_agree(backend, rng):
    x = rng.standard_normal((300, 64)).cumsum(0)
    loss = np.sin(x[:, 0] / 5) + 0.1 * rng.standard_normal(300)
    want = pe.msl(x, loss=loss, window=150, bins=12, backend="numpy")
    got = pe.msl(x, loss=loss, window=150, bins=12, backend=backend, block_cols=20)
    np.testing.assert_array_equal(got.counts, want.counts)
    np.testing.assert_allclose(got.msl, want.msl, rtol=1e-9)
    np.testing.assert_allclose(got.exponent, want.exponent, rtol=1e-9)
    json.dumps(got.to_dict())


def test_path_geometry_straight_line(rng):
    v = rng.standard_normal(30)
    x = 7.0 + np.arange(600)[:, None] * v
    res = pe.path_geometry(x, window=300)
    np.testing.assert_allclose(res.lam, 2.0, atol=1e-3)  # bins average n² over a few n: 1e-5 off
    np.testing.assert_allclose(res.fractal_dim, 1.0, atol=1e-3)
    assert np.all(res.explained[:, 0] > 1 - 1e-9)  # a line has one principal axis
    assert np.all(res.transverse_h < 1e-6 * res.transverse_dr)


def test_path_geometry_brownian(rng):
    x = rng.standard_normal((400, 2000)).cumsum(0)
    res = pe.path_geometry(x, window=400, bins=16)
    np.testing.assert_allclose(res.lam, 1.0, atol=0.1)
    np.testing.assert_allclose(res.fractal_dim, 2.0, atol=0.2)
    # In high dimension a random walk is self-similar: h grows like Δr.
    assert abs(res.transverse_exponent[0] - 1.0) < 0.1
    json.dumps(res.to_dict())


def test_results_plot(rng):
    import matplotlib

    matplotlib.use("Agg")
    x = rng.standard_normal((200, 10)).cumsum(0)
    assert pe.msl(x, loss=x[:, 0] ** 2, window=100, bins=8).plot() is not None
    assert pe.path_geometry(x, window=100, bins=8).plot() is not None


def test_bad_input_is_rejected(rng):
    x = rng.standard_normal((50, 4))
    with pytest.raises(ValueError, match="no loss"):
        pe.msl(x, window=None)
    with pytest.raises(ValueError, match="loss: expected one value per snapshot"):
        pe.msl(x, loss=np.zeros(49), window=None)
    with pytest.raises(ValueError, match="needs 2 … 50 snapshots"):
        pe.path_geometry(x, window=80)
    with pytest.raises(ValueError, match="bins"):
        pe.msl(x, loss=np.zeros(50), bins=10**8)
    with pytest.raises(ValueError, match="n_transverse"):
        pe.path_geometry(x, n_transverse=0)
    with pytest.raises(ValueError, match="center"):
        WindowGramAccumulator((GramWindow(0, 5),), center="median")


@pytest.mark.parametrize("block_cols", [None, 37])
def test_group_parts_are_each_groups_own_pair_distances(block_cols, rng):
    """The window Gram keeps, per jackknife group, the sampled pairs' D² over that group's
    columns (the change its SYRK made to the running sums): checked against the distances
    of the group's columns computed directly, on two windows and any block split."""
    from pyengine.engine.groups import ColumnGroups

    x = rng.standard_normal((60, 400)).cumsum(axis=0) + 100.0
    groups = ColumnGroups.for_params(400, 4)
    a, b = np.triu_indices(30, 1)
    pairs = a[::3], b[::3]
    windows = (GramWindow(0, 30), GramWindow(30, 30))
    ((grouped,),) = [run(x, [WindowGramAccumulator(windows, "mean", groups, pairs)], block_cols=block_cols,
                         progress=False)]
    label = groups.of(np.arange(400))
    for g in range(4):
        cols = label == g
        for i, w in enumerate(windows):
            y = x[w.start : w.start + w.length, cols]
            direct = ((y[pairs[0]] - y[pairs[1]]) ** 2).sum(axis=1)
            np.testing.assert_allclose(grouped.parts[g][i], direct, rtol=2e-6)
    for i, w in enumerate(windows):  # and the whole Gram matrix is symmetric, the centred Y Yᵀ
        y = x[w.start : w.start + w.length] - x[w.start : w.start + w.length].mean(axis=0)
        np.testing.assert_allclose(grouped.total[i], y @ y.T, rtol=1e-12, atol=1e-9)
