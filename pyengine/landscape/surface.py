"""Loss surfaces around a point of weight space, and loss along a line between two points."""

from __future__ import annotations

import math
import pathlib
import time
from collections.abc import Sequence

import numpy as np
import torch
from tqdm import tqdm

from pyengine.landscape._store import write_group
from pyengine.landscape._weights import (
    Data,
    LossFn,
    WeightsSpec,
    assign,
    check_data,
    mean_loss,
    resolve_weights,
    snapshot,
    trainable,
)
from pyengine.landscape.directions import pca_directions, random_directions
from pyengine.landscape.results import InterpolationResult, LandscapeResult, box_count_surface, read_surface
from pyengine.record import preserved_training_state
from pyengine.store import open_trajectory

DIRECTIONS = ("random", "pca")
#: Settings that may differ between an interrupted surface and its resumption.
RESUME_FREE = ("batch_size",)


def loss_surface(
    model: torch.nn.Module,
    loss_fn: LossFn,
    data: Data,
    center: WeightsSpec = None,
    directions: str = "random",
    grid: int | tuple[int, int] = 51,
    span: tuple[float, float] = (-1.0, 1.0),
    batch_size: int = 1024,
    seed: int = 0,
    path: str | pathlib.Path | None = None,
    name: str = "final",
    resume: bool = True,
    *,
    keep_1d: bool = False,
    pca_window: tuple[int, int] | None = None,
    checkpoint_seconds: float = 60.0,
    progress: bool = False,
) -> LandscapeResult:
    """The loss on a 2-D grid of weights c + x·d1 + y·d2 around a centre c.

    Each point is the mean loss over the whole evaluation set ``data``, computed in eval
    mode (BatchNorm running statistics, no dropout) in batches of ``batch_size``. The
    directions are filter-normalized Gaussian ones (Li et al. 2018) or the top two
    principal axes of the recorded path (see :func:`~pyengine.landscape.directions.pca_directions`).
    With ``path`` the surface is stored as ``/landscape/<name>`` (docs/format.md) every
    ``checkpoint_seconds`` and when the function returns or is interrupted; a later call
    with the same settings resumes it, evaluating only the points not done.

    Parameters
    ----------
    model : torch.nn.Module
        The network; its weights, train/eval flags, buffers and torch's RNG state are
        restored afterwards, also after an exception.
    loss_fn : callable (outputs, targets) -> scalar tensor
        Mean loss of a batch, e.g. ``torch.nn.functional.cross_entropy``.
    data : (inputs, targets)
        The fixed evaluation set (moved to the model's device).
    center : None, int, state dict or flat vector
        The centre c: the model's current weights (None), snapshot ``center`` of the
        trajectory file ``path`` (negative counts from the end), a state dict, or the
        trainable parameters flattened in order.
    directions : {"random", "pca"}
        Filter-normalized random directions, or principal axes of the path in ``path``.
    grid : int or (nx, ny)
        Points per axis.
    span : (float, float)
        Range of both coordinates.
    batch_size : int
        Evaluation batch size (memory only).
    seed : int
        Seed of the random directions.
    path : str or Path, optional
        The trajectory file: source of a snapshot centre and of PCA directions, and where
        the surface is stored. Without it nothing is stored and nothing resumes.
    name : str
        The surface's name in the file.
    resume : bool
        Continue a stored surface of this name (its settings must match); False starts
        afresh and replaces it.
    keep_1d : bool
        Random directions: keep 1-D tensors (biases, normalisation parameters) instead of
        zeroing them.
    pca_window : (start, length), optional
        PCA directions: the snapshot rows of the PCA (default the last 1000).
    checkpoint_seconds : float
        Store the finished points at least this often.
    progress : bool
        Show a progress bar.

    Returns
    -------
    LandscapeResult
        The surface (NaN at points not evaluated), and its box counting when complete.

    Raises
    ------
    ValueError
        Bad settings, or a stored surface of this name made with other settings.

    Notes
    -----
    Cost: nx·ny evaluations of the loss over ``data`` (forward passes only). Memory:
    four copies of the weights (centre, two directions, the weights to restore).

    References
    ----------
    Li, H., Xu, Z., Taylor, G., Studer, C. & Goldstein, T. (2018). Visualizing the loss
    landscape of neural nets. NeurIPS 31. Chen, Qu & Gong (2022), Sec. III D.

    Examples
    --------
    >>> res = loss_surface(model, F.cross_entropy, (x_test, y_test), center=-1, path="run.h5")  # doctest: +SKIP
    >>> res.loss.shape, res.surface.dimension  # doctest: +SKIP
    ((51, 51), 2.08)
    """
    if directions not in DIRECTIONS:
        raise ValueError(f"directions must be one of {DIRECTIONS}, got {directions!r}")
    nx, ny = _grid(grid)
    lo, hi = _span(span)
    if "/" in name or not name:
        raise ValueError(f"name must be a non-empty string without '/', got {name!r}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if directions == "pca" and path is None:
        raise ValueError("PCA directions come from a recorded path: pass path= (the trajectory file)")
    names, params = trainable(model)
    data = check_data(data, params[0].device)
    c, center_info = resolve_weights(center, names, params, path)
    if directions == "random":
        d1, d2 = random_directions(c, seed, keep_1d)
        extra, arrays = {"normalization": "filter", "keep_1d": keep_1d}, {}
    else:
        d1, d2, extra = pca_directions(path, names, c, pca_window)
        arrays = {"path": extra.pop("path"), "path_step": extra.pop("path_step")}
        extra["normalization"] = "path extent"
    settings = {
        "directions": directions, "seed": int(seed), "grid": [nx, ny], "span": [lo, hi], **center_info, **extra,
        "n_samples": len(data[0]), "data_sum": float(data[0].double().sum()), "loss_fn": _name(loss_fn),
        "n_params": sum(p.numel() for p in params), "center_norm": _norm(c),
        "direction_norms": [_norm(d1), _norm(d2)], "batch_size": int(batch_size),
    }
    xs, ys = np.linspace(lo, hi, nx), np.linspace(lo, hi, ny)
    loss, done = _start(path, name, settings, resume, (ny, nx))

    def save() -> None:
        if path is not None:
            attrs = {**settings, "n_done": int(done.sum()), "complete": bool(done.all())}
            write_group(path, f"landscape/{name}", {"x": xs, "y": ys, "loss": loss, "done": done, **arrays}, attrs)

    original = snapshot(params)
    todo = [(j, i) for j in range(ny) for i in range(nx) if not done[j, i]]
    try:
        with preserved_training_state(model), torch.no_grad():
            model.eval()
            saved = time.monotonic()
            for j, i in tqdm(todo, desc=f"surface {name}", unit="point", disable=not progress):
                for p, c0, a, b in zip(params, c, d1, d2):
                    p.copy_(c0).add_(a, alpha=float(xs[i])).add_(b, alpha=float(ys[j]))
                loss[j, i] = mean_loss(model, loss_fn, data, batch_size)
                done[j, i] = True
                if time.monotonic() - saved > checkpoint_seconds:
                    save()
                    saved = time.monotonic()
    finally:
        assign(params, original)
        save()
    surface, levels, note = box_count_surface(loss, done)
    return LandscapeResult(name, xs, ys, loss, done, settings, arrays.get("path"), arrays.get("path_step"),
                           surface, levels, note)


def interpolate(
    model: torch.nn.Module,
    loss_fn: LossFn,
    data: Data,
    w_a: WeightsSpec,
    w_b: WeightsSpec,
    n: int = 51,
    span: tuple[float, float] = (0.0, 1.0),
    batch_size: int = 1024,
    path: str | pathlib.Path | None = None,
) -> InterpolationResult:
    """The loss along the line (1 − α)·w_a + α·w_b (Goodfellow, Vinyals & Saxe 2015).

    Parameters
    ----------
    model, loss_fn, data, batch_size
        As for :func:`loss_surface` (eval mode; the model is restored afterwards).
    w_a, w_b : None, int, state dict or flat vector
        The two end points, in any form :func:`loss_surface` takes for ``center``
        (snapshot indices need ``path``).
    n : int
        Points on the line.
    span : (float, float)
        Range of α; values outside [0, 1] extrapolate beyond the end points.
    path : str or Path, optional
        The trajectory file of snapshot indices.

    Returns
    -------
    InterpolationResult

    References
    ----------
    Goodfellow, I. J., Vinyals, O. & Saxe, A. M. (2015). Qualitatively characterizing
    neural network optimization problems. ICLR.

    Examples
    --------
    >>> res = interpolate(model, F.cross_entropy, (x, y), 0, -1, path="run.h5")  # doctest: +SKIP
    >>> res.loss[0], res.loss[-1]  # doctest: +SKIP
    (2.31, 0.12)
    """
    if n < 2:
        raise ValueError(f"n must be >= 2 points, got {n}")
    lo, hi = _span(span)
    names, params = trainable(model)
    data = check_data(data, params[0].device)
    a, info_a = resolve_weights(w_a, names, params, path)
    b, info_b = resolve_weights(w_b, names, params, path)
    alphas = np.linspace(lo, hi, n)
    loss = np.empty(n)
    original = snapshot(params)
    try:
        with preserved_training_state(model), torch.no_grad():
            model.eval()
            for k, alpha in enumerate(alphas):
                for p, pa, pb in zip(params, a, b):
                    torch.lerp(pa, pb, float(alpha), out=p)
                loss[k] = mean_loss(model, loss_fn, data, batch_size)
    finally:
        assign(params, original)
    settings = {"a": info_a, "b": info_b, "span": [lo, hi], "n_samples": len(data[0]), "loss_fn": _name(loss_fn),
                "distance": math.sqrt(sum(float((pb - pa).double().pow(2).sum()) for pa, pb in zip(a, b)))}
    return InterpolationResult(alphas, loss, settings)


def _grid(grid: int | Sequence[int]) -> tuple[int, int]:
    nx, ny = (grid, grid) if isinstance(grid, (int, np.integer)) else tuple(grid)
    if int(nx) < 2 or int(ny) < 2:
        raise ValueError(f"grid must be an int or (nx, ny) of at least 2 points each, got {grid}")
    return int(nx), int(ny)


def _span(span: Sequence[float]) -> tuple[float, float]:
    lo, hi = (float(v) for v in span)
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise ValueError(f"span must be two finite numbers (lo, hi) with lo < hi, got {span}")
    return lo, hi


def _name(fn) -> str:
    return getattr(fn, "__name__", type(fn).__name__)


def _norm(tensors: Sequence[torch.Tensor]) -> float:
    return math.sqrt(sum(float(t.double().pow(2).sum()) for t in tensors))


def _start(path, name: str, settings: dict, resume: bool, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Losses and done-mask to start from: a stored surface with the same settings, or NaN / False."""
    loss, done = np.full(shape, np.nan), np.zeros(shape, dtype=bool)
    if path is None or not resume:
        return loss, done
    with open_trajectory(path, validate=False) as traj:
        group = traj.group(f"landscape/{name}")
        if group is None:
            return loss, done
        arrays, stored = read_surface(group)
    differ = [key for key in settings if key not in RESUME_FREE and not _same(settings[key], stored.get(key))]
    if differ or arrays["loss"].shape != shape:
        detail = ", ".join(f"{k}: stored {stored.get(k)!r}, now {settings[k]!r}" for k in differ[:3])
        raise ValueError(f"{path}: /landscape/{name} was made with other settings ({detail or 'grid shape'}); "
                         "pass resume=False to replace it, or choose another name")
    return arrays["loss"], arrays["done"]


def _same(a, b) -> bool:
    if isinstance(a, str) or isinstance(b, str) or a is None or b is None:
        return a == b
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype == bool or b.dtype == bool:
        return a.shape == b.shape and bool((a == b).all())
    return a.shape == b.shape and bool(np.allclose(a, b, rtol=1e-6, atol=0.0))
