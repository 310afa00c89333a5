"""Numba fallback of the SαS log-likelihood (the per-sample math of tail_stable.hpp)."""

import math

import numba
import numpy as np

_INV_SQRT_4PI = 0.28209479177387814


@numba.njit(cache=True)
def _log_density(a, g, g_da, h, x_tail, c, c_da, alpha):
    phi = _INV_SQRT_4PI * math.exp(-0.25 * a * a)
    dphi = -0.5 * a * phi
    if a < x_tail:
        s = a / (1.0 + a) / h
        j0 = min(max(int(s) - 1, 0), g.size - 4)
        p0 = s - j0
        p1, p2, p3 = p0 - 1.0, p0 - 2.0, p0 - 3.0
        w0, w1, w2, w3 = -p1 * p2 * p3 / 6.0, p0 * p2 * p3 / 2.0, -p0 * p1 * p3 / 2.0, p0 * p1 * p2 / 6.0
        d0 = -(p2 * p3 + p1 * p3 + p1 * p2) / 6.0
        d1 = (p2 * p3 + p0 * p3 + p0 * p2) / 2.0
        d2 = -(p1 * p3 + p0 * p3 + p0 * p1) / 2.0
        d3 = (p1 * p2 + p0 * p2 + p0 * p1) / 6.0
        G = w0 * g[j0] + w1 * g[j0 + 1] + w2 * g[j0 + 2] + w3 * g[j0 + 3]
        dG = d0 * g[j0] + d1 * g[j0 + 1] + d2 * g[j0 + 2] + d3 * g[j0 + 3]
        Ga = w0 * g_da[j0] + w1 * g_da[j0 + 1] + w2 * g_da[j0 + 2] + w3 * g_da[j0 + 3]
        inv1a = 1.0 / (1.0 + a)
        q = inv1a**3
        f = phi + G * q
        df_da = dphi + dG / h * inv1a * inv1a * q - 3.0 * G * q * inv1a
        df_dal = Ga * q
    else:
        la = math.log(a)
        w = math.exp(-alpha * la)
        P = P1 = Q = 0.0
        for k in range(c.size, 0, -1):
            P = (P + c[k - 1]) * w
            P1 = (P1 + k * c[k - 1]) * w
            Q = (Q + c_da[k - 1]) * w
        f = phi + P / a
        df_da = dphi - (P + alpha * P1) / (a * a)
        df_dal = (Q - la * P1) / a
        if not f > 1e-280:  # f leaves the double range: the larger term, in logs
            log_phi = -1.2655121234846454 - 0.25 * a * a
            if P > 0.0 and math.log(P / a) > log_phi:
                return math.log(P / a), -(P + alpha * P1) / (a * P), (Q - la * P1) / P
            return log_phi, -0.5 * a, 0.0
    return math.log(f), df_da / f, df_dal / f


@numba.njit(parallel=True, cache=True)
def _loglik(x, loc, scale, g, g_da, h, x_tail, c, c_da, alpha, logp, want_logp):
    inv, log_scale = 1.0 / scale, math.log(scale)
    s0 = s1 = s2 = s3 = 0.0
    for i in numba.prange(x.size):
        z = (np.float64(x[i]) - loc) * inv
        a = abs(z)
        lf, d_a, d_al = _log_density(a, g, g_da, h, x_tail, c, c_da, alpha)
        s0 += lf - log_scale
        s1 += d_al
        s2 -= (-d_a if z < 0 else d_a) * inv
        s3 -= (d_a * a + 1.0) * inv
        if want_logp:
            logp[i] = lf - log_scale
    return s0, s1, s2, s3


def stable_loglik(x, loc, scale, row, sums, logp):
    out = np.empty(0) if logp is None else logp
    sums += _loglik(x, loc, scale, row.g, row.g_da, row.h, row.x_tail, row.c, row.c_da, row.alpha, out,
                    logp is not None)
