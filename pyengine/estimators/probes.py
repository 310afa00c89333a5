"""What the recorder's probes stored: evaluation losses (/eval), gradient noise (/noise) and
the spectrum of the noise covariance (/noise ``cov_*``)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pyengine.results import (Result, axes_or_new, legend_outside, panels_or_new, plain_text, readable_ticks, window_colorbar,
                              window_colors)
from pyengine.store._groups import group_rows, matches

__all__ = ["EvalRecord", "NoiseRecord", "NoiseCovarianceRecord", "read_eval", "read_noise", "read_noise_covariance"]


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


@dataclass(repr=False)
class NoiseCovarianceRecord(Result):
    """The covariance Σ_b of the minibatch gradient at the noise probe's steps (``/noise``).

    Σ_b is the covariance of the gradient of a minibatch of the training batch size b
    (estimated from m' gradients of batch size b' over a partition of the probe set and
    rescaled by b'/b; :mod:`pyengine.landscape.covariance`); the diffusion matrix of
    Chaudhari (2018, Lemma 6.3) is D = b·Σ_b.

    Attributes
    ----------
    steps : ndarray of int64, shape (M,)
    trace : ndarray of float64, shape (M,)
        tr Σ_b.
    participation : ndarray of float64, shape (M,)
        Participation ratio (Σλ)²/Σλ² of the eigenvalues.
    rank : ndarray of int64, shape (M,)
        Numerical rank (singular values above s_1·max(m', P)·ε).
    eigenvalues : ndarray of float64, shape (M, cov_k), optional
        The top eigenvalues, largest first (NaN past m' − 1).
    loss : ndarray of float64, shape (M,)
        Mean loss over the probe set.
    n_params : int
        P.
    n_gradients : int
        m': the estimate's rank is at most m' − 1.
    batch_size, cov_batch_size : int
        b and b'.
    """

    steps: np.ndarray
    trace: np.ndarray
    participation: np.ndarray
    rank: np.ndarray
    eigenvalues: np.ndarray | None
    loss: np.ndarray
    n_params: int
    n_gradients: int
    batch_size: int
    cov_batch_size: int

    _rows = "step"
    _headline = {"trace": None, "participation": None, "rank": None, "rank_fraction": None}
    _curves = {"eigenvalues": ("step", "index"), "trace": ("step",), "loss": ("step",)}
    _coords = {"step": "steps", "index": None}

    @property
    def rank_fraction(self) -> np.ndarray:
        """Numerical rank over P (bounded by (m' − 1)/P: the estimate cannot see more)."""
        return self.rank / self.n_params if self.n_params else np.full(len(self.steps), np.nan)

    @property
    def diffusion_eigenvalues(self) -> np.ndarray | None:
        """Eigenvalues of D = b·Σ_b (Chaudhari 2018, Eq. 6.4)."""
        return None if self.eigenvalues is None else self.eigenvalues * self.batch_size

    def plot(self, ax=None):
        """Two panels: the eigenvalues of Σ_b against their index at each probe step (log
        scale, coloured by step), and tr Σ_b with the participation ratio and numerical rank
        against the step; returns the axes."""
        axes = panels_or_new(ax, 2, "NoiseCovarianceRecord.plot")
        self._plot_spectrum(axes[0])
        self._plot_trace(axes[1])
        return axes

    def _plot_spectrum(self, ax) -> None:
        if self.eigenvalues is None or not np.isfinite(self.eigenvalues).any():
            ax.text(0.5, 0.5, "no eigenvalues stored (cov_k = 0)", ha="center", va="center", transform=ax.transAxes)
        else:
            colors = window_colors(len(self.steps))
            index = np.arange(1, self.eigenvalues.shape[1] + 1)
            for i in range(len(self.steps)):
                ok = np.isfinite(self.eigenvalues[i]) & (self.eigenvalues[i] > 0)
                ax.semilogy(index[ok], self.eigenvalues[i][ok], "o-", ms=2, lw=1, color=colors[i])
            if len(self.steps) > 1:
                window_colorbar(ax, self.steps, label="probe step")
        ax.set_xlabel(f"index j (at most m' − 1 = {self.n_gradients - 1} non-zero)")
        ax.set_ylabel("eigenvalue λ_j of Σ_b")
        ax.set_title(f"noise covariance spectrum (b = {self.batch_size})")

    def _plot_trace(self, ax) -> None:
        fmt = "o-" if len(self.steps) < 30 else "-"
        ax.semilogy(self.steps, self.trace, fmt, ms=3, label="tr Σ_b")
        ax.set_xlabel("step")
        ax.set_ylabel("tr Σ_b")
        twin = ax.twinx()
        twin.plot(self.steps, self.participation, "s--", ms=3, color="C1", label="participation ratio")
        twin.plot(self.steps, self.rank, "^:", ms=3, color="C2", label=f"numerical rank (≤ {self.n_gradients - 1})")
        twin.set_ylabel("effective rank (log)")
        twin.set_yscale("log")
        twin.set_ylim(0.8, max(self.n_gradients - 1, 2) * 1.5)
        handles, labels = ax.get_legend_handles_labels()
        more = twin.get_legend_handles_labels()
        legend_outside(ax, handles + more[0], labels + more[1])
        ax.set_title("trace and effective rank")
        readable_ticks(ax, "x")


def read_noise_covariance(traj) -> NoiseCovarianceRecord | None:
    """The noise covariance rows of ``/noise`` of an open Trajectory, or None when the run has
    none (no ``/noise``, no probe row yet, or a file written before the covariance was
    measured)."""
    group = traj.group("noise")
    if group is None or "step" not in group or "cov_trace" not in group:
        return None
    rows = group_rows(group)
    attrs = group.attrs
    m = len(rows["step"])
    if m == 0:
        return None
    batch = int(attrs.get("batch_size", 1))
    return NoiseCovarianceRecord(
        rows["step"], np.asarray(rows["cov_trace"], np.float64), np.asarray(rows["cov_participation"], np.float64),
        np.asarray(rows["cov_rank"], np.int64),
        np.asarray(rows["cov_eigenvalues"], np.float64) if "cov_eigenvalues" in rows else None,
        np.asarray(rows["loss"], np.float64) if "loss" in rows else np.full(m, np.nan), int(traj.n_params),
        int(attrs.get("cov_gradients", attrs.get("n_minibatches", 0))), batch, int(attrs.get("cov_batch_size", batch)))
