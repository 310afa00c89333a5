"""Tail index of weight increments: the permuted protocol measures tails, not drift or memory.

Data of the default sample's size (T = 1000 increments × k = 256 coordinates; K1 = 500 by
the √K rule), fixed seeds. Each target: |α̂ − α| <= 0.1 (the spread over 20 seeds is
about 0.02–0.03; docs/heavytail.md has the table).
"""

import json

import numpy as np
import pytest
from scipy.signal import lfilter

import pyengine as pe
from pyengine import models
from pyengine.heavytail import IncrementTailIndex, increment_tail_index, tail_index
from pyengine.heavytail.increments import standardise

T, K = 1000, 256


def gaussian_ar1(phi: float, seed: int) -> np.ndarray:
    """Stationary AR(1) increments x(t) = φ x(t−1) + ε(t) of unit variance, shape (T, K)."""
    eps = np.random.default_rng(seed).standard_normal((T, K)) * np.sqrt(1 - phi**2)
    eps[0] /= np.sqrt(1 - phi**2)  # start in the stationary law
    return lfilter([1.0], [1.0, -phi], eps, axis=0)


def stable(alpha: float, seed: int) -> np.ndarray:
    """I.i.d. standard symmetric α-stable increments, shape (T, K)."""
    return models.stable_samples(T * K, alpha, seed=seed).reshape(T, K)


def drift_and_spread(x: np.ndarray, drift: float, seed: int) -> np.ndarray:
    """Add a drift of ±drift scales to each coordinate, then scales log-uniform over 3 decades."""
    rng = np.random.default_rng(seed + 1000)
    return (x + drift * rng.choice([-1.0, 1.0], K)) * 10 ** rng.uniform(-3, 0, K)


@pytest.mark.parametrize("phi", [0.5, 0.9])
def test_gaussian_memory_does_not_lower_alpha(phi):
    r = increment_tail_index(gaussian_ar1(phi, seed=1))
    assert abs(r.alpha - 2) <= 0.1, r.alpha
    assert r.k1.tolist() == [500] and r.n_groups.tolist() == [512] and r.grouping == "permuted"


@pytest.mark.parametrize("drift", [0.05, 0.2, 0.5])
def test_gaussian_drift_and_scale_spread_do_not_lower_alpha(drift):
    r = increment_tail_index(drift_and_spread(gaussian_ar1(0.0, seed=2), drift, seed=2))
    assert abs(r.alpha - 2) <= 0.1, r.alpha


def test_gaussian_all_at_once():
    r = increment_tail_index(drift_and_spread(gaussian_ar1(0.9, seed=3), 0.5, seed=3))
    assert abs(r.alpha - 2) <= 0.1, r.alpha


@pytest.mark.parametrize("alpha", [1.2, 1.5, 1.8])
@pytest.mark.parametrize("drift", [0.0, 0.5])
def test_stable_alpha_is_recovered_with_drift_and_scale_spread(alpha, drift):
    r = increment_tail_index(drift_and_spread(stable(alpha, seed=4), drift, seed=4))
    assert abs(r.alpha - alpha) <= 0.1, r.alpha


def test_displacement_grouping_measures_drift_and_memory():
    """The old grouping is kept under a name that says what it measures: K1-step displacements."""
    drifting = gaussian_ar1(0.0, seed=5) + 0.2
    old = increment_tail_index(drifting, grouping="displacement")
    assert old.alpha < 1.4, old.alpha  # ≈ 1.2: the drift K1·μ dominates every group
    assert old.alpha == pytest.approx(tail_index(drifting).alpha, rel=1e-12)  # exactly the old behaviour
    assert increment_tail_index(gaussian_ar1(0.9, seed=5), grouping="displacement").alpha < 1.6  # ≈ 1.36
    assert abs(increment_tail_index(drifting).alpha - 2) <= 0.1


def test_drift_and_scale_are_removed_exactly():
    x = gaussian_ar1(0.5, seed=6)[:301, :40]  # odd T: each coordinate's median value becomes a zero
    a, b = np.geomspace(1e-4, 10.0, 40), np.linspace(-3.0, 3.0, 40)
    plain, moved = increment_tail_index(x, k1=[10, 30]), increment_tail_index(a * x + b, k1=[10, 30])
    np.testing.assert_allclose(moved.alpha_by_k1, plain.alpha_by_k1, rtol=1e-9)
    assert plain.n_zero == 40 and plain.n_used == 301 * 40 - 40


def test_standardise_against_a_loop(rng):
    x = rng.standard_cauchy((51, 7))
    x[3, 2], x[10, 4] = np.nan, np.inf
    z, kept = standardise(x)
    for j in range(7):
        col = x[:, j][np.isfinite(x[:, j])]
        med = np.median(col)
        want = (x[:, j] - med) / np.median(np.abs(col - med))
        np.testing.assert_allclose(z[:, j][np.isfinite(x[:, j])], want[np.isfinite(x[:, j])], rtol=1e-12)
    assert kept.all() and np.isnan(z[3, 2]) and np.isnan(z[10, 4])


def test_flat_and_nonfinite_coordinates_are_dropped_and_counted(rng):
    x = rng.standard_normal((400, 20))
    x[:, 3] = 0.0  # never moves
    x[:250, 7] = 1e-3  # more than half its increments equal: zero MAD
    x[:, 11] = np.nan  # nothing finite
    x[5, 0] = np.inf
    r = increment_tail_index(x)
    assert (r.n_coords, r.n_flat, r.n_nonfinite) == (17, 3, 401)
    assert r.n_used + r.n_zero == 17 * 400 - 1


def test_seed_makes_the_permutation_reproducible():
    x = stable(1.5, seed=7)
    a, b, c = (increment_tail_index(x, seed=s) for s in (3, 3, 4))
    assert a.alpha == b.alpha and a.seed == 3 and a.alpha != c.alpha
    assert abs(a.alpha - c.alpha) < 0.1


def test_bad_input():
    x = np.random.default_rng(0).standard_normal((100, 4))
    with pytest.raises(ValueError, match="2-D"):
        increment_tail_index(x[:, 0])
    with pytest.raises(ValueError, match="grouping"):
        increment_tail_index(x, grouping="time")
    with pytest.raises(TypeError, match="seed"):
        increment_tail_index(x, seed=1.5)
    with pytest.raises(ValueError, match="seed"):
        increment_tail_index(x, seed=-1)
    with pytest.raises(ValueError, match="4 of 4 coordinates"):
        increment_tail_index(np.ones((100, 4)))


def test_increment_tails_uses_the_protocol_by_default():
    steps = (gaussian_ar1(0.9, seed=8)[:, :64] + 0.3) * np.geomspace(1e-3, 1, 64)  # drift 0.3σ, 3 decades
    w = np.vstack([np.zeros((1, 64)), np.cumsum(steps, axis=0)])  # 1001 snapshots
    res = pe.increment_tails(w, window=500, stable=False, seed=2)
    assert isinstance(res.tail[0], IncrementTailIndex) and res.grouping == "permuted" and res.seed == 2
    assert np.all(np.abs(res.alpha - 2) <= 0.15), res.alpha  # 500 × 64 values per window
    d = json.loads(res.to_json())
    assert d["grouping"] == "permuted" and d["seed"] == 2 and d["tail"][0]["n_flat"] == 0
    old = pe.increment_tails(w, window=500, stable=False, grouping="displacement")
    assert old.grouping == "displacement" and np.all(old.alpha < 1.6), old.alpha
    for got, sample in zip(old.tail, old.samples):
        assert got.alpha == pytest.approx(tail_index(sample).alpha, rel=1e-12)  # threads may sum in another order
    with pytest.raises(ValueError, match="grouping"):
        pe.increment_tails(w, window=500, grouping="time")
