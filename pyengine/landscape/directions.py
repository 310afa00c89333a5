"""Directions of a 2-D loss surface: filter-normalized random ones, or the path's principal axes."""

from __future__ import annotations

import pathlib
from collections.abc import Sequence

import numpy as np
import torch

from pyengine.engine import run
from pyengine.engine.gram import GramWindow, WindowGramAccumulator
from pyengine.store import open_trajectory

#: Snapshots of the default PCA window (the last ones of the run).
PCA_WINDOW = 1000


def filter_normalized(weights: Sequence[torch.Tensor], generator: torch.Generator,
                      keep_1d: bool = False) -> list[torch.Tensor]:
    """A Gaussian random direction, rescaled filter by filter to the norms of the weights.

    For a tensor with two or more dimensions, each filter (slice along the first,
    output, dimension: a row of a linear layer, an output channel of a convolution) of
    the direction is scaled to the norm of the same filter of the weights (Li et al.
    2018, Sec. 4). Tensors with fewer dimensions (biases, normalisation scales and
    shifts) are zero, or with ``keep_1d`` scaled as one filter to the tensor's norm.

    Parameters
    ----------
    weights : sequence of torch.Tensor
        The weights at the centre of the surface.
    generator : torch.Generator
        CPU generator of the Gaussian numbers (drawn in float64, so a seed gives the
        same direction on every device).
    keep_1d : bool
        Keep 1-D (and 0-D) tensors instead of zeroing them.

    Returns
    -------
    list of torch.Tensor
        One per weight tensor, same shape, dtype and device.

    References
    ----------
    Li, H., Xu, Z., Taylor, G., Studer, C. & Goldstein, T. (2018). Visualizing the loss
    landscape of neural nets. NeurIPS 31.

    Examples
    --------
    >>> w = [torch.ones(3, 4), torch.ones(3)]
    >>> d = filter_normalized(w, torch.Generator().manual_seed(0))
    >>> d[0].norm(dim=1).tolist(), d[1].tolist()
    ([2.0, 2.0, 2.0], [0.0, 0.0, 0.0])
    """
    directions = []
    for w in weights:
        d = torch.randn(w.shape, generator=generator, dtype=torch.float64)
        w64 = w.detach().to("cpu", torch.float64)
        if w.dim() >= 2:
            d *= (w64.flatten(1).norm(dim=1) / d.flatten(1).norm(dim=1)).view(-1, *[1] * (w.dim() - 1))
        elif keep_1d:
            d *= w64.norm() / d.norm()
        else:
            d.zero_()
        directions.append(d.to(w))
    return directions


def random_directions(weights: Sequence[torch.Tensor], seed: int = 0,
                      keep_1d: bool = False) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Two filter-normalized random directions (:func:`filter_normalized`), seeded.

    Examples
    --------
    >>> d1, d2 = random_directions([torch.ones(2, 2)], seed=1)
    >>> bool((d1[0] != d2[0]).any())
    True
    """
    gen = torch.Generator().manual_seed(int(seed))
    return filter_normalized(weights, gen, keep_1d), filter_normalized(weights, gen, keep_1d)


def pca_directions(path: str | pathlib.Path, names: Sequence[str], center: Sequence[torch.Tensor],
                   window: tuple[int, int] | None = None) -> tuple[list[torch.Tensor], list[torch.Tensor], dict]:
    """The top two principal axes of the snapshots in a window, scaled to the path's extent.

    The window's centred Gram matrix G = (X − x̄)(X − x̄)ᵀ comes from one pass of
    :class:`~pyengine.engine.gram.WindowGramAccumulator`; its top eigenvectors v_k
    (eigenvalues λ_k) give the unit principal axes u_k = (X − x̄)ᵀ v_k / √λ_k in a second
    pass over the column blocks (never more than a block of X in memory). The projections
    of the snapshots on the axes, relative to the centre c, are p_k(t) = (x(t) − c)·u_k;
    each direction is d_k = r_k u_k with r_k = max_t |p_k(t)|, so the grid [−1, 1]²
    just holds the path. Parameters the file does not record get zero.

    Parameters
    ----------
    path : str or Path
        The trajectory file.
    names : sequence of str
        Names of the model's parameters (the file's tensors are matched by name).
    center : sequence of torch.Tensor
        The centre c, one tensor per name.
    window : (start, length), optional
        Snapshot rows of the PCA; default the last ``min(N, PCA_WINDOW)``.

    Returns
    -------
    d1, d2 : list of torch.Tensor
        Like ``center``.
    info : dict
        ``pca_window``, ``explained_variance`` (fractions of the window's variance),
        ``direction_scale`` (r_1, r_2), ``path`` (T, 2) the snapshots in units of d_k and
        ``path_step`` (T,).

    Examples
    --------
    >>> d1, d2, info = pca_directions("run.h5", names, center, window=(0, 200))  # doctest: +SKIP
    """
    with open_trajectory(path) as traj:
        start, length = _window(window, traj.n_snapshots)
        table = traj.params
        c = _file_vector(table, names, center, traj.n_params)
        (gram,), = run(traj, [WindowGramAccumulator((GramWindow(start, length),), center="mean")], progress=False)
        vals, vecs = np.linalg.eigh(gram)
        vals, vecs = vals[::-1][:2], vecs[:, ::-1][:, :2]
        if not vals[1] > 1e-12 * max(vals[0], 1e-300):
            raise ValueError(f"snapshots {start}..{start + length - 1} of {path} span fewer than two dimensions: "
                             "PCA directions need a path that moves in at least two")
        vecs *= np.sign(vecs[np.abs(vecs).argmax(axis=0), [0, 1]])  # a fixed sign: largest entry positive
        axes = np.empty((2, traj.n_params))
        offset = np.zeros(2)
        for j0, block in traj.blocks():
            y = block[start:start + length].astype(np.float64)
            mean = y.mean(axis=0)
            y -= mean
            axes[:, j0:j0 + y.shape[1]] = (vecs.T @ y) / np.sqrt(vals)[:, None]
            offset += axes[:, j0:j0 + y.shape[1]] @ (mean - c[j0:j0 + y.shape[1]])
        steps = traj.steps[start:start + length]
    coords = vecs * np.sqrt(vals) + offset
    scale = np.abs(coords).max(axis=0)
    d1, d2 = (_model_tensors(table, names, center, axes[k] * scale[k]) for k in range(2))
    info = {"pca_window": [start, length], "explained_variance": (vals / np.trace(gram)).tolist(),
            "direction_scale": scale.tolist(), "path": coords / scale, "path_step": steps}
    return d1, d2, info


def _window(window: tuple[int, int] | None, n: int) -> tuple[int, int]:
    if window is None:
        length = min(n, PCA_WINDOW)
        return n - length, length
    start, length = (int(v) for v in window)
    if length < 3 or start < 0 or start + length > n:
        raise ValueError(f"pca_window (start, length) must hold at least 3 of the {n} snapshots, got {window}")
    return start, length


def _file_vector(table, names: Sequence[str], tensors: Sequence[torch.Tensor], n_params: int) -> np.ndarray:
    """The tensors named in the file's parameter table, flattened in the file's column order."""
    position = {name: i for i, name in enumerate(names)}
    missing = [info.name for info in table if info.name not in position]
    if missing:
        raise ValueError(f"the file records {missing[:3]}, which are not trainable parameters of the model")
    out = np.empty(n_params)
    for info in table:
        out[info.offset:info.offset + info.size] = tensors[position[info.name]].detach().double().cpu().reshape(-1)
    return out


def _model_tensors(table, names: Sequence[str], like: Sequence[torch.Tensor], flat: np.ndarray) -> list[torch.Tensor]:
    """A file-ordered vector as one tensor per model parameter (zero where the file has none)."""
    out = [torch.zeros_like(t) for t in like]
    position = {name: i for i, name in enumerate(names)}
    for info in table:
        i = position[info.name]
        out[i] = torch.from_numpy(flat[info.offset:info.offset + info.size]).reshape(like[i].shape).to(like[i])
    return out
