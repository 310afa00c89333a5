"""Top eigenvalues of the loss Hessian by Lanczos iteration on Hessian-vector products."""

from __future__ import annotations

import pathlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.linalg
import torch
import torch.nn.functional as F

from pyengine.landscape._store import write_group
from pyengine.landscape._weights import Data, LossFn, assign, check_data, resolve_weights, snapshot, trainable
from pyengine.landscape.results import HessianResult
from pyengine.record import Probe, preserved_training_state

#: Relative residual ‖H u − θ u‖ / max|θ| below which all top-k Ritz values count as converged.
TOL = 1e-6


@dataclass(frozen=True)
class LanczosResult:
    """Top-k Ritz values of a symmetric operator.

    Attributes
    ----------
    eigenvalues : ndarray of float64, shape (k,)
        Largest (algebraic) first.
    residuals : ndarray of float64, shape (k,)
        ‖A u − θ u‖ of each Ritz pair: the eigenvalue is within this of an exact one.
    iterations : int
        Operator applications.
    """

    eigenvalues: np.ndarray
    residuals: np.ndarray
    iterations: int


def lanczos_topk(matvec: Callable[[torch.Tensor], torch.Tensor], n: int, k: int = 20, iters: int | None = None,
                 seed: int = 0, tol: float = TOL, dtype: torch.dtype = torch.float64,
                 device: torch.device | str = "cpu") -> LanczosResult:
    """The k largest eigenvalues of a symmetric n×n operator known by its products.

    Lanczos iteration with full reorthogonalisation (twice, classical Gram–Schmidt), so
    the basis stays orthogonal to working precision and no spurious copies appear. It
    stops when the top-k Ritz residuals are all below ``tol·max|θ|``, after ``iters``
    products, or when the basis spans all n dimensions. A Krylov space holds one vector
    per distinct eigenvalue; when it closes (β ≈ 0, which happens only when A has fewer
    distinct eigenvalues than ``iters``, e.g. exact multiplicities) the iteration goes on
    from a random vector orthogonal to the basis, and stops once a closed space leaves
    the top k unchanged: repeated eigenvalues come out with their multiplicity.

    Parameters
    ----------
    matvec : callable (n,) tensor -> (n,) tensor
        v ↦ A v for a symmetric A.
    n : int
        Dimension.
    k : int
        Number of eigenvalues, 1 <= k <= n.
    iters : int, optional
        Most products (and basis vectors kept); default ``min(n, 4k + 40)``.
    seed : int
        Seeds the start vector.
    tol : float
        Relative residual for convergence (never below 100 ε of ``dtype``).
    dtype, device
        Of the basis vectors.

    Returns
    -------
    LanczosResult

    References
    ----------
    Golub, G. H. & Van Loan, C. F. (2013). Matrix Computations, 4th ed., Sec. 10.1.
    Ghorbani, B., Krishnan, S. & Xiao, Y. (2019). An investigation into neural net
    optimization via Hessian eigenvalue density. ICML.

    Examples
    --------
    >>> a = torch.diag(torch.arange(1.0, 51.0, dtype=torch.float64))
    >>> lanczos_topk(lambda v: a @ v, 50, k=3).eigenvalues.round(6).tolist()
    [50.0, 49.0, 48.0]
    """
    if not 1 <= k <= n:
        raise ValueError(f"k must be in [1, n] = [1, {n}], got {k}")
    iters = min(n, 4 * k + 40) if iters is None else int(iters)
    if not k <= iters <= n:
        raise ValueError(f"iters must be in [k, n] = [{k}, {n}], got {iters}")
    tol = max(tol, 100 * torch.finfo(dtype).eps)
    gen = torch.Generator().manual_seed(int(seed))
    basis = torch.zeros((iters, n), dtype=dtype, device=device)
    alpha, beta = [], []
    closed = None  # top-k Ritz values when the last Krylov space closed
    q = _random_unit(gen, basis[:0], n, dtype, device)
    for j in range(iters):
        basis[j] = q
        w = matvec(q).to(dtype)
        alpha.append(float(q @ w))
        for _ in range(2):
            w -= basis[:j + 1].T @ (basis[:j + 1] @ w)
        b = float(w.norm())
        if b > 1e-10 * max(abs(a) for a in alpha) and j < n - 1:
            beta.append(b)
            q = w / b
            if closed is None and j + 1 >= k:
                theta, res = _ritz(alpha, beta)
                if (res[:k] <= tol * max(np.abs(theta).max(), 1e-300)).all():
                    break
            continue
        # the Krylov space closed: its Ritz values are exact; go on in its complement, where
        # further copies of repeated eigenvalues lie, until a space adds nothing to the top k
        beta.append(0.0)
        top = _ritz(alpha, beta)[0][:k]
        q = _random_unit(gen, basis[:j + 1], n, dtype, device) if j + 1 < iters else None
        if q is None or (closed is not None and len(top) == len(closed) and np.allclose(top, closed, rtol=tol)):
            break
        closed = top
    theta, res = _ritz(alpha, beta)
    return LanczosResult(theta[:k], res[:k], len(alpha))


def _random_unit(gen: torch.Generator, basis: torch.Tensor, n: int, dtype, device) -> torch.Tensor | None:
    """A random unit vector orthogonal to the rows of ``basis``, or None if they span everything."""
    v = torch.randn(n, generator=gen, dtype=torch.float64).to(device=device, dtype=dtype)
    norm0 = float(v.norm())
    for _ in range(2):
        v -= basis.T @ (basis @ v)
    norm = float(v.norm())
    return v / norm if norm > 1e-6 * norm0 else None


def _ritz(alpha: list[float], beta: list[float]) -> tuple[np.ndarray, np.ndarray]:
    """Ritz values (largest first) of the tridiagonal T and residual norms β_m |s_m|."""
    theta, s = scipy.linalg.eigh_tridiagonal(np.array(alpha), np.array(beta[:-1]))
    res = abs(beta[-1]) * np.abs(s[-1])
    return theta[::-1], res[::-1]


def hessian_vector_product(model: torch.nn.Module, loss_fn: LossFn, data: Data, params: Sequence[torch.Tensor],
                           batch_size: int = 1024) -> Callable[[torch.Tensor], torch.Tensor]:
    """v ↦ H v for the Hessian of the mean loss over ``data`` in the parameters (double backward).

    Runs the model as it is (call it in eval mode); per batch one forward pass, the
    gradient with ``create_graph=True`` and the gradient of g·v.

    Examples
    --------
    >>> hvp = hessian_vector_product(model, F.cross_entropy, (x, y), list(model.parameters()))  # doctest: +SKIP
    >>> hvp(torch.ones(sum(p.numel() for p in model.parameters()))).shape  # doctest: +SKIP
    """
    x, y = data
    sizes = [p.numel() for p in params]

    def hvp(v: torch.Tensor) -> torch.Tensor:
        parts = [c.view_as(p).to(p.dtype) for c, p in zip(v.split(sizes), params)]
        out = torch.zeros(sum(sizes), dtype=params[0].dtype, device=params[0].device)
        for i in range(0, len(x), batch_size):
            xb, yb = x[i:i + batch_size], y[i:i + batch_size]
            loss = loss_fn(model(xb), yb) * (len(xb) / len(x))
            grads = torch.autograd.grad(loss, params, create_graph=True, allow_unused=True)
            dot = sum((g * u).sum() for g, u in zip(grads, parts) if g is not None)
            if not (isinstance(dot, torch.Tensor) and dot.requires_grad):
                continue  # the loss is at most linear in the parameters here
            hv = torch.autograd.grad(dot, params, allow_unused=True)
            out += torch.cat([(torch.zeros_like(p) if h is None else h).reshape(-1) for h, p in zip(hv, params)])
        return out

    return hvp


def hessian_topk(model: torch.nn.Module, loss_fn: LossFn, data: Data, k: int = 20, iters: int | None = None,
                 seed: int = 0, *, batch_size: int = 1024, tol: float = TOL,
                 params: Sequence[torch.Tensor] | None = None) -> np.ndarray:
    """Top-k eigenvalues of the Hessian of the mean loss over a fixed data set, in eval mode.

    Lanczos iteration (:func:`lanczos_topk`) on Hessian-vector products by double
    backward through torch.autograd; the model's mode, buffers and RNG state are left as
    they were.

    Parameters
    ----------
    model : torch.nn.Module
    loss_fn : callable (outputs, targets) -> scalar tensor
        Mean loss of a batch.
    data : (inputs, targets)
        The fixed data subset (e.g. 1000 training samples), moved to the model's device.
    k : int
        Number of eigenvalues (Chen et al. 2022 track the top 20).
    iters : int, optional
        Most Hessian-vector products; default ``min(P, 4k + 40)``.
    seed : int
        Seeds the Lanczos start vector.
    batch_size : int
        Batch of each forward/backward pass (memory only).
    tol : float
        Relative Ritz residual at which the iteration stops.
    params : sequence of torch.Tensor, optional
        The parameters of the Hessian; default all trainable ones.

    Returns
    -------
    ndarray of float64, shape (k,)
        Largest first.

    Notes
    -----
    Cost: up to ``iters`` Hessian-vector products (each about twice a forward-backward
    pass over ``data``) and ``iters`` basis vectors of P values in the parameters' dtype
    on their device.

    Examples
    --------
    >>> eig = hessian_topk(model, F.cross_entropy, (x[:1000], y[:1000]), k=20)  # doctest: +SKIP
    >>> eig.shape  # doctest: +SKIP
    (20,)
    """
    return _hessian_lanczos(model, loss_fn, data, k, iters, seed, batch_size, tol, params).eigenvalues


def _hessian_lanczos(model, loss_fn, data, k, iters, seed, batch_size, tol, params) -> LanczosResult:
    params = trainable(model)[1] if params is None else list(params)
    data = check_data(data, params[0].device)
    with preserved_training_state(model):
        model.eval()
        hvp = hessian_vector_product(model, loss_fn, data, params, batch_size)
        return lanczos_topk(hvp, sum(p.numel() for p in params), k, iters, seed, tol, params[0].dtype,
                            params[0].device)


class HessianProbe(Probe):
    """Top-k Hessian eigenvalues at chosen steps of a recorded run (a recorder probe).

    Stored in ``/hessian``: ``step`` (M,), ``eigenvalues`` (M, k) largest first,
    ``residuals`` (M, k) Lanczos residual bounds and ``iterations`` (M,). The Hessian is
    taken in the parameters the recorder records.

    Parameters
    ----------
    data : (inputs, targets)
        The fixed data subset.
    loss_fn : callable (outputs, targets) -> scalar tensor
        Mean loss of a batch; default cross-entropy.
    k : int
        Number of eigenvalues.
    every : int
        Run every this many optimizer steps.
    iters, seed, batch_size, tol
        As for :func:`hessian_topk`.

    Examples
    --------
    >>> probe = HessianProbe((x[:512], y[:512]), k=20, every=500)  # doctest: +SKIP
    >>> with Recorder(model, "run.h5", probes=[probe]) as rec:  # doctest: +SKIP
    ...     ...
    """

    group = "hessian"

    def __init__(self, data: Data, loss_fn: LossFn = F.cross_entropy, k: int = 20, every: int = 100,
                 iters: int | None = None, seed: int = 0, batch_size: int = 1024, tol: float = TOL) -> None:
        super().__init__(every)
        self.data = check_data(data)
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        self.loss_fn, self.k, self.iters, self.seed = loss_fn, k, iters, seed
        self.batch_size, self.tol = batch_size, tol
        self.rows.update(eigenvalues=[], residuals=[], iterations=[])
        self.attrs.update(k=k, method="lanczos", iters=-1 if iters is None else iters, seed=seed, tol=tol,
                          n_samples=len(self.data[0]))

    def measure(self, model: torch.nn.Module, params: Sequence[torch.Tensor], step: int) -> None:
        out = _hessian_lanczos(model, self.loss_fn, self.data, self.k, self.iters, self.seed, self.batch_size,
                               self.tol, params)
        self.rows["step"].append(step)
        self.rows["eigenvalues"].append(out.eigenvalues)
        self.rows["residuals"].append(out.residuals)
        self.rows["iterations"].append(out.iterations)


def hessian_spectrum(model: torch.nn.Module, loss_fn: LossFn, data: Data, path: str | pathlib.Path,
                     snapshots: Sequence[int], k: int = 20, iters: int | None = None, seed: int = 0, *,
                     batch_size: int = 1024, tol: float = TOL, store: bool = True) -> HessianResult:
    """Top-k Hessian eigenvalues at recorded snapshots of a trajectory file.

    Each snapshot is loaded into the model (tensors the file does not record keep the
    model's values), its spectrum computed by :func:`hessian_topk`, and the model
    restored afterwards. With ``store`` the result replaces ``/hessian`` of the file.

    Parameters
    ----------
    model : torch.nn.Module
        The network of the run.
    loss_fn, data, k, iters, seed, batch_size, tol
        As for :func:`hessian_topk`.
    path : str or Path
        The trajectory file (closed: no recorder may be writing it).
    snapshots : sequence of int
        Snapshot indices (negative count from the end).
    store : bool
        Write ``/hessian``.

    Returns
    -------
    HessianResult

    Examples
    --------
    >>> subset = (x[:512], y[:512])  # doctest: +SKIP
    >>> res = hessian_spectrum(model, F.cross_entropy, subset, "run.h5", range(0, 1000, 100))  # doctest: +SKIP
    >>> res.plot()  # doctest: +SKIP
    """
    names, params = trainable(model)
    original = snapshot(params)
    steps, rows = [], []
    try:
        for index in snapshots:
            values, info = resolve_weights(int(index), names, params, path)
            assign(params, values)
            rows.append(_hessian_lanczos(model, loss_fn, data, k, iters, seed, batch_size, tol, params))
            steps.append(info["center_step"])
    finally:
        assign(params, original)
    settings = {"k": k, "method": "lanczos", "iters": -1 if iters is None else iters, "seed": seed, "tol": tol,
                "n_samples": len(data[0]), "snapshots": [int(s) for s in snapshots]}
    result = HessianResult(np.array(steps, dtype=np.int64), np.array([r.eigenvalues for r in rows]),
                           np.array([r.residuals for r in rows]), settings)
    if store:
        write_group(path, "hessian", {"step": result.steps, "eigenvalues": result.eigenvalues,
                                      "residuals": result.residuals,
                                      "iterations": np.array([r.iterations for r in rows])}, settings)
    return result
