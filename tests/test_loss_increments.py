"""Loss statistics and increment spectra / autocorrelations against direct loops and known spectra."""

import json

import matplotlib
import numpy as np
import pytest

import pyengine as pe
from pyengine import models
from pyengine import config
from pyengine.engine.accumulator import RunMeta
from pyengine.engine.increments import IncrementsAccumulator, IncrementWindow
from pyengine.engine import as_source, run_requests
from pyengine.estimators.increments import IncrementsRequest, increment_tails, increments
from pyengine.estimators.msd import MSDRequest
from pyengine.estimators.loss import loss_stats, moving_variance
from pyengine.plan import make_plan

matplotlib.use("Agg")


# ---------------------------------------------------------------- loss


def test_moving_variance_against_a_loop(rng, monkeypatch):
    monkeypatch.setattr("pyengine.estimators.loss.SLAB_ROWS", 7)  # many slabs, ragged last one
    values = 5.0 + np.cumsum(rng.standard_normal(250)) * 1e-3
    got = moving_variance(values, 100)
    expected = [np.var(values[i : i + 100], ddof=1) for i in range(151)]
    assert got.shape == (151,)
    np.testing.assert_allclose(got, expected, rtol=1e-10)
    np.testing.assert_allclose(moving_variance(values, 3, ddof=0), [np.var(values[i : i + 3]) for i in range(248)],
                               rtol=1e-9)


def test_loss_stats_windows_against_a_loop(rng):
    steps = 10 + 2 * np.arange(700)
    loss = np.exp(-np.arange(700) / 200) + 0.01 * rng.standard_normal(700)
    s = loss_stats(loss, steps, window=400, var_window=100)
    assert s.t_w.tolist() == [10, 410, 810] and s.window == 400
    assert s.abs_dloss_windows.shape == (3, 199)  # a window's 200 snapshots have 199 differences
    for i, start in enumerate((0, 200, 400)):
        d = [abs(loss[t + 1] - loss[t]) for t in range(start, start + 199)]
        np.testing.assert_allclose(s.abs_dloss_windows[i], d, rtol=1e-12)
        assert s.abs_dloss_mean[i] == pytest.approx(np.mean(d), rel=1e-12)
        assert s.abs_dloss_std[i] == pytest.approx(np.std(d, ddof=1), rel=1e-10)
    assert s.var_steps[0] == steps[99] and s.var_steps[-1] == steps[-1]
    assert s.moving_var[-1] == pytest.approx(np.var(loss[-100:], ddof=1), rel=1e-10)
    whole = loss_stats(loss, window=None)
    assert whole.t_w.tolist() == [0] and np.array_equal(whole.abs_dloss_windows[0], whole.abs_dloss)


def test_loss_stats_last_window_uses_its_own_snapshots(rng):
    s = loss_stats(rng.standard_normal(300), window=100, t_w=[200])
    assert np.isfinite(s.abs_dloss_windows).all() and s.abs_dloss_windows.shape == (1, 99)
    assert s.abs_dloss_mean[0] == pytest.approx(np.mean(s.abs_dloss[200:299]))
    with pytest.raises(ValueError, match="outside the run"):
        loss_stats(rng.standard_normal(300), window=100, t_w=[201])


def test_loss_stats_bad_input():
    with pytest.raises(ValueError, match="1-D"):
        loss_stats(np.ones((10, 2)))
    with pytest.raises(ValueError, match="non-finite"):
        loss_stats(np.r_[1.0, np.nan, 2.0, 3.0], window=2, var_window=2)
    with pytest.raises(ValueError, match="width"):
        loss_stats(np.arange(50.0), window=10, var_window=100)
    with pytest.raises(ValueError, match="shape of loss"):
        loss_stats(np.arange(50.0), np.arange(49), window=10, var_window=10)
    with pytest.raises(ValueError, match="evenly spaced"):
        loss_stats(np.arange(5.0), [0, 1, 2, 4, 5], window=2, var_window=2)


def test_loss_stats_to_dict_and_plot(rng):
    import matplotlib.pyplot as plt

    s = loss_stats(rng.standard_normal(500), window=200)
    d = json.loads(s.to_json())
    assert d["var_window"] == 100 and len(d["abs_dloss_mean"]) == 2
    assert len(s.plot()) == 3 and s.plot(kind="variance") is not None
    plt.close("all")


# ---------------------------------------------------------------- increments


def naive(x, start, length, max_lag):
    """Per-coordinate loops: periodogram by the DFT sum on the zero-padded power-of-two grid,
    autocorrelation by lagged sums."""
    seg = x[start : start + length].astype(np.float64)
    power, acf = [], []
    n = length - 1  # increments inside the window
    nfft = max(8, 1 << (n - 1).bit_length())  # the power of two >= max(8, n)
    k = np.arange(1, nfft // 2 + 1)
    phase = np.exp(-2j * np.pi * np.outer(k, np.arange(n)) / nfft)
    for i in range(x.shape[1]):
        d = np.diff(seg[:, i])
        d = d - d.mean()
        power.append(np.abs(phase @ d) ** 2 / n)
        u = seg[:, i] - seg[0, i]  # a constant column is exactly 0 (mean([0.1] * 3) != 0.1)
        y = u - u.mean()
        if (y * y).sum() > 0:
            acf.append([np.sum(y[: length - lag] * y[lag:]) / np.sum(y * y) for lag in range(max_lag + 1)])
    power, acf = np.array(power), np.array(acf)
    return power.mean(0), power.std(0, ddof=1), acf.mean(0), acf.std(0, ddof=1), len(acf)


def test_increments_against_naive_loops(rng):
    x = np.cumsum(rng.standard_normal((160, 9)), axis=0)
    x[:, 4] = 0.1  # a coordinate that never moves: in the spectra, not in the autocorrelation
    res = increments(x, window=50, max_lag=20)
    assert res.t_w.tolist() == [0, 50, 100] and res.lags.tolist() == list(range(21))
    np.testing.assert_array_equal(res.freqs, np.arange(1, 33) / 64)  # 49 increments zero-padded to 64
    for i, start in enumerate((0, 50, 100)):
        pm, ps, am, asd, n = naive(x, start, 50, 20)
        np.testing.assert_allclose(res.power_mean[i], pm, rtol=1e-10)
        np.testing.assert_allclose(res.power_sd[i], ps, rtol=1e-8)
        np.testing.assert_allclose(res.acf_mean[i], am, rtol=1e-10, atol=1e-13)
        np.testing.assert_allclose(res.acf_sd[i], asd, rtol=1e-7, atol=1e-7)
        assert res.n_moving[i] == n == 8
    assert res.n_params == 9 and res.acf_mean[0, 0] == pytest.approx(1.0)


def test_white_increments_have_a_flat_spectrum():
    x = models.brownian(4097, 64, sigma=0.5, seed=3)
    res = increments(x, window=2048)
    assert np.all(np.abs(res.spectral_slope) < 0.06), res.spectral_slope
    # white noise of variance σ²: P(f) = σ² on average, with sd σ² per coordinate (exponential)
    np.testing.assert_allclose(res.power_mean.mean(axis=1), 0.25, rtol=0.03)
    np.testing.assert_allclose(np.median(res.power_sd / res.power_mean, axis=1), 1.0, atol=0.1)


def test_random_walk_increments_have_an_f_minus_2_spectrum():
    x = np.cumsum(models.brownian(4097, 64, seed=4), axis=0)  # Δx is a random walk
    res = increments(x, window=2048, f_range=(1 / 2048, 0.1))
    assert np.all(np.abs(res.spectral_slope + 2) < 0.05), res.spectral_slope
    assert np.all(res.spectral_slope_se < 0.03)


def test_autocorrelation_band_of_white_noise_and_brownian_weights():
    noise = np.random.default_rng(5).standard_normal((2001, 200))
    res = increments(noise, window=1000, max_lag=50, level=0.99)
    assert res.band == pytest.approx(2.5758 / np.sqrt(1000), rel=1e-4)
    # the mean over 200 coordinates is within the single-coordinate band, and each one mostly is
    assert np.all(np.abs(res.acf_mean[:, 1:]) < res.band / 5)
    assert np.all(res.acf_sd[:, 1:] < res.band)
    walk = increments(models.brownian(2001, 200, seed=5), window=1000, max_lag=50)
    assert np.all(walk.acf_mean[:, 50] > 0.5)  # Brownian weights stay correlated far outside the band


@pytest.mark.parametrize("block_cols", [1, 7, 64])
def test_blocks_give_the_same_answer(block_cols, monkeypatch):
    monkeypatch.setattr("pyengine.config.FFT_BATCH_BYTES", 5 * 16 * 1024)  # a few columns per batch
    x = models.fbm(700, 64, 0.7, seed=6).astype(np.float32)
    one = increments(x, window=300, max_lag=100, block_cols=64)
    parts = increments(x, window=300, max_lag=100, block_cols=block_cols, workers=2)
    for name in ("power_mean", "acf_mean", "spectral_slope"):
        np.testing.assert_allclose(getattr(parts, name), getattr(one, name), rtol=1e-10, atol=1e-13)
    for name in ("power_sd", "acf_sd"):
        np.testing.assert_allclose(getattr(parts, name), getattr(one, name), rtol=1e-6, atol=1e-7)


def test_merge_adds_and_states_are_fresh():
    x = np.cumsum(np.random.default_rng(7).standard_normal((101, 6)), axis=0)
    acc = IncrementsAccumulator((IncrementWindow(0, 50, 10), IncrementWindow(40, 60, 59)))
    meta = RunMeta(101, 6, np.dtype(np.float64), np.arange(101), threads=1)
    a, b, whole = acc.prepare(meta), acc.prepare(meta), acc.prepare(meta)
    assert a.power[0] is not b.power[0]
    acc.update(a, x[:, :2], slice(0, 2))
    acc.update(b, x[:, 2:], slice(2, 6))
    acc.update(whole, x, slice(0, 6))
    for got, want in zip(acc.finalize(acc.merge(a, b)), acc.finalize(whole)):
        assert got.n_cols == want.n_cols == 6 and got.n_moving == want.n_moving
        np.testing.assert_allclose(got.power, want.power, rtol=1e-12)
        np.testing.assert_allclose(got.acf_sq, want.acf_sq, rtol=1e-12)


def test_shares_one_pass_with_the_msd():
    x = models.brownian(601, 20, seed=9)
    src = as_source(x)
    plan = make_plan(src.steps, 200, lags=[1, 10])
    both = run_requests(src, [MSDRequest.make(plan, src.n_cols), IncrementsRequest.make(plan, src.n_cols, max_lag=30)])
    alone = increments(x, window=200, max_lag=30)
    np.testing.assert_allclose(both[1].power_mean, alone.power_mean, rtol=1e-12)
    np.testing.assert_allclose(both[0].msd, pe.msd(x, window=200, lags=[1, 10]).msd, rtol=1e-12)


def test_plan_with_steps_and_engine_config(monkeypatch):
    monkeypatch.setattr(config, "BLOCK_BYTES", 4096)
    req = IncrementsRequest.make(make_plan(100 + 5 * np.arange(41), window=100), 4, max_lag=50)
    assert req.plan.starts.tolist() == [0, 20] and req.plan.length == 20 and req.max_lag == 10
    assert req.plan.stride == 5
    with pytest.raises(ValueError, match="max_lag"):
        IncrementsRequest.make(make_plan(np.arange(41), window=20), 4, max_lag=20)
    with pytest.raises(ValueError, match="outside the run"):
        make_plan(np.arange(41), window=20, t_w=[22])
    with pytest.raises(ValueError, match="multiple"):
        IncrementsRequest.make(make_plan(5 * np.arange(41), window=20), 4, max_lag=7)


def test_increments_bad_input_to_dict_and_plot():
    import matplotlib.pyplot as plt

    with pytest.raises(ValueError, match="needs 2 … 10 snapshots"):
        increments(np.zeros((10, 3)), window=20)
    with pytest.raises(ValueError, match="at least 2 snapshots"):
        increments([[1.0, 2.0]], window=2)
    x = models.brownian(401, 8, seed=8)
    with pytest.raises(ValueError, match="level"):
        increments(x, window=200, level=1.5)
    with pytest.raises(ValueError, match="f_range"):
        increments(x, window=200, f_range=(0.2, 0.1))
    res = increments(x, window=200)
    d = json.loads(res.to_json())
    assert d["window"] == 200 and len(d["power_mean"][0]) == 128 and d["f_range"][1] == 0.5  # 199 increments: 256
    assert len(res.plot()) == 2 and res.plot(kind="acf") is not None
    plt.close("all")


# ---------------------------------------------------------------- tails of increments


def test_tail_index_of_increments_per_window():
    cauchy = np.cumsum(np.random.default_rng(10).standard_cauchy((2001, 64)) * np.arange(1, 65), axis=0)
    res = increment_tails(cauchy, window=1000, stable=False)
    assert res.columns.size == 64 and res.samples[0].shape == (999, 64)
    assert np.all(np.abs(res.alpha - 1) < 0.1), res.alpha  # scales differ per coordinate: no mixing
    gauss = increment_tails(models.brownian(2001, 64, seed=10), window=1000, stable=False)
    assert np.all((gauss.alpha > 1.8) & (gauss.alpha < 2.1)), gauss.alpha
    d = json.loads(gauss.to_json())
    assert d["stable"] is None and len(d["tail"]) == 2 and "samples" not in d


def test_increment_sample_is_split_invariant():
    x = models.brownian(401, 50, seed=11)
    one = increment_tails(x, window=200, n_cols=12, stable=False)
    parts = increment_tails(x, window=200, n_cols=12, stable=False, block_cols=3, workers=2)
    assert one.columns.tolist() == list(range(0, 50, 5))
    for a, b in zip(one.samples, parts.samples):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(one.samples[1], np.diff(x[200:400, ::5], axis=0))
    with pytest.raises(ValueError, match="n_cols"):
        increment_tails(x, window=200, n_cols=0)


def test_stable_fit_of_increments_per_window():
    from pyengine import heavytail

    if not hasattr(heavytail, "fit_levy_stable"):
        pytest.skip("pyengine.heavytail does not export fit_levy_stable yet")
    x = np.cumsum(models.stable_samples(2001 * 32, 1.5, seed=12).reshape(2001, 32), axis=0)
    res = increment_tails(x, window=1000)
    assert np.all(np.abs(res.stable_alpha - 1.5) < 0.1), res.stable_alpha
