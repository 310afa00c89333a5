"""Exact fractional Brownian surfaces (pyengine.models.surfaces, Stein 2002) against their known law."""

import numpy as np
import pytest
import scipy.fft

from pyengine.models import surfaces
from pyengine.models.surfaces import fbm_surface_exact, stein_constants, stein_covariance, stein_embedding

HURSTS = [0.05, 0.2, 0.3, 0.5, 0.7, 0.75, 0.76, 0.8, 0.95]


@pytest.mark.parametrize("hurst", HURSTS)
def test_stein_covariance_gives_the_fbm_variogram_inside_radius_one(hurst):
    # Var(Z(u) - Z(v)) + Var(plane) = 2 (c(0) - c(r)) + 2 c2 r^2 must be 2 r^(2H) for r <= 1.
    r = np.linspace(0.0, 1.0, 101)
    c2 = stein_constants(hurst)[2]
    c = stein_covariance(r, hurst)
    np.testing.assert_allclose(2 * (c[0] - c) + 2 * c2 * r**2, 2 * r ** (2 * hurst), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("hurst", HURSTS)
def test_stein_covariance_is_smooth_at_the_joins_and_vanishes_beyond_r(hurst):
    radius = stein_constants(hurst)[0]
    eps = 1e-6
    left, right = stein_covariance([1 - 2 * eps, 1 - eps, 1.0], hurst), stein_covariance([1.0, 1 + eps, 1 + 2 * eps], hurst)
    assert left[2] == pytest.approx(right[0], abs=1e-12)
    assert (left[2] - left[1]) / eps == pytest.approx((right[1] - right[0]) / eps, abs=1e-4)  # c' continuous
    assert abs(stein_covariance([radius], hurst)[0]) < 1e-15  # c(R) = 0 up to rounding
    assert np.all(stein_covariance([radius + 1e-9, radius + 0.5, 10.0], hurst) == 0.0)


@pytest.mark.parametrize("hurst", HURSTS)
@pytest.mark.parametrize("shape", [(16, 16), (9, 23), (2, 40)])
def test_embedding_is_non_negative_and_reproduces_c_on_the_grid(hurst, shape):
    emb = stein_embedding(shape, hurst)
    eig = emb.root**2 * emb.root.size
    first_row = scipy.fft.ifft2(eig).real  # the periodised covariance the samples have
    dy, dx = np.mgrid[0 : shape[0], -(shape[1] - 1) : shape[1]]
    want = stein_covariance(emb.spacing * np.hypot(dy, dx), hurst)
    np.testing.assert_allclose(first_row[dy, dx], want, atol=1e-12 * eig.max())


@pytest.mark.parametrize("hurst", [0.2, 0.5, 0.8])
def test_samples_have_the_fbm_variogram_between_every_pair_of_points(hurst):
    n = 4000
    z = fbm_surface_exact((6, 7), hurst, sigma=2.0, size=n, seed=1)
    assert np.all(z[:, 0, 0] == 0.0)
    flat = z.reshape(n, -1)
    yy, xx = np.divmod(np.arange(flat.shape[1]), 7)
    iu, iv = np.triu_indices(flat.shape[1], k=1)
    truth = 4.0 * np.hypot(yy[iu] - yy[iv], xx[iu] - xx[iv]) ** (2 * hurst)
    measured = np.mean((flat[:, iu] - flat[:, iv]) ** 2, axis=0)
    # each is a mean of n squared Gaussians: relative SE sqrt(2 / n) = 2.2 %
    assert np.abs(measured / truth - 1).max() < 5 * np.sqrt(2 / n)


def test_sigma_seed_size_and_shape():
    one = fbm_surface_exact(12, 0.4, seed=3)
    assert one.shape == (12, 12) and one.dtype == np.float64
    np.testing.assert_array_equal(fbm_surface_exact(12, 0.4, size=3, seed=3)[0], one)
    np.testing.assert_allclose(fbm_surface_exact(12, 0.4, sigma=3.0, seed=3), 3 * one, rtol=1e-15)
    pair = fbm_surface_exact((5, 9), 0.4, size=2, seed=0)
    assert pair.shape == (2, 5, 9) and not np.allclose(pair[0], pair[1])
    assert np.all(fbm_surface_exact(8, 0.4, sigma=0.0, seed=1) == 0.0)


def test_bad_input():
    with pytest.raises(ValueError, match="hurst"):
        fbm_surface_exact(8, 1.0)
    with pytest.raises(ValueError, match="hurst"):
        fbm_surface_exact(8, 0.0)
    with pytest.raises(ValueError, match=">= 2"):
        fbm_surface_exact((1, 8), 0.5)
    with pytest.raises(ValueError, match=r"\(ny, nx\)"):
        fbm_surface_exact((4, 4, 4), 0.5)
    with pytest.raises(ValueError, match="size"):
        fbm_surface_exact(8, 0.5, size=0)
    with pytest.raises(ValueError, match=r"\(ny, nx\)"):
        fbm_surface_exact(8.0, 0.5)
    with pytest.raises(TypeError, match="shape"):
        fbm_surface_exact((8, 2.5), 0.5)
    with pytest.raises(ValueError, match="sigma"):
        fbm_surface_exact(8, 0.5, sigma=-1.0)


def test_negative_eigenvalues_are_refused(monkeypatch):
    # Never happens for Stein's covariance; a covariance that is not positive definite must not
    # be sampled silently (c(r) = 1 - r on the torus of a 2-D grid has negative eigenvalues).
    monkeypatch.setattr(surfaces, "stein_covariance", lambda r, hurst: np.clip(1.0 - 3.0 * r, -1.0, None))
    with pytest.raises(RuntimeError, match="non-negative"):
        stein_embedding((16, 16), 0.5)
