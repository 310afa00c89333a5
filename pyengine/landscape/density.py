"""Spectral density and trace of a symmetric operator known by its products: stochastic
Lanczos quadrature (SLQ) and Hutchinson's estimator.

For a symmetric n × n matrix A with eigenpairs (λ_i, q_i) and a unit start vector u,
Lanczos run from u for s steps gives a tridiagonal T_s whose eigenvalues θ_j (the nodes)
and the squared first components τ_j of its eigenvectors (the weights) form the Gauss
quadrature rule of the spectral measure μ_u = Σ_i (q_iᵀu)² δ(λ − λ_i): Σ_j τ_j f(θ_j) is
exact for polynomials f of degree < 2s (Golub & Meurant 2010, Ch. 6). With u = z/√n for a
Rademacher z, E[(q_iᵀu)²] = 1/n, so μ_u is an unbiased estimate of the spectral density
(1/n) Σ_i δ(λ − λ_i); averaging over V start vectors is SLQ (Ubaru, Chen & Saad 2017;
Ghorbani, Krishnan & Xiao 2019). The first node-weighted moment Σ_j τ_j θ_j = uᵀAu, so
n·uᵀAu = zᵀAz is Hutchinson's estimate of tr A, with Var = 2(‖A‖_F² − Σ_i A_ii²) per
vector (Hutchinson 1990; Avron & Toledo 2011). The same products give the trace of each
diagonal block A_LL of a partition of the coordinates into groups L: z ⊙ Az is an unbiased
estimate of the diagonal of A (Bekas, Kokiopoulou & Saad 2007), so Σ_{i∈L} z_i (Az)_i
estimates tr A_LL, and the groups' estimates add up to zᵀAz exactly.

Reading stored densities needs NumPy only (:mod:`pyengine.landscape.results`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.linalg
import torch

from pyengine.engine.groups import NamedGroups

__all__ = ["SLQResult", "slq", "hutchinson_trace"]


@dataclass(frozen=True)
class SLQResult:
    """Gauss quadrature nodes and weights of V random start vectors, and the trace they give.

    Attributes
    ----------
    nodes : ndarray of float64, shape (V, s)
        Ritz values θ of each start vector's Lanczos run, ascending; NaN past the step at
        which its Krylov space closed (A has fewer distinct eigenvalues than s there).
    weights : ndarray of float64, shape (V, s)
        Quadrature weights τ (each row sums to 1); 0 where the node is NaN.
    quadratic : ndarray of float64, shape (V,)
        uᵀAu of each unit start vector (= Σ_j τ_j θ_j).
    n : int
        Dimension of A.
    iterations : int
        Products with A in all.
    block_quadratic : ndarray of float64, shape (V, G), optional
        With groups: Σ_{i∈L} u_i (A u)_i of each start vector u and group L (the rows sum
        to ``quadratic``).
    """

    nodes: np.ndarray
    weights: np.ndarray
    quadratic: np.ndarray
    n: int
    iterations: int
    block_quadratic: np.ndarray | None = None

    @property
    def trace(self) -> float:
        """Hutchinson's estimate of tr A: n times the mean of uᵀAu."""
        return float(self.n * self.quadratic.mean())

    @property
    def trace_se(self) -> float:
        """Its standard error: n times the sample sd of uᵀAu over √V (NaN for one vector)."""
        v = len(self.quadratic)
        return float(self.n * self.quadratic.std(ddof=1) / math.sqrt(v)) if v > 1 else math.nan

    @property
    def block_trace(self) -> np.ndarray:
        """Each group's estimate of tr A_LL, shape (G,): n times the mean of its part of uᵀAu."""
        return self.n * self._blocks().mean(axis=0)

    @property
    def block_trace_se(self) -> np.ndarray:
        """Their standard errors over the start vectors, shape (G,) (NaN for one vector)."""
        parts = self._blocks()
        if len(parts) < 2:
            return np.full(parts.shape[1], np.nan)
        return self.n * parts.std(axis=0, ddof=1) / math.sqrt(len(parts))

    def _blocks(self) -> np.ndarray:
        if self.block_quadratic is None:
            raise ValueError("this SLQ ran without groups: pass groups= to slq for the blocks' traces")
        return self.block_quadratic


def _rademacher(gen: torch.Generator, n: int, dtype, device) -> torch.Tensor:
    """A unit vector of ±1/√n entries (drawn on the CPU, so a seed gives the same vector everywhere)."""
    signs = torch.randint(0, 2, (n,), generator=gen, dtype=torch.int8).to(torch.float64) * 2 - 1
    return (signs / math.sqrt(n)).to(device=device, dtype=dtype)


def lanczos_tridiagonal(matvec: Callable[[torch.Tensor], torch.Tensor], start: torch.Tensor,
                        steps: int, first: torch.Tensor | None = None) -> tuple[np.ndarray, np.ndarray]:
    """α (diagonal) and β (off-diagonal) of the Lanczos tridiagonal matrix from a unit vector.

    Full reorthogonalisation (classical Gram–Schmidt, twice), so the basis stays
    orthogonal to working precision. Stops early when the Krylov space closes
    (β < 1e-10·max|α|): then T's eigenvalues are exact eigenvalues of A. ``first``, the
    product A·start when the caller has it already, is used instead of computing it again.

    Returns
    -------
    alpha : ndarray, shape (m,)
    beta : ndarray, shape (m − 1,)
        m ≤ ``steps`` (fewer when the space closed).
    """
    n = start.numel()
    steps = min(int(steps), n)
    basis = torch.zeros((steps, n), dtype=start.dtype, device=start.device)
    alpha, beta = [], []
    q = start
    for j in range(steps):
        basis[j] = q
        w = (matvec(q) if j or first is None else first.clone()).to(start.dtype)
        alpha.append(float(q @ w))
        for _ in range(2):
            w -= basis[:j + 1].T @ (basis[:j + 1] @ w)
        b = float(w.norm())
        if j == steps - 1 or not b > 1e-10 * max(abs(a) for a in alpha):
            break
        beta.append(b)
        q = w / b
    return np.array(alpha), np.array(beta)


def slq(matvec: Callable[[torch.Tensor], torch.Tensor], n: int, vectors: int = 4, steps: int = 40, seed: int = 0,
        dtype: torch.dtype = torch.float64, device: torch.device | str = "cpu",
        groups: NamedGroups | None = None) -> SLQResult:
    """Spectral density of a symmetric n × n operator by stochastic Lanczos quadrature.

    Parameters
    ----------
    matvec : callable (n,) tensor -> (n,) tensor
        v ↦ A v for a symmetric A.
    n : int
        Dimension.
    vectors : int
        Rademacher start vectors V (>= 1): the density's and the trace's sampling error
        falls as 1/√V.
    steps : int
        Lanczos steps s per vector (<= n): the quadrature is exact for polynomials of
        degree < 2s; extreme nodes converge to the extreme eigenvalues first.
    seed : int
        Seeds the start vectors.
    dtype, device
        Of the Lanczos vectors.
    groups : NamedGroups, optional
        A partition of the n coordinates (:func:`pyengine.layers.param_groups`): also the
        trace of each diagonal block, from the same products (``block_trace``,
        ``block_trace_se``; module docstring).

    Returns
    -------
    SLQResult
        Nodes and weights per vector; ``trace`` and ``trace_se`` (Hutchinson).

    Notes
    -----
    Cost: V·s products with A and s vectors of n values held at once; the blocks' traces
    cost no product.

    References
    ----------
    Ubaru, S., Chen, J. & Saad, Y. (2017). Fast estimation of tr(f(A)) via stochastic
    Lanczos quadrature. SIAM J. Matrix Anal. Appl. 38(4).
    Ghorbani, B., Krishnan, S. & Xiao, Y. (2019). An investigation into neural net
    optimization via Hessian eigenvalue density. ICML.

    Examples
    --------
    >>> a = torch.diag(torch.tensor([0.0] * 90 + [1.0] * 8 + [-2.0] * 2, dtype=torch.float64))
    >>> out = slq(lambda v: a @ v, 100, vectors=2, steps=10)
    >>> (out.nodes[0, :3].round(12) + 0.0).tolist(), out.weights[0, :3].round(12).tolist(), round(out.trace, 9)
    ([-2.0, 0.0, 1.0], [0.02, 0.9, 0.08], 4.0)
    """
    if int(vectors) < 1:
        raise ValueError(f"vectors must be >= 1, got {vectors}")
    if not 1 <= int(steps) <= n:
        raise ValueError(f"steps must be in [1, n] = [1, {n}], got {steps}")
    if groups is not None and groups.n_params != n:
        raise ValueError(f"groups must partition the n = {n} coordinates, got groups of {groups.n_params}")
    vectors, steps = int(vectors), int(steps)
    gen = torch.Generator().manual_seed(int(seed))
    nodes = np.full((vectors, steps), np.nan)
    weights = np.zeros((vectors, steps))
    quadratic = np.empty(vectors)
    blocks = None if groups is None else np.empty((vectors, len(groups.names)))
    products = 0
    for v in range(vectors):
        start = _rademacher(gen, n, dtype, device)
        first = matvec(start).to(dtype)
        if blocks is not None:
            blocks[v] = _block_sums(start * first, groups)
        alpha, beta = lanczos_tridiagonal(matvec, start, steps, first)
        products += len(alpha)
        theta, s = scipy.linalg.eigh_tridiagonal(alpha, beta)
        nodes[v, :len(theta)] = theta
        weights[v, :len(theta)] = s[0] ** 2
        quadratic[v] = alpha[0]
    return SLQResult(nodes, weights, quadratic, int(n), products, blocks)


def _block_sums(values: torch.Tensor, groups: NamedGroups) -> np.ndarray:
    """Σ of ``values`` over each group's coordinates, shape (G,) float64 (one transfer from the device)."""
    sums = torch.zeros(len(groups.names), dtype=torch.float64, device=values.device)
    for owner, a, b, _ in groups.ranges(0, groups.n_params):
        sums[owner] += values[a:b].sum(dtype=torch.float64)
    return sums.cpu().numpy()


def hutchinson_trace(matvec: Callable[[torch.Tensor], torch.Tensor], n: int, samples: int = 16, seed: int = 0,
                     dtype: torch.dtype = torch.float64, device: torch.device | str = "cpu") -> tuple[float, float]:
    """tr A ≈ mean of zᵀAz over Rademacher vectors z (Hutchinson 1990), with its standard error.

    Parameters
    ----------
    matvec : callable
        v ↦ A v.
    n : int
        Dimension.
    samples : int
        Vectors (products with A); the estimate's variance is 2(‖A‖_F² − Σ A_ii²)/samples.
    seed : int
    dtype, device
        Of the vectors.

    Returns
    -------
    trace, se : float
        The estimate and the sample sd of zᵀAz over √samples (NaN for one sample).

    Examples
    --------
    >>> a = torch.diag(torch.arange(1.0, 11.0, dtype=torch.float64))
    >>> hutchinson_trace(lambda v: a @ v, 10, samples=4)  # diagonal: exact
    (55.0, 0.0)
    """
    if int(samples) < 1:
        raise ValueError(f"samples must be >= 1, got {samples}")
    gen = torch.Generator().manual_seed(int(seed))
    values = np.empty(int(samples))
    for i in range(int(samples)):
        z = _rademacher(gen, n, dtype, device) * math.sqrt(n)
        values[i] = float(z @ matvec(z).to(dtype))
    se = float(values.std(ddof=1) / math.sqrt(len(values))) if len(values) > 1 else math.nan
    return float(values.mean()), se
