"""Build the symmetric α-stable density table shipped as ``stable_table.npz``.

Run once (about a CPU-minute): ``python -m pyengine.heavytail._build_table``.

The table holds G(u, α) = (f(x; α) − φ₂(x)) · (1 + x)³ on nodes of u = x / (1 + x),
0 ≤ x ≤ X_TAIL, where f is the standard SαS density (characteristic function
exp(−|t|^α)) and φ₂ the N(0, 2) density, i.e. f at α = 2. Subtracting φ₂ before the
integral keeps f − φ₂ accurate to its own scale, which is tiny near α = 2, and the factor
(1 + x)³ makes G bounded and smooth in x for every α. In α the nodes are Chebyshev–Lobatto
points on panels of equal width, for piecewise polynomial (barycentric) interpolation.

It also holds the quantile ratios of McCulloch (1986) for β = 0: ν(α) = (q₉₅ − q₀₅) /
(q₇₅ − q₂₅) and the inter-quartile range q₇₅ − q₂₅ of the standard law.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import optimize, special

from pyengine.reference.tail_stable import _char_diff

X_TAIL = 10.0  # beyond this |x| the density comes from its tail series
N_U = 1024  # u intervals on [0, X_TAIL / (1 + X_TAIL)]
PANELS = np.linspace(0.5, 2.0, 31)  # α panels of width 0.05
DEGREE = 8  # polynomial degree in α per panel
PATH = Path(__file__).with_name("stable_table.npz")


def lobatto(a: float, b: float, degree: int) -> np.ndarray:
    """Chebyshev–Lobatto points on [a, b], increasing."""
    return 0.5 * (a + b) - 0.5 * (b - a) * np.cos(np.pi * np.arange(degree + 1) / degree)


def alpha_nodes() -> np.ndarray:
    nodes = [lobatto(a, b, DEGREE)[:-1] for a, b in zip(PANELS[:-1], PANELS[1:])]
    return np.concatenate(nodes + [PANELS[-1:]])


def _quadrature(alpha: float, width: float = 0.25, order: int = 24) -> tuple[np.ndarray, np.ndarray]:
    """Composite Gauss–Legendre nodes and weights on [0, T], e^{−T^α} < 2e-18: panels graded
    geometrically towards 0 (where t^α is singular) and of fixed width beyond 1."""
    upper = max(41.0 ** (1.0 / alpha), 7.0)
    g, w = np.polynomial.legendre.leggauss(order)
    edges = np.concatenate([[0.0], 2.0 ** np.arange(-45, 0), np.arange(1.0, upper + width, width)])
    lo, hi = edges[:-1, None], edges[1:, None]
    return (0.5 * (hi - lo) * g + 0.5 * (hi + lo)).ravel(), (0.5 * (hi - lo) * w).ravel()


def density_minus_gauss_row(x: np.ndarray, alpha: float) -> np.ndarray:
    """f(x; α) − φ₂(x) at many x: (1/π)∫ cos(xt)(e^{−t^α} − e^{−t²}) dt by composite
    Gauss–Legendre (agrees with adaptive quadrature to ~1e-15 relative)."""
    t, w = _quadrature(alpha)
    gw = _char_diff(t, alpha) * w
    return np.concatenate([np.cos(np.outer(xs, t)) @ gw for xs in np.array_split(x, max(1, x.size // 32))]) / np.pi


def cdf(x: float, alpha: float) -> float:
    """P(X ≤ x) of the standard SαS law: 1/2 + (1/π)∫ sin(xt)/t e^{−t^α} dt."""
    if alpha == 2.0:
        return float(special.ndtr(x / np.sqrt(2.0)))
    t, w = _quadrature(alpha)
    return 0.5 + float(np.sin(x * t) / t @ (np.exp(-(t**alpha)) * w)) / np.pi


def quantile(p: float, alpha: float) -> float:
    return optimize.brentq(lambda x: cdf(x, alpha) - p, 0.0, 200.0, xtol=1e-13)


def _row(alpha: float) -> np.ndarray:
    u = np.linspace(0.0, X_TAIL / (1.0 + X_TAIL), N_U + 1)
    x = u / (1.0 - u)
    return density_minus_gauss_row(x, alpha) * (1.0 + x) ** 3


def _mcculloch(alpha: float) -> tuple[float, float]:
    q75, q95 = quantile(0.75, alpha), quantile(0.95, alpha)
    return q95 / q75, 2.0 * q75  # symmetric: q05 = −q95, q25 = −q75


def main() -> None:
    alphas = alpha_nodes()
    mcc_alpha = np.linspace(0.5, 2.0, 61)
    table = np.array([_row(a) for a in alphas])
    mcc = np.array([_mcculloch(a) for a in mcc_alpha])
    np.savez_compressed(PATH, panels=PANELS, degree=DEGREE, x_tail=X_TAIL, alpha_nodes=alphas, table=table,
                        mcc_alpha=mcc_alpha, mcc_nu=mcc[:, 0], mcc_iqr=mcc[:, 1])
    print(f"wrote {PATH}: table {table.shape}")


if __name__ == "__main__":
    main()
