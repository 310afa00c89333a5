"""``pe.analyze``: every statistic of a run in one pass, saved with figures and a report."""

from __future__ import annotations

import datetime
import json
import os
import pathlib
import warnings
from dataclasses import dataclass, field

import numpy as np

from pyengine.engine.accumulator import Request
from pyengine.engine.runner import pass_requests
from pyengine.engine.source import Source, as_source
from pyengine.estimators.diffusion import fit_diffusion, log_derivative
from pyengine.estimators.increments import IncrementsRequest, IncrementTailsRequest
from pyengine.estimators.loss import loss_stats
from pyengine.estimators.msd import MSDRequest
from pyengine.estimators.pairs import PairsRequest, msl_from, path_from
from pyengine.estimators.probes import read_eval, read_noise
from pyengine.output import write_output

__all__ = ["Analysis", "analyze", "FIGURES", "figures_for"]

RESULTS_FILE = "results.json"
#: Moving-variance window of the loss (Chen et al.: 100 steps), shortened for shorter runs.
LOSS_VAR_WINDOW = 100


@dataclass(frozen=True)
class Figure:
    """A report figure: drawn from the results it needs, with a one-line caption."""

    name: str
    title: str
    caption: str
    needs: tuple[str, ...]
    draw: object  # (results: dict, fig) -> None
    panels: int = 1

    def available(self, results: dict) -> bool:
        return all(k in results for k in self.needs)


def _plot(key: str, panels: int = 1, **kwargs):
    return lambda results, fig: results[key].plot(ax=fig.subplots(1, panels), **kwargs)


FIGURES: tuple[Figure, ...] = (
    Figure("msd", "Mean squared displacement",
           "Time-averaged MSD Δr²(t_w, τ) per window, coloured by waiting time t_w, with the power-law fits and τ0 "
           "(Chen et al. Eq. 3).", ("diffusion",), _plot("diffusion", kind="curves")),
    Figure("exponents", "Diffusion exponents",
           "Exponents α1 (τ < τ0) and α2 (τ ≥ τ0) and the crossover τ0 against the waiting time; "
           "α > 1 is superdiffusive, α < 1 subdiffusive.", ("diffusion",), _plot("diffusion", kind="exponents")),
    Figure("beta", "Local exponent β(τ)",
           "Log-derivative β(t_w, τ) of the MSD (Eq. 6): the local diffusion exponent at each lag.",
           ("beta",), _plot("beta")),
    Figure("msl", "Mean squared loss",
           "MSL(Δr): mean of (L_a − L_b)² over pairs of snapshots at distance Δr, per window, with the power-law "
           "fit MSL ∝ Δr^2H (Chen et al. Eq. 9); a slope > 0 means a rough, fractal-like landscape.",
           ("msl",), _plot("msl")),
    Figure("path", "Path geometry",
           "End-to-end distance Δr² against contour length Δs, per window, fitted as Δr² ∝ Δs^λ on both sides of "
           "the crossover; D_f = 2/λ (λ = 2: straight, λ = 1: Brownian).", ("path",), _plot("path")),
    Figure("tails", "Tail index of increments",
           "Tail index α of the weight increments per window (Mohammadi estimator, Şimşekli et al. 2019) and the "
           "α of a symmetric α-stable fit; α = 2 is Gaussian, smaller is heavier-tailed.",
           ("tails",), _plot("tails", kind="alpha")),
    Figure("distribution", "Increment distributions",
           "Density of the first and last windows' increments (log scale) with their α-stable (solid) and "
           "Gaussian (dotted) fits (Chen et al. Fig. 5).", ("tails",), _plot("tails", kind="distribution")),
    Figure("loss", "Loss", "Minibatch loss, its per-window change |ΔL| and its moving variance (window 100).",
           ("loss",), _plot("loss", 3), 3),
    Figure("eval", "Evaluation loss", "Loss (and accuracy) over fixed data sets at the recorder's probe steps.",
           ("eval",), _plot("eval")),
    Figure("noise", "Gradient noise",
           "Tail index α of the gradient noise U = ∇f̃ − ∇f over a partition of a probe set into minibatches "
           "(Şimşekli et al. 2019), with the noise and gradient norms.", ("noise",), _plot("noise")),
    Figure("hessian", "Hessian spectrum",
           "Top eigenvalues of the training-loss Hessian at the recorded steps (Lanczos with Hessian-vector "
           "products; Chen et al. Fig. 7).", ("hessian",), _plot("hessian")),
    Figure("increments", "Increment spectra and autocorrelation",
           "Power spectrum of the weight increments (mean ± sd over coordinates) and the weight autocorrelation "
           "with its white-noise band (Chaudhari 2018, Fig. 6.3).", ("increments",), _plot("increments", 2), 2),
)


def _landscape_figure(key: str) -> Figure:
    name = key.split("/", 1)[1]
    return Figure(f"landscape_{name}", f"Loss landscape '{name}'",
                  "Loss on a plane through the weights spanned by two filter-normalized directions (Li et al. 2018), "
                  "with level sets, and the box-counting dimension of the surface and of its level sets. A smooth "
                  "surface on a small grid already measures below 2: compare, do not read it alone.",
                  (key,), _plot(key, 2), 2)


def figures_for(results: dict) -> list[Figure]:
    """The report's figures for these results: the fixed ones, then one per stored landscape."""
    fixed = [f for f in FIGURES if f.available(results)]
    return fixed + [_landscape_figure(k) for k in sorted(results) if k.startswith("landscape/")]


@dataclass
class Analysis:
    """All results of one run, as returned by :func:`analyze`.

    Attributes
    ----------
    results : dict of str to result object
        ``"msd"``, ``"diffusion"``, ``"beta"``, ``"loss"``, ``"increments"``, … — each
        has ``to_dict()`` and ``plot()``. Only what the data allowed is present.
    source : dict
        Where the data came from: path, snapshots, parameters, steps.
    settings : dict
        The arguments of the analysis.
    skipped : dict of str to str
        Estimates that could not be made on these data, with the reason (e.g. a window
        whose weights do not move has no tail index).
    """

    results: dict
    source: dict
    settings: dict = field(default_factory=dict)
    skipped: dict = field(default_factory=dict)

    def __getitem__(self, key: str):
        return self.results[key]

    def to_dict(self) -> dict:
        import pyengine

        return {
            "producer": f"pyengine {pyengine.__version__}",
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "source": self.source,
            "settings": self.settings,
            "results": {k: v.to_dict() for k, v in self.results.items()},
            "skipped": self.skipped,
        }

    def save(self, out: str | os.PathLike, *, figures: bool = True, report: bool = True) -> pathlib.Path:
        """Write ``results.json``, the figures and the HTML report into the directory ``out``.

        ``out`` may be new, empty, or an earlier pyengine output; anything else (a folder
        with other files, or one holding the analysed file) is refused before writing.
        Everything is written to a temporary folder beside ``out`` and swapped in when
        complete, so an interrupted save leaves the previous output intact (see
        :mod:`pyengine.output`).

        Returns
        -------
        Path
            ``out``, absolute.
        """

        def fill(tmp: pathlib.Path) -> None:
            doc = self.to_dict()
            doc["figures"] = self._save_figures(tmp / "figures") if figures else []
            (tmp / RESULTS_FILE).write_text(json.dumps(doc, indent=1, allow_nan=False, default=_json_default))
            if report:
                from pyengine.report import render

                render(tmp)

        return write_output(out, fill, inputs=[self.source.get("path")])

    def _save_figures(self, folder: pathlib.Path) -> list[dict]:
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt

        folder.mkdir()
        saved = []
        for fig_spec in figures_for(self.results):
            fig = plt.figure(figsize=(4.2 * fig_spec.panels + 1.2, 4.2))
            try:
                with warnings.catch_warnings():  # degenerate data (nothing to log-scale) only draws less
                    warnings.simplefilter("ignore", UserWarning)
                    warnings.simplefilter("ignore", RuntimeWarning)
                    fig_spec.draw(self.results, fig)
                    fig.tight_layout()
                fig.savefig(folder / f"{fig_spec.name}.png", dpi=110)
            finally:
                plt.close(fig)
            saved.append({"file": f"figures/{fig_spec.name}.png", "title": fig_spec.title, "caption": fig_spec.caption,
                          "panels": fig_spec.panels})
        return saved


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


def _recorded_groups(path: str) -> dict:
    """Results stored by the recorder's probes in the file's optional groups."""
    from pyengine.landscape import hessian_result, landscape_results
    from pyengine.store import open_trajectory

    found = {}
    with open_trajectory(path, validate=False) as traj:
        for key, read in (("eval", read_eval), ("noise", read_noise)):
            record = read(traj)
            if record is not None:
                found[key] = record
    found.update({f"landscape/{name}": result for name, result in landscape_results(path).items()})
    hessian = hessian_result(path)
    if hessian is not None:
        found["hessian"] = hessian
    return found


def analyze(
    x,
    window: int | None = 1000,
    lags=48,
    *,
    origins: str = "window",
    t_w=None,
    method: str = "auto",
    loss=None,
    increments: bool = True,
    pairs: bool = True,
    tails: bool = True,
    threshold: float = 0.03,
    backend: str = "auto",
    block_cols: int | None = None,
    workers: int = 1,
    progress: bool | None = None,
    scheduler=None,
    nonfinite: str = "raise",
) -> Analysis:
    """Run every analysis of a trajectory in one streaming pass.

    Parameters
    ----------
    x : path, Trajectory, h5py.Dataset, ndarray or cupy.ndarray of shape (N, P)
    window : int or None
        Window length T in optimizer steps (None: the whole run as one window).
    lags : None, int or sequence of int
        MSD lags: every lag, m log-spaced lags (default 48), or explicit steps.
    origins, t_w, method
        As in :func:`pyengine.msd`.
    loss : array of shape (N,), optional
        Loss per snapshot (default: the file's ``/loss``).
    increments : bool
        Also compute increment spectra and the weight autocorrelation.
    tails : bool
        Also estimate the tail index and an α-stable fit of the increments per window,
        on a sample of 256 coordinates.
    pairs : bool
        Also compute the MSL (needs a loss) and the path geometry from all pairs of
        snapshots inside each window (a T × T float64 Gram matrix per window).
    threshold : float
        RMSE threshold of the τ0 / t0 rule (Chen et al.: 0.03).
    backend, block_cols, workers, progress, scheduler, nonfinite
        Engine settings (see :func:`pyengine.engine.run`); ``nonfinite="skip"`` leaves out
        parameters with NaN/Inf weights and notes it in ``source["warnings"]``.

    Returns
    -------
    Analysis

    Examples
    --------
    >>> import pyengine as pe
    >>> x = pe.models.brownian(2001, 32, seed=0)
    >>> res = pe.analyze(x, window=500, progress=False)
    >>> sorted(res.results)
    ['beta', 'diffusion', 'increments', 'msd', 'path', 'tails']
    """
    src = x if isinstance(x, Source) else as_source(x)
    requests: dict[str, Request] = {"msd": MSDRequest.make(src, window, lags, origins, method, t_w)}
    loss = src.loss if loss is None else np.asarray(loss, dtype=np.float64)
    if increments:
        requests["increments"] = IncrementsRequest.make(src, window, t_w=t_w)
    if pairs:
        requests["pairs"] = PairsRequest.make(src, window, t_w)
    if tails:
        requests["tails"] = IncrementTailsRequest.make(src, window, t_w=t_w)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        raw = pass_requests(src, list(requests.values()), block_cols=block_cols, workers=workers, backend=backend,
                            progress=progress, desc="analyze", scheduler=scheduler, nonfinite=nonfinite)
    for w in caught:  # pass them on, and keep them with the results
        warnings.warn(w.message, w.category, stacklevel=2)
    results, skipped = {}, {}

    def attempt(name: str, compute) -> None:
        # One ill-posed estimate (a frozen window, too few points) must not sink the others.
        try:
            results[name] = compute()
        except (ValueError, ArithmeticError, np.linalg.LinAlgError) as exc:
            skipped[name] = str(exc)

    for (name, request), part in zip(requests.items(), raw):
        attempt(name, lambda: request.conclude(part))
    if "pairs" in results:
        passed = results.pop("pairs")
        attempt("path", lambda: path_from(passed, backend=backend))
        if loss is not None:
            attempt("msl", lambda: msl_from(passed, loss, backend=backend))
    if "msd" in results:
        attempt("diffusion", lambda: fit_diffusion(results["msd"], threshold=threshold))
        attempt("beta", lambda: log_derivative(results["msd"], method="local"))
    if loss is not None:
        var_window = min(LOSS_VAR_WINDOW, max(2, loss.size // 2))
        attempt("loss", lambda: loss_stats(loss, src.steps, window=window, t_w=t_w, var_window=var_window))
    if src.path is not None:
        results.update(_recorded_groups(src.path))
    source = {"path": src.path, "n_snapshots": src.n_rows, "n_params": src.n_cols, "dtype": str(src.dtype),
              "first_step": int(src.steps[0]), "last_step": int(src.steps[-1]),
              "warnings": src.warnings + [str(w.message) for w in caught]}
    settings = {"window": window, "lags": lags if lags is None or np.isscalar(lags) else list(map(int, lags)),
                "origins": origins, "method": method, "threshold": threshold, "backend": backend, "nonfinite": nonfinite}
    return Analysis(results, source, settings, skipped)
