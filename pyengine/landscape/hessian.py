"""The loss Hessian from Hessian-vector products: top eigenvalues by Lanczos iteration, the
spectral density and trace by stochastic Lanczos quadrature, the alignment with the
gradient-noise covariance; as a recorder probe and at stored snapshots."""

from __future__ import annotations

import pathlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np
import scipy.linalg
import torch
import torch.nn.functional as F

from pyengine.engine.groups import NamedGroups
from pyengine.landscape._store import write_group
from pyengine.landscape._weights import Data, LossFn, assign, check_data, resolve_weights, snapshot, trainable
from pyengine.landscape.covariance import hessian_noise_trace, subspace_overlap
from pyengine.landscape.curvature import ZERO_TOL, CurvatureResult
from pyengine.landscape.density import slq
from pyengine.landscape.results import BLOCK_COLUMNS, HessianResult
from pyengine.layers import check_spec, tensor_groups
from pyengine.record import NoiseProbe, Probe, preserved_training_state, select_params
from pyengine.store import ParamInfo, RowGroup

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
    vectors : torch.Tensor of shape (k, n), optional
        The Ritz vectors (orthonormal rows, in the basis' dtype and device), when asked for.
    """

    eigenvalues: np.ndarray
    residuals: np.ndarray
    iterations: int
    vectors: torch.Tensor | None = None


def lanczos_topk(matvec: Callable[[torch.Tensor], torch.Tensor], n: int, k: int = 20, iters: int | None = None,
                 seed: int = 0, tol: float = TOL, dtype: torch.dtype = torch.float64,
                 device: torch.device | str = "cpu", vectors: bool = False) -> LanczosResult:
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
    vectors : bool
        Also return the top-k Ritz vectors (the basis times the eigenvectors of the
        tridiagonal matrix).

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
                theta, res, _ = _ritz(alpha, beta)
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
    theta, res, s = _ritz(alpha, beta)
    ritz = None
    if vectors:
        coef = torch.as_tensor(np.ascontiguousarray(s[:, :k].T), dtype=dtype, device=device)
        ritz = coef @ basis[:len(alpha)]
    return LanczosResult(np.ascontiguousarray(theta[:k]), np.ascontiguousarray(res[:k]), len(alpha), ritz)


def _random_unit(gen: torch.Generator, basis: torch.Tensor, n: int, dtype, device) -> torch.Tensor | None:
    """A random unit vector orthogonal to the rows of ``basis``, or None if they span everything."""
    v = torch.randn(n, generator=gen, dtype=torch.float64).to(device=device, dtype=dtype)
    norm0 = float(v.norm())
    for _ in range(2):
        v -= basis.T @ (basis @ v)
    norm = float(v.norm())
    return v / norm if norm > 1e-6 * norm0 else None


def _ritz(alpha: list[float], beta: list[float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ritz values (largest first) of the tridiagonal T, residual norms β_m |s_m| and the
    eigenvectors of T (columns, in the same order)."""
    theta, s = scipy.linalg.eigh_tridiagonal(np.array(alpha), np.array(beta[:-1]))
    res = abs(beta[-1]) * np.abs(s[-1])
    return theta[::-1], res[::-1], s[:, ::-1]


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


@dataclass(frozen=True)
class Curvature:
    """What one Hessian measurement takes: the top-k (Lanczos), optionally the density and trace
    (SLQ with Hutchinson) and the alignment with a noise probe's covariance.

    Attributes
    ----------
    k, iters, seed, batch_size, tol
        As for :func:`hessian_topk`.
    density : int
        SLQ start vectors (0: no density, no trace).
    density_steps : int
        Lanczos steps per SLQ vector.
    groups : NamedGroups, optional
        Groups of whole tensors of the parameters (:func:`pyengine.layers.tensor_groups`):
        also the top-k eigenvalues of each diagonal block H_LL (Lanczos on the products
        with L's tensors alone) and, with a density, its trace from the SLQ vectors.

    Examples
    --------
    >>> row = Curvature(k=5, density=2, density_steps=10).measure(model, F.cross_entropy, (x, y),
    ...                                                            list(model.parameters()))  # doctest: +SKIP
    >>> row["eigenvalues"].shape, row["slq_nodes"].shape  # doctest: +SKIP
    ((5,), (20,))
    """

    k: int = 20
    iters: int | None = None
    seed: int = 0
    batch_size: int = 1024
    tol: float = TOL
    density: int = 0
    density_steps: int = 40
    groups: NamedGroups | None = None

    def __post_init__(self) -> None:
        if self.k < 1:
            raise ValueError(f"k must be >= 1, got {self.k}")
        if self.density < 0 or self.density_steps < 1:
            raise ValueError(f"density must be >= 0 vectors and density_steps >= 1, got {self.density} and "
                             f"{self.density_steps}")

    def attrs(self) -> dict:
        """The settings as stored in ``/hessian``'s attributes."""
        return {"k": self.k, "method": "lanczos", "iters": -1 if self.iters is None else self.iters,
                "seed": self.seed, "tol": self.tol, "density": self.density, "density_steps": self.density_steps,
                "n_nodes": self.density * self.density_steps,
                "n_blocks": 0 if self.groups is None else len(self.groups.names)}

    def measure(self, model: torch.nn.Module, loss_fn: LossFn, data: Data, params: Sequence[torch.Tensor],
                noise=None, step: int = 0) -> dict[str, object]:
        """One row of ``/hessian`` (without ``step``) at the model's current weights, in eval mode.

        Parameters
        ----------
        model, loss_fn, data
            As for :func:`hessian_topk`.
        params : sequence of torch.Tensor
            The parameters of the Hessian.
        noise : NoiseProbe, optional
            Whose covariance to align with the Hessian (:meth:`NoiseProbe.covariance_at`).
        step : int
            The step (the noise covariance's cache key).
        """
        params = list(params)
        data = check_data(data, params[0].device)
        n = sum(p.numel() for p in params)
        if self.groups is not None and self.groups.n_params != n:
            raise ValueError(f"the groups partition {self.groups.n_params} parameters, but the Hessian's parameters "
                             f"hold {n}: resolve the groups against these parameters' table")
        dtype, device = params[0].dtype, params[0].device
        nan = float("nan")
        with preserved_training_state(model):
            model.eval()
            hvp = hessian_vector_product(model, loss_fn, data, params, self.batch_size)
            cov = None if noise is None else noise.covariance_at(model, params, step)
            top = lanczos_topk(hvp, n, self.k, self.iters, self.seed, self.tol, dtype, device, vectors=cov is not None)
            row = {"eigenvalues": top.eigenvalues, "residuals": top.residuals, "iterations": top.iterations,
                   "trace": nan, "trace_se": nan, "noise_trace": nan, "hd_trace": nan, "hd_trace_se": nan,
                   "overlap": nan, "align_k": 0}
            if self.groups is not None:
                row.update(self._blocks(model, loss_fn, data, params))
            if self.density:
                out = slq(hvp, n, self.density, min(self.density_steps, n), self.seed, dtype, device, self.groups)
                nodes = np.full((self.density, self.density_steps), np.nan)  # the stored width, also when P < steps
                weights = np.zeros((self.density, self.density_steps))
                nodes[:, :out.nodes.shape[1]], weights[:, :out.nodes.shape[1]] = out.nodes, out.weights
                row.update(trace=out.trace, trace_se=out.trace_se, slq_nodes=nodes.ravel(), slq_weights=weights.ravel())
                if self.groups is not None:
                    row.update(block_trace=out.block_trace, block_trace_se=out.block_trace_se)
            if cov is not None:
                align_k = min(self.k, cov.rank)
                hd, hd_se = hessian_noise_trace(hvp, cov, seed=self.seed)
                row.update(noise_trace=cov.trace, hd_trace=hd, hd_trace_se=hd_se, align_k=align_k,
                           overlap=subspace_overlap(cov.vectors[:align_k], top.vectors[:align_k]) if align_k else nan)
        return row

    def _blocks(self, model, loss_fn: LossFn, data: Data, params: list[torch.Tensor]) -> dict[str, np.ndarray]:
        """Top-k of each diagonal block H_LL: Lanczos on the Hessian-vector products in the
        block's tensors alone (the other tensors held fixed); NaN past a block's size, and
        NaN traces (filled in from the SLQ vectors when there is a density)."""
        g = len(self.groups.names)
        sized = [p for p in params if p.numel()]  # an empty tensor has no column, so no group
        owners = self.groups.of(np.cumsum([0] + [p.numel() for p in sized[:-1]]))
        eigenvalues, residuals = np.full((g, self.k), np.nan), np.full((g, self.k), np.nan)
        iterations = np.zeros(g, np.int64)
        for block in range(g):
            tensors = [p for p, owner in zip(sized, owners) if owner == block]
            n = sum(p.numel() for p in tensors)
            k = min(self.k, n)
            hvp = hessian_vector_product(model, loss_fn, data, tensors, self.batch_size)
            top = lanczos_topk(hvp, n, k, None if self.iters is None else min(self.iters, n), self.seed, self.tol,
                               tensors[0].dtype, tensors[0].device)
            eigenvalues[block, :k], residuals[block, :k] = top.eigenvalues, top.residuals
            iterations[block] = top.iterations
        return {"block_eigenvalues": eigenvalues, "block_residuals": residuals, "block_iterations": iterations,
                "block_trace": np.full(g, np.nan), "block_trace_se": np.full(g, np.nan)}


def hessian_blocks(spec, table: Sequence[ParamInfo]) -> tuple[NamedGroups, dict]:
    """The diagonal blocks of ``groups=`` for the Hessian in the parameters of ``table``, and
    the attributes that describe them in ``/hessian``.

    Parameters
    ----------
    spec : "tensor", "layer", "kind" or mapping
        As in :func:`pyengine.layers.param_groups`; every group takes whole tensors.
    table : sequence of ParamInfo
        The parameters of the Hessian, in order (offsets tiling [0, P)).

    Returns
    -------
    groups : NamedGroups
    attrs : dict
        ``block_spec`` (the name, or ``"mapping"``), ``block_groups`` ({group: [tensor
        names]}) and ``block_sizes`` (parameters per group).

    Raises
    ------
    ValueError, TypeError
        A bad spec, a glob that matches no tensor, a group that splits a tensor.

    Examples
    --------
    >>> from pyengine.store import ParamInfo
    >>> table = [ParamInfo("fc1.weight", 0, 6, (2, 3), "weight"), ParamInfo("fc2.weight", 6, 2, (1, 2), "weight")]
    >>> hessian_blocks("layer", table)[1]
    {'block_spec': 'layer', 'block_groups': {'fc1': ['fc1.weight'], 'fc2': ['fc2.weight']}, 'block_sizes': [6, 2]}
    """
    named, tensors = tensor_groups(spec, list(table))
    return named, {"block_spec": spec if isinstance(spec, str) else "mapping", "block_groups": tensors,
                   "block_sizes": named.sizes().tolist()}


class HessianProbe(Probe):
    """Hessian spectra at chosen steps of a recorded run (a recorder probe): the top-k
    eigenvalues, optionally the spectral density and trace, and the alignment of the
    Hessian with the gradient-noise covariance.

    Stored in ``/hessian``: ``step`` (M,), ``eigenvalues`` (M, k) largest first,
    ``residuals`` (M, k) Lanczos residual bounds and ``iterations`` (M,); with
    ``density`` > 0, ``slq_nodes`` and ``slq_weights`` (M, density·density_steps), the
    stochastic Lanczos quadrature of the density (:func:`pyengine.landscape.density.slq`:
    negative eigenvalues included), and ``trace`` ± ``trace_se`` (Hutchinson, from the
    same vectors); with ``noise``, ``noise_trace`` tr Σ, ``hd_trace`` ± ``hd_trace_se``
    tr(H Σ) and ``overlap``, the mean squared cosine of the principal angles between the
    top-``align_k`` eigenvectors of Σ and of H (align_k = min(k, rank Σ)); with ``groups``,
    per group L of whole tensors (G groups) ``block_eigenvalues`` and ``block_residuals``
    (M, G, k), the top-k of the diagonal block H_LL (NaN past the block's size),
    ``block_iterations`` (M, G), and ``block_trace`` ± ``block_trace_se`` (M, G), tr H_LL
    from the SLQ vectors (NaN without a density). Columns not measured hold NaN
    (``align_k`` 0). The Hessian is taken in the parameters the recorder records, in eval
    mode, on ``data``; Σ is the noise probe's, on its data.

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
    density : int
        SLQ start vectors per probe (0: no density and no trace).
    density_steps : int
        Lanczos steps per SLQ vector (resolution of the density; cost density·density_steps
        Hessian-vector products).
    noise : NoiseProbe, optional
        Align the Hessian with this probe's noise covariance Σ at the same step (computed
        once per step for both probes; costs the top-k Ritz vectors and one
        Hessian-vector product per non-zero eigenvalue of Σ, at most
        ``covariance.ALIGN_PRODUCTS``).
    groups : "tensor", "layer", "kind" or mapping, optional
        Also the diagonal block H_LL of each group L of the recorded tensors
        (:mod:`pyengine.layers`; every group takes whole tensors), resolved against the
        recorder's parameter table when the file is laid out: its top-k eigenvalues (up to
        ``iters`` more Hessian-vector products per group, each cheaper than a whole one)
        and its trace from the SLQ vectors (no more products).

    Examples
    --------
    >>> noise = NoiseProbe((x[:512], y[:512]), batch_size=64, every=250)  # doctest: +SKIP
    >>> probe = HessianProbe((x[:512], y[:512]), k=20, every=500, density=2, noise=noise)  # doctest: +SKIP
    >>> with Recorder(model, "run.h5", probes=[noise, probe]) as rec:  # doctest: +SKIP
    ...     ...
    >>> per_layer = HessianProbe((x[:512], y[:512]), k=5, every=500, density=2, groups="layer")  # doctest: +SKIP
    """

    group = "hessian"

    def __init__(self, data: Data, loss_fn: LossFn = F.cross_entropy, k: int = 20, every: int = 100,
                 iters: int | None = None, seed: int = 0, batch_size: int = 1024, tol: float = TOL, *,
                 density: int = 0, density_steps: int = 40, noise: NoiseProbe | None = None, groups=None) -> None:
        super().__init__(every)
        self.data = check_data(data)
        if noise is not None and not isinstance(noise, NoiseProbe):
            raise TypeError(f"noise must be a NoiseProbe, got {type(noise).__name__}")
        check_spec(groups)
        self.curvature = Curvature(k, iters, seed, batch_size, tol, density, density_steps)
        self.loss_fn, self.noise, self.groups = loss_fn, noise, groups
        self.k, self.iters, self.seed, self.batch_size, self.tol = k, iters, seed, batch_size, tol
        self.rows.update({name: [] for name in _ROW_NAMES})
        if density:
            self.rows.update(slq_nodes=[], slq_weights=[])
        self.attrs.update(self.curvature.attrs(), n_samples=len(self.data[0]), align=noise is not None)

    def layout(self, n_params: int, params: Sequence[ParamInfo] | None = None) -> RowGroup:
        """Resolves ``groups`` against the recorded parameters' table (which fixes the
        blocks' row shapes), then lays ``/hessian`` out.

        Raises
        ------
        ValueError
            ``groups`` without a table, or groups that do not fit it (a glob matching no
            tensor, a group splitting a tensor).
        """
        if self.groups is not None:
            if params is None:
                raise ValueError("HessianProbe(groups=...) resolves its groups against the recorded parameters' "
                                 "table: pass it, layout(n_params, params) (the Recorder does)")
            named, attrs = hessian_blocks(self.groups, params)
            self.curvature = replace(self.curvature, groups=named)
            self.rows.update({name: [] for name in _BLOCK_NAMES})
            self.attrs.update(self.curvature.attrs(), **attrs)
        return super().layout(n_params, params)

    def measure(self, model: torch.nn.Module, params: Sequence[torch.Tensor], step: int) -> None:
        if self.groups is not None and self.curvature.groups is None:
            raise RuntimeError("HessianProbe(groups=...) measures after its layout (the Recorder lays it out when "
                               "it opens the file): call layout(n_params, params) first")
        row = self.curvature.measure(model, self.loss_fn, self.data, params, self.noise, step)
        self.rows["step"].append(step)
        for name, value in row.items():
            self.rows[name].append(value)


#: Row datasets of ``/hessian`` that every probe run fills (``slq_*`` only with a density).
_ROW_NAMES = ("eigenvalues", "residuals", "iterations", "trace", "trace_se", "noise_trace", "hd_trace", "hd_trace_se",
              "overlap", "align_k")
#: Row datasets of a probe with groups.
_BLOCK_NAMES = tuple(f"block_{name}" for name in BLOCK_COLUMNS)


def hessian_spectrum(model: torch.nn.Module, loss_fn: LossFn, data: Data, path: str | pathlib.Path,
                     snapshots: Sequence[int], k: int = 20, iters: int | None = None, seed: int = 0, *,
                     batch_size: int = 1024, tol: float = TOL, store: bool = True, density: int = 0,
                     density_steps: int = 40, noise: NoiseProbe | None = None, groups=None) -> HessianResult:
    """Hessian spectra at recorded snapshots of a trajectory file: the top-k eigenvalues,
    optionally the density and trace, and the alignment with the gradient noise.

    Each snapshot is loaded into the model (tensors the file does not record keep the
    model's values, buffers such as BatchNorm statistics too), measured as by
    :class:`HessianProbe`, and the model restored afterwards. With ``store`` the result
    replaces ``/hessian`` of the file (every measured dataset, the probe's rows included;
    :func:`pyengine.landscape.curvature_result` reads the density and alignment back).
    :func:`snapshot_curvature` returns the density and alignment without storing.

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
    density, density_steps, noise
        As for :class:`HessianProbe`.
    groups : "tensor", "layer", "kind" or mapping, optional
        As for :class:`HessianProbe`, resolved against the model's trainable parameters
        (the Hessian's): each block's results in ``result.groups``.

    Returns
    -------
    HessianResult

    Examples
    --------
    >>> subset = (x[:512], y[:512])  # doctest: +SKIP
    >>> res = hessian_spectrum(model, F.cross_entropy, subset, "run.h5", range(0, 1000, 100))  # doctest: +SKIP
    >>> res.plot()  # doctest: +SKIP
    >>> hessian_spectrum(model, F.cross_entropy, subset, "run.h5", [-1], groups="layer").groups  # doctest: +SKIP
    """
    curvature = Curvature(k, iters, seed, batch_size, tol, density, density_steps)
    steps, columns, settings = _measure_snapshots(model, loss_fn, data, path, snapshots, curvature, noise, groups)
    if store:
        write_group(path, "hessian", {"step": steps, **columns}, settings)
    return HessianResult.from_rows({"step": steps, "eigenvalues": np.empty((0, k)), **columns}, settings)


def snapshot_curvature(model: torch.nn.Module, loss_fn: LossFn, data: Data, path: str | pathlib.Path,
                       snapshots: Sequence[int], density: int = 4, density_steps: int = 40, k: int = 20, *,
                       noise: NoiseProbe | None = None, seed: int = 0, batch_size: int = 1024, tol: float = TOL,
                       zero_tol: float = ZERO_TOL, store: bool = False, groups=None) -> CurvatureResult:
    """The Hessian's density, trace (and, with ``noise``, its alignment with the gradient noise)
    at stored snapshots, returned as a :class:`CurvatureResult`.

    The same measurement as :func:`hessian_spectrum`, but the result is the density; the file
    is left as it is unless ``store`` (which replaces ``/hessian``, the probe's rows included).

    Parameters
    ----------
    model, loss_fn, data, path, snapshots
        As for :func:`hessian_spectrum`.
    density, density_steps : int
        SLQ start vectors (>= 1) and Lanczos steps per vector.
    k : int
        Top eigenvalues (the alignment's Hessian eigenvectors).
    noise : NoiseProbe, optional
        Align with this probe's noise covariance at each snapshot.
    seed, batch_size, tol
        As for :func:`hessian_topk`.
    zero_tol : float
        Relative threshold of the near-zero fraction.
    store : bool
        Replace ``/hessian`` with these rows.
    groups : "tensor", "layer", "kind" or mapping, optional
        As for :func:`hessian_spectrum`: each block's λ_max and trace in ``result.groups``.

    Returns
    -------
    CurvatureResult

    Examples
    --------
    >>> res = snapshot_curvature(model, F.cross_entropy, (x[:512], y[:512]), "run.h5", [-1], density=8,
    ...                          density_steps=80)  # doctest: +SKIP
    >>> res.near_zero, res.near_zero_lo, res.near_zero_hi  # doctest: +SKIP
    """
    if density < 1:
        raise ValueError(f"density must be >= 1 start vector, got {density}")
    curvature = Curvature(k, None, seed, batch_size, tol, density, density_steps)
    steps, columns, settings = _measure_snapshots(model, loss_fn, data, path, snapshots, curvature, noise, groups)
    if store:
        write_group(path, "hessian", {"step": steps, **columns}, settings)
    n_params = sum(p.numel() for p in trainable(model)[1])
    return CurvatureResult.from_rows({"step": steps, **columns}, settings, n_params, zero_tol)


def _measure_snapshots(model, loss_fn, data, path, snapshots, curvature: Curvature, noise, groups):
    """Step, ``/hessian`` columns and settings of :meth:`Curvature.measure` at each snapshot
    (with the diagonal blocks of ``groups`` of the model's trainable tensors)."""
    data = check_data(data)
    params, table = select_params(model)
    names = [p.name for p in table]
    blocks = {}
    if groups is not None:
        named, blocks = hessian_blocks(groups, table)
        curvature = replace(curvature, groups=named)
    original = snapshot(params)
    steps, rows = [], []
    try:
        for index in snapshots:
            values, info = resolve_weights(int(index), names, params, path)
            assign(params, values)
            rows.append(curvature.measure(model, loss_fn, data, params, noise, info["center_step"]))
            steps.append(info["center_step"])
    finally:
        assign(params, original)
    settings = {**curvature.attrs(), **blocks, "n_samples": len(data[0]), "align": noise is not None,
                "snapshots": [int(s) for s in snapshots]}
    columns = {name: np.array([row[name] for row in rows]) for name in rows[0]} if rows else {}
    return np.array(steps, dtype=np.int64), columns, settings
