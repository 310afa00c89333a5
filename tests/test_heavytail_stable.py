import numpy as np
import pytest

import pyengine as pe
from pyengine.heavytail import fit_levy_stable, stable_logpdf
from pyengine.heavytail.stable import density_row, mcculloch
from pyengine.kernels.tail_stable import stable_loglik
from pyengine.models import stable_samples
from pyengine.reference.tail_stable import logpdf_quad

CPU_BACKENDS = [b for b in ("cpp", "numba", "numpy") if pe.backends()[b].available]


@pytest.mark.parametrize("alpha", [0.5, 0.77, 0.999, 1.0, 1.001, 1.42, 1.9, 1.999, 2.0])
def test_log_density_matches_quadrature(alpha):
    # core, table edge on both sides, tail series, far tail
    x = np.array([0.0, 0.37, 2.5, 7.3, 9.999, 10.001, 31.0, 150.0])
    want = np.array([logpdf_quad(v, alpha) for v in x])
    np.testing.assert_allclose(stable_logpdf(x, alpha), want, rtol=0, atol=1e-6)


def test_log_density_closed_forms():
    x = np.array([0.0, 0.5, 3.0, 12.0, 1e3, 1e6])
    np.testing.assert_allclose(stable_logpdf(x, 1.0), -np.log(np.pi * (1 + x * x)), atol=1e-9)
    np.testing.assert_allclose(stable_logpdf(x, 2.0), -np.log(2 * np.sqrt(np.pi)) - x * x / 4, rtol=1e-12)
    np.testing.assert_allclose(stable_logpdf(-x, 1.3), stable_logpdf(x, 1.3))
    # location-scale family
    np.testing.assert_allclose(stable_logpdf(x, 1.3, scale=2.0, loc=1.0),
                               stable_logpdf((x - 1.0) / 2.0, 1.3) - np.log(2.0), rtol=1e-12)


@pytest.mark.parametrize("backend", CPU_BACKENDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("alpha", [0.6, 1.0, 1.7, 2.0])
def test_backends_match_reference(backend, dtype, alpha, rng):
    x = (stable_samples(1001, alpha, seed=3) * 1.7 + 0.2).astype(dtype)
    row = density_row(alpha)
    want_lp = np.empty(x.size)
    want = stable_loglik(x, 0.2, 1.7, row, logp=want_lp, backend="numpy")
    got_lp = np.empty(x.size)
    got = stable_loglik(x, 0.2, 1.7, row, logp=got_lp, backend=backend)
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-8)
    np.testing.assert_allclose(got_lp, want_lp, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("alpha", [0.7, 1.0, 1.6, 1.97])
def test_gradient_matches_finite_differences(alpha):
    x = stable_samples(500, alpha, seed=4) * 2.0
    loc, scale, h = 0.1, 1.5, 1e-6

    def ll(a, l, s):
        return stable_loglik(x, l, s, density_row(a))[0]

    g = stable_loglik(x, loc, scale, density_row(alpha))[1:]
    fd = [(ll(alpha + h, loc, scale) - ll(alpha - h, loc, scale)) / (2 * h),
          (ll(alpha, loc + h, scale) - ll(alpha, loc - h, scale)) / (2 * h),
          (ll(alpha, loc, scale + h) - ll(alpha, loc, scale - h)) / (2 * h)]
    np.testing.assert_allclose(g, fd, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("alpha", [0.8, 1.3, 1.8])
def test_fit_recovers_parameters(alpha):
    x = stable_samples(20_000, alpha, scale=2.0, loc=-1.0, seed=5)
    fit = fit_levy_stable(x)
    assert fit.ci["alpha"][0] - 0.01 < alpha < fit.ci["alpha"][1] + 0.01
    assert abs(fit.alpha - alpha) < 4 * fit.alpha_se
    assert abs(fit.scale - 2.0) < 4 * fit.scale_se
    assert abs(fit.loc + 1.0) < 4 * fit.loc_se
    assert fit.llr > 0 and fit.p_value < 1e-3 and not fit.at_bound
    assert abs(fit.start[0] - alpha) < 0.15  # McCulloch start


def test_gaussian_data_do_not_favour_the_stable_law(rng):
    x = rng.standard_normal(20_000) * 3.0
    fit = fit_levy_stable(x)
    assert fit.alpha > 1.95
    assert fit.llr < 5.0 and fit.p_value > 0.01
    assert abs(fit.scale * np.sqrt(2) - 3.0) < 0.1  # α = 2: variance 2·scale²


def test_mcculloch_start():
    a, s, l = mcculloch(stable_samples(50_000, 1.2, scale=3.0, loc=5.0, seed=6))
    assert abs(a - 1.2) < 0.05 and abs(s - 3.0) < 0.15 and abs(l - 5.0) < 0.1


def test_bad_input():
    with pytest.raises(ValueError, match="at least 10"):
        fit_levy_stable(np.array([1.0, np.nan, 2.0]))
    with pytest.raises(ValueError, match="inter-quartile"):
        fit_levy_stable(np.ones(100))
    with pytest.raises(ValueError, match=r"alpha must lie in \[0.5, 2"):
        stable_logpdf([0.0], 0.3)


def test_fit_to_dict_and_nonfinite_dropped():
    x = stable_samples(2000, 1.5, seed=7)
    fit = fit_levy_stable(np.append(x, [np.nan, np.inf]))
    assert fit.n == 2000
    d = fit.to_dict()
    assert set(d["ci"]) == {"alpha", "scale", "loc"} and isinstance(d["alpha"], float)


@pytest.mark.skipif(not pe.backends()["cuda"].available, reason="no CUDA device")
def test_cuda_matches_cpu():
    import cupy

    x = stable_samples(10_001, 1.4, seed=8)
    row = density_row(1.4)
    np.testing.assert_allclose(stable_loglik(cupy.asarray(x), 0.1, 1.2, row), stable_loglik(x, 0.1, 1.2, row, backend="numpy"),
                               rtol=1e-10)


@pytest.mark.slow
@pytest.mark.parametrize("alpha", [0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 1.95])
def test_fit_accuracy_1e5(alpha):
    fit = fit_levy_stable(stable_samples(100_000, alpha, seed=9))
    assert abs(fit.alpha - alpha) < 0.02
