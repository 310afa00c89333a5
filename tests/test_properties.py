"""Property-based tests: every kernel backend and the estimators against the NumPy reference.

Inputs are drawn by hypothesis: shapes down to 1 parameter and 2 snapshots, odd sizes,
block widths that do not divide P, C-ordered, Fortran-ordered and non-contiguous arrays,
float32 and float64. The ``pyengine-fast`` profile keeps the file under a minute on two
cores; set ``PYENGINE_PROPERTY_PROFILE=pyengine-thorough`` for many more examples.
"""

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pyengine as pe
from pyengine import dispatch, reference
from pyengine.kernels import box_counts, lag_band, pair_bin, surface_stats
from pyengine.kernels.tail_index import n_stats, tail_norms, tail_sums
from pyengine.reference import tail_index as ref_tail

settings.register_profile("pyengine-fast", max_examples=12, deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("pyengine-thorough", max_examples=300, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
PROFILE = settings.get_profile(os.environ.get("PYENGINE_PROPERTY_PROFILE", "pyengine-fast"))

BACKENDS = [name for name in ("cpp", "numba", "numpy") if dispatch.backends()[name].available]
DTYPES = [np.float32, np.float64]


@st.composite
def trajectories(draw, min_rows=2, max_rows=40, max_cols=23):
    """(N, P) random walk in a random dtype and memory layout."""
    n = draw(st.integers(min_rows, max_rows))
    p = draw(st.integers(1, max_cols))
    dtype = draw(st.sampled_from(DTYPES))
    layout = draw(st.sampled_from(["C", "F", "strided"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    scale = draw(st.sampled_from([1e-3, 1.0, 1e3]))
    x = np.cumsum(rng.normal(scale=scale, size=(n, 2 * p)), axis=0).astype(dtype)
    if layout == "strided":
        return x[:, ::2]
    x = x[:, :p]
    return np.asfortranarray(x) if layout == "F" else np.ascontiguousarray(x)


def _rtol(dtype):
    return 1e-5 if dtype == np.float32 else 1e-10


# ---- kernels ----------------------------------------------------------------------------


@PROFILE
@given(x=trajectories(), lag_seed=st.integers(0, 2**16), backend=st.sampled_from(BACKENDS))
def test_lag_band_matches_reference(x, lag_seed, backend):
    n = x.shape[0]
    lags = np.unique(np.random.default_rng(lag_seed).integers(1, n + 3, size=4))  # some past the end
    want = reference.lag_band(x, lags, np.zeros((lags.size, n)))
    got = lag_band(x, lags, backend=backend)
    np.testing.assert_allclose(got, want, rtol=_rtol(x.dtype), atol=0)


@PROFILE
@given(x=trajectories(), backend=st.sampled_from(BACKENDS), width=st.integers(1, 7))
def test_lag_band_column_blocks_add_up(x, backend, width):
    whole = lag_band(x, [1, 2], backend=backend)
    parts = np.zeros_like(whole)
    for j in range(0, x.shape[1], width):
        lag_band(x[:, j : j + width], [1, 2], out=parts, backend=backend)
    np.testing.assert_allclose(parts, whole, rtol=_rtol(x.dtype), atol=0)


@st.composite
def pair_inputs(draw):
    n = draw(st.integers(0, 30))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    pts = rng.normal(size=(n, 3))
    d2 = ((pts[:, None] - pts[None]) ** 2).sum(-1)
    key = d2 if draw(st.booleans()) else np.cumsum(rng.exponential(size=n))
    value = rng.normal(size=n)
    if n and draw(st.booleans()):
        value[rng.integers(n)] = np.nan
    if draw(st.booleans()):
        edges = np.geomspace(draw(st.sampled_from([1e-2, 0.1, 1.0])), 50.0, draw(st.integers(2, 12)))
    else:
        edges = np.sort(np.unique(rng.uniform(0, 20, size=draw(st.integers(2, 9)))))
        if edges.size < 2:
            edges = np.array([0.0, 1.0])
    if draw(st.booleans()) and key.ndim == 2:
        key = np.asfortranarray(key)
    return key, value, edges


@PROFILE
@given(inputs=pair_inputs(), backend=st.sampled_from(BACKENDS))
def test_pair_bin_matches_reference(inputs, backend):
    key, value, edges = inputs
    want = reference.pair_bin(np.ascontiguousarray(key), value, edges, np.zeros((4, edges.size - 1)))
    got = pair_bin(key, value, edges, backend=backend)
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


@st.composite
def images(draw):
    ny, nx = draw(st.integers(1, 37)), draw(st.integers(1, 37))
    dtype = draw(st.sampled_from([np.float32, np.float64, np.uint8, np.bool_]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    z = rng.normal(scale=3.0, size=(ny, nx))
    if dtype in (np.uint8, np.bool_):
        z = z > 0.5
    z = z.astype(dtype)
    return np.asfortranarray(z) if draw(st.booleans()) else z


@PROFILE
@given(z=images(), backend=st.sampled_from(BACKENDS), rule=st.sampled_from(["dbc", "idbc", "occupied"]),
       size_seed=st.integers(0, 2**16), origin=st.tuples(st.integers(0, 3), st.integers(0, 3)))
def test_box_counts_match_reference(z, backend, rule, size_seed, origin):
    rng = np.random.default_rng(size_seed)
    sizes = np.unique(rng.integers(1, max(z.shape) + 3, size=4))
    inv_h = rng.uniform(0.1, 4.0, size=sizes.size)
    zmin = float(np.min(z))
    want = box_counts(z, sizes, inv_h, zmin, rule, origin, backend="numpy")
    got = box_counts(z, sizes, inv_h, zmin, rule, origin, backend=backend)
    np.testing.assert_array_equal(got[1], want[1])
    np.testing.assert_allclose(got[0], want[0], rtol=1e-12)


@PROFILE
@given(z=images().filter(lambda z: z.dtype.kind == "f"), backend=st.sampled_from(BACKENDS),
       n_nan=st.integers(0, 3), seed=st.integers(0, 2**16))
def test_surface_stats_match_reference(z, backend, n_nan, seed):
    z = z.copy()
    rng = np.random.default_rng(seed)
    z.flat[rng.integers(z.size, size=n_nan)] = np.nan
    want = reference.surface_stats(z)
    got = surface_stats(z, backend=backend)
    rtol = 1e-5 if z.dtype == np.float32 else 1e-10
    np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * np.nanmax(np.abs(z), initial=1.0) ** 2 * z.size)


@st.composite
def tail_samples(draw):
    n, p = draw(st.integers(2, 60)), draw(st.integers(1, 9))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x = rng.standard_cauchy(size=(n, p))
    x[rng.random(size=x.shape) < draw(st.sampled_from([0.0, 0.1]))] = 0.0
    if draw(st.booleans()):
        x[rng.integers(n), rng.integers(p)] = np.inf
    x = x.astype(draw(st.sampled_from(DTYPES)))
    return np.asfortranarray(x) if draw(st.booleans()) else x


@PROFILE
@given(x=tail_samples(), k1=st.lists(st.integers(2, 9), min_size=1, max_size=3), backend=st.sampled_from(BACKENDS))
def test_tail_sums_match_reference(x, k1, backend):
    k1 = np.array(k1, dtype=np.int64)
    want = ref_tail.tail_sums(x, k1, np.zeros(n_stats(k1.size)))
    got = tail_sums(x, k1, backend=backend)
    np.testing.assert_allclose(got, want, rtol=1e-6 if x.dtype == np.float32 else 1e-9, atol=1e-9)


@PROFILE
@given(x=tail_samples(), k1=st.lists(st.integers(2, 9), min_size=1, max_size=3), backend=st.sampled_from(BACKENDS))
def test_tail_norms_match_reference(x, k1, backend):
    x = np.where(np.isfinite(x), x, 1.0).astype(x.dtype)
    k1 = np.array(k1, dtype=np.int64)
    n = x.shape[0]
    want_rows, want_groups = np.zeros(n), np.zeros(int(sum(n // k for k in k1)))
    ref_tail.tail_norms(x, k1, want_rows, want_groups)
    rows, groups = tail_norms(x, k1, backend=backend)
    rtol = 1e-5 if x.dtype == np.float32 else 1e-10
    np.testing.assert_allclose(rows, want_rows, rtol=rtol)
    np.testing.assert_allclose(groups, want_groups, rtol=rtol)


# ---- estimators -------------------------------------------------------------------------


@st.composite
def msd_settings(draw):
    x = draw(trajectories(min_rows=3))
    n = x.shape[0]
    origins = draw(st.sampled_from(["window", "within"]))
    t_rows = draw(st.integers(2, n - 1))
    max_lag = t_rows if origins == "window" else t_rows - 1
    lags = draw(st.one_of(st.none(), st.lists(st.integers(1, max_lag), min_size=1, max_size=4)))
    return x, t_rows, lags, origins


@PROFILE
@given(case=msd_settings(), method=st.sampled_from(["spectral", "lagband"]), backend=st.sampled_from(BACKENDS),
       block_cols=st.integers(1, 9))
def test_msd_matches_reference(case, method, backend, block_cols):
    x, window, lags, origins = case
    res = pe.msd(x, window=window, lags=lags, origins=origins, method=method, backend=backend,
                 block_cols=block_cols, progress=False)
    x64 = x.astype(np.float64)
    scale = max(float(np.max(reference.lag_band(x, res.lags, np.zeros((res.lags.size, x.shape[0]))))), 1e-300)
    for i, t_w in enumerate(res.t_w):
        want = reference.time_averaged_msd(x64, int(t_w), window, res.lags, origins)
        np.testing.assert_array_equal(np.isnan(res.msd[i]), np.isnan(want))
        np.testing.assert_allclose(res.msd[i], want, rtol=_rtol(x.dtype), atol=1e-9 * scale)


@PROFILE
@given(x=trajectories(min_rows=8, max_rows=30), block_cols=st.integers(1, 6))
def test_pair_estimators_do_not_depend_on_blocks(x, block_cols):
    n = x.shape[0]
    loss = np.linspace(2.0, 1.0, n) + 0.1 * np.sin(np.arange(n))
    window = n // 2
    one = pe.msl(x, loss, window=window, progress=False)
    many = pe.msl(x, loss, window=window, block_cols=block_cols, progress=False)
    np.testing.assert_array_equal(one.counts, many.counts)
    np.testing.assert_allclose(many.msl, one.msl, rtol=1e-8, equal_nan=True)
    one = pe.path_geometry(x, window=window, progress=False)
    many = pe.path_geometry(x, window=window, block_cols=block_cols, progress=False)
    np.testing.assert_allclose(many.dr2, one.dr2, rtol=1e-6, equal_nan=True)


@PROFILE
@given(x=trajectories(min_rows=8, max_rows=40), block_cols=st.integers(1, 6))
def test_increments_do_not_depend_on_blocks(x, block_cols):
    one = pe.increments(x, window=None, progress=False)
    many = pe.increments(x, window=None, block_cols=block_cols, progress=False)
    np.testing.assert_allclose(many.power_mean, one.power_mean, rtol=1e-6, atol=1e-12 * np.max(one.power_mean))


# ---- numerical guards: cancellation -----------------------------------------------------------


@pytest.mark.parametrize("method", ["spectral", "lagband"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_msd_of_tiny_steps_far_from_origin(method, backend):
    """‖w‖ ~ 1e4·√P, steps ~ 1e-4: a Gram or FFT about the origin would lose every digit."""
    rng = np.random.default_rng(7)
    x = 1e4 + np.cumsum(rng.normal(scale=1e-4, size=(300, 40)), axis=0)
    res = pe.msd(x, window=100, lags=[1, 5, 50], method=method, backend=backend, progress=False)
    for i, t_w in enumerate(res.t_w):
        want = reference.time_averaged_msd(x, int(t_w), 100, res.lags)
        np.testing.assert_allclose(res.msd[i], want, rtol=1e-6)


def test_msd_float32_far_from_origin_uses_exact_differences():
    rng = np.random.default_rng(8)
    x = (100.0 + np.cumsum(rng.normal(scale=1e-3, size=(200, 16)), axis=0)).astype(np.float32)
    for backend in BACKENDS:
        res = pe.msd(x, window=50, lags=[1, 10], method="lagband", backend=backend, progress=False)
        want = reference.time_averaged_msd(x, 0, 50, res.lags)
        np.testing.assert_allclose(res.msd[0], want, rtol=1e-5)


def test_pair_distances_survive_a_large_offset():
    """MSL of a path is translation invariant; with steps 1e-3 and an offset of 1e3 it stays so."""
    rng = np.random.default_rng(9)
    x = np.cumsum(rng.normal(scale=1e-3, size=(60, 30)), axis=0)
    loss = rng.normal(size=60)
    near = pe.msl(x, loss, window=30, progress=False)
    far = pe.msl(x + 1e3, loss, window=30, bins=near.edges, progress=False)
    np.testing.assert_array_equal(far.counts, near.counts)
    np.testing.assert_allclose(far.msl, near.msl, rtol=1e-6, equal_nan=True)
