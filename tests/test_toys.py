"""Toy models (pyengine.toys): mechanics fast, headline numbers under --runslow."""

import numpy as np
import pytest

import pyengine as pe
from pyengine.toys import (DoubleWell, escape_times, fractal_landscape, kappa_continuum, kappa_discrete, kappa_ito,
                           levy_escape_time, paraboloid, select_start, shuffled_landscape, simulate_power_law,
                           simulate_sgd, simulate_well, valley_fraction, valley_ratio)


def test_gradient_is_central_difference_interpolated():
    land = paraboloid(64, curvature=2.0)
    w = np.array([[0.3, 0.7], [0.55, 0.41]])
    np.testing.assert_allclose(land.gradient(w), 2.0 * (w - 0.5), atol=1e-12)
    with pytest.raises(ValueError, match=r"\(\.\.\., 2\)"):
        land.gradient(np.zeros(3))


def test_fractal_landscape_is_periodic_and_checked():
    land = fractal_landscape(64, dimension=1.5, amplitude=0.1, seed=1)
    w = np.array([0.123, 0.456])
    np.testing.assert_allclose(land.gradient(w), land.gradient(w + [1.0, -2.0]), atol=1e-12)
    assert shuffled_landscape(land).height.std() < 0.1 * land.height.std()
    with pytest.raises(ValueError, match="dimension"):
        fractal_landscape(64, dimension=2.5)


def test_paraboloid_msd_exponent_is_ballistic():
    run = simulate_sgd(paraboloid(128, curvature=0.2), [0.75, 0.5], eta=0.005, sigma=0.02, steps=1000, trials=2)
    fit = pe.fit_diffusion(pe.msd(run.trial(0), window=None))
    assert abs(fit.alpha[0] - 2.0) < 0.15


def test_select_start_returns_a_point_that_descends():
    land = fractal_landscape(256, dimension=1.3, amplitude=0.06, seed=0)
    start = select_start(land, candidates=64, steps=400, seed=0)
    if start is not None:
        assert land(start) > land(land.minimum())


def test_double_well_valley_fraction_small_run():
    well = DoubleWell(-1.0, 2.0)
    pred = valley_ratio(well, 1.5)
    start = np.where(np.arange(200) < 200 * pred / (1 + pred), 2.0, -1.0)
    frac = valley_fraction(simulate_well(well, 1.5, 0.2, 0.02, 10_000, 200, start=start, seed=5), 500)
    assert abs(frac / (1 - frac) - pred) / pred < 0.25


def test_double_well_checks_and_levy_escape():
    with pytest.raises(ValueError, match="m1 < 0 < m2"):
        DoubleWell(1.0, 2.0)
    well = DoubleWell(-1, 2)  # integer minima are fine
    t = escape_times(well, 1.5, 0.5, eta=0.02, chains=100, seed=1)
    assert abs(t.mean() / levy_escape_time(well, 1.5, 0.5) - 1) < 0.4


def test_power_law_kappa_small_run():
    from pyengine.heavytail.kappa import fit_kappa

    w = simulate_power_law(1.0, 0.05, 1.0, 10.0, chains=2000, steps=600, burn_in=200, thin=20, seed=0)
    fit = fit_kappa(w.ravel())
    assert kappa_continuum(1.0, 0.05, 10.0) == 2.0 and kappa_ito(1.0, 0.05, 10.0) == 3.0
    assert abs(fit.kappa - kappa_discrete(1.0, 0.05, 10.0)) < 0.3


@pytest.mark.slow
def test_power_law_kappa_headline():
    from pyengine.heavytail.kappa import fit_kappa

    fit = fit_kappa(simulate_power_law(chains=10_000, seed=0).ravel())
    assert fit.ci[0] - 0.02 < kappa_discrete(1.0, 0.05, 10.0) < fit.ci[1] + 0.02


@pytest.mark.slow
def test_double_well_headlines():
    well = DoubleWell(-1.0, 2.0)
    eps = np.array([0.1, 0.2, 0.5])
    t = np.array([escape_times(well, 1.5, e, 0.02, 200, seed=1).mean() for e in eps])
    assert -1.9 < np.polyfit(np.log(eps), np.log(t), 1)[0] < -1.3  # polynomial, exponent ≈ −α
    eps_b = np.array([0.3, 0.4, 0.6])
    tb = np.array([escape_times(well, 2.0, e, 0.02, 200, seed=2).mean() for e in eps_b])
    assert abs(np.polyfit(1 / eps_b**2, np.log(tb), 1)[0] - well.barrier(1)) < 0.08  # exponential in ΔH/ε²
    pred = valley_ratio(well, 1.5)
    start = np.where(np.arange(200) < 200 * pred / (1 + pred), 2.0, -1.0)
    frac = valley_fraction(simulate_well(well, 1.5, 0.2, 0.02, 50_000, 200, start=start, seed=5), 1000)
    assert abs(frac / (1 - frac) - pred) / pred < 0.15


@pytest.mark.slow
def test_fractal_landscape_headlines():
    """Super-diffusion on the way down, sub-diffusion after entering the wide minimum
    (Chen et al. Fig. 8(b)); defaults D = 1.05, amplitude 0.01, η = 0.005, σ = 0.02."""
    land = fractal_landscape(512, seed=2)
    start = select_start(land, 0.005, 0.02, 1000, seed=2)
    assert start is not None
    run = simulate_sgd(land, start, 0.005, 0.02, 1000, 10, seed=1003)
    inside = land.distance(run.positions, land.minimum()) < 0.02
    first = np.where(inside.any(axis=0), np.argmax(inside, axis=0), -1)
    assert (first >= 100).sum() >= 8
    before, after = [], []
    for k in np.flatnonzero(first >= 100):
        alpha = pe.fit_diffusion(pe.msd(run.trial(k), window=100)).alpha
        t_w = np.arange(alpha.size) * 100
        before.append(np.mean(alpha[t_w + 100 <= first[k]]))
        after.append(np.mean(alpha[t_w >= first[k]]))
    before, after = np.array(before), np.array(after)
    assert (before > 1).mean() >= 0.8 and np.mean(before) > 1.3  # superdiffusive before the minimum
    assert (after < 1).all() and np.mean(after) < 0.6  # subdiffusive in it
