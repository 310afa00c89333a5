"""The covariance of minibatch gradients (SGD's noise, the diffusion matrix) from a few
gradients, and its alignment with the Hessian, without ever forming a P × P matrix.

Given m minibatch gradients g_1 … g_m of batch size b' over a partition of a fixed probe
set of n = m·b' samples, with mean ḡ (the probe set's full gradient), the noise vectors
U_i = g_i − ḡ give the estimate

    Σ̂_b' = (1/(m − 1)) Σ_i U_i U_iᵀ,     E[Σ̂_b'] = S / b'

over random partitions, where S = (1/(n − 1)) Σ_k (∇f_k − ḡ)(∇f_k − ḡ)ᵀ is the per-sample
gradient covariance of the probe set (the diffusion matrix D of Chaudhari 2018, Lemma
6.3, for sampling without replacement, up to its (n − 1)/n): each U_i has covariance
(S/b')(1 − b'/n) for a minibatch drawn without replacement, and m of them sum to
(m − 1)·S/b'. The covariance of the noise at the training batch size b is then
Σ_b = (b'/b)·Σ̂_b' (= S/b). Its eigenpairs come from the thin SVD of the centred m × P
matrix U = V_L diag(s) V_R: λ_j = (b'/b)·s_j²/(m − 1) with eigenvectors the rows of V_R;
at most m − 1 eigenvalues are non-zero (the rows of U sum to zero).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["NoiseCovariance", "noise_covariance", "subspace_overlap", "hessian_noise_trace", "ALIGN_PRODUCTS"]

#: Most Hessian-vector products for tr(H Σ): up to this many eigenpairs of Σ it is exact,
#: beyond that it is estimated from this many random-sign combinations of them.
ALIGN_PRODUCTS = 64


@dataclass(frozen=True)
class NoiseCovariance:
    """Eigen-decomposition of a gradient-noise covariance Σ estimated from m gradients.

    Attributes
    ----------
    eigenvalues : ndarray of float64, shape (min(m − 1, P),)
        Of Σ (scaled to the batch size asked for), largest first; the trailing ones can be
        (numerically) zero.
    vectors : torch.Tensor of shape (min(m − 1, P), P), optional
        Orthonormal eigenvectors (rows), float64, on the gradients' device.
    trace : float
        tr Σ = Σ_j λ_j = scale·‖U‖_F²/(m − 1).
    participation : float
        Participation ratio (Σ λ)² / Σ λ²: the number of equal eigenvalues that would give
        the same first two moments (1 for rank one, r for r equal eigenvalues).
    rank : int
        Numerical rank: eigenvalues whose singular value s_j exceeds
        s_1 · max(m, P) · ε of the gradients' dtype (NumPy's ``matrix_rank`` rule, the
        threshold of Chaudhari 2018, Sec. 6.3.2). At most m − 1.
    n_gradients : int
        m.
    scale : float
        The factor b'/b applied (1 when the gradients are of the training batch size).
    """

    eigenvalues: np.ndarray
    vectors: torch.Tensor | None
    trace: float
    participation: float
    rank: int
    n_gradients: int
    scale: float = 1.0


def noise_covariance(grads: torch.Tensor, scale: float = 1.0, vectors: bool = True,
                     eps: float | None = None) -> NoiseCovariance:
    """Eigenvalues, trace and effective rank of the covariance of m gradients, by a thin SVD.

    Parameters
    ----------
    grads : torch.Tensor of shape (m, P)
        Gradients of m minibatches (a partition of a fixed probe set), m >= 2.
    scale : float
        Multiplies the covariance: b'/b to express gradients of batch size b' as the noise
        at batch size b (module docstring).
    vectors : bool
        Keep the eigenvectors (needed for alignments; m − 1 vectors of P float64 values).
    eps : float, optional
        Machine epsilon of the rank threshold; default that of ``grads``' dtype.

    Returns
    -------
    NoiseCovariance

    Notes
    -----
    Never forms the P × P matrix: the thin SVD of the centred m × P matrix costs O(m²P)
    in float64 (0.01 s for m = 8, 5 s for m = 512 at P = 24 378 on one CPU thread).

    Examples
    --------
    >>> g = torch.tensor([[1.0, 0.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, -2.0, 0.0]])
    >>> cov = noise_covariance(g)   # Σ = diag(2, 8, 0) / 3
    >>> (cov.eigenvalues * 3).round(9).tolist(), round(cov.trace * 3, 9), cov.rank
    ([8.0, 2.0, 0.0], 10.0, 2)
    """
    if not isinstance(grads, torch.Tensor) or grads.ndim != 2 or grads.shape[0] < 2:
        raise ValueError(f"grads must be a tensor of shape (m, P) with m >= 2, got "
                         f"{tuple(grads.shape) if isinstance(grads, torch.Tensor) else type(grads).__name__}")
    m, p = grads.shape
    eps = torch.finfo(grads.dtype).eps if eps is None else float(eps)
    centred = grads.double()
    centred = centred - centred.mean(dim=0)
    _, s, vh = torch.linalg.svd(centred, full_matrices=False)
    s, vh = s[:m - 1], vh[:m - 1]
    s_host = s.cpu().numpy()
    eigenvalues = scale * s_host ** 2 / (m - 1)
    trace = float(scale * float((centred * centred).sum()) / (m - 1))
    square = float((eigenvalues ** 2).sum())
    participation = trace ** 2 / square if square > 0 else 0.0
    threshold = s_host[0] * max(m, p) * eps if s_host.size else 0.0
    rank = int((s_host > threshold).sum()) if s_host.size and s_host[0] > 0 else 0
    return NoiseCovariance(eigenvalues, vh if vectors else None, trace, participation, rank, m, float(scale))


def subspace_overlap(a: torch.Tensor, b: torch.Tensor) -> float:
    """Mean squared cosine of the principal angles between the spans of two sets of orthonormal rows.

    With orthonormal rows A (k_a × P) and B (k_b × P), the cosines of the principal angles
    are the singular values of A Bᵀ, so the mean of their squares over the min(k_a, k_b)
    angles is ‖A Bᵀ‖_F² / min(k_a, k_b): 1 when one span contains the other, 0 when they
    are orthogonal; k_b/P on average for a random k_a-dimensional span (k_a <= k_b).

    Parameters
    ----------
    a, b : torch.Tensor of shape (k_a, P), (k_b, P)
        Orthonormal rows (eigenvectors).

    Returns
    -------
    float in [0, 1]

    Examples
    --------
    >>> e = torch.eye(4, dtype=torch.float64)
    >>> subspace_overlap(e[:2], e[1:3])
    0.5
    """
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"a and b must be (k, P) with the same P, got {tuple(a.shape)} and {tuple(b.shape)}")
    k = min(a.shape[0], b.shape[0])
    if k == 0:
        return math.nan
    cross = a.double() @ b.double().to(a.device).T
    return float((cross * cross).sum()) / k


def hessian_noise_trace(hvp: Callable[[torch.Tensor], torch.Tensor], cov: NoiseCovariance,
                        products: int = ALIGN_PRODUCTS, seed: int = 0) -> tuple[float, float]:
    """tr(H Σ) = Σ_j λ_j v_jᵀ H v_j over the eigenpairs of Σ, by Hessian-vector products.

    Exact with one product per eigenpair when Σ has at most ``products`` non-zero
    eigenvalues; otherwise estimated without bias from ``products`` random combinations
    x = Σ_j ±√λ_j v_j (E[xᵀHx] = tr(HΣ), the cross terms vanishing in expectation).

    Parameters
    ----------
    hvp : callable (P,) tensor -> (P,) tensor
        v ↦ H v.
    cov : NoiseCovariance
        With ``vectors``.
    products : int
        Most products.
    seed : int
        Seeds the random signs (estimate only).

    Returns
    -------
    value, se : float
        tr(HΣ) and its standard error (0 when exact).

    Examples
    --------
    >>> h = torch.diag(torch.tensor([3.0, 1.0, 0.0], dtype=torch.float64))
    >>> g = torch.tensor([[1.0, 0.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, -2.0, 0.0]])
    >>> trace, se = hessian_noise_trace(lambda v: h @ v, noise_covariance(g))   # tr(H Σ) = (3·2 + 1·8)/3
    >>> round(trace, 12), se
    (4.666666666667, 0.0)
    """
    if cov.vectors is None:
        raise ValueError("the noise covariance was computed without its eigenvectors (vectors=False)")
    keep = cov.eigenvalues > 0
    lam, vec = cov.eigenvalues[keep], cov.vectors[torch.as_tensor(keep, device=cov.vectors.device)]
    if lam.size == 0:
        return 0.0, 0.0
    if lam.size <= products:
        curv = np.array([float(v @ hvp(v).to(v.dtype)) for v in vec])
        return float((lam * curv).sum()), 0.0
    gen = torch.Generator().manual_seed(int(seed))
    root = torch.as_tensor(np.sqrt(lam), dtype=vec.dtype, device=vec.device)
    values = np.empty(products)
    for i in range(products):
        signs = (torch.randint(0, 2, (lam.size,), generator=gen) * 2 - 1).to(dtype=vec.dtype, device=vec.device)
        x = (signs * root) @ vec
        values[i] = float(x @ hvp(x).to(x.dtype))
    return float(values.mean()), float(values.std(ddof=1) / math.sqrt(products))
