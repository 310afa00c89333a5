"""Diffusion exponents, the τ0 / t0 rule and β(τ) on trajectories and curves with known answers."""

import json

import matplotlib
import numpy as np
import pytest

import pyengine as pe
from pyengine import models
from pyengine.estimators.diffusion import fit_diffusion, log_derivative
from pyengine.fits import log_spaced, regime
from pyengine.estimators.msd import MSDResult

matplotlib.use("Agg")


def curve_result(curves, lags=None, t_w=None) -> MSDResult:
    """An MSDResult holding constructed curves (W, L) over lags 1 … L."""
    curves = np.atleast_2d(np.asarray(curves, dtype=np.float64))
    w, n = curves.shape
    lags = np.arange(1, n + 1) if lags is None else np.asarray(lags)
    t_w = np.arange(w) * n if t_w is None else np.asarray(t_w)
    return MSDResult(t_w, lags, curves, np.full(curves.shape, np.nan), np.ones(curves.shape, np.int64), curves.copy(),
                     int(lags[-1]),
                     "window", "spectral", 1)


def two_regime(lags, tau0=50, a1=0.5, a2=1.5):
    return np.where(lags < tau0, lags**a1, tau0**a1 * (lags / tau0) ** a2)


@pytest.mark.parametrize("model, expected", [
    (lambda: models.brownian(2001, 256, seed=1), 1.0),
    (lambda: models.ballistic(2001, 16, seed=1), 2.0),
    (lambda: models.fbm(2001, 256, 0.3, seed=1), 0.6),
    (lambda: models.fbm(2001, 256, 0.8, seed=1), 1.6),
])
def test_exponents_of_synthetic_trajectories(model, expected):
    fit = fit_diffusion(pe.msd(model(), window=1000, lags=60))
    assert np.all(np.abs(fit.alpha - expected) < 0.05), fit.alpha
    # one power law: τ0 is the first lag, α2 is the whole fit, α1 is undefined with a reason
    assert np.all(fit.tau0 == 1) and np.allclose(fit.alpha2, fit.alpha)
    assert np.all(np.isnan(fit.alpha1)) and fit.windows[0].early.flag
    assert fit.t0 == 0


def test_two_regime_curve_paper_threshold():
    lags = np.arange(1, 1001)
    w = fit_diffusion(curve_result(two_regime(lags))).windows[0]
    # RMSE < 0.03 tolerates a few sub-diffusive lags before the break: τ0 lands a little early
    assert 30 <= w.tau0 <= 50
    assert abs(w.early.slope - 0.5) < 1e-9 and abs(w.late.slope - 1.5) < 0.05
    assert w.late.rmse < 0.03 and w.late.x_range == (w.tau0, 1000.0)
    assert w.early.x_range[1] < w.tau0
    assert (w.regime_early, w.regime_late) == ("subdiffusive", "superdiffusive")
    assert w.whole.rmse > 0.03


def test_two_regime_curve_tight_threshold():
    lags = np.arange(1, 1001)
    w = fit_diffusion(curve_result(two_regime(lags)), threshold=0.005).windows[0]
    assert w.tau0 == 50
    assert abs(w.early.slope - 0.5) < 1e-9 and abs(w.late.slope - 1.5) < 1e-9


def test_two_regime_with_noise_has_uncertainties():
    lags = np.arange(1, 1001)
    noisy = two_regime(lags) * np.exp(0.01 * np.random.default_rng(0).standard_normal(lags.size))
    w = fit_diffusion(curve_result(noisy)).windows[0]
    assert 30 <= w.tau0 <= 50
    assert abs(w.early.slope - 0.5) < 0.02 and abs(w.late.slope - 1.5) < 0.05
    assert 0 < w.early.slope_se < 0.02 and 0 < w.late.slope_se < 0.05


def test_t0_is_first_single_power_law_window():
    lags = np.arange(1, 1001)
    curves = [two_regime(lags), two_regime(lags, tau0=200), lags**1.2, two_regime(lags)]
    fit = fit_diffusion(curve_result(curves, t_w=[0, 1000, 2000, 3000]))
    assert fit.t0 == 2000 and fit.t0_reason is None
    assert fit.windows[2].whole.rmse < 1e-9 and abs(fit.alpha[2] - 1.2) < 1e-9
    assert fit.windows[2].regime_late == "superdiffusive"
    none = fit_diffusion(curve_result([two_regime(lags)]))
    assert none.t0 is None and "RMSE" in none.t0_reason


def test_ill_posed_windows_are_nan_with_reason():
    lags = np.arange(1, 101)
    bad = lags.astype(float) ** 1.0
    bad[3:] = np.nan  # only 3 valid lags
    fit = fit_diffusion(curve_result([bad, -np.ones(100), np.zeros(100)]))
    for w in fit.windows:
        assert np.isnan(w.whole.slope) and "fewer than 5" in w.whole.flag
        assert np.isnan(w.tau0) and "no lag" in w.reason
        assert np.isnan(w.late.slope) and w.regime_late == "undetermined"
    assert fit.t0 is None


def test_log_spaced_points_and_lag_range():
    lags = np.arange(1, 10001)
    idx = log_spaced(lags, 10)
    assert idx[0] == 0 and idx[-1] == lags.size - 1
    gaps = np.diff(np.log10(lags[idx]))
    assert gaps.max() == pytest.approx(np.log10(2))  # 1 → 2: integer lags cannot be denser
    assert gaps[lags[idx[1:]] > 20].max() < 0.13 and 30 <= idx.size <= 41
    fit = fit_diffusion(curve_result(two_regime(np.arange(1, 1001))), lag_range=(100, 1000))
    assert fit.fit_lags.min() >= 100 and abs(fit.alpha[0] - 1.5) < 1e-9 and fit.t0 == 0


def test_regime_labels_are_decided_with_the_standard_error():
    assert [regime(a, 0.02) for a in (0.5, 0.95, 1.0, 1.03, 1.3)] == [
        "subdiffusive", "subdiffusive", "normal", "normal", "superdiffusive"]
    assert regime(0.906, 0.007) == "subdiffusive" and regime(0.906, 0.05) == "normal"  # the example
    assert regime(float("nan"), 0.1) == "undetermined" and regime(1.0, float("nan")) == "undetermined"
    assert regime(1.3, 0.01, flag="fit range 0.40 decades < 1") == "undetermined"


def test_beta_difference_on_power_law_is_the_exponent():
    lags = np.arange(1, 501)
    res = curve_result([lags**0.7, 3 * lags**1.6])
    b = log_derivative(res)
    assert b.method == "difference" and b.dtau == 20
    assert b.tau[0] == 1 and b.tau[-1] == 480 and b.beta.shape == (2, 480)
    assert np.allclose(b.beta[0], 0.7, atol=1e-12) and np.allclose(b.beta[1], 1.6, atol=1e-12)


def test_beta_follows_eq6_at_the_break():
    lags = np.arange(1, 1001)
    b = log_derivative(curve_result(two_regime(lags)), dtau=20)
    m = two_regime(lags)
    tau = 40  # straddles τ0 = 50
    expected = np.log(m[tau + 20 - 1] / m[tau - 1]) / np.log((tau + 20) / tau)
    assert b.beta[0, tau - 1] == pytest.approx(expected, rel=1e-12)
    assert 0.5 < expected < 1.5


def test_beta_local_on_power_law_and_brownian():
    lags = np.unique(np.geomspace(1, 1000, 80).round()).astype(int)
    b = log_derivative(curve_result([lags**0.7], lags=lags), method="local")
    ok = np.isfinite(b.beta[0])
    assert ok.sum() >= 25 and np.allclose(b.beta[0, ok], 0.7, atol=1e-12)
    assert np.all(b.n_points[0, ok] >= 3) and np.all(b.n_points[0, ~ok] < 3)
    res = pe.msd(models.brownian(3001, 256, seed=2), window=1000)
    local = log_derivative(res, method="local")
    short = local.tau <= 300  # the last window has few origins at the longest lags
    assert np.nanmax(np.abs(local.beta[:, short] - 1)) < 0.1
    assert np.all(local.beta_se[np.isfinite(local.beta)] > 0)


def test_beta_difference_needs_dense_lags():
    lags = np.array([1, 2, 5, 10, 50, 100])
    with pytest.raises(ValueError, match="method='local'"):
        log_derivative(curve_result([lags**1.0], lags=lags))


def test_bad_input():
    res = curve_result([np.arange(1, 101) ** 1.0])
    with pytest.raises(TypeError, match="MSDResult"):
        fit_diffusion(np.ones((2, 10)))
    with pytest.raises(ValueError, match="threshold"):
        fit_diffusion(res, threshold=0)
    with pytest.raises(ValueError, match="min_points"):
        fit_diffusion(res, min_points=2)
    with pytest.raises(ValueError, match="lag_range"):
        fit_diffusion(res, lag_range=(10, 5))
    with pytest.raises(ValueError, match="no lag"):
        fit_diffusion(res, lag_range=(200, 300))
    with pytest.raises(ValueError, match="method"):
        log_derivative(res, method="spline")
    with pytest.raises(ValueError, match="dtau"):
        log_derivative(res, dtau=0)


def test_to_dict_and_plots():
    lags = np.arange(1, 1001)
    res = curve_result([two_regime(lags), lags**1.0])
    fit = fit_diffusion(res)
    d = json.loads(json.dumps(fit.to_dict()))
    assert d["t0"] == 1000 and d["windows"][1]["early"]["slope"] is None
    assert d["windows"][0]["tau0"] == fit.tau0[0]
    beta = log_derivative(res)
    assert json.loads(beta.to_json())["dtau"] == 20
    import matplotlib.pyplot as plt

    for kind in ("curves", "exponents"):
        assert fit.plot(kind=kind) is not None
    assert beta.plot() is not None
    with pytest.raises(ValueError, match="kind"):
        fit.plot(kind="nope")
    plt.close("all")
