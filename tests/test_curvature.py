"""Hessian spectral density (SLQ) and trace (Hutchinson) against dense float64 references:
planted spectra of diagonal and rotated quadratics, and the exact Hessian of a tiny network.

Tolerances of the stochastic estimates come from their variances: Hutchinson's zᵀAz with
Rademacher z has Var = 2(‖A‖_F² − Σ A_ii²), computed here from the dense matrix; the
spectral fractions of one start vector u are μ_u(I) = Σ_{λ_i ∈ I} (q_iᵀu)², and the
quadrature fixes them within the Chebyshev–Markov–Stieltjes bounds, which are checked
exactly, vector by vector, against the dense eigendecomposition.
"""

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402
from torch.func import functional_call  # noqa: E402

from pyengine.landscape import hessian_vector_product, hutchinson_trace, lanczos_topk, slq  # noqa: E402
from pyengine.landscape.curvature import cdf_bounds, slq_density, slq_fractions  # noqa: E402
from pyengine.landscape.density import _rademacher  # noqa: E402

pytestmark = pytest.mark.usefixtures("torch_one_thread")


def _rotated(eigenvalues, seed=0):
    """Q diag(λ) Qᵀ for a random orthogonal Q (float64)."""
    n = len(eigenvalues)
    q, _ = torch.linalg.qr(torch.randn(n, n, generator=torch.Generator().manual_seed(seed), dtype=torch.float64))
    return q @ torch.diag(torch.as_tensor(eigenvalues, dtype=torch.float64)) @ q.T


def _start_vectors(n, vectors, seed):
    """The unit Rademacher start vectors :func:`slq` draws for this seed."""
    gen = torch.Generator().manual_seed(seed)
    return [_rademacher(gen, n, torch.float64, "cpu").numpy() for _ in range(vectors)]


def _hutchinson_sd(a: np.ndarray) -> float:
    """Standard deviation of zᵀAz for one Rademacher z."""
    return math.sqrt(2 * ((a ** 2).sum() - (np.diag(a) ** 2).sum()))


# -- planted spectra ------------------------------------------------------------------------


def test_slq_is_exact_on_a_diagonal_with_few_distinct_eigenvalues():
    """90 % zeros, a positive tail and a short negative one: the Krylov space closes, so the
    nodes are the eigenvalues and, for a diagonal matrix, the weights the exact fractions
    (u_i² = 1/n for a Rademacher u), with no sampling error at all."""
    planted = np.concatenate([np.zeros(900), np.repeat([0.5, 4.0, 40.0], [30, 20, 10]),
                              np.repeat([-0.4, -0.05], [25, 15])])
    a = torch.diag(torch.as_tensor(planted))
    out = slq(lambda v: a @ v, 1000, vectors=3, steps=30, seed=4)
    assert out.iterations == 3 * 6  # six distinct eigenvalues: six products per vector
    np.testing.assert_allclose(out.nodes[:, :6], np.tile([-0.4, -0.05, 0.0, 0.5, 4.0, 40.0], (3, 1)), atol=1e-12)
    np.testing.assert_allclose(out.weights[:, :6], np.tile([0.025, 0.015, 0.9, 0.03, 0.02, 0.01], (3, 1)), atol=1e-12)
    assert np.isnan(out.nodes[:, 6:]).all() and (out.weights[:, 6:] == 0).all()
    assert out.trace == pytest.approx(planted.sum(), abs=1e-9) and out.trace_se == pytest.approx(0, abs=1e-9)
    f = slq_fractions(out.nodes, out.weights, zero_tol=1e-3, n=1000)
    np.testing.assert_allclose(f["near_zero"], 0.9, atol=1e-12)
    np.testing.assert_allclose(f["negative"], 0.04, atol=1e-12)
    np.testing.assert_allclose(f["near_zero_hi"] - f["near_zero_lo"], 0, atol=1e-12)  # exact: no quadrature band


def test_slq_on_a_rotated_planted_spectrum_is_within_its_bounds_and_errors():
    """60 % exact zeros plus 240 distinct eigenvalues in [−0.5, −0.05] ∪ [0.05, 40]; rotated,
    so each start vector sees random weights. Checked: the extreme nodes converge to the
    extreme eigenvalues; the true fractions lie within the quadrature bounds ± 4 SE; the
    trace within 4 standard errors computed from the dense matrix."""
    rng = np.random.default_rng(3)
    planted = np.concatenate([np.zeros(360), -rng.uniform(0.05, 0.5, 40), np.geomspace(0.05, 40, 200)])
    a = _rotated(planted, seed=1)
    vectors, steps = 16, 60
    out = slq(lambda v: a @ v, len(planted), vectors=vectors, steps=steps, seed=2)
    assert out.iterations == vectors * steps
    assert np.nanmax(out.nodes) == pytest.approx(40, rel=1e-9)
    # the smallest Ritz value approaches λ_min from above (measured 1.4e-3 above; the negative part spans 0.45)
    assert planted.min() - 1e-9 <= np.nanmin(out.nodes) <= planted.min() + 0.01
    f = slq_fractions(out.nodes, out.weights, zero_tol=1e-3, n=len(planted))
    eps = f["eps"]
    for key, true in (("near_zero", np.mean(np.abs(planted) <= eps)), ("negative", np.mean(planted < -eps))):
        se = f[key].std(ddof=1) / math.sqrt(vectors)
        assert f[f"{key}_lo"].mean() - 4 * se <= true <= f[f"{key}_hi"].mean() + 4 * se, key
    # an exact point mass at 0 gets a node of its own: the near-zero estimate is tight here
    assert abs(f["near_zero"].mean() - 0.6) < 0.05
    sd = _hutchinson_sd(a.numpy())
    assert abs(out.trace - planted.sum()) <= 4 * sd / math.sqrt(vectors)
    assert out.trace_se == pytest.approx(sd / math.sqrt(vectors), rel=0.5)  # a 16-sample sd: within 50 %


def test_hutchinson_mean_and_variance_match_the_formula():
    """Over 400 seeds the estimates average to tr A (within 4 SE) and scatter with the sd
    √(2(‖A‖_F² − Σ A_ii²)) (within 15 %: the sd of a 400-sample sd is about 4 %)."""
    a = _rotated(np.linspace(-1, 3, 50), seed=5).numpy()
    a_t = torch.as_tensor(a)
    values = np.array([hutchinson_trace(lambda v: a_t @ v, 50, samples=1, seed=s)[0] for s in range(400)])
    sd = _hutchinson_sd(a)
    assert abs(values.mean() - np.trace(a)) <= 4 * sd / math.sqrt(400)
    assert values.std(ddof=1) == pytest.approx(sd, rel=0.15)
    trace, se = hutchinson_trace(lambda v: a_t @ v, 50, samples=64, seed=0)
    assert abs(trace - np.trace(a)) <= 4 * sd / 8 and se == pytest.approx(sd / 8, rel=0.35)


def test_cdf_bounds_and_density_helpers():
    lo, hi = cdf_bounds(np.array([[-1.0, 0.0, 1.0]]), np.array([[0.2, 0.5, 0.3]]), 0.5)
    np.testing.assert_allclose([lo[0], hi[0]], [0.2, 1.0])
    lo, hi = cdf_bounds(np.array([[-1.0, 0.0, 1.0]]), np.array([[0.2, 0.5, 0.3]]), 0.0, strict=True)
    np.testing.assert_allclose([lo[0], hi[0]], [0.0, 0.7])
    grid = np.linspace(-3, 3, 3001)
    phi = slq_density(np.array([[-1.0, 1.0], [0.0, np.nan]]), np.array([[0.5, 0.5], [1.0, 0.0]]), grid, 0.2)
    assert phi.sum() * (grid[1] - grid[0]) == pytest.approx(1.0, rel=1e-6)
    with pytest.raises(ValueError, match="vectors must be"):
        slq(lambda v: v, 5, vectors=0)
    with pytest.raises(ValueError, match="steps must be in"):
        slq(lambda v: v, 5, steps=6)


# -- a network whose Hessian is formed exactly -----------------------------------------------


def _mlp_and_dense_hessian(trained: bool):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(10, 16), torch.nn.Tanh(), torch.nn.Linear(16, 4)).double()
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(64, 10, generator=gen, dtype=torch.float64), torch.randint(0, 4, (64,), generator=gen)
    if trained:  # near a minimum: a large near-zero bulk and a few small negative eigenvalues
        opt = torch.optim.SGD(model.parameters(), lr=0.5)
        for _ in range(300):
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            opt.step()
    names = [n for n, _ in model.named_parameters()]
    params = [p.detach() for p in model.parameters()]
    sizes = [p.numel() for p in params]

    def loss(flat):
        parts = {n: c.view_as(p) for n, c, p in zip(names, flat.split(sizes), params)}
        return F.cross_entropy(functional_call(model, parts, (x,)), y)

    h = torch.autograd.functional.hessian(loss, torch.cat([p.reshape(-1) for p in params]), vectorize=True)
    return model, (x, y), h.numpy()


@pytest.mark.parametrize("trained", [False, True])
def test_slq_on_a_tiny_network_against_its_exact_hessian(trained):
    """MLP 10-16-4 (P = 244, float64): per start vector, the exact spectral measure
    μ_u = Σ (q_iᵀu)² δ_λi lies within the quadrature's bounds at every threshold (a
    deterministic check); the trace is within 4 SE of tr H; the extreme nodes match the
    extreme eigenvalues; the smoothed SLQ density is close to the smoothed exact one."""
    model, data, h = _mlp_and_dense_hessian(trained)
    lam, q = np.linalg.eigh(h)
    n = len(lam)
    hvp = hessian_vector_product(model, F.cross_entropy, data, list(model.parameters()))
    vectors, steps, seed = 8, 40, 1
    out = slq(hvp, n, vectors=vectors, steps=steps, seed=seed)
    starts = _start_vectors(n, vectors, seed)
    radius = np.abs(lam).max()
    for x in np.concatenate([-np.geomspace(1e-4, 1, 9), [0.0], np.geomspace(1e-4, 1, 9)]) * radius:
        lo, hi = cdf_bounds(out.nodes, out.weights, x)
        exact = np.array([((q.T @ u) ** 2 * (lam <= x)).sum() for u in starts])
        assert np.all(lo - 1e-9 <= exact) and np.all(exact <= hi + 1e-9), x
    sd = _hutchinson_sd(h)
    assert abs(out.trace - lam.sum()) <= 4 * sd / math.sqrt(vectors)
    assert np.nanmax(out.nodes) == pytest.approx(lam.max(), rel=1e-8)
    assert np.nanmin(out.nodes) == pytest.approx(lam.min(), rel=1e-3)
    f = slq_fractions(out.nodes, out.weights, zero_tol=1e-2, n=n)
    for key, true in (("near_zero", np.mean(np.abs(lam) <= f["eps"])), ("negative", np.mean(lam < -f["eps"]))):
        se = f[key].std(ddof=1) / math.sqrt(vectors)
        assert f[f"{key}_lo"].mean() - 4 * se <= true <= f[f"{key}_hi"].mean() + 4 * se, key
    grid = np.linspace(lam.min() - 0.1 * radius, lam.max() + 0.1 * radius, 2001)
    sigma = 0.02 * (lam.max() - lam.min())
    est = slq_density(out.nodes, out.weights, grid, sigma)
    ref = slq_density(lam[None, :], np.full((1, n), 1 / n), grid, sigma)
    l1 = np.abs(est - ref).sum() * (grid[1] - grid[0])
    assert l1 < 0.25  # measured 0.09 (init) and 0.12 (trained); sampling alone gives about √(2/(nV))·(bins) ≈ 0.1


def test_lanczos_ritz_vectors_are_eigenvectors():
    a = _rotated(np.concatenate([np.arange(10.0, 0, -1), np.zeros(30)]), seed=2)
    out = lanczos_topk(lambda v: a @ v, 40, k=4, vectors=True)
    np.testing.assert_allclose(out.eigenvalues, [10, 9, 8, 7], atol=1e-9)
    resid = a @ out.vectors.T - out.vectors.T * torch.as_tensor(out.eigenvalues)
    assert float(resid.abs().max()) < 1e-8
    np.testing.assert_allclose((out.vectors @ out.vectors.T).numpy(), np.eye(4), atol=1e-10)
