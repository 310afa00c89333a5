"""What the recorder's probes stored: evaluation losses (/eval) and gradient noise (/noise)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pyengine.results import Result, axes_or_new, legend_outside, plain_text, readable_ticks
from pyengine.store._groups import group_rows, matches

__all__ = ["EvalRecord", "NoiseRecord", "read_eval", "read_noise"]


@dataclass(repr=False)
class EvalRecord(Result):
    """Losses (and accuracies) over fixed data sets at probe steps (``/eval``).

    Attributes
    ----------
    steps : ndarray of int64, shape (M,)
    losses : dict of str to ndarray of float64, shape (M,)
        Per data set (e.g. ``"test"``, ``"train"``).
    accuracies : dict of str to ndarray of float64, shape (M,)
    """

    steps: np.ndarray
    losses: dict
    accuracies: dict = field(default_factory=dict)

    _rows = "step"
    _curves = {"losses": ("step",), "accuracies": ("step",)}
    _coords = {"step": "steps"}

    def plot(self, ax=None):
        """Loss per data set against step (accuracy on a twin axis), one legend below the axes;
        returns the axes."""
        ax = axes_or_new(ax)
        color = {name: f"C{i}" for i, name in enumerate(dict.fromkeys([*self.losses, *self.accuracies]))}
        for name, loss in self.losses.items():
            ax.plot(self.steps, loss, "o-", ms=3, color=color[name], label=f"{plain_text(name)} loss")
        ax.set_xlabel("step")
        ax.set_ylabel("loss (solid)")
        handles, labels = ax.get_legend_handles_labels()
        if self.accuracies:
            twin = ax.twinx()
            for name, acc in self.accuracies.items():
                twin.plot(self.steps, acc, "s--", ms=3, alpha=0.7, color=color[name], label=f"{plain_text(name)} accuracy")
            twin.set_ylabel("accuracy (dashed)")
            more = twin.get_legend_handles_labels()
            handles, labels = handles + more[0], labels + more[1]
        legend_outside(ax, handles, labels)
        readable_ticks(ax, "x")
        return ax


@dataclass(repr=False)
class NoiseRecord(Result):
    """Gradient-noise probes (``/noise``): tail index and norms at probe steps.

    Attributes
    ----------
    steps : ndarray of int64, shape (M,)
    alpha : ndarray of float64, shape (M,)
        Mohammadi tail index of the noise U = ∇f̃ − ∇f (Şimşekli et al. 2019).
    grad_norm, noise_norm : ndarray of float64, shape (M,)
        ‖∇f‖ and the root mean square of ‖U‖.
    """

    steps: np.ndarray
    alpha: np.ndarray
    grad_norm: np.ndarray
    noise_norm: np.ndarray

    _rows = "step"
    _headline = {"alpha": None}
    _curves = {"alpha": ("step",), "grad_norm": ("step",), "noise_norm": ("step",)}
    _coords = {"step": "steps"}

    def plot(self, ax=None):
        """Tail index of the gradient noise against step (α = 2: Gaussian); returns the axes."""
        ax = axes_or_new(ax)
        ax.plot(self.steps, self.alpha, "o-", ms=3, label="tail index α of gradient noise")
        ax.axhline(2.0, color="gray", lw=0.8, ls=":")
        ax.set_xlabel("step")
        ax.set_ylabel("α")
        twin = ax.twinx()
        twin.semilogy(self.steps, self.noise_norm, "--", color="C1", lw=1, label="rms ‖U‖")
        twin.semilogy(self.steps, self.grad_norm, ":", color="C2", lw=1, label="‖∇f‖")
        twin.set_ylabel("norm")
        handles, labels = ax.get_legend_handles_labels()
        more = twin.get_legend_handles_labels()
        legend_outside(ax, handles + more[0], labels + more[1])
        readable_ticks(ax, "x")
        readable_ticks(twin, "y")
        return ax


def read_eval(traj) -> EvalRecord | None:
    """The ``/eval`` group of an open Trajectory (its whole rows), or None when the run has none."""
    group = traj.group("eval")
    if group is None or "step" not in group:
        return None
    rows = group_rows(group)
    return EvalRecord(rows["step"], _per_set(rows, "loss_{}"), _per_set(rows, "accuracy_{}"))


def _per_set(rows: dict, template: str) -> dict:
    return {key: values for name, values in rows.items() if (key := matches(template, name))}


def read_noise(traj) -> NoiseRecord | None:
    """The ``/noise`` group of an open Trajectory (its whole rows), or None when the run has none."""
    group = traj.group("noise")
    if group is None or "step" not in group:
        return None
    rows = group_rows(group)
    return NoiseRecord(rows["step"], rows["alpha"], rows["grad_norm"], rows["noise_norm"])
