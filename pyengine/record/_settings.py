"""The run settings a recorder stores in the file: model, optimizer, recorder, user settings."""

from __future__ import annotations

import numbers

import torch

#: Longest model summary (``repr(model)``) kept in the settings, in characters.
MAX_SUMMARY_CHARS = 20_000


def model_settings(model: torch.nn.Module, n_recorded: int) -> dict:
    """Class, parameter counts, device, dtype and printed summary of a model.

    Examples
    --------
    >>> model_settings(torch.nn.Linear(2, 3), 9)["n_params"]
    9
    """
    params = [p for p in model.parameters() if p.requires_grad]
    summary = repr(model)
    if len(summary) > MAX_SUMMARY_CHARS:
        summary = summary[:MAX_SUMMARY_CHARS] + "\n... (truncated)"
    return {
        "class": f"{type(model).__module__}.{type(model).__qualname__}",
        "n_params": sum(p.numel() for p in params),
        "n_recorded": n_recorded,
        "device": str(params[0].device),
        "dtype": str(params[0].dtype).removeprefix("torch."),
        "summary": summary,
    }


def optimizer_settings(optimizer: torch.optim.Optimizer) -> dict:
    """Class and hyper-parameters of each parameter group of an optimizer.

    Examples
    --------
    >>> opt = torch.optim.SGD(torch.nn.Linear(2, 3).parameters(), lr=0.1)
    >>> optimizer_settings(opt)["param_groups"][0]["lr"]
    0.1
    """
    groups = [{k: jsonable(v) for k, v in group.items() if k != "params"} for group in optimizer.param_groups]
    return {"class": f"{type(optimizer).__module__}.{type(optimizer).__qualname__}", "param_groups": groups}


def jsonable(value: object) -> object:
    """``value`` as JSON-ready numbers, strings, lists and dicts (anything else: its ``str``).

    Examples
    --------
    >>> jsonable((0.9, torch.tensor(0.5), None))
    [0.9, 0.5, None]
    """
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, numbers.Number):
        return int(value) if isinstance(value, numbers.Integral) else float(value)
    if isinstance(value, torch.Tensor):
        return value.tolist()
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    return str(value)
