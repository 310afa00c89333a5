"""The table of analyses: every statistic ``pe.analyze`` computes is one row here.

A row says what a statistic needs (the loss, the file, other statistics), what it adds
to the one pass over the weights (a request: its accumulators), how it concludes from
what the pass gave, and which report figures it draws. ``pe.analyze``, the CLI's
``--only``/``--skip`` and the report's figures are built from :data:`STATISTICS`; adding a
statistic is one module with its request and conclusion, one row, its test and a doc line
(docs/architecture.md).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from pyengine.engine.groups import NamedGroups
from pyengine.engine.options import EngineOptions
from pyengine.engine.source import Source
from pyengine.plan import WindowPlan

__all__ = ["Context", "Figure", "Statistic", "STATISTICS", "INPUTS", "PUBLIC", "figures_for", "select", "stored"]


@dataclass(frozen=True)
class Context:
    """What every row sees: the input, the one window plan, the resolved engine options,
    the loss (or None), the statistic settings, the names selected for this run and the
    named groups of parameters (``groups=``; None for the whole model only)."""

    src: Source
    plan: WindowPlan
    options: EngineOptions
    loss: np.ndarray | None
    settings: dict
    selected: frozenset
    named: NamedGroups | None = None


@dataclass(frozen=True)
class Figure:
    """A report figure: drawn from the results it needs, with a one-line caption."""

    name: str
    title: str
    caption: str
    needs: tuple[str, ...]
    draw: Callable  # (results: dict, fig) -> None
    panels: int = 1

    def available(self, results: dict) -> bool:
        return all(k in results for k in self.needs)


@dataclass(frozen=True)
class Statistic:
    """One row of the table.

    Attributes
    ----------
    name : str
        Key of its result in ``Analysis.results`` (and of ``--only``/``--skip``).
    summary : str
        One line for ``pyengine analyze --help`` and docs/api.md.
    needs : tuple of str
        Inputs (:data:`INPUTS`: ``"loss"``, ``"file"`` for a trajectory file's optional
        groups) or earlier rows.
    request : callable (Context) -> Request, optional
        Its share of the one pass; its conclusion reaches ``conclude`` as ``got["pass"]``.
    conclude : callable (Context, dict) -> result
        The result from what it needs (``got[name]``); None when the input has nothing
        for it (a file without that optional group). Rows marked ``many`` return a dict
        of results, stored as ``"<name>/<key>"``.
    figures : tuple of Figure
    internal : bool
        An intermediate shared by other rows, not a result of its own.
    grouped : bool
        Also made per named group with ``groups=``: its request's ``conclude_group`` and
        its conclusion on the group's inputs (docs/estimators.md, "Per-layer statistics").
    group_only : bool
        Made only with ``groups=`` (selected by default then, and never without).
    """

    name: str
    summary: str
    conclude: Callable[[Context, dict], Any]
    needs: tuple[str, ...] = ()
    request: Callable[[Context], Any] | None = None
    figures: tuple[Figure, ...] = ()
    internal: bool = False
    many: bool = False
    grouped: bool = False
    group_only: bool = False


def _plot(key: str, panels: int = 1, **kwargs):
    return lambda results, fig: results[key].plot(ax=fig.subplots(1, panels), **kwargs)


def _passed(ctx: Context, got: dict):
    return got["pass"]


def _msd_request(ctx: Context):
    from pyengine.estimators.msd import MSDRequest

    return MSDRequest.make(ctx.plan, ctx.src.n_cols, ctx.settings["method"], ctx.named, reduction=ctx.src.reduction)


def _diffusion(ctx: Context, got: dict):
    from pyengine.estimators.diffusion import fit_diffusion

    return fit_diffusion(got["msd"], threshold=ctx.settings["threshold"])


def _beta(ctx: Context, got: dict):
    from pyengine.estimators.diffusion import log_derivative

    return log_derivative(got["msd"], method="local")


def _pairs_request(ctx: Context):
    from pyengine.estimators.pairs import PairsRequest

    return PairsRequest.make(ctx.plan, ctx.src.n_cols, ctx.named, coords="path" in ctx.selected,
                             reduction=ctx.src.reduction)


def _path(ctx: Context, got: dict):
    from pyengine.estimators.pairs import path_from

    return path_from(got["distances"], backend=ctx.options.backend)


def _msl(ctx: Context, got: dict):
    from pyengine.estimators.pairs import msl_from

    return msl_from(got["distances"], ctx.loss, backend=ctx.options.backend)


def _increments_request(ctx: Context):
    from pyengine.estimators.increments import IncrementsRequest

    return IncrementsRequest.make(ctx.plan, ctx.src.n_cols, named=ctx.named)


def _tails_request(ctx: Context):
    from pyengine.estimators.increments import IncrementTailsRequest

    return IncrementTailsRequest.make(ctx.plan, ctx.src.n_cols, named=ctx.named)


def _kappa_request(ctx: Context):
    from pyengine.estimators.weights import KappaRequest

    return KappaRequest.make(ctx.plan, ctx.src.n_cols, ctx.named)


def _loss(ctx: Context, got: dict):
    from pyengine.estimators.loss import loss_stats_in

    return loss_stats_in(ctx.plan, ctx.loss)


def _recorded(reader: str):
    """A row conclusion that reads a recorder probe's group from the file (None when absent)."""

    def conclude(ctx: Context, got: dict):
        from pyengine.estimators import probes
        from pyengine.store import open_trajectory

        with open_trajectory(ctx.src.path, validate=False) as traj:
            return getattr(probes, reader)(traj)

    return conclude


def _hessian(ctx: Context, got: dict):
    from pyengine.landscape import hessian_result

    return hessian_result(ctx.src.path)


def _curvature(ctx: Context, got: dict):
    from pyengine.landscape import curvature_result

    return curvature_result(ctx.src.path)


def _state_noise(ctx: Context, got: dict):
    from pyengine.estimators.state_noise import state_noise

    return state_noise(ctx.src.path)


def _landscapes(ctx: Context, got: dict):
    from pyengine.landscape import landscape_results

    return landscape_results(ctx.src.path)


def _landscape_figure(key: str) -> Figure:
    name = key.split("/", 1)[1]
    return Figure(f"landscape_{name}", f"Loss landscape '{name}'",
                  "Loss on a plane through the weights spanned by two filter-normalized directions (Li et al. 2018), "
                  "with level sets, and the box-counting dimension of the surface and of its level sets. A smooth "
                  "surface on a small grid already measures below 2: compare, do not read it alone.",
                  (key,), _plot(key, 2), 2)


STATISTICS: tuple[Statistic, ...] = (
    Statistic("msd", "time-averaged MSD per window (Chen et al. Eq. 3)", _passed, request=_msd_request, grouped=True),
    Statistic("diffusion", "diffusion exponents α, α1, α2, τ0 per window and t0", _diffusion, needs=("msd",),
              grouped=True, figures=(
                  Figure("msd", "Mean squared displacement",
                         "Time-averaged MSD Δr²(t_w, τ) per window, coloured by waiting time t_w (a colour bar "
                         "above six windows), with the power-law fits (dashed; dotted when flagged by the fit quality "
                         "rule) and τ0 (Chen et al. Eq. 3).",
                         ("diffusion",), _plot("diffusion", kind="curves")),
                  Figure("exponents", "Diffusion exponents",
                         "Exponents α1 (τ < τ0) and α2 (τ ≥ τ0) ± SE and the crossover τ0 (triangles, right axis) "
                         "against the waiting time, with t0 (or why it is undefined) above; α > 1 is superdiffusive, "
                         "α < 1 subdiffusive; open markers fail the fit quality rule.",
                         ("diffusion",), _plot("diffusion", kind="exponents")))),
    Statistic("beta", "local diffusion exponent β(τ) (Eq. 6, local fits)", _beta, needs=("msd",), grouped=True,
              figures=(Figure("beta", "Local exponent β(τ)",
                              "Log-derivative β(t_w, τ) of the MSD (Eq. 6): the local diffusion exponent at each lag, "
                              "± the SE of its local fit.",
                              ("beta",), _plot("beta")),)),
    Statistic("distances", "squared distances of all pairs in each window (shared by path and msl)", _passed,
              request=_pairs_request, internal=True, grouped=True),
    Statistic("path", "path geometry: Δr² against contour length, λ and D_f, transverse distances", _path,
              needs=("distances",), grouped=True,
              figures=(Figure("path", "Path geometry",
                              "End-to-end distance Δr² against contour length Δs, per window, fitted as Δr² ∝ Δs^λ on "
                              "both sides of the crossover; D_f = 2/λ (λ = 2: straight, λ = 1: Brownian).",
                              ("path",), _plot("path")),)),
    Statistic("msl", "mean squared loss against distance and its exponent 2H (Eq. 9)", _msl,
              needs=("distances", "loss"), grouped=True,
              figures=(Figure("msl", "Mean squared loss",
                              "MSL(Δr): mean of (L_a − L_b)² over pairs of snapshots at distance Δr, per window, with "
                              "the power-law fit MSL ∝ Δr^2H (Chen et al. Eq. 9); a slope > 0 means a rough, "
                              "fractal-like landscape.", ("msl",), _plot("msl")),)),
    Statistic("increments", "spectra of weight increments and weight autocorrelation (Chaudhari 2018)", _passed,
              request=_increments_request, grouped=True,
              figures=(Figure("increments", "Increment spectra and autocorrelation",
                              "Power spectrum of the weight increments (mean over coordinates, with a geometric ±1 sd "
                              "band) and the weight autocorrelation (mean ± sd) with its white-noise band (Chaudhari "
                              "2018, Fig. 6.3).",
                              ("increments",), _plot("increments", 2), 2),)),
    Statistic("tails", "tail index and α-stable fit of weight increments, on a sample of coordinates", _passed,
              request=_tails_request, grouped=True,
              figures=(
                  Figure("tails", "Tail index of increments",
                         "Tail index α ± SE of the weight increments per window (Mohammadi estimator, Şimşekli et "
                         "al. 2019; open markers fail the quality rule) and the α ± SE of a symmetric α-stable fit; "
                         "α = 2 is Gaussian, smaller is heavier-tailed.",
                         ("tails",), _plot("tails", kind="alpha")),
                  Figure("distribution", "Increment distributions",
                         "Density ± SE of the first and last windows' increments (log scale, limited to the "
                         "densities measured) with their α-stable (solid) and Gaussian (dotted) fits (Chen et al. "
                         "Fig. 5).", ("tails",), _plot("tails", kind="distribution")))),
    Statistic("kappa", "κ of the weights at the last window's end, per group (with --groups only)", _passed,
              request=_kappa_request, grouped=True, group_only=True),
    Statistic("loss", "loss curve, |ΔL| per window and moving variance", _loss, needs=("loss",),
              figures=(Figure("loss", "Loss",
                              "Minibatch loss, its per-window change |ΔL| and its moving variance (window 100).",
                              ("loss",), _plot("loss", 3), 3),)),
    Statistic("eval", "evaluation losses recorded by the recorder's EvalProbe (/eval)", _recorded("read_eval"),
              needs=("file",),
              figures=(Figure("eval", "Evaluation loss",
                              "Loss (and accuracy) over fixed data sets at the recorder's probe steps.",
                              ("eval",), _plot("eval")),)),
    Statistic("noise", "gradient-noise tail index recorded by the NoiseProbe (/noise)", _recorded("read_noise"),
              needs=("file",),
              figures=(Figure("noise", "Gradient noise",
                              "Tail index α of the gradient noise U = ∇f̃ − ∇f over a partition of a probe set into "
                              "minibatches (Şimşekli et al. 2019), with the noise and gradient norms.",
                              ("noise",), _plot("noise")),)),
    Statistic("hessian", "top Hessian eigenvalues recorded by the HessianProbe (/hessian)", _hessian,
              needs=("file",),
              figures=(Figure("hessian", "Hessian spectrum",
                              "Top eigenvalues of the training-loss Hessian at the recorded steps (Lanczos with "
                              "Hessian-vector products; Chen et al. Fig. 7).", ("hessian",), _plot("hessian")),)),
    Statistic("noise_covariance", "spectrum, trace and effective rank of the gradient-noise covariance (/noise)",
              _recorded("read_noise_covariance"), needs=("file",),
              figures=(Figure("noise_covariance", "Gradient-noise covariance",
                              "Eigenvalues of the covariance Σ_b of the minibatch gradient at the noise probe's steps "
                              "(thin SVD of the centred gradients: at most m' − 1 non-zero), its trace, participation "
                              "ratio (Σλ)²/Σλ² and numerical rank (Chaudhari 2018, Lemma 6.3 and Fig. 6.1).",
                              ("noise_covariance",), _plot("noise_covariance", 2), 2),)),
    Statistic("curvature", "Hessian spectral density (SLQ), trace (Hutchinson) and noise alignment (/hessian)",
              _curvature, needs=("file",),
              figures=(Figure("curvature", "Hessian density and noise alignment",
                              "Smoothed spectral density of the Hessian by stochastic Lanczos quadrature at each probe "
                              "step (negative eigenvalues included); the fractions of near-zero and negative "
                              "eigenvalues ± SE over the start vectors; the overlap of the top eigenspaces of the "
                              "noise covariance Σ and of H (mean cos² of principal angles) and tr(HΣ)/(tr H·tr Σ), "
                              "with their random baselines (Chaudhari 2018, Fig. 3.1; Ghorbani et al. 2019).",
                              ("curvature",), _plot("curvature", 3), 3),)),
    Statistic("state_noise", "noise covariance against distance to the final weights and loss, κ of Eq. 9 (doc. 004)",
              _state_noise, needs=("file",),
              figures=(Figure("state_noise", "State-dependent noise",
                              "Trace of the noise covariance at each noise probe against the distance ‖w − w*‖ to the "
                              "final snapshot, fitted by σ_g + σ_H d², and against the probe-set loss, fitted by a "
                              "line whose slope gives κ of Eq. 9 (document 004, Corollary 3; assumptions in "
                              "docs/landscape.md).", ("state_noise",), _plot("state_noise", 2), 2),)),
    Statistic("landscape", "stored loss surfaces (/landscape) and their box-counting dimensions", _landscapes,
              needs=("file",), many=True),
)

#: Needs that are inputs of the run, not rows of the table.
INPUTS = ("loss", "file")
#: Names a user may ask for or leave out.
PUBLIC = tuple(s.name for s in STATISTICS if not s.internal)
_BY_NAME = {s.name: s for s in STATISTICS}


def select(only=None, skip=(), grouped: bool = False) -> list[Statistic]:
    """The rows to run: ``only`` (default: all) minus ``skip``, with what they need, in table order.

    ``grouped``: the run has named groups (``groups=``); without them, the rows made per
    group only (``group_only``) are not in the default and may not be asked for.

    Raises
    ------
    ValueError
        For a name that is not in the table (the message lists the names), or a row made
        per group only asked for without groups.
    """
    per_group = tuple(s.name for s in STATISTICS if s.group_only)
    default = PUBLIC if grouped else tuple(n for n in PUBLIC if n not in per_group)
    only = default if only is None else tuple([only] if isinstance(only, str) else only)
    skip = tuple([skip] if isinstance(skip, str) else skip)
    unknown = sorted((set(only) | set(skip)) - set(PUBLIC))
    if unknown:
        raise ValueError(f"unknown statistic(s) {', '.join(map(repr, unknown))}; choose from {', '.join(PUBLIC)}")
    alone = sorted(set(only) - set(default))
    if alone:
        raise ValueError(f"{', '.join(map(repr, alone))} is made per group only: pass groups= (--groups) as well")
    wanted = set(only) - set(skip)
    closed = set()

    def add(name: str) -> None:
        if name in _BY_NAME and name not in closed:
            closed.add(name)
            for need in _BY_NAME[name].needs:
                if need not in INPUTS:
                    add(need)

    for name in wanted:
        add(name)
    return [s for s in STATISTICS if s.name in closed]


def figures_for(results: dict) -> list[Figure]:
    """The report's figures for these results: the rows' figures, then one per stored landscape."""
    fixed = [f for s in STATISTICS for f in s.figures if f.available(results)]
    return fixed + [_landscape_figure(k) for k in sorted(results) if k.startswith("landscape/")]


def stored(row: Statistic, result) -> dict:
    """The entries a row's result adds to ``Analysis.results``."""
    if row.internal or result is None:
        return {}
    if row.many:
        return {f"{row.name}/{key}": value for key, value in result.items()}
    return {row.name: result}
