"""Measurements a :class:`~pyengine.record.Recorder` takes at chosen steps.

A probe runs in eval mode on fixed data and leaves the training state exactly as it
found it (weights, normalisation statistics, gradients, RNG): a run with probes follows
the same trajectory as one without. Results go to an optional group of the trajectory
file: :class:`EvalProbe` to ``/eval``, :class:`NoiseProbe` to ``/noise`` (with the spectrum of
the noise covariance). The recorder
lays the group out before the first snapshot (:meth:`Probe.layout`) and appends each run's
row as soon as it is measured, so a hard kill keeps every row written before it.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from pyengine.heavytail import mohammadi
from pyengine.kernels import tail_sums
from pyengine.kernels.tail_index import n_stats
from pyengine.store import ParamInfo, RowGroup

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Data = tuple[torch.Tensor, torch.Tensor]


@contextlib.contextmanager
def preserved_training_state(model: torch.nn.Module) -> Iterator[None]:
    """Run a block, then restore the model's train/eval flags, buffers and torch's RNG states.

    Buffers (BatchNorm running statistics and counters) are cloned before and copied back
    after; the CPU and (if initialised) CUDA random generators are reset to their states
    before the block. Parameters and their ``.grad`` are not saved: probes read weights
    and take gradients with ``torch.autograd.grad``, which changes neither.

    Examples
    --------
    >>> net = torch.nn.BatchNorm1d(2)
    >>> with preserved_training_state(net):
    ...     _ = net.train()(torch.randn(8, 2))  # updates the running statistics
    >>> net.running_mean.tolist()
    [0.0, 0.0]
    """
    modes = [(m, m.training) for m in model.modules()]
    buffers = [(b, b.detach().clone()) for b in model.buffers()]
    cpu_rng = torch.get_rng_state()
    cuda_rng = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None
    try:
        yield
    finally:
        with torch.no_grad():
            for b, saved in buffers:
                b.copy_(saved)
        for m, training in modes:
            m.training = training
        torch.set_rng_state(cpu_rng)
        if cuda_rng is not None:
            torch.cuda.set_rng_state_all(cuda_rng)


class Probe:
    """Base class: when to run, what to measure, and the rows measured and not yet taken.

    Subclasses set :attr:`group` (``"eval"``, ``"noise"`` or ``"hessian"``) and the
    attributes its definition in ``pyengine.store`` needs to lay the group out (the
    datasets' row widths, e.g. ``k`` for ``/hessian``), and implement :meth:`measure`,
    appending one value per dataset of the group to :attr:`rows` for each run;
    :attr:`static` holds datasets that do not grow.

    Parameters
    ----------
    every : int
        Run at optimizer steps that are multiples of ``every``.
    """

    group = ""

    def __init__(self, every: int) -> None:
        if int(every) < 1:
            raise ValueError(f"every must be >= 1 step, got {every}")
        self.every = int(every)
        self.rows: dict[str, list] = {"step": []}
        self.static: dict[str, np.ndarray] = {}
        self.attrs: dict = {"every": self.every}

    def due(self, step: int) -> bool:
        """Whether to run at this optimizer step."""
        return step % self.every == 0

    def measure(self, model: torch.nn.Module, params: Sequence[torch.Tensor], step: int) -> None:
        """Measure at the current weights and append one row (model already in eval mode)."""
        raise NotImplementedError

    def run(self, model: torch.nn.Module, params: Sequence[torch.Tensor], step: int) -> None:
        """Measure in eval mode, restoring the training state afterwards."""
        with preserved_training_state(model):
            model.eval()
            self.measure(model, params, step)

    def layout(self, n_params: int, params: Sequence[ParamInfo] | None = None) -> RowGroup:
        """The group to create in the file before recording: attributes (which fix the row
        shapes) and static datasets, for ``n_params`` recorded parameters (whose table
        ``params`` the recorder passes, for probes that measure per tensor)."""
        return RowGroup(self.group, self.describe(), dict(self.static))

    def take_row(self) -> dict[str, object]:
        """The row of the last run, removed from :attr:`rows` (the recorder writes it)."""
        return {key: values.pop() for key, values in self.rows.items()}

    def describe(self) -> dict:
        """Settings for the run's metadata."""
        return {"class": type(self).__name__, "group": self.group, **self.attrs}


def _batches(data: Data, batch_size: int) -> Iterator[Data]:
    x, y = data
    for i in range(0, len(x), batch_size):
        yield x[i:i + batch_size], y[i:i + batch_size]


def _on_device(data: Data, device: torch.device) -> Data:
    x, y = data
    return x.to(device), y.to(device)


class EvalProbe(Probe):
    """Loss (and accuracy) over whole fixed data sets: full-batch training loss, test loss.

    Stored in ``/eval``: ``step`` (M,), and per data set ``loss_<name>`` (M,) and, for
    integer targets (class labels), ``accuracy_<name>`` (M,): the fraction of samples
    whose largest output is the label (NaN if the outputs are not 2-D class scores).

    Parameters
    ----------
    data : (inputs, targets) or dict of name to (inputs, targets)
        Fixed data; a single pair is named ``"test"``.
    loss_fn : callable (outputs, targets) -> scalar tensor
        Mean loss of a batch; default cross-entropy.
    every : int
        Run every this many optimizer steps.
    batch_size : int
        Evaluation batch size (memory only; the result is the mean over all samples).

    Examples
    --------
    >>> probe = EvalProbe({"train": (x, y), "test": (xt, yt)}, every=100)  # doctest: +SKIP
    >>> Recorder(model, "run.h5", probes=[probe])  # doctest: +SKIP
    """

    group = "eval"

    def __init__(self, data: Data | Mapping[str, Data], loss_fn: LossFn = F.cross_entropy, every: int = 100,
                 batch_size: int = 1024) -> None:
        super().__init__(every)
        self.data = dict(data) if isinstance(data, Mapping) else {"test": data}
        for name, (x, y) in self.data.items():
            if len(x) != len(y) or len(x) == 0:
                raise ValueError(f"eval set {name!r}: need as many targets as inputs (at least 1), "
                                 f"got {len(x)} inputs and {len(y)} targets")
        self.loss_fn = loss_fn
        self.batch_size = int(batch_size)
        self.attrs["sets"] = list(self.data)
        self.attrs["accuracy_sets"] = [name for name, (_, y) in self.data.items() if not y.is_floating_point()]
        self.attrs["n_samples"] = {name: len(x) for name, (x, _) in self.data.items()}
        self.rows.update({f"loss_{name}": [] for name in self.attrs["sets"]})
        self.rows.update({f"accuracy_{name}": [] for name in self.attrs["accuracy_sets"]})

    def measure(self, model: torch.nn.Module, params: Sequence[torch.Tensor], step: int) -> None:
        device = params[0].device
        with torch.no_grad():
            for name, data in self.data.items():
                loss, correct = self._evaluate(model, _on_device(data, device))
                n = len(data[0])
                self.rows[f"loss_{name}"].append(loss / n)
                if f"accuracy_{name}" in self.rows:
                    self.rows[f"accuracy_{name}"].append(correct / n)
        self.rows["step"].append(step)

    def _evaluate(self, model: torch.nn.Module, data: Data) -> tuple[float, float]:
        """Summed loss and number of correct predictions (NaN when the outputs are not class scores)."""
        loss, correct = 0.0, 0.0
        for x, y in _batches(data, self.batch_size):
            out = model(x)
            loss += float(self.loss_fn(out, y)) * len(x)
            correct += float((out.argmax(dim=1) == y).sum()) if out.ndim == 2 else math.nan
        return loss, correct


class NoiseProbe(Probe):
    """Gradient noise by the protocol of Şimşekli, Sagun & Gürbüzbalaban (2019), Sec. 4, and
    the spectrum of its covariance (Chaudhari 2018, Lemma 6.3).

    A fixed probe set of n samples is partitioned (in a seeded random order) into
    m = n // b minibatches of the training batch size b (the n mod b left over are
    dropped). At a probe step the full gradient ∇f (mean of the minibatch gradients) and
    the noise U_i = ∇f̃_Ω_i − ∇f of each minibatch are computed for the recorded
    parameters, and the noise vectors are concatenated into X of K = m·P values.

    Stored in ``/noise`` (one row per probe step):

    - ``step``; ``grad_norm`` ‖∇f‖; ``noise_norm`` root mean square of ‖U_i‖; ``loss``, the
      mean loss over the probe set.
    - ``alpha``: the Mohammadi et al. (2015) tail index of X with K1 (static ``k1``) the
      divisor of K closest to √K, as in Şimşekli et al.
    - ``tail_stats`` (M, S): the estimator's additive sufficient statistics
      (:class:`pyengine.heavytail.TailState` ``.stats``), so probes can be pooled later:
      ``finalize(TailState(k1, False, stats=sum of rows))``.
    - ``samples`` (M, n_samples) and static ``sample_index``: the noise at fixed random
      positions of X, when ``n_samples > 0``.
    - The covariance Σ_b of the minibatch gradient at batch size b, from the thin SVD of
      the centred gradients (:func:`pyengine.landscape.covariance.noise_covariance`; never a
      P × P matrix): ``cov_trace`` tr Σ_b, ``cov_participation`` (Σλ)²/Σλ², ``cov_rank``
      (numerical rank) and ``cov_eigenvalues`` (M, cov_k), largest first (NaN past the
      m' − 1 an estimate from m' gradients can hold).

    Parameters
    ----------
    data : (inputs, targets)
        The probe set (e.g. a fixed subset of the training data).
    batch_size : int
        The training batch size b.
    loss_fn : callable (outputs, targets) -> scalar tensor
        Mean loss of a minibatch; default cross-entropy.
    every : int
        Run every this many optimizer steps.
    n_samples : int
        Noise values kept per probe (0: none).
    seed : int
        Seeds the partition and the sample positions.
    cov_k : int
        Eigenvalues of the covariance stored per probe (0: none; trace and ranks are
        always stored).
    cov_batch_size : int, optional
        Batch size b' of the gradients whose covariance is decomposed: default b (the m
        minibatch gradients of the tail index, rank <= m − 1); 1 gives the n per-sample
        gradients (rank <= n − 1, n backward passes and a thin SVD of an n × P matrix).
        The covariance is rescaled by b'/b to the noise at batch size b
        (:mod:`pyengine.landscape.covariance`).

    Notes
    -----
    Memory: the m minibatch gradients are held at once (m × P values on the model's
    device); they and the covariance's eigenvectors (min(m' − 1, P) float64 vectors of P
    values) are kept until the next probe step, for a
    :class:`~pyengine.landscape.HessianProbe` that aligns them with the Hessian at the same
    step (:meth:`covariance_at`). Cost: m gradients and a thin SVD of m' × P in float64
    (demo: 0.06 s with m' = 8; 0.5 s of gradients and 4.7 s of SVD with
    ``cov_batch_size=1``, m' = 512, P = 24 378; docs/landscape.md, "Costs").

    Examples
    --------
    >>> probe = NoiseProbe((x[:1024], y[:1024]), batch_size=64, every=500)  # doctest: +SKIP
    """

    group = "noise"

    def __init__(self, data: Data, batch_size: int, loss_fn: LossFn = F.cross_entropy, every: int = 100,
                 n_samples: int = 0, seed: int = 0, cov_k: int = 20, cov_batch_size: int | None = None) -> None:
        super().__init__(every)
        x, y = data
        if batch_size < 1 or len(x) < 2 * batch_size or len(y) != len(x):
            raise ValueError(f"the noise probe needs at least two minibatches of batch_size={batch_size} and one "
                             f"target per input, got {len(x)} inputs and {len(y)} targets")
        gen = torch.Generator().manual_seed(seed)
        m = len(x) // batch_size
        order = torch.randperm(len(x), generator=gen)[: m * batch_size]
        self.data = (x[order], y[order])
        cov_batch_size = batch_size if cov_batch_size is None else int(cov_batch_size)
        if cov_batch_size < 1 or m * batch_size // cov_batch_size < 2:
            raise ValueError(f"cov_batch_size must be in [1, {m * batch_size // 2}] (two gradients of the "
                             f"{m * batch_size} probe samples), got {cov_batch_size}")
        if int(cov_k) < 0:
            raise ValueError(f"cov_k must be >= 0, got {cov_k}")
        self.batch_size, self.loss_fn, self.n_samples, self.seed = batch_size, loss_fn, n_samples, seed
        self.cov_k, self.cov_batch_size = int(cov_k), cov_batch_size
        self.attrs.update(batch_size=batch_size, n_minibatches=m, n_samples=n_samples, seed=seed, cov_k=self.cov_k,
                          cov_batch_size=cov_batch_size, cov_gradients=m * batch_size // cov_batch_size)
        for key in ("grad_norm", "noise_norm", "alpha", "tail_stats", "loss", "cov_trace", "cov_participation",
                    "cov_rank"):
            self.rows[key] = []
        if n_samples:
            self.rows["samples"] = []
        if self.cov_k:
            self.rows["cov_eigenvalues"] = []
        self._cache: tuple | None = None

    def layout(self, n_params: int, params: Sequence[ParamInfo] | None = None) -> RowGroup:
        """Fixes K = m·P, ``k1`` and the sample positions, so that the row widths are known
        (``n_stats`` tail statistics, ``n_samples`` noise values) before the first probe."""
        self._set_static(self.attrs["n_minibatches"] * n_params)
        return super().layout(n_params, params)

    def measure(self, model: torch.nn.Module, params: Sequence[torch.Tensor], step: int) -> None:
        grads, loss = self._minibatch_gradients(model, params, step)
        full = grads.mean(dim=0)
        noise = (grads - full).double().cpu().numpy().ravel()
        if "k1" not in self.static:
            self._set_static(noise.size)
        cov = self.covariance_at(model, params, step)
        r = self.rows
        r["step"].append(step)
        r["grad_norm"].append(float(full.double().norm()))
        r["noise_norm"].append(float(np.sqrt((noise ** 2).sum() / len(grads))))
        stats = tail_sums(noise[:, None], self.static["k1"])
        r["alpha"].append(float(mohammadi.finalize(mohammadi.TailState(self.static["k1"], False, stats=stats)).alpha))
        r["tail_stats"].append(stats)
        r["loss"].append(loss)
        r["cov_trace"].append(cov.trace)
        r["cov_participation"].append(cov.participation)
        r["cov_rank"].append(cov.rank)
        if self.cov_k:
            top = np.full(self.cov_k, np.nan)
            top[:min(self.cov_k, cov.eigenvalues.size)] = cov.eigenvalues[:self.cov_k]
            r["cov_eigenvalues"].append(top)
        if self.n_samples:
            r["samples"].append(noise[self.static["sample_index"]].astype(np.float32))

    def covariance_at(self, model: torch.nn.Module, params: Sequence[torch.Tensor], step: int):
        """The noise covariance at the current weights, with its eigenvectors
        (:class:`pyengine.landscape.covariance.NoiseCovariance`).

        Computed once per step and set of weights, with the minibatch gradients: a second
        call at the same step (the other probe of the pair, in either order) reuses them.
        Call it in eval mode (inside :meth:`run`, or under :func:`preserved_training_state`).

        Parameters
        ----------
        model : torch.nn.Module
        params : sequence of torch.Tensor
            The parameters of the gradients.
        step : int
            The optimizer step (the cache key, with the parameters' identities and versions).
        """
        from pyengine.landscape.covariance import noise_covariance

        cache = self._cached(params, step)
        if "cov" not in cache:
            if self.cov_batch_size == self.batch_size:
                grads = self._minibatch_gradients(model, params, step)[0]
            else:
                grads = self._gradients(model, params, self.cov_batch_size)[0]
            cache["cov"] = noise_covariance(grads, scale=self.cov_batch_size / self.batch_size)
        return cache["cov"]

    def _minibatch_gradients(self, model, params, step: int) -> tuple[torch.Tensor, float]:
        """The m minibatch gradients and the mean loss at this step (computed once per step)."""
        cache = self._cached(params, step)
        if "grads" not in cache:
            cache["grads"] = self._gradients(model, params, self.batch_size)
        return cache["grads"]

    def _cached(self, params, step: int) -> dict:
        """What was computed at this step and these weights (a fresh dict at a new one)."""
        key = (int(step), tuple(id(p) for p in params), tuple(p._version for p in params))
        if self._cache is None or self._cache[0] != key:
            self._cache = (key, {})
        return self._cache[1]

    def _gradients(self, model, params, batch_size: int) -> tuple[torch.Tensor, float]:
        """Gradients of the consecutive minibatches of ``batch_size`` of the probe set (m', P), and
        the mean loss over them."""
        grads, loss = [], 0.0
        batches = list(_batches(_on_device(self.data, params[0].device), batch_size))
        batches = [(x, y) for x, y in batches if len(x) == batch_size]
        for x, y in batches:
            value = self.loss_fn(model(x), y)
            g = torch.autograd.grad(value, params, allow_unused=True)
            grads.append(torch.cat([(torch.zeros_like(p) if gi is None else gi).reshape(-1)
                                    for gi, p in zip(g, params)]))
            loss += float(value.detach())
        return torch.stack(grads), loss / len(batches)

    def _set_static(self, k: int) -> None:
        self.static["k1"] = np.array([mohammadi.choose_k1(k, math.sqrt(k))], dtype=np.int64)
        self.attrs["n_stats"] = n_stats(self.static["k1"].size)
        if self.n_samples:
            rng = np.random.default_rng(self.seed)
            self.static["sample_index"] = np.sort(rng.choice(k, size=min(self.n_samples, k), replace=False))
            self.attrs["n_samples"] = len(self.static["sample_index"])
