"""Which parameters a recorder takes, and their table (name, offset, size, shape, kind)."""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Sequence

import torch

from pyengine.store import ParamInfo
from pyengine.store._format import PARAM_KINDS


def param_kind(module: torch.nn.Module, name: str) -> str:
    """Kind of one parameter tensor: ``"norm"``, ``"weight"``, ``"bias"`` or ``"other"``.

    Parameters of a normalisation layer (a module whose class name contains ``Norm``:
    BatchNorm, LayerNorm, GroupNorm, RMSNorm, ...) are ``"norm"``; otherwise the last
    part of the name decides.

    Parameters
    ----------
    module : torch.nn.Module
        The module that owns the parameter.
    name : str
        The parameter's name inside that module, e.g. ``"weight"``.

    Returns
    -------
    str

    Examples
    --------
    >>> param_kind(torch.nn.BatchNorm2d(3), "bias")
    'norm'
    >>> param_kind(torch.nn.Linear(2, 3), "bias")
    'bias'
    """
    if "Norm" in type(module).__name__:
        return "norm"
    return name if name in ("weight", "bias") else "other"


def select_params(
    model: torch.nn.Module, select: Sequence[str] | None = None
) -> tuple[list[torch.Tensor], list[ParamInfo]]:
    """The trainable parameters to record, in ``named_parameters()`` order, with their table.

    Parameters
    ----------
    model : torch.nn.Module
        The model.
    select : sequence of str, optional
        Keep a parameter when any entry matches it: a kind (``"weight"``, ``"bias"``,
        ``"norm"``, ``"other"``) or a glob pattern on its name (``"fc.*"``,
        ``"layer1.0.conv1.weight"``). Default: every trainable parameter.

    Returns
    -------
    tensors : list of torch.Tensor
        The selected parameters.
    table : list of ParamInfo
        Their entries; offsets tile ``[0, P)`` in the same order.

    Raises
    ------
    TypeError
        If ``model`` is not a ``torch.nn.Module`` or ``select`` is a bare string.
    ValueError
        If the model has no trainable parameters or nothing matches ``select``.

    Examples
    --------
    >>> net = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.BatchNorm1d(3))
    >>> [p.name for p in select_params(net, ["weight"])[1]]
    ['0.weight']
    >>> [p.kind for p in select_params(net)[1]]
    ['weight', 'bias', 'norm', 'norm']
    """
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if isinstance(select, str):
        raise TypeError(f"params must be a list of kinds or name patterns, got the string {select!r}; "
                        f"write [{select!r}]")
    modules = dict(model.named_modules())
    candidates = []
    for name, p in model.named_parameters():
        if p.requires_grad:
            owner, _, leaf = name.rpartition(".")
            candidates.append((name, p, param_kind(modules[owner], leaf)))
    if not candidates:
        raise ValueError(f"{type(model).__name__} has no trainable parameters (requires_grad=True) to record")
    chosen = [c for c in candidates if select is None or _matches(c[0], c[2], select)]
    if not chosen:
        names = ", ".join(name for name, _, _ in candidates[:8])
        raise ValueError(f"params={list(select)} matches no trainable parameter; kinds are {PARAM_KINDS}, "
                         f"names are e.g. {names}")
    tensors, table, offset = [], [], 0
    for name, p, kind in chosen:
        size = math.prod(p.shape)
        table.append(ParamInfo(name, offset, size, tuple(p.shape), kind))
        tensors.append(p)
        offset += size
    return tensors, table


def _matches(name: str, kind: str, select: Sequence[str]) -> bool:
    return any(s == kind or fnmatch.fnmatchcase(name, s) for s in select)


class Flattener:
    """Copies tensors, flattened and concatenated, into a row vector.

    Flat views of the tensors are made once and reused while every tensor keeps its
    storage (checked by data pointer at each copy, so ``model.to(...)`` or a replaced
    ``.data`` is picked up); non-contiguous tensors are flattened anew each time.

    Parameters
    ----------
    tensors : list of torch.Tensor

    Examples
    --------
    >>> a, b = torch.ones(2, 2), torch.zeros(3)
    >>> row = torch.empty(7)
    >>> Flattener([a, b]).copy_into(row)
    >>> row.tolist()
    [1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0]
    """

    def __init__(self, tensors: Sequence[torch.Tensor]) -> None:
        self.tensors = list(tensors)
        self._ptrs: list[int] = []
        self._views: list[torch.Tensor] = []

    def copy_into(self, row: torch.Tensor) -> None:
        """Copy into ``row`` (1-D, length P); asynchronous when copying from a GPU into pinned memory."""
        ptrs = [t.data_ptr() for t in self.tensors]
        if ptrs != self._ptrs:
            self._ptrs = ptrs
            self._views = [t.detach().view(-1) for t in self.tensors] if all(
                t.is_contiguous() for t in self.tensors) else []
        flat = self._views or [t.detach().reshape(-1) for t in self.tensors]
        if flat[0].device == row.device and all(f.dtype == row.dtype for f in flat):
            torch.cat(flat, out=row)
        else:
            row.copy_(torch.cat(flat), non_blocking=True)
