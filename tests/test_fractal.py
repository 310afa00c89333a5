import json

import numpy as np
import pytest

import pyengine as pe
from pyengine.fractal import boxcount, fbm_surface, koch_curve, level_set, sierpinski_carpet
from pyengine.kernels import box_counts, surface_stats

CPU_BACKENDS = [b for b in ("cpp", "numba", "numpy") if pe.backends()[b].available]
CARPET = np.log(8) / np.log(3)
KOCH = np.log(4) / np.log(3)


# ---- kernels: every backend against the NumPy reference -------------------------------------

@pytest.mark.parametrize("backend", CPU_BACKENDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(1, 1), (3, 9), (37, 53), (130, 257)])
@pytest.mark.parametrize("rule", ["dbc", "idbc", "occupied"])
def test_box_counts_match_reference(backend, dtype, shape, rule, rng):
    z = rng.standard_normal(shape).cumsum(0).cumsum(1).astype(dtype)
    sizes = [1, 2, 3, 4, 5, 7, 8, 16, 32, 64]  # dyadic (pyramid) and non-dyadic (direct)
    inv_h = 0.37 / np.array(sizes, dtype=float)
    for origin in [(0, 0), (3, 1)]:
        want = box_counts(z, sizes, inv_h, float(z.min()), rule, origin, backend="numpy")
        got = box_counts(z, sizes, inv_h, float(z.min()), rule, origin, backend=backend)
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_array_equal(got[1], want[1])


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_binary_images_and_views(backend, rng):
    image = rng.random((66, 131)) < 0.05
    sizes = [1, 2, 3, 4, 6, 8, 16]
    want = box_counts(image.astype(np.float64), sizes, rule="occupied", backend="numpy")
    for img in (image, image.astype(np.uint8), image[:, 3:]):
        got = box_counts(img, sizes, rule="occupied", backend=backend)
        ref = box_counts(np.asarray(img, dtype=np.float64), sizes, rule="occupied", backend="numpy")
        np.testing.assert_array_equal(got[0], ref[0])
    assert want[0][0] == image.sum()


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_surface_stats_match_reference(backend, rng):
    z = 1e3 + rng.standard_normal((45, 77))
    z[3, 4] = np.nan
    want = surface_stats(z, backend="numpy")
    np.testing.assert_allclose(surface_stats(z, backend=backend), want, rtol=1e-12)
    assert want[4] == 1


@pytest.mark.skipif(not pe.backends()["numba"].available, reason="needs numba")
def test_numba_kernels_with_jit_off(monkeypatch, rng):
    # The plain-Python bodies of the jitted functions give the same counts (coverage, no JIT).
    from pyengine.kernels import _numba_boxcount as nb

    for name in ("_boxes", "_next_level", "_direct", "_row_stats"):
        monkeypatch.setattr(nb, name, getattr(nb, name).py_func)
    z = rng.standard_normal((19, 23))
    sizes = np.array([1, 2, 3, 4, 8])
    inv_h = np.full(sizes.size, 0.8)
    for rule in (0, 1, 2):
        got = nb.box_counts(z, (1, 2), sizes, inv_h, float(z.min()), rule, np.zeros(5), np.zeros(5))
        want = box_counts(z, sizes, inv_h, float(z.min()), ("dbc", "idbc", "occupied")[rule], (1, 2), backend="numpy")
        np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_allclose(nb.surface_stats(z), surface_stats(z, backend="numpy"), rtol=1e-12)


def test_kernel_bad_input():
    with pytest.raises(ValueError, match="2-D"):
        box_counts(np.zeros(5), [1])
    with pytest.raises(TypeError, match="float32"):
        box_counts(np.zeros((4, 4), dtype=complex), [1])
    with pytest.raises(ValueError, match="distinct"):
        box_counts(np.zeros((4, 4)), [2, 2])
    with pytest.raises(ValueError, match=">= 1"):
        box_counts(np.zeros((4, 4)), [0])
    with pytest.raises(ValueError, match="rule"):
        box_counts(np.zeros((4, 4)), [1], rule="nope")


@pytest.mark.skipif(not pe.backends()["cuda"].available, reason="needs a GPU and the CUDA build")
def test_cuda_matches_reference(rng):
    import cupy

    z = rng.standard_normal((301, 257)).cumsum(0)
    sizes = [1, 2, 3, 4, 8, 13, 64, 128]
    inv_h = 0.5 / np.array(sizes, dtype=float)
    for rule in ("dbc", "idbc", "occupied"):
        want = box_counts(z, sizes, inv_h, float(z.min()), rule, (2, 5), backend="numpy")
        got = box_counts(cupy.asarray(z), sizes, inv_h, float(z.min()), rule, (2, 5), backend="cuda")
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_array_equal(got[1], want[1])


# ---- known dimensions ---------------------------------------------------------------------

def test_carpet_exact_with_powers_of_three():
    r = boxcount(sierpinski_carpet(5), kind="set", sizes=[1, 3, 9, 27])
    assert r.dimension == pytest.approx(CARPET, abs=1e-12)


def test_carpet_dyadic_sizes():
    assert boxcount(sierpinski_carpet(6), kind="set").dimension == pytest.approx(CARPET, abs=0.05)


def test_koch_curve():
    r = boxcount(koch_curve(6), kind="points", curve=True)
    assert r.dimension == pytest.approx(KOCH, abs=0.05)
    assert r.kind == "points" and "R^d" in r.label


def test_square_and_lines():
    assert boxcount(np.ones((128, 128), bool), kind="set").dimension == pytest.approx(2.0, abs=1e-12)
    assert boxcount(np.eye(256, dtype=bool), kind="set").dimension == pytest.approx(1.0, abs=1e-12)
    t = np.linspace(0.0, 1.0, 500)
    line3d = np.column_stack([t, -t, 2 * t])
    assert boxcount(line3d, kind="points", curve=True).dimension == pytest.approx(1.0, abs=0.03)
    square_pts = np.random.default_rng(3).random((200_000, 2))
    assert boxcount(square_pts, kind="points").dimension == pytest.approx(2.0, abs=0.05)


def test_level_set_of_a_plane_is_a_line():
    y, x = np.mgrid[0:200, 0:200]
    r = boxcount((x + 0.5 * y).astype(float), kind="set", level=100.3)
    assert r.dimension == pytest.approx(1.0, abs=0.03)
    assert "[1, 2]" in r.label


def test_constant_surface_is_flat():
    for method in ("dbc", "idbc"):
        for value, dtype in [(3.0, np.float64), (0.0, np.float64), (-1e308, np.float64), (1e-310, np.float64),
                             (3e38, np.float32)]:
            r = boxcount(np.full((64, 80), value, dtype=dtype), method=method)
            assert r.dimension == pytest.approx(2.0, abs=1e-12)
            np.testing.assert_array_equal(r.counts, 64 * 80 / r.sizes**2)  # one box per block


# ---- the dimension does not depend on the units of z ---------------------------------------

@pytest.mark.parametrize("method", ["dbc", "idbc"])
def test_power_of_two_scaling_gives_identical_counts(method):
    # Scaling by 2**k is exact, so every count must equal the unscaled one, also where the
    # range leaves the safe window and the surface is rescaled (|k| = 600, 1000) before counting.
    z = fbm_surface(128, 0.4, seed=3)
    z = z - z.min() + 1.0  # in [1, 9]: no value turns subnormal at 2**-1000
    want = boxcount(z, method=method, sizes=[2, 3, 4, 8, 16, 32], offsets=2)
    for k in (-1000, -600, -300, 300, 600, 1000):
        got = boxcount(np.ldexp(z, k), method=method, sizes=[2, 3, 4, 8, 16, 32], offsets=2)
        np.testing.assert_array_equal(got.counts, want.counts)
    # integer heights times the smallest subnormal 2**-1074 are exact too (range ~ 1e-318)
    heights = np.round(z * 1000)
    want = boxcount(heights, method=method, sizes=[2, 3, 4, 8, 16, 32])
    got = boxcount(np.ldexp(heights, -1074), method=method, sizes=[2, 3, 4, 8, 16, 32])
    np.testing.assert_array_equal(got.counts, want.counts)


@pytest.mark.parametrize("method", ["dbc", "idbc"])
def test_huge_tiny_and_overflowing_ranges(method):
    # The issue: z * 1e300 gave 2.0 (IDBC's sum of squares overflowed), z * 1e-300 a smaller
    # IDBC dimension (it underflowed). A range above the largest float must count too.
    z = fbm_surface(256, 0.5, seed=1)
    want = boxcount(z, method=method)
    assert 2.2 < want.dimension < 2.5
    for zz in (z * 1e300, z * 1e-300, z * 1e100, z / np.abs(z).max() * 1.7e308):
        assert np.isfinite(zz).all() and np.ptp(zz / np.abs(zz).max()) > 1.0
        got = boxcount(zz, method=method)
        np.testing.assert_array_equal(got.counts, want.counts)
        assert got.dimension == want.dimension


@pytest.mark.parametrize("method", ["dbc", "idbc"])
def test_shifts(method):
    # Heights on a grid of 2**-20 shifted by 2**30 stay exact (50 bits), so counts are equal.
    z = np.round(fbm_surface(128, 0.6, seed=4) * 2**20) / 2**20
    want = boxcount(z, method=method)
    np.testing.assert_array_equal(boxcount(z + 2.0**30, method=method).counts, want.counts)
    # z + 1e300 rounds every height to 1e300 (an ulp there is 1.5e284): a flat surface.
    shifted = z + 1e300
    assert np.ptp(shifted) == 0.0
    assert boxcount(shifted, method=method).dimension == pytest.approx(2.0, abs=1e-12)


def test_dbc_stack_spans_the_range_exactly():
    # One block covering the whole square image holds side / s = 1 DBC box, whatever the
    # scale of z; before the fix the maximum sat on the top edge and rounding added a box
    # for z * 1e100 but not for z.
    z = fbm_surface(64, 0.5, seed=1)
    for c in (1.0, 1e100, 3.7, 1.0 / 3.0, 1e-200):
        r = boxcount(z * c, method="dbc", sizes=[2, 4, 8, 16, 32, 64], fit_range=(2, 32))
        assert r.counts[-1] == 1.0
        assert r.counts[-2] <= 4 * 2  # 4 blocks, a stack of 2 boxes each at most


@pytest.mark.parametrize("method", ["dbc", "idbc"])
def test_fbm_surface_rough_ordering(method):
    # Small and quick: the estimate is in [2, 3] and falls as H rises.
    dims = [boxcount(fbm_surface(256, h, seed=7), method=method).dimension for h in (0.2, 0.5, 0.8)]
    assert 2.0 < dims[2] < dims[1] < dims[0] < 3.0
    assert dims[1] == pytest.approx(2.5, abs=0.25)  # 256 px: few scales above the smooth pixel range


@pytest.mark.slow
@pytest.mark.parametrize("hurst", [0.2, 0.3, 0.5, 0.7, 0.8])
def test_fbm_surface_accuracy(hurst):
    # Measured errors are in docs/fractal.md; IDBC is within 0.2 everywhere, 0.05 for H >= 0.7.
    z = fbm_surface(2048, hurst, seed=11)
    err = boxcount(z, method="idbc").dimension - (3.0 - hurst)
    assert abs(err) < (0.05 if hurst >= 0.7 else 0.2)


def test_backends_agree_on_dimension():
    z = fbm_surface(128, 0.4, seed=2)
    dims = {b: boxcount(z, sizes=[2, 3, 4, 6, 8, 16], offsets=3, backend=b).dimension for b in CPU_BACKENDS}
    assert max(dims.values()) - min(dims.values()) < 1e-12


def test_offsets_and_non_dyadic_sizes_are_consistent():
    z = fbm_surface(256, 0.5, seed=5)
    one = boxcount(z, sizes=[4, 8, 16, 32])
    pooled = boxcount(z, sizes=[4, 6, 8, 12, 16, 24, 32], offsets=4, fit_range=(4, 32))
    assert pooled.dimension == pytest.approx(one.dimension, abs=0.05)


# ---- the result object and input checks ------------------------------------------------

def test_result_fit_range_dict_and_plot():
    import matplotlib

    matplotlib.use("Agg")
    r = boxcount(sierpinski_carpet(4), kind="set", sizes=[1, 3, 9, 27], fit_range=(3, 27))
    assert r.fit_range == (3.0, 27.0) and r.fitted.tolist() == [False, True, True, True]
    d = json.loads(json.dumps(r.to_dict()))
    assert d["dimension"] == pytest.approx(CARPET) and d["kind"] == "set"
    assert len(d["log_sizes"]) == len(d["log_counts"]) == 4
    ax = r.plot()
    assert ax.get_xlabel() == "log box size"


def test_nan_is_rejected_with_a_clear_error():
    z = fbm_surface(32, 0.5, seed=0)
    z[5, 7] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        boxcount(z)
    with pytest.raises(ValueError, match="NaN"):
        boxcount(z, kind="set", level=0.0)
    z[5, 7] = np.inf
    with pytest.raises(ValueError, match="infinite"):
        boxcount(z)


def test_bad_input():
    z = np.zeros((32, 32))
    with pytest.raises(ValueError, match="kind"):
        boxcount(z, kind="volume")
    with pytest.raises(ValueError, match="method"):
        boxcount(z, method="morton")
    with pytest.raises(ValueError, match="2-D"):
        boxcount(np.zeros(10))
    with pytest.raises(ValueError, match="shorter side"):
        boxcount(z, sizes=[2, 64])
    with pytest.raises(ValueError, match="fit_range"):
        boxcount(z, sizes=[2, 4, 8], fit_range=(3, 5))
    with pytest.raises(ValueError, match="0/1"):
        boxcount(z + 2.0, kind="set")
    with pytest.raises(ValueError, match="offsets"):
        boxcount(z, offsets=0)
    with pytest.raises(ValueError, match=r"\(m, d\)"):
        boxcount(np.zeros(5), kind="points")
    with pytest.raises(ValueError, match="coincide"):
        boxcount(np.zeros((5, 2)), kind="points")
    with pytest.raises(ValueError, match="finite"):
        boxcount(np.array([[0.0, 1.0], [np.nan, 2.0]]), kind="points")


def test_public_api():
    assert "boxcount" in pe.__all__ and "BoxCountResult" in pe.__all__
    assert pe.boxcount is boxcount


def test_level_set_cells():
    z = np.array([[0.0, 1.0, 2.0], [0.0, 1.0, 2.0]])
    assert level_set(z, 1.5).tolist() == [[False, True]]
