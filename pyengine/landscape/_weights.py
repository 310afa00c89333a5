"""Weights of a model as lists of tensors: where they come from, setting them, the mean loss."""

from __future__ import annotations

import pathlib
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import torch

from pyengine.record import select_params
from pyengine.store import open_trajectory

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Data = tuple[torch.Tensor, torch.Tensor]
#: A weight vector: None (the model's own), a snapshot index of a file, a state dict, or a flat vector.
WeightsSpec = None | int | Mapping | np.ndarray | torch.Tensor


def trainable(model: torch.nn.Module) -> tuple[list[str], list[torch.Tensor]]:
    """Names and tensors of the model's trainable parameters, in ``named_parameters()`` order."""
    params, table = select_params(model)
    return [p.name for p in table], params


def check_data(data: Data, device: torch.device | None = None) -> Data:
    """The (inputs, targets) pair, checked, and moved to ``device`` when one is given."""
    if not (isinstance(data, (tuple, list)) and len(data) == 2):
        raise TypeError(f"data must be a pair (inputs, targets) of tensors, got {type(data).__name__}")
    x, y = data
    if not (isinstance(x, torch.Tensor) and isinstance(y, torch.Tensor)):
        raise TypeError(f"data must hold tensors, got {type(x).__name__} and {type(y).__name__}")
    if len(x) == 0 or len(x) != len(y):
        raise ValueError(f"data needs as many targets as inputs (at least 1), got {len(x)} and {len(y)}")
    return (x, y) if device is None else (x.to(device), y.to(device))


def mean_loss(model: torch.nn.Module, loss_fn: LossFn, data: Data, batch_size: int) -> float:
    """Mean of ``loss_fn`` over all samples, in batches (``loss_fn`` returns a batch mean)."""
    x, y = data
    total = 0.0
    for i in range(0, len(x), batch_size):
        total += float(loss_fn(model(x[i:i + batch_size]), y[i:i + batch_size])) * len(x[i:i + batch_size])
    return total / len(x)


def assign(params: Sequence[torch.Tensor], values: Sequence[torch.Tensor]) -> None:
    """Copy ``values`` into the parameters (no autograd)."""
    with torch.no_grad():
        for p, v in zip(params, values):
            p.copy_(v)


def snapshot(params: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """Detached copies of the parameters."""
    return [p.detach().clone() for p in params]


def resolve_weights(spec: WeightsSpec, names: Sequence[str], params: Sequence[torch.Tensor],
                    path: str | pathlib.Path | None) -> tuple[list[torch.Tensor], dict]:
    """A weight vector for the parameters, from any of the accepted forms.

    Parameters
    ----------
    spec : None, int, mapping, array or tensor
        None: the parameters' current values. int: snapshot index of the trajectory file
        ``path`` (negative counts from the end); tensors the file does not hold keep
        their current values. Mapping: a state dict holding every name. Array or tensor
        of shape (P,): the parameters flattened in order.
    names, params
        The parameters (from :func:`trainable`).
    path : str or Path, optional
        The trajectory file, for a snapshot index.

    Returns
    -------
    values : list of torch.Tensor
        One per parameter, same shape, dtype and device.
    info : dict
        ``{"center": "model" | "snapshot" | "state_dict" | "vector"}``, and for a snapshot
        ``center_index`` and ``center_step``.
    """
    if spec is None:
        return snapshot(params), {"center": "model"}
    if isinstance(spec, (int, np.integer)) and not isinstance(spec, bool):
        return _from_snapshot(int(spec), names, params, path)
    if isinstance(spec, Mapping):
        missing = [n for n in names if n not in spec]
        if missing:
            raise ValueError(f"the state dict lacks {len(missing)} trainable parameters, e.g. {missing[:3]}")
        values = [torch.as_tensor(spec[n]).to(p) for n, p in zip(names, params)]
        for n, v, p in zip(names, values, params):
            if v.shape != p.shape:
                raise ValueError(f"state dict entry {n!r} has shape {tuple(v.shape)}, the model {tuple(p.shape)}")
        return values, {"center": "state_dict"}
    if isinstance(spec, (np.ndarray, torch.Tensor)):
        flat = torch.as_tensor(np.asarray(spec) if isinstance(spec, np.ndarray) else spec)
        n = sum(p.numel() for p in params)
        if flat.shape != (n,):
            raise ValueError(f"a flat weight vector must have shape (P,) = ({n},), got {tuple(flat.shape)}")
        chunks = flat.split([p.numel() for p in params])
        return [c.reshape(p.shape).to(p) for c, p in zip(chunks, params)], {"center": "vector"}
    raise TypeError("weights must be None, a snapshot index (int), a state dict or a flat vector, "
                    f"got {type(spec).__name__}")


def _from_snapshot(index: int, names: Sequence[str], params: Sequence[torch.Tensor],
                   path: str | pathlib.Path | None) -> tuple[list[torch.Tensor], dict]:
    if path is None:
        raise ValueError(f"a snapshot index ({index}) needs the trajectory file: pass path=")
    with open_trajectory(path) as traj:
        n = traj.n_snapshots
        if not -n <= index < n:
            raise IndexError(f"snapshot {index} out of range for {n} snapshots in {path}")
        index %= n
        row = np.asarray(traj.weights[index], dtype=np.float64)
        step = int(traj.steps[index])
        table = traj.params
    values = snapshot(params)
    position = {name: i for i, name in enumerate(names)}
    for info in table:
        if info.name not in position:
            raise ValueError(f"{path} records {info.name!r}, which is not a trainable parameter of the model")
        i = position[info.name]
        if tuple(info.shape) != tuple(params[i].shape):
            raise ValueError(f"{info.name!r}: shape {tuple(info.shape)} in {path}, {tuple(params[i].shape)} in the "
                             "model")
        chunk = torch.from_numpy(row[info.offset:info.offset + info.size]).reshape(params[i].shape)
        values[i] = chunk.to(params[i])
    return values, {"center": "snapshot", "center_index": index, "center_step": step}
