"""Reference symmetric α-stable densities: the plain NumPy log-likelihood kernel (the
``numpy`` backend) and a high-precision density by quadrature (the test oracle)."""

import warnings

import numpy as np
from scipy import integrate

_INV_SQRT_4PI = 0.28209479177387814


def log_density(a: np.ndarray, g, g_da, h, x_tail, c, c_da, alpha):
    """log f at a = |x| >= 0 and its derivatives in a and α (see csrc/include/pyengine/tail_stable.hpp)."""
    a = np.asarray(a, dtype=np.float64)
    phi = _INV_SQRT_4PI * np.exp(-0.25 * a * a)
    dphi = -0.5 * a * phi
    f, df_da, df_dal = np.empty_like(a), np.empty_like(a), np.empty_like(a)
    core = a < x_tail
    ac = a[core]
    s = ac / (1.0 + ac) / h
    j0 = np.clip(s.astype(np.int64) - 1, 0, len(g) - 4)
    p = s - j0
    nodes = np.arange(4.0)
    w = np.ones((4, p.size))
    dw = np.zeros((4, p.size))
    for i in range(4):  # Lagrange basis on nodes 0..3 and its derivative
        others = [m for m in range(4) if m != i]
        denom = np.prod([nodes[i] - m for m in others])
        w[i] = np.prod([p - m for m in others], axis=0) / denom
        dw[i] = sum(np.prod([p - m for m in others if m != l], axis=0) for l in others) / denom
    idx = j0 + np.arange(4)[:, None]
    G, dG, Ga = (w * g[idx]).sum(0), (dw * g[idx]).sum(0), (w * g_da[idx]).sum(0)
    q = (1.0 + ac) ** -3
    f[core] = phi[core] + G * q
    df_da[core] = dphi[core] + dG / h * q / (1.0 + ac) ** 2 - 3.0 * G * q / (1.0 + ac)
    df_dal[core] = Ga * q
    at = a[~core]
    la = np.log(at)
    k = np.arange(1, len(c) + 1)
    wk = np.exp(-alpha * np.outer(la, k))  # |x|^(-kα)
    P, P1, Q = wk @ c, wk @ (k * c), wk @ c_da
    f[~core] = phi[~core] + P / at
    df_da[~core] = dphi[~core] - (P + alpha * P1) / at**2
    df_dal[~core] = (Q - la * P1) / at
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.log(f), df_da / f, df_dal / f
        # f leaves the double range (far out, α near 2): keep the larger term, in logs
        tiny = np.nonzero(~(f > 1e-280))[0]
        tail_idx = np.nonzero(~core)[0]
        pos = np.searchsorted(tail_idx, tiny)
        at_, P_, P1_, Q_, la_ = at[pos], P[pos], P1[pos], Q[pos], la[pos]
        log_phi = -1.2655121234846454 - 0.25 * at_**2
        log_s = np.log(np.where(P_ > 0, P_ / at_, 0.0))
        series = log_s > log_phi
        out[0][tiny] = np.where(series, log_s, log_phi)
        out[1][tiny] = np.where(series, -(P_ + alpha * P1_) / (at_ * P_), -0.5 * at_)
        out[2][tiny] = np.where(series, (Q_ - la_ * P1_) / P_, 0.0)
    return out


def stable_loglik(x, loc, scale, g, g_da, h, x_tail, c, c_da, alpha, sums, logp=None):
    """sums += [Σ log p, Σ ∂α, Σ ∂loc, Σ ∂scale] of the SαS log-likelihood; logp gets log p."""
    z = (np.asarray(x, dtype=np.float64) - loc) / scale
    a = np.abs(z)
    lf, d_a, d_al = log_density(a, g, g_da, h, x_tail, c, c_da, alpha)
    lp = lf - np.log(scale)
    sums += lp.sum(), d_al.sum(), -(np.sign(z) * d_a).sum() / scale, -(d_a * a + 1.0).sum() / scale
    if logp is not None:
        logp[:] = lp
    return sums


def _char_diff(t, alpha):
    """exp(−t^α) − exp(−t²) without cancellation near α = 2."""
    t = np.asarray(t, dtype=np.float64)
    ta = t**alpha
    gap = ta * np.expm1((2.0 - alpha) * np.log(np.maximum(t, 1e-300)))  # t² − t^α
    return np.where(np.abs(gap) < 0.5, -np.exp(-ta) * np.expm1(-gap), np.exp(-ta) - np.exp(-t * t))


def density_minus_gauss(x: float, alpha: float) -> float:
    """f(x; α) − φ₂(x) of the standard SαS law by quadrature of (1/π)∫ cos(xt)(e^{−t^α} − e^{−t²}) dt.

    Accurate to about 1e-16 absolute (relative to the difference's own scale, which is
    what keeps f accurate near α = 2 where both terms are tiny in the tails).
    """
    x = abs(float(x))
    if alpha == 2.0:
        return 0.0
    upper = max(41.0 ** (1.0 / alpha), 7.0)  # e^{−t^α} < 2e-18 beyond
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if x * upper < 50:
            v, _ = integrate.quad(lambda t: float(_char_diff(t, alpha)) * np.cos(x * t), 0, upper,
                                  epsabs=1e-17, epsrel=1e-13, limit=500)
        else:
            v, _ = integrate.quad(lambda t: float(_char_diff(t, alpha)), 0, upper, weight="cos", wvar=x,
                                  epsabs=1e-17, epsrel=1e-13, limit=2000)
    return v / np.pi


def logpdf_quad(x: float, alpha: float) -> float:
    """High-precision log f(x; α) of the standard SαS law (characteristic function e^{−|t|^α})."""
    x = abs(float(x))
    if alpha == 2.0:
        return float(np.log(_INV_SQRT_4PI) - 0.25 * x * x)
    return float(np.log(_INV_SQRT_4PI * np.exp(-0.25 * x * x) + density_minus_gauss(x, alpha)))
