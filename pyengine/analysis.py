"""``pe.analyze``: every statistic of a run in one pass, saved with figures and a report.

The flow (docs/architecture.md): the arguments become one :class:`pyengine.plan.WindowPlan`
and one :class:`pyengine.engine.EngineOptions`, checked once; the rows of the table of
analyses (:mod:`pyengine.analyses`) add their requests to one pass over the weights; each
row concludes from what the pass and earlier rows gave; what cannot be made is recorded
in ``Analysis.skipped`` with its reason.
"""

from __future__ import annotations

import concurrent.futures
import datetime
import html
import json
import os
import pathlib
import time
import warnings
from dataclasses import dataclass, field

import numpy as np

from pyengine._version import __version__
from pyengine.analyses import INPUTS, Context, Statistic, figures_for, select, stored
from pyengine.engine.runner import pass_requests, prepare
from pyengine.estimators.diffusion import PAPER_THRESHOLD
from pyengine.estimators.loss import snapshot_loss
from pyengine.estimators.reduced import accuracy, unavailable
from pyengine.layers import named_groups
from pyengine.output import write_output
from pyengine.plan import WindowPlan, make_plan
from pyengine.progress import progress_bar
from pyengine.results import TIDY_COLUMNS, import_optional, with_groups
from pyengine.threads import blas_single_threaded, cores

__all__ = ["Analysis", "analyze"]

RESULTS_FILE = "results.json"
#: repr(Analysis): widest line, most result lines and skipped lines.
REPR_WIDTH, REPR_ROWS, REPR_SKIPPED = 110, 24, 6
#: Figure files written by :meth:`Analysis.save` by default; PNGs at twice the screen's 110 dpi.
FIGURE_FORMATS = ("png", "svg")
FIGURE_DPI = 220
_KNOWN_FORMATS = ("png", "svg", "pdf")
#: What a failing conclusion may raise without sinking the other statistics.
ILL_POSED = (ValueError, ArithmeticError, np.linalg.LinAlgError)


@dataclass(repr=False)
class Analysis:
    """All results of one run, as returned by :func:`analyze`.

    Attributes
    ----------
    results : dict of str to result object
        ``"msd"``, ``"diffusion"``, ``"beta"``, ``"loss"``, ``"increments"``, … — each
        has ``to_dict()`` and ``plot()``. Only what the data allowed is present.
    source : dict
        Where the data came from: path, snapshots, parameters, steps, and ``"settings"``:
        the run settings stored in the file (``Trajectory.attrs``: model, optimizer, batch
        size, seed, …; {} for arrays); ``"reduction"``: a sampled or sketched recording's
        method, size, seed and P_full (None for every parameter), and ``"accuracy"``: per
        statistic, ``{"status": "exact" | "unbiased estimate" | "estimate" | "not
        available", "note": ...}`` (:mod:`pyengine.estimators.reduced`).
    settings : dict
        The settings of the analysis, as used: the window plan (``settings["plan"]``:
        t_w, window, lags, origins and the rule that chose the window), the backend
        actually used, the statistics run, the τ0 threshold; with ``groups=``,
        ``settings["groups"]``: the spec, and the groups' names and sizes.
    skipped : dict of str to str
        What could not be made on these data, with the reason: statistics (a window
        whose weights do not move has no tail index; no loss, no MSL), snapshots after
        the last whole window (``"windows"``), and per group ``"<statistic>[<group>]"``
        (``"<statistic>[groups]"`` for all groups, e.g. the per-group pairs beyond their
        memory limit).
    timings : dict of str to float
        Seconds spent: ``"pass"`` (the one pass over the weights), then each statistic's
        conclusion (and ``"groups"``: every group's); :meth:`save` adds ``"figures"`` and
        ``"report"`` to what it writes.
    """

    results: dict
    source: dict
    settings: dict = field(default_factory=dict)
    skipped: dict = field(default_factory=dict)
    timings: dict = field(default_factory=dict)

    def __getitem__(self, key: str):
        return self.results[key]

    @property
    def groups(self) -> dict:
        """Per named group (``groups=``), its results: ``{group: {statistic: result}}``, the
        same classes as the whole model's (each also in ``results[statistic].groups``);
        {} without groups.

        Examples
        --------
        >>> res = pe.analyze("run.h5", groups="layer")  # doctest: +SKIP
        >>> res.groups["layer1.0.conv1"]["diffusion"].alpha2  # doctest: +SKIP
        """
        names = (self.settings.get("groups") or {}).get("names", [])
        return {name: {key: result.groups[name] for key, result in self.results.items()
                       if result.groups is not None and name in result.groups} for name in names}

    def _overview(self) -> tuple[str, list[tuple[str, str]], list[tuple[str, str]]]:
        """The title line, (name, headline) per result and (name, reason) per skipped item."""
        src, plan = self.source, self.settings.get("plan", {})
        where = pathlib.Path(src["path"]).name if src.get("path") else "an array"
        title = (f"Analysis of {where}: {src.get('n_snapshots', '?')} snapshots × {src.get('n_params', '?')} "
                 f"parameters, backend {self.settings.get('backend', '?')}")
        t_w = plan.get("t_w", [])
        if t_w:
            title += f"\n  windows: {len(t_w)} × {plan.get('window')} steps, t_w {t_w[0]} … {t_w[-1]}"
        groups = self.settings.get("groups")
        if groups:
            names = groups["names"]
            title += _cut(f"\n  groups ({groups['spec']}, {len(names)}, in .groups): {', '.join(names)}")
        rows = [(k, v.headline() if hasattr(v, "headline") else type(v).__name__) for k, v in self.results.items()]
        return title, rows, list(self.skipped.items())

    def __repr__(self) -> str:
        title, rows, skipped = self._overview()
        lines = [title]
        width = max((len(k) for k, _ in rows), default=0)
        lines += [_cut(f"  {k:<{width}}  {text}") for k, text in rows[:REPR_ROWS]]
        if len(rows) > REPR_ROWS:
            lines.append(f"  … and {len(rows) - REPR_ROWS} more results")
        lines += [_cut(f"  skipped {k}: {why}") for k, why in skipped[:REPR_SKIPPED]]
        if len(skipped) > REPR_SKIPPED:
            lines.append(f"  … and {len(skipped) - REPR_SKIPPED} more skipped")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        esc = html.escape
        title, rows, skipped = self._overview()
        head, _, windows = title.partition("\n")
        parts = [f"<div class='pyengine-analysis'><p><b>{esc(head)}</b><br>{esc(windows.strip())}</p><table>"]
        parts += [f"<tr><td>{esc(k)}</td><td>{esc(text)}</td></tr>" for k, text in rows]
        parts.append("</table>")
        if skipped:
            parts.append("<p><b>skipped</b></p><ul>" + "".join(f"<li>{esc(k)}: {esc(why)}</li>" for k, why in skipped)
                         + "</ul>")
        return "".join(parts) + "</div>"

    def summary(self):
        """Every result's headline table (:meth:`pyengine.results.Result.summary`) in one pandas
        DataFrame, with a first column ``statistic`` (the result's name); results without
        headline numbers (the MSD, β, loss curves of the probes) are left out.

        Examples
        --------
        >>> import pyengine as pe
        >>> res = pe.analyze(pe.models.brownian(2000, 32, seed=0), window=500, progress=False)
        >>> sorted(set(res.summary().statistic))
        ['diffusion', 'increments', 'path', 'tails']
        """
        pd = import_optional("pandas")
        frames = []
        for key, result in self.results.items():
            table = result.summary()
            if set(table.columns) - {"t_w", "step", "group"}:  # headline numbers, not only the rows
                table.insert(0, "statistic", key)
                frames.append(table)
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame({"statistic": []})

    def to_pandas(self):
        """Every number of every result as one tidy pandas DataFrame: the results'
        :meth:`pyengine.results.Result.to_pandas` tables concatenated, ``statistic`` naming
        the result (``"msd"``, ``"diffusion"``, ``"landscape/final"``, …).

        Examples
        --------
        >>> import pyengine as pe
        >>> res = pe.analyze(pe.models.brownian(2000, 32, seed=0), window=500, progress=False)
        >>> table = res.to_pandas()
        >>> len(table.query("statistic == 'msd' and quantity == 'msd'")) == res["msd"].msd.size
        True
        """
        pd = import_optional("pandas")
        frames = []
        for key, result in self.results.items():
            table = result.to_pandas()
            table["statistic"] = key
            frames.append(table)
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=list(TIDY_COLUMNS))

    def to_dict(self) -> dict:
        return {
            "producer": f"pyengine {__version__}",
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "source": self.source,
            "settings": self.settings,
            "results": {k: v.to_dict() for k, v in self.results.items()},
            "skipped": self.skipped,
            "timings": dict(self.timings),
        }

    def save(self, out: str | os.PathLike, *, figures: bool = True, report: bool = True,
             progress: bool | None = None, formats=FIGURE_FORMATS, self_contained: bool = False) -> pathlib.Path:
        """Write ``results.json``, the figures and the HTML report into the directory ``out``.

        ``out`` may be new, empty, or an earlier pyengine output; anything else (a folder
        with other files, or one holding the analysed file) is refused before writing.
        Everything is written to a temporary folder beside ``out`` and swapped in when
        complete, so an interrupted save leaves the previous output intact (see
        :mod:`pyengine.output`).

        Parameters
        ----------
        out : path
        figures, report : bool
            Draw the figures; write ``index.html``.
        progress : bool, optional
            Show the figures being drawn (see :mod:`pyengine.progress`).
        formats : sequence of {"png", "svg", "pdf"}
            Files written per figure, ``figures/<name>.<format>`` (default PNG and SVG; PNG
            at 220 dpi, twice the screen resolution). The report shows the PNG (else the
            first format) and links the SVG.
        self_contained : bool
            Also write ``report-self-contained.html``: the report with its images embedded,
            one file to mail (see :func:`pyengine.report.render`).

        Returns
        -------
        Path
            ``out``, absolute.

        Examples
        --------
        >>> res.save("out", formats=("png",), self_contained=True)  # doctest: +SKIP
        PosixPath('/home/me/out')
        """
        formats = _check_formats(formats)

        def fill(tmp: pathlib.Path) -> None:
            doc = self.to_dict()
            start = time.perf_counter()
            doc["figures"] = self._save_figures(tmp / "figures", progress, doc["skipped"], formats) if figures else []
            doc["timings"]["figures"] = round(time.perf_counter() - start, 4)
            start = time.perf_counter()
            (tmp / RESULTS_FILE).write_text(json.dumps(doc, indent=1, allow_nan=False, default=_json_default))
            if report:
                from pyengine.report import render

                if self_contained:
                    render(tmp, self_contained=True)
                else:
                    render(tmp)
            doc["timings"]["report"] = round(time.perf_counter() - start, 4)
            (tmp / RESULTS_FILE).write_text(json.dumps(doc, indent=1, allow_nan=False, default=_json_default))

        return write_output(out, fill, inputs=[self.source.get("path")])

    def _save_figures(self, folder: pathlib.Path, progress: bool | None, skipped: dict,
                      formats: tuple[str, ...]) -> list[dict]:
        """Draw every figure the results allow; one that cannot be drawn is listed in ``skipped``."""
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt

        folder.mkdir()
        saved = []
        specs = figures_for(self.results)
        with progress_bar(progress, "analyze: figures", len(specs), "figures") as bar:
            for fig_spec in specs:
                try:
                    saved.append(self._save_figure(fig_spec, folder, plt, formats))
                except ILL_POSED as exc:  # degenerate data: this figure only
                    skipped[f"figure {fig_spec.name}"] = f"not drawn: {exc}"
                bar.update()
        return saved

    def _save_figure(self, fig_spec, folder: pathlib.Path, plt, formats: tuple[str, ...]) -> dict:
        fig = plt.figure(figsize=(4.2 * fig_spec.panels + 1.2, 4.2))
        files = {fmt: f"figures/{fig_spec.name}.{fmt}" for fmt in formats}
        try:
            with warnings.catch_warnings():  # degenerate data (nothing to log-scale) only draws less
                warnings.simplefilter("ignore", UserWarning)
                warnings.simplefilter("ignore", RuntimeWarning)
                fig_spec.draw(self.results, fig)
                fig.tight_layout()
            for fmt in formats:
                fig.savefig(folder / f"{fig_spec.name}.{fmt}", dpi=FIGURE_DPI)
        finally:
            plt.close(fig)
        shown = files.get("png", files[formats[0]])
        return {"file": shown, "files": files, "title": fig_spec.title, "caption": fig_spec.caption,
                "panels": fig_spec.panels}


def _cut(line: str) -> str:
    """A repr line cut to REPR_WIDTH characters, with … where it was cut."""
    return line if len(line) <= REPR_WIDTH else line[: REPR_WIDTH - 1] + "…"


def _check_formats(formats) -> tuple[str, ...]:
    formats = (formats,) if isinstance(formats, str) else tuple(formats)
    bad = [f for f in formats if f not in _KNOWN_FORMATS]
    if not formats or bad:
        raise ValueError(f"formats must be a non-empty sequence of {', '.join(map(repr, _KNOWN_FORMATS))}, "
                         f"got {formats!r}")
    return tuple(dict.fromkeys(formats))


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


def _stored_settings(x, src) -> dict:
    """The run settings stored in a trajectory file (``Trajectory.attrs``: model, optimizer,
    batch size, seed, …); {} for arrays and for files that are not pyengine trajectories."""
    from pyengine.store import open_trajectory

    if type(x).__name__ == "Trajectory":
        attrs = x.attrs
    elif src.path is not None:
        try:
            with open_trajectory(src.path, validate=False) as traj:
                attrs = traj.attrs
        except (OSError, ValueError, KeyError):  # an h5py dataset of another file: nothing stored
            return {}
    else:
        return {}
    return dict(attrs) if isinstance(attrs, dict) else {}


def _missing_input(row: Statistic, ctx: Context) -> str | None:
    """Why the run's input cannot feed this row, or None."""
    if "loss" in row.needs and ctx.loss is None:
        return "no loss: the input has no /loss and none was passed (analyze(..., loss=array of shape (N,)))"
    if "loss" in row.needs and np.isnan(ctx.loss).any():
        return (f"no loss: none was recorded at {int(np.isnan(ctx.loss).sum())} of {ctx.loss.size} snapshots (NaN, "
                "e.g. checkpoints imported without a loss); pass analyze(..., loss=array of shape (N,))")
    return unavailable(ctx.src.reduction, row.name)


def _leftover(plan: WindowPlan) -> dict:
    """What no window holds: snapshots after the last window, and between spread windows."""
    notes = []
    if plan.gaps:
        notes.append(f"{plan.gaps} snapshot(s) between the windows are in none ({plan.rule})")
    if plan.leftover is not None:
        a, b = plan.leftover
        steps = plan.steps_of([a, b - 1])
        notes.append(f"{b - a} snapshot(s) after the last whole window (steps {steps[0]} … {steps[1]}) are in no "
                     f"window (a window needs all its {plan.length} snapshots); they enter only as MSD endpoints")
    return {"windows": "; ".join(notes)} if notes else {}


def _requests(rows: list[Statistic], ctx: Context, skipped: dict) -> dict:
    """Each row's share of the pass; a row whose request is ill-posed is skipped with the
    reason (and the rows that read a request made without its named groups, with why)."""
    requests = {}
    for row in rows:
        reason = _missing_input(row, ctx)
        if reason is None and row.request is not None:
            try:
                requests[row.name] = row.request(ctx)
            except ILL_POSED as exc:
                reason = str(exc)
        if reason is not None:
            skipped[row.name] = reason
        refused = getattr(requests.get(row.name), "refused", None)  # made for the whole model only
        if refused:
            for reader in rows:
                if row.name in reader.needs and not reader.internal:
                    skipped[f"{reader.name}[groups]"] = refused
    return requests


def _conclude(rows: list[Statistic], ctx: Context, passed: dict, skipped: dict, timings: dict) -> dict:
    """Every row's result, from the pass and the rows it needs.

    The rows that do not read the file (fits of the pass's sums: many small NumPy calls) run
    on :func:`~pyengine.threads.cores` threads, each as soon as the rows it needs are done;
    those that read the file (models, probes) then run in table order on this thread. A
    row's timing is its own run, so timings overlap."""
    got: dict = {}
    names = {row.name for row in rows}
    threaded = [row for row in rows if "file" not in row.needs]

    def run(row: Statistic) -> None:
        start = time.perf_counter()
        _conclude_row(row, ctx, passed, skipped, got)
        timings[row.name] = time.perf_counter() - start

    with progress_bar(ctx.options.progress, "analyze: statistics", len(rows), "statistics") as bar, \
            concurrent.futures.ThreadPoolExecutor(cores(), thread_name_prefix="pyengine-conclude") as executor:
        waiting, running, done = list(threaded), {}, set()
        while waiting or running:
            for row in [r for r in waiting if all(n in done or n in INPUTS or n not in names for n in r.needs)]:
                waiting.remove(row)
                running[executor.submit(run, row)] = row.name
            finished, _ = concurrent.futures.wait(running, return_when=concurrent.futures.FIRST_COMPLETED)
            for future in finished:
                future.result()
                done.add(running.pop(future))
                bar.update()
        for row in rows:
            if row not in threaded:
                run(row)
                bar.update()
    for row in rows:  # the timings in table order, whatever order the threads finished in
        if row.name in timings:
            timings[row.name] = timings.pop(row.name)
    return got


def _conclude_groups(rows: list[Statistic], ctx: Context, requests: dict, raw: dict, got: dict,
                     skipped: dict) -> None:
    """Every grouped row's result per named group, from its request's ``conclude_group`` and
    the group's own earlier results, attached to the whole model's results as ``.groups``.
    An ill-posed group is skipped as ``"<row>[<group>]"``; rows whose whole-model result or
    per-group request could not be made are left out (their reason is already recorded)."""
    names = ctx.named.names
    by_row: dict[str, dict] = {row.name: {} for row in rows if row.grouped and not row.internal}
    with progress_bar(ctx.options.progress, "analyze: groups", len(names), "groups") as bar:
        for k, name in enumerate(names):
            mine: dict = {}  # this group's results, internal ones too (its pair distances)
            for row in rows:
                request = requests.get(row.name)
                unsplit = request is not None and (request.groups is None or request.groups.named is None)
                if not row.grouped or row.name not in got or unsplit:
                    continue
                if any(n not in INPUTS and n not in mine for n in row.needs):
                    continue
                inputs = {n: mine[n] for n in row.needs if n in mine}
                try:
                    if request is not None:
                        inputs["pass"] = request.conclude_group(raw[row.name], k)
                    mine[row.name] = row.conclude(ctx, inputs)
                except ILL_POSED as exc:
                    skipped[f"{row.name}[{name}]"] = str(exc)
            for row_name, results in by_row.items():
                if row_name in mine:
                    results[name] = mine[row_name]
            bar.update()
    for row_name, results in by_row.items():
        if results:
            with_groups(got[row_name], results)


def _conclude_row(row: Statistic, ctx: Context, passed: dict, skipped: dict, got: dict) -> None:
    if row.name in skipped or ("file" in row.needs and ctx.src.path is None):
        return
    missing = [n for n in row.needs if n not in INPUTS and n not in got]
    if missing:
        skipped[row.name] = f"needs {', '.join(missing)}, which could not be made (see there)"
        return
    inputs = {n: got[n] for n in row.needs if n in got}
    try:
        if row.request is not None:
            inputs["pass"] = passed[row.name]()
        got[row.name] = row.conclude(ctx, inputs)
    except ILL_POSED as exc:  # one ill-posed estimate must not sink the others
        skipped[row.name] = str(exc)


def analyze(
    x,
    window: int | str | None = "auto",
    lags=48,
    *,
    origins: str = "window",
    t_w=None,
    method: str = "auto",
    loss=None,
    threshold: float | str = PAPER_THRESHOLD,
    only=None,
    skip=(),
    groups=None,
    **engine,
) -> Analysis:
    """Run every analysis of a trajectory in one streaming pass.

    Parameters
    ----------
    x : path, Trajectory, h5py.Dataset, array-like or cupy.ndarray of shape (N, P)
    window : int, "auto" or None
        Window length T in optimizer steps: ``"auto"`` (default) fits the run, None is the
        whole run. Every statistic uses the same windows (the rule: :mod:`pyengine.plan`).
    lags : None, int or sequence of int
        MSD lags: every lag, m log-spaced lags (default 48), or explicit steps.
    origins, t_w, method
        As in :func:`pyengine.msd`.
    loss : array of shape (N,), optional
        Loss per snapshot (default: the file's ``/loss``); without one, the loss
        statistics and the MSL are skipped with that reason.
    threshold : float or "data"
        RMSE threshold of the τ0 / t0 rule (Chen et al.: 0.03), or ``"data"``.
    only, skip : sequence of str
        Statistics to run (default: all of :data:`pyengine.analyses.PUBLIC`) and to leave
        out; what a statistic needs comes along.
    groups : None, "tensor", "layer", "kind" or mapping
        Also every statistic per named group of parameters, from the same pass
        (:mod:`pyengine.layers`; docs/estimators.md, "Per-layer statistics"): each result
        of the whole model gets ``.groups`` (``{group: result of the same class}``, each
        with its own jackknife SEs), ``Analysis.groups`` gathers them by group, and κ of
        each group's weights (``"kappa"``) comes along. The whole model's results are those
        without groups (to rounding; their SEs from a jackknife inside the groups).
    **engine
        Engine settings: ``backend``, ``block_cols``, ``workers``, ``progress``,
        ``scheduler``, ``nonfinite`` (see :class:`pyengine.engine.EngineOptions`);
        ``nonfinite="skip"`` leaves out parameters with NaN/Inf weights and notes it in
        ``source["warnings"]``.

    Returns
    -------
    Analysis

    Examples
    --------
    >>> import pyengine as pe
    >>> x = pe.models.brownian(2000, 32, seed=0)
    >>> res = pe.analyze(x, window=500, progress=False)
    >>> sorted(res.results)
    ['beta', 'diffusion', 'increments', 'msd', 'path', 'tails']
    >>> res.skipped["msl"][:8]
    'no loss:'
    """
    src, options = prepare(x, engine)
    plan = make_plan(src.steps, window, t_w=t_w, lags=lags, origins=origins)
    named = named_groups(groups, src)
    rows = select(only, skip, grouped=named is not None)
    settings = {"method": method, "threshold": threshold}
    ctx = Context(src, plan, options, snapshot_loss(src.loss if loss is None else loss, src.n_rows), settings,
                  frozenset(r.name for r in rows), named)
    skipped = _leftover(plan)
    requests = _requests(rows, ctx, skipped)
    timings = {}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        start = time.perf_counter()
        raw = pass_requests(src, list(requests.values()), options, desc="analyze: pass") if requests else []
        timings["pass"] = time.perf_counter() - start
        raw = dict(zip(requests, raw))
        passed = {name: (lambda r=raw[name], q=q: q.conclude(r)) for name, q in requests.items()}
        with blas_single_threaded():
            got = _conclude(rows, ctx, passed, skipped, timings)
            if named is not None:
                start = time.perf_counter()
                _conclude_groups(rows, ctx, requests, raw, got, skipped)
                timings["groups"] = time.perf_counter() - start
    for w in caught:  # pass them on, and keep them with the results
        warnings.warn(w.message, w.category, stacklevel=2)
    results = {k: v for row in rows if row.name in got for k, v in stored(row, got[row.name]).items()}
    source = {"path": src.path, "n_snapshots": src.n_rows, "n_params": src.n_cols, "dtype": str(src.dtype),
              "first_step": int(src.steps[0]), "last_step": int(src.steps[-1]),
              "warnings": src.warnings + [str(w.message) for w in caught], "settings": _stored_settings(x, src),
              "reduction": None if src.reduction is None else src.reduction.to_dict(),
              "accuracy": accuracy(src.reduction, [r.name for r in rows if not r.internal])}
    settings = {"plan": plan.to_dict(), "window": plan.window, "method": method, "threshold": threshold,
                "backend": options.backend, "nonfinite": options.nonfinite,
                "statistics": [r.name for r in rows if not r.internal]}
    if named is not None:
        settings["groups"] = {"spec": groups if isinstance(groups, str) else "mapping", **named.to_dict()}
    return Analysis(results, source, settings, skipped, {k: round(v, 4) for k, v in timings.items()})
