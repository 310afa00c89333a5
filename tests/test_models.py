"""Synthetic trajectories against their known answers (pyengine.models)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats

from pyengine import models
from pyengine.models import _common


def time_averaged_msd(x: np.ndarray, lags) -> np.ndarray:
    """Plain float64 time- and coordinate-summed MSD: mean_t ‖x(t+τ) − x(t)‖²."""
    x = np.asarray(x, dtype=np.float64)
    return np.array([np.mean(np.sum((x[k:] - x[:-k]) ** 2, axis=1)) for k in lags])


def loglog_slope(lags, values) -> float:
    return float(np.polyfit(np.log(lags), np.log(values), 1)[0])


def binomial_cdf_check(samples: np.ndarray, quantiles: np.ndarray, probs: np.ndarray, z: float = 4.5) -> None:
    """The fraction of samples below each true quantile q_p equals p within z binomial SEs."""
    n = samples.size
    frac = np.array([np.mean(samples <= q) for q in quantiles])
    tol = z * np.sqrt(probs * (1 - probs) / n)
    assert np.all(np.abs(frac - probs) <= tol), (frac, probs, tol)


# --- Brownian ----------------------------------------------------------------------------


def test_brownian_msd_is_linear_with_known_prefactor():
    lags = np.array([1, 4, 16, 64])
    x = models.brownian(2048, 256, sigma=0.3, seed=1)
    ratio = time_averaged_msd(x, lags) / models.expected_msd("brownian", lags, n_params=256, sigma=0.3)
    assert np.all(np.abs(ratio - 1) < 0.03), ratio


def test_brownian_starts_at_x0_and_keeps_small_steps_under_a_large_offset():
    free = models.brownian(300, 50, sigma=1e-3, seed=3)
    offset = models.brownian(300, 50, sigma=1e-3, x0=1e3, dtype=np.float32, seed=3)
    assert offset.dtype == np.float32
    np.testing.assert_array_equal(offset[0], np.float32(1e3))
    # one float32 rounding of 1e3 + x: half an ulp of 1e3 is 3.05e-5
    np.testing.assert_allclose(offset.astype(np.float64) - 1e3, free, rtol=0, atol=3.1e-5)


def test_array_x0_is_the_first_row():
    x0 = np.linspace(-1, 1, 7)
    for name, kw in [("brownian", {}), ("fbm", {"hurst": 0.7}), ("levy_flight", {"alpha": 1.2}),
                     ("ctrw", {"waiting_alpha": 0.5}), ("ballistic", {})]:
        np.testing.assert_array_equal(models.GENERATORS[name](20, 7, x0=x0, seed=0, **kw)[0], x0)


# --- fractional Brownian motion ----------------------------------------------------------


@pytest.mark.parametrize("hurst", [0.3, 0.5, 0.8])
def test_fbm_increment_variance_scales_as_tau_to_2h(hurst):
    lags = np.unique(np.logspace(0, 8, 17, base=2).astype(int))
    x = models.fbm(4096, 64, hurst, sigma=0.5, seed=11)
    msd = time_averaged_msd(x, lags)
    assert abs(loglog_slope(lags, msd) - 2 * hurst) < 0.03
    # the prefactor, where the time average is still precise (long memory widens it later)
    ratio = msd / models.expected_msd("fbm", lags, n_params=64, hurst=hurst, sigma=0.5)
    assert np.all(np.abs(ratio[lags <= 16] - 1) < 0.07), ratio


@pytest.mark.parametrize("hurst, atol", [(0.3, 0.012), (0.8, 0.035)])  # long memory: wider spread
def test_fbm_increments_have_the_fgn_autocovariance(hurst, atol):
    x = models.fbm(4096, 64, hurst, seed=5)
    dx = np.diff(x, axis=0)
    k = np.arange(6)
    measured = np.array([np.mean(dx[j:] * dx[: len(dx) - j]) for j in k])
    exact = 0.5 * ((k + 1.0) ** (2 * hurst) - 2 * k ** (2 * hurst) + np.abs(k - 1.0) ** (2 * hurst))
    np.testing.assert_allclose(measured, exact, atol=atol)


def test_fbm_odd_width_and_multi_chunk_path(monkeypatch):
    monkeypatch.setattr(_common, "CHUNK_BYTES", 48 * 512 * 3)  # 3 columns -> 2 per chunk
    x = models.fbm(512, 41, 0.3, seed=2)
    assert x.shape == (512, 41) and np.all(np.isfinite(x))
    # columns from different chunks and from real / imaginary parts are uncorrelated
    dx = np.diff(x, axis=0)
    corr = np.corrcoef(dx.T)[np.triu_indices(41, 1)]
    assert np.max(np.abs(corr)) < 5 / math.sqrt(511)
    assert abs(np.var(dx) - 1) < 0.05


def test_fbm_with_one_step_is_the_start():
    np.testing.assert_array_equal(models.fbm(1, 3, 0.4, x0=2.0), np.full((1, 3), 2.0))


# --- ballistic ---------------------------------------------------------------------------


def test_ballistic_msd_is_exact():
    lags = np.array([1, 3, 10, 99])
    x = models.ballistic(200, 33, speed=0.7, x0=5.0, seed=4)
    expected = models.expected_msd("ballistic", lags, speed=0.7)
    np.testing.assert_allclose(time_averaged_msd(x, lags), expected, rtol=1e-10)
    np.testing.assert_allclose(np.linalg.norm(np.diff(x, axis=0), axis=1), 0.7, rtol=1e-10)


# --- α-stable samples and Lévy flights ---------------------------------------------------

PROBS = np.array([0.02, 0.1, 0.25, 0.4, 0.5, 0.6, 0.75, 0.9, 0.98])


@pytest.mark.parametrize("alpha", [0.8, 1.0, 1.5, 1.9])
def test_stable_samples_match_scipy_quantiles(alpha):
    x = models.stable_samples(200_000, alpha, scale=1.5, seed=int(alpha * 10))
    binomial_cdf_check(x, stats.levy_stable.ppf(PROBS, alpha, 0.0, scale=1.5), PROBS)


@pytest.mark.parametrize("alpha, beta", [(1.5, 0.5), (0.7, -0.8), (1.0, 0.5)])
def test_skewed_stable_samples_match_scipy_s1(alpha, beta):
    x = models.stable_samples(200_000, alpha, beta=beta, scale=2.0, loc=1.0, seed=9)
    binomial_cdf_check(x, stats.levy_stable.ppf(PROBS, alpha, beta, loc=1.0, scale=2.0), PROBS)


def test_alpha_two_is_gaussian_with_variance_two_scale_squared():
    x = models.stable_samples(200_000, 2.0, scale=0.5, loc=-1.0, seed=8)
    binomial_cdf_check(x, stats.norm.ppf(PROBS, loc=-1.0, scale=0.5 * math.sqrt(2)), PROBS)
    assert abs(np.std(x) / (0.5 * math.sqrt(2)) - 1) < 0.01


def test_levy_flight_steps_are_stable_and_self_similar():
    alpha, tau = 1.2, 16
    x = models.levy_flight(4097, 200, alpha, scale=0.5, seed=6)
    steps = np.diff(x, axis=0).ravel()
    binomial_cdf_check(steps, stats.levy_stable.ppf(PROBS, alpha, 0.0, scale=0.5), PROBS)
    # the sum of tau steps is stable with scale 0.5 * tau**(1/alpha)
    jumps = (x[tau::tau] - x[:-tau:tau]).ravel()
    iqr = np.subtract(*np.quantile(jumps, [0.75, 0.25]))
    true_iqr = np.subtract(*stats.levy_stable.ppf([0.75, 0.25], alpha, 0.0, scale=0.5 * tau ** (1 / alpha)))
    assert abs(iqr / true_iqr - 1) < 0.05


def test_levy_flight_with_alpha_two_is_brownian():
    lags = np.array([1, 8, 64])
    x = models.levy_flight(2048, 256, 2.0, scale=0.2, seed=12)
    ratio = time_averaged_msd(x, lags) / models.expected_msd("levy_flight", lags, n_params=256, alpha=2.0, scale=0.2)
    assert np.all(np.abs(ratio - 1) < 0.04), ratio
    assert np.all(np.isinf(models.expected_msd("levy_flight", [1, 2], alpha=1.5)))


# --- CTRW --------------------------------------------------------------------------------


def test_ctrw_is_subdiffusive_with_the_renewal_exponent():
    a = 0.5
    x = models.ctrw(4097, 4000, a, sigma=1.0, seed=13)
    t = np.unique(np.logspace(1, 12, 12, base=2).astype(int))
    ensemble = np.mean((x[t] - x[0]) ** 2, axis=1) * x.shape[1]
    slope = loglog_slope(t[t >= 64], ensemble[t >= 64])
    assert slope < 1 and abs(slope - a) < 0.1, slope
    ratio = ensemble / models.expected_msd("ctrw", t, n_params=4000, waiting_alpha=a)
    assert np.all(np.abs(ratio - 1) < 0.15), ratio


def test_ctrw_jumps_at_most_once_per_step():
    x = models.ctrw(1000, 100, 0.8, sigma=1.0, seed=1)
    moved = np.diff(x, axis=0) != 0
    assert 0 < moved.mean() < 0.5


# --- Ornstein–Uhlenbeck ------------------------------------------------------------------


def test_ou_msd_follows_the_exact_formula_and_saturates():
    theta, sigma = 0.1, 0.5
    lags = np.array([1, 5, 10, 30, 100])
    x = models.ornstein_uhlenbeck(4000, 200, theta=theta, sigma=sigma, x0=3.0, seed=14)
    expected = models.expected_msd("ornstein_uhlenbeck", lags, n_params=200, theta=theta, sigma=sigma)
    ratio = time_averaged_msd(x, lags) / expected
    assert np.all(np.abs(ratio - 1) < 0.05), ratio
    assert abs(expected[-1] / (200 * sigma**2 / theta) - 1) < 1e-4
    assert abs(np.var(x) / (sigma**2 / (2 * theta)) - 1) < 0.05  # stationary from the start


# --- expected_msd ------------------------------------------------------------------------


def test_expected_msd_ignores_generator_only_keywords_and_rejects_others():
    np.testing.assert_allclose(
        models.expected_msd("brownian", [0, 2], n_params=3, sigma=2.0, x0=1e3, dtype=np.float32, seed=1), [0.0, 24.0]
    )
    with pytest.raises(TypeError):
        models.expected_msd("brownian", [1], hurst=0.5)
    with pytest.raises(ValueError, match="model must be one of"):
        models.expected_msd("wiener", [1])
    with pytest.raises(ValueError, match=">= 0"):
        models.expected_msd("brownian", [-1])


# --- seeds, dtypes, chunking -------------------------------------------------------------

CASES = [
    ("brownian", {}),
    ("fbm", {"hurst": 0.3}),
    ("ballistic", {}),
    ("levy_flight", {"alpha": 1.5}),
    ("ctrw", {"waiting_alpha": 0.6}),
    ("ornstein_uhlenbeck", {"theta": 0.2}),
]


@pytest.mark.parametrize("name, kw", CASES)
def test_seeds_are_reproducible_and_dtypes_agree(name, kw):
    gen = models.GENERATORS[name]
    a, b = gen(64, 9, seed=21, **kw), gen(64, 9, seed=21, **kw)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, gen(64, 9, seed=22, **kw))
    single = gen(64, 9, seed=21, dtype=np.float32, **kw)
    assert single.dtype == np.float32
    np.testing.assert_array_equal(single, a.astype(np.float32))


@pytest.mark.parametrize("name, kw", [c for c in CASES if c[0] not in ("fbm", "ctrw")])
def test_row_chunked_generators_do_not_depend_on_the_chunk_size(name, kw, monkeypatch):
    whole = models.GENERATORS[name](100, 5, seed=3, **kw)
    monkeypatch.setattr(_common, "CHUNK_BYTES", 7 * 8 * 5)  # 7 rows per chunk
    np.testing.assert_array_equal(models.GENERATORS[name](100, 5, seed=3, **kw), whole)


def test_ctrw_multi_chunk_path(monkeypatch):
    monkeypatch.setattr(_common, "CHUNK_BYTES", 16 * 200 * 4)  # 4 walkers per chunk
    x = models.ctrw(200, 30, 0.9, seed=0)
    assert x.shape == (200, 30) and np.all(x[0] == 0) and np.all(np.isfinite(x))
    moved = np.any(np.diff(x, axis=0) != 0, axis=0)
    assert all(moved[c : c + 4].any() for c in range(0, 30, 4))


# --- argument checks ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: models.fbm(10, 2, 1.0), r"hurst must be in \(0.0, 1.0\)"),
        (lambda: models.fbm(10, 2, 0.0), r"hurst must be in \(0.0, 1.0\)"),
        (lambda: models.levy_flight(10, 2, 2.5), r"alpha must be in \(0.0, 2.0\]"),
        (lambda: models.stable_samples(10, 0.0), r"alpha must be in \(0.0, 2.0\]"),
        (lambda: models.stable_samples(10, 1.5, beta=1.5), r"beta must be in \[-1.0, 1.0\]"),
        (lambda: models.ctrw(10, 2, 1.0), r"waiting_alpha must be in \(0.0, 1.0\)"),
        (lambda: models.ornstein_uhlenbeck(10, 2, theta=0.0), r"theta must be in \(0.0, inf\)"),
        (lambda: models.brownian(-1, 2), "n_steps must be a positive integer"),
        (lambda: models.ballistic(5, 0), "n_params must be a positive integer"),
        (lambda: models.stable_samples(-3, 1.0), "n must be a positive integer"),
        (lambda: models.brownian(5, 2, sigma=-1.0), "sigma must be a finite number >= 0"),
        (lambda: models.brownian(5, 3, x0=np.zeros(4)), r"x0 must be a scalar or an array of shape \(3,\)"),
        (lambda: models.write_synthetic("unused.h5", "spiral", 5, 2), "model must be one of"),
        (lambda: models.synthetic_loss(np.zeros(5)), "2-D array"),
        (lambda: models.synthetic_loss(np.zeros((5, 2)), kind="cubic"), "kind must be one of"),
    ],
)
def test_bad_arguments_raise_value_error_with_the_valid_range(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_bad_types_raise_type_error():
    with pytest.raises(TypeError, match="positive integer"):
        models.brownian(2.5, 3)
    with pytest.raises(TypeError, match="float32 or float64"):
        models.brownian(5, 3, dtype=np.int32)


# --- synthetic loss and files ------------------------------------------------------------


def test_synthetic_loss_is_positive_decreasing_and_seeded():
    x = models.brownian(2000, 100, seed=0, dtype=np.float32)
    loss = models.synthetic_loss(x, seed=1)
    assert loss.shape == (2000,) and loss.dtype == np.float64 and np.all(loss > 0)
    assert np.mean(loss[:100]) > 10 * np.mean(loss[-100:])
    np.testing.assert_array_equal(loss, models.synthetic_loss(x, seed=1))
    clean = models.synthetic_loss(x, noise=0.0)
    assert abs(np.mean(loss / clean) - 1) < 0.01  # mean-one multiplicative noise


def test_write_synthetic_round_trip(tmp_path):
    h5py = pytest.importorskip("h5py")
    path = models.write_synthetic(tmp_path / "fbm.h5", "fbm", 1000, 12, every=10, seed=4, hurst=0.3, dtype=np.float32)
    assert path == tmp_path / "fbm.h5"
    expected = models.fbm(1000, 12, 0.3, dtype=np.float32, seed=np.random.default_rng(4))[::10]
    with h5py.File(path, "r") as f:
        np.testing.assert_array_equal(f["weights"][:], expected)
        np.testing.assert_array_equal(f["step"][:], np.arange(0, 1000, 10))
        assert f["loss"].shape == (100,) and np.all(f["loss"][:] > 0)
        settings = json.loads(f.attrs["settings"])
    assert settings == {"model": "fbm", "n_steps": 1000, "n_params": 12, "every": 10, "seed": 4,
                        "hurst": 0.3, "dtype": "float32"}
