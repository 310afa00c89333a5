"""Variogram and madogram dimension (pyengine.fractal.variogram) and its fBm standard error."""

import json

import numpy as np
import pytest

import pyengine.fractal as fractal
from pyengine.fractal import VariogramResult, fbm_variance, variogram_dimension
from pyengine.fractal.variogram import power_variogram
from pyengine.models.surfaces import fbm_surface_exact
from pyengine.reference import variogram as ref


def reference_dimension(z, lags, p):
    """D = d + 1 - slope / p of the least-squares line through the plain log V̂_p(t)."""
    slope = np.polyfit(np.log(lags), np.log(ref.power_variogram(z, lags, p)), 1)[0]
    return np.ndim(z) + 1 - slope / p


# ---- the estimate against the plain reference ---------------------------------------------

@pytest.mark.parametrize("shape", [(9, 13), (5, 5), (3, 40), (17,)])
@pytest.mark.parametrize("p", [1, 2])
@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.int64])
def test_estimate_matches_reference(shape, p, dtype, rng):
    z = (rng.standard_normal(shape) * 10).cumsum(-1).astype(dtype)
    lags = np.arange(1, min(min(shape), 5))
    values, pairs = power_variogram(np.asarray(z, np.float64), lags, p)
    np.testing.assert_allclose(values, ref.power_variogram(z, lags, p), rtol=1e-13)
    r = variogram_dimension(z, p=p, lags=lags)
    assert r.dimension == pytest.approx(reference_dimension(z, lags, p), abs=1e-12)
    assert r.kind == ("surface" if len(shape) == 2 else "curve")
    assert pairs[0] == (shape[0] * (shape[1] - 1) + (shape[0] - 1) * shape[1] if len(shape) == 2 else shape[0] - 1)


# ---- known answers --------------------------------------------------------------------------

@pytest.mark.parametrize("p", [1, 2])
def test_planes_and_lines_are_smooth(p):
    plane = np.add.outer(0.5 * np.arange(30.0), -3.0 * np.arange(45.0))  # anisotropic slopes
    r = variogram_dimension(plane, p=p, lags=(1, 2, 3))
    assert r.dimension == pytest.approx(2.0, abs=1e-12) and r.hurst == pytest.approx(1.0, abs=1e-12)
    assert variogram_dimension(np.linspace(-1.0, 4.0, 50), p=p).dimension == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("p", [1, 2])
def test_white_noise_curve_has_dimension_two(p, rng):
    # Independent values: V_p(t) does not depend on t, so H = 0 and D = 2 for a curve.
    r = variogram_dimension(rng.standard_normal(200_000), p=p)
    assert r.dimension == pytest.approx(2.0, abs=4 * r.dimension_se + 1e-3)


@pytest.mark.parametrize("p", [1, 2])
def test_scale_and_shift_invariance(p):
    z = fbm_surface_exact(64, 0.4, seed=2)
    want = variogram_dimension(z, p=p)
    for k in (-1000, -500, 500, 1000):  # z * 2**k is exact, so everything but log V is identical
        got = variogram_dimension(np.ldexp(z, k), p=p)
        assert got.dimension == want.dimension and got.dimension_se == want.dimension_se
        np.testing.assert_allclose(got.log_values - want.log_values, p * k * np.log(2.0), rtol=1e-12)
    for zz in (z * 1e300, z * 1e-300, z / np.abs(z).max() * 1.7e308, np.round(z * 2**20) / 2**20 + 2.0**30):
        assert variogram_dimension(zz, p=p).dimension == pytest.approx(want.dimension, abs=1e-6)


@pytest.mark.parametrize("hurst", [0.2, 0.3, 0.5, 0.8])
@pytest.mark.parametrize("p", [1, 2])
def test_exact_fbm_surfaces_256(hurst, p):
    r = variogram_dimension(fbm_surface_exact(256, hurst, seed=5), p=p)
    assert abs(r.dimension - (3 - hurst)) < 4 * r.dimension_se
    assert r.dimension_se < (0.04 if hurst > 0.75 else 0.01)
    assert r.hurst == pytest.approx(3 - r.dimension) and r.hurst_se == r.dimension_se


@pytest.mark.slow
@pytest.mark.parametrize("hurst", [0.2, 0.3, 0.5, 0.8])
def test_exact_fbm_surfaces_1024_within_target(hurst):
    # The target: within ±0.05 on 1024² grids (measured errors: docs/fractal.md).
    z = fbm_surface_exact(1024, hurst, seed=11)
    for p in (1, 2):
        r = variogram_dimension(z, p=p)
        assert abs(r.dimension - (3 - hurst)) < 0.05
        assert abs(r.dimension - (3 - hurst)) < 4 * r.dimension_se


# ---- the standard error ----------------------------------------------------------------------

@pytest.mark.parametrize("shape, lags", [((7, 9), [1, 2, 3]), ((1, 30), [1, 2, 5]), ((12, 12), [1, 2]),
                                         ((3, 11), [1, 2])])
@pytest.mark.parametrize("hurst", [0.1, 0.5, 0.8, 0.99])
@pytest.mark.parametrize("p", [1, 2])
def test_covariance_matches_the_full_covariance_matrix(shape, lags, hurst, p):
    got = fbm_variance.log_variogram_cov(shape, lags, p, hurst)
    want = ref.log_variogram_cov(shape, lags, p, hurst)
    np.testing.assert_allclose(got, want, rtol=1e-11, atol=1e-14 * np.abs(want).max())


@pytest.mark.parametrize("hurst", [0.2, 0.5, 0.8])
@pytest.mark.parametrize("p", [1, 2])
def test_tiled_offsets_match_the_exact_sum(monkeypatch, hurst, p):
    exact = fbm_variance.log_variogram_cov((300, 220), [1, 2, 3], p, hurst)
    monkeypatch.setattr(fbm_variance, "NODES", 201)
    monkeypatch.setattr(fbm_variance, "INNER", 32)
    tiled = fbm_variance.log_variogram_cov((300, 220), [1, 2, 3], p, hurst)
    assert fbm_variance._axis_tiles(300)[0].size <= 201  # tiles of 4 offsets beyond 32
    np.testing.assert_allclose(tiled, exact, rtol=2e-3)


@pytest.mark.slow
@pytest.mark.parametrize("hurst", [0.2, 0.5, 0.8])
def test_default_tiles_on_1024(monkeypatch, hurst):
    tiled = fbm_variance.log_variogram_cov((1024, 1024), [1, 2], 1, hurst)
    monkeypatch.setattr(fbm_variance, "NODES", 4096)
    np.testing.assert_allclose(tiled, fbm_variance.log_variogram_cov((1024, 1024), [1, 2], 1, hurst), rtol=1e-3)


@pytest.mark.parametrize("hurst", [0.3, 0.8])
@pytest.mark.parametrize("p", [1, 2])
def test_standard_error_matches_the_spread_over_surfaces(hurst, p):
    # 200 independent 64² surfaces: the SD of the estimates is known to about 5 %.
    results = [variogram_dimension(z, p=p) for z in fbm_surface_exact(64, hurst, size=200, seed=7)]
    spread = np.std([r.dimension for r in results], ddof=1)
    reported = np.mean([r.dimension_se for r in results])
    assert 0.8 < spread / reported < 1.25


@pytest.mark.slow
@pytest.mark.parametrize("hurst", [0.2, 0.3, 0.5, 0.8])
def test_standard_error_matches_the_spread_256(hurst):
    results = [variogram_dimension(z, p=1) for z in fbm_surface_exact(256, hurst, size=60, seed=8)]
    spread = np.std([r.dimension for r in results], ddof=1)
    assert 0.7 < spread / np.mean([r.dimension_se for r in results]) < 1.4


# ---- the result and input checks -------------------------------------------------------------

def test_result_dict_and_plot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    r = variogram_dimension(fbm_surface_exact(32, 0.5, seed=0), p=1, lags=[4, 1, 2])
    assert isinstance(r, VariogramResult) and r.method == "madogram" and "surface" in r.label
    assert r.lags.tolist() == [1, 2, 4] and r.fit_range == (1.0, 4.0)
    d = json.loads(json.dumps(r.to_dict(), allow_nan=False))
    assert d["dimension"] == pytest.approx(r.dimension) and d["dimension_se"] > 0 and len(d["log_values"]) == 3
    ax = r.plot()
    assert ax.get_xlabel() == "log lag (grid cells)" and "±" in ax.get_legend().get_texts()[1].get_text()
    plt.close(ax.figure)


def test_bad_input():
    z = fbm_surface_exact(16, 0.5, seed=0)
    with pytest.raises(ValueError, match="p must be"):
        variogram_dimension(z, p=3)
    for lags in ([1], [1, 1], [0, 1]):
        with pytest.raises(ValueError, match="lags"):
            variogram_dimension(z, lags=lags)
    with pytest.raises(TypeError, match="lags"):
        variogram_dimension(z, lags=[1.0, 2.0])
    with pytest.raises(ValueError, match="smaller than every side"):
        variogram_dimension(z[:2], lags=(1, 2))
    with pytest.raises(ValueError, match="shape"):
        variogram_dimension(np.zeros((4, 4, 4)))
    with pytest.raises(TypeError, match="dtype"):
        variogram_dimension(z.astype(complex))
    bad = z.copy()
    bad[3, 4] = np.nan
    with pytest.raises(ValueError, match="NaN or infinite"):
        variogram_dimension(bad)
    bad[3, 4] = np.inf
    with pytest.raises(ValueError, match="NaN or infinite"):
        variogram_dimension(bad)
    with pytest.raises(ValueError, match="undefined"):
        variogram_dimension(np.full((8, 8), 2.0))
    checker = np.indices((8, 8)).sum(axis=0) % 2 * 1.0  # repeats itself at lag 2
    with pytest.raises(ValueError, match=r"lag\(s\) \[2\]"):
        variogram_dimension(checker)


def test_public_names():
    assert fractal.variogram_dimension is variogram_dimension
    assert "variogram_dimension" in fractal.__all__ and "VariogramResult" in fractal.__all__
