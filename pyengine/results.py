"""What every result object shares: a JSON-ready ``to_dict()`` and ``to_json()``."""

from __future__ import annotations

import dataclasses
import json
import math
from typing import ClassVar

import numpy as np

__all__ = ["Result", "jsonable"]


def jsonable(value):
    """Arrays to lists, non-finite floats to None, results and dataclasses to dicts (recursively)."""
    if hasattr(value, "to_dict"):
        return value.to_dict()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return jsonable({f.name: getattr(value, f.name) for f in dataclasses.fields(value)})
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "fc":
            return np.where(np.isfinite(value), value, None).tolist()
        return value.tolist()
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (np.floating, float)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


class Result:
    """Mixin for result dataclasses: every field to JSON, except those named in ``_exclude``."""

    _exclude: ClassVar[tuple[str, ...]] = ()

    def to_dict(self) -> dict:
        """JSON-ready dict: arrays as lists, NaN/Inf as None, nested results as dicts."""
        return jsonable({f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in self._exclude})

    def to_json(self) -> str:
        """:meth:`to_dict` as a JSON string."""
        return json.dumps(self.to_dict())


def axes_or_new(ax=None):
    """``ax``, or the axes of a new 5 × 4 inch figure (for ``plot(ax=None)`` methods)."""
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(5, 4))
    return ax


def window_colors(n: int) -> np.ndarray:
    """One colour per window, early (dark) to late (yellow)."""
    from matplotlib import cm

    return cm.viridis(np.linspace(0, 1, max(n, 2)))
