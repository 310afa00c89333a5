import numpy as np
import pytest

from pyengine.heavytail import fit_kappa, kappa_by_tensor


@pytest.mark.parametrize("nu", [1.5, 3.0, 8.0])
def test_kappa_recovered_on_student_t(nu, rng):
    w = 0.05 * rng.standard_t(nu, 40_000) + 0.01
    r = fit_kappa(w)
    kappa = (nu + 1) / 2
    assert r.ci[0] < kappa < r.ci[1]
    assert abs(r.kappa - kappa) < 0.1 * kappa
    assert r.scale == pytest.approx(0.05, rel=0.05) and r.loc == pytest.approx(0.01, abs=0.002)


def test_gaussian_weights_give_a_large_kappa(rng):
    r = fit_kappa(rng.standard_normal(20_000))
    assert r.kappa > 10 and r.ci[0] > 5


def test_per_tensor_from_parameter_table(rng):
    from pyengine.store import ParamInfo

    w = np.concatenate([rng.standard_t(2.0, 6000), rng.standard_normal(4000)]).astype(np.float32)
    params = [ParamInfo("a.weight", 0, 6000, (60, 100), "weight"), ParamInfo("a.bias", 6000, 4000, (4000,), "bias")]
    fits = kappa_by_tensor(w, params)
    assert abs(fits["a.weight"].kappa - 1.5) < 0.15 and fits["a.bias"].kappa > 8
    with pytest.raises(ValueError, match="outside"):
        kappa_by_tensor(w, [("x", 9000, 2000)])


def test_torch_and_nonfinite_input(rng):
    torch = pytest.importorskip("torch")
    w = rng.standard_t(3.0, 5000)
    w[:3] = np.nan
    r = fit_kappa(torch.from_numpy(w))
    assert r.n == 4997 and r.to_dict()["kappa"] == r.kappa


def test_bad_input():
    with pytest.raises(ValueError, match="at least 10"):
        fit_kappa(np.ones(3))
    with pytest.raises(ValueError, match="equal"):
        fit_kappa(np.ones(100))
