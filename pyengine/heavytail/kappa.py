"""Power-law κ (q-Gaussian / Student-t) fits of weights, after document 004 (Eq. 7).

    p(w) ∝ (1 + (w − loc)² / (ν scale²))^{−κ},  κ = (ν + 1) / 2,

i.e. a Student-t law with ν degrees of freedom; fitted by maximum likelihood.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import optimize, special

from pyengine.heavytail._input import as_array, finite_values, is_h5
from pyengine.kernels._arrays import to_host
from pyengine.heavytail.results import KappaFit

__all__ = ["fit_kappa", "kappa_by_tensor"]

NU_MIN, NU_MAX = 0.05, 1e4


def _nll(theta, w):
    """Mean negative log-likelihood of a Student-t in θ = (log ν, log scale, loc), with gradient."""
    nu, s, mu = math.exp(theta[0]), math.exp(theta[1]), theta[2]
    z = (w - mu) / s
    z2 = z * z
    frac = z2 / (nu + z2)  # = r / (1 + r), r = z²/ν
    log1p_r = np.log1p(z2 / nu)
    const = special.gammaln(nu / 2) - special.gammaln((nu + 1) / 2) + 0.5 * math.log(nu * math.pi) + theta[1]
    value = const + 0.5 * (nu + 1) * log1p_r.mean()
    d_nu = (0.5 * (special.digamma(nu / 2) - special.digamma((nu + 1) / 2)) + 0.5 / nu + 0.5 * log1p_r.mean()
            - 0.5 * (nu + 1) / nu * frac.mean())
    d_logs = 1.0 - (nu + 1) * frac.mean()
    d_mu = -(nu + 1) * (z / (nu + z2)).mean() / s
    return value, np.array([d_nu * nu, d_logs, d_mu])


def fit_kappa(w) -> KappaFit:
    """Fit p(w) ∝ (1 + (w − loc)²/(ν scale²))^{−κ} to the entries of a tensor; κ = (ν + 1)/2.

    Parameters
    ----------
    w : array_like
        Weights (NumPy, CuPy, torch, h5py); flattened; non-finite entries dropped.

    Returns
    -------
    KappaFit
        ``.kappa`` with a 95 % ``.ci`` (observed information on log ν); κ = inf when the
        entries look Gaussian (ν reaches 1e4).

    Examples
    --------
    >>> import numpy as np
    >>> w = np.random.default_rng(0).standard_t(3.0, 50_000)       # κ = 2
    >>> r = fit_kappa(w)
    >>> bool(r.ci[0] < 2.0 < r.ci[1]), bool(abs(r.kappa - 2.0) < 0.1)
    (True, True)
    """
    w, _ = finite_values(w)
    n = w.size
    if n < 10:
        raise ValueError(f"w: need at least 10 finite entries, got {n}")
    q25, q50, q75 = np.quantile(w, [0.25, 0.5, 0.75])
    s0 = (q75 - q25) / 1.349 if q75 > q25 else w.std()
    if not s0 > 0:
        raise ValueError("w: all entries are equal; no spread to fit")
    scale0 = float(s0)
    wn = (w - q50) / scale0  # standardise for conditioning
    res = optimize.minimize(_nll, np.array([math.log(5.0), 0.0, 0.0]), args=(wn,), jac=True, method="L-BFGS-B",
                            bounds=[(math.log(NU_MIN), math.log(NU_MAX)), (None, None), (None, None)],
                            options={"ftol": 1e-14, "gtol": 1e-10, "maxiter": 500})
    log_nu = res.x[0]
    nu = math.exp(log_nu)
    info = _information(res.x, wn) * n
    try:
        se = math.sqrt(max(np.linalg.inv(info)[0, 0], 0.0))
    except np.linalg.LinAlgError:
        se = math.nan
    kappa = (nu + 1) / 2
    ci = ((math.exp(log_nu - 1.96 * se) + 1) / 2, (math.exp(log_nu + 1.96 * se) + 1) / 2)
    if log_nu >= math.log(NU_MAX) - 1e-6:
        kappa, ci = math.inf, (_profile_lower(wn, res.fun, res.x, n), math.inf)
    loglik = -res.fun * n - n * math.log(scale0)
    return KappaFit(kappa=kappa, ci=ci, nu=nu, scale=math.exp(res.x[1]) * scale0, loc=q50 + res.x[2] * scale0,
                    n=n, loglik=float(loglik))


def _profile_lower(w, best, theta, n) -> float:
    """Lower end of the 95 % profile-likelihood interval of κ when ν̂ sits at NU_MAX."""

    def excess(log_nu):  # profile NLL above the optimum, minus the χ²₁ 95 % threshold
        r = optimize.minimize(lambda t: _nll(np.array([log_nu, *t]), w)[0], theta[1:], method="L-BFGS-B")
        return r.fun - best - 1.92 / n

    lo = math.log(NU_MIN)
    if excess(lo) <= 0:
        return (NU_MIN + 1) / 2
    return (math.exp(optimize.brentq(excess, lo, math.log(NU_MAX), xtol=1e-3)) + 1) / 2


def _information(theta, w) -> np.ndarray:
    """Per-sample observed information in θ, by central differences of the gradient."""
    h = 1e-5
    info = np.empty((3, 3))
    for i in range(3):
        e = np.zeros(3)
        e[i] = h
        info[i] = (_nll(theta + e, w)[1] - _nll(theta - e, w)[1]) / (2 * h)
    return 0.5 * (info + info.T)


def kappa_by_tensor(w, params) -> dict[str, KappaFit]:
    """κ of each named tensor of a flat parameter vector.

    Parameters
    ----------
    w : array_like of shape (P,)
        One snapshot of all parameters, flattened in ``named_parameters()`` order (a row of
        a trajectory's ``/weights``).
    params : iterable
        ``pyengine.store.ParamInfo`` objects or (name, offset, size, ...) tuples.

    Returns
    -------
    dict of str to KappaFit

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> w = np.concatenate([rng.standard_t(4.0, 5000), rng.standard_normal(3000)])
    >>> fits = kappa_by_tensor(w, [("fc.weight", 0, 5000), ("fc.bias", 5000, 3000)])
    >>> round(fits["fc.weight"].kappa), fits["fc.bias"].kappa > 20
    (2, True)
    """
    w = w[()] if is_h5(w) else w
    w = np.asarray(to_host(as_array(w))).ravel()
    out = {}
    for p in params:
        name, offset, size = (p.name, p.offset, p.size) if hasattr(p, "name") else tuple(p)[:3]
        if offset < 0 or offset + size > w.size:
            raise ValueError(f"{name}: entries [{offset}, {offset + size}) lie outside the {w.size} parameters")
        out[name] = fit_kappa(w[offset : offset + size])
    return out
