"""The comparison page: several runs overlaid on one static HTML page with its figures.

:meth:`pyengine.compare.Comparison.save` calls :func:`write_comparison`, which draws the
figures, writes ``comparison.json`` (every number shown) and ``index.html``. The page
uses the report's style and its escaping helpers: every value that came from a file (a
setting, a path, a flag) is escaped. docs/compare.md describes the sections.
"""

from __future__ import annotations

import json
import math
import os
import pathlib
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from pyengine.report import (SELF_CONTAINED, STYLE, FIRST_SETTINGS, RECORDED_SETTINGS, figure_html, flatten, cell_text, setting_cell, html_table,
                             write_page)

__all__ = ["flatten_settings", "settings_order", "is_recorded", "write_comparison", "headline_table", "FIGURE_DPI"]

FIGURE_DPI = 220
#: Headline numbers drawn against each numeric setting (those the runs have).
TREND_PANELS = ("alpha", "alpha2", "tau0", "msl_2H", "D_f_above", "tail_alpha", "eval_accuracy_test")
#: Most groups with a legend inside the axes (more: below them).
LEGEND_INSIDE = 6
#: What a figure may raise on degenerate data without sinking the page (as Analysis.save).
ILL_POSED = (ValueError, ArithmeticError, np.linalg.LinAlgError)

PAGE_STYLE = STYLE + """
.within { color: #777; font-size: 0.85em; } span.flagged { color: #999; }
table.headline td, table.groups td, table.trends td { white-space: nowrap; } td.run { text-align: left; }
.scroll { overflow-x: auto; max-width: 100%; }
"""


# -- settings ------------------------------------------------------------------------------------


def flatten_settings(stored) -> dict:
    """The training settings stored in a trajectory file, flattened as the report's "Training
    run" table flattens them (``optimizer.lr``, ``model.class``; docs/report.md): name → value.

    Examples
    --------
    >>> flatten_settings({"optimizer": {"class": "SGD", "param_groups": [{"lr": 0.1}]}, "seed": 3})
    {'optimizer.class': 'SGD', 'optimizer.lr': 0.1, 'seed': 3}
    """
    if not isinstance(stored, dict):
        return {}
    rows: list = []
    flatten("", stored, rows)
    return dict(rows)


def is_recorded(name: str) -> bool:
    """Whether a flattened setting is one the recorder adds by itself (the model's and the
    optimizer's, the recorder's own, the torch version), not one the user gave."""
    return name.startswith(RECORDED_SETTINGS)


def settings_order(names: list[str]) -> list[str]:
    """Settings in the order that labels runs best: the user's own (not added by the recorder)
    first, the report's leading ones (lr, batch size, seed …) in its order, then as stored;
    then those the recorder adds (``optimizer.lr`` after ``lr``, ``model.n_params`` after
    ``width``)."""
    first = {name: i for i, name in enumerate(FIRST_SETTINGS)}

    def key(item):
        i, name = item
        recorded = name.startswith(RECORDED_SETTINGS)
        return recorded, first.get(name, len(first)), i

    return [name for _, name in sorted(enumerate(names), key=key)]


# -- numbers as cells ----------------------------------------------------------------------------


def _num(value: float) -> str:
    if not math.isfinite(value):
        return "–"
    return f"{value:.4g}"


def _pm(value: float, se: float) -> str:
    """``value ± se`` (4 and 2 significant digits), ``–`` when there is no value."""
    if not math.isfinite(value):
        return "–"
    return _num(value) + (f" ± {se:.2g}" if math.isfinite(se) else "")


def _cell(value: float, se: float, flag) -> str:
    text = _pm(value, se)
    if flag and math.isfinite(value):
        return f"<span class='flagged' title='{cell_text(flag)}'>{text} *</span>"
    return text


def _run_link(cmp, i: int, folder: pathlib.Path, embed: bool) -> str:
    """The run's label, linked to its report when it was read from a result folder with one."""
    run, label = cmp.runs[i], cell_text(cmp.labels[i])
    if embed or not run.folder or not (pathlib.Path(run.folder) / "index.html").is_file():
        return label
    href = os.path.relpath(pathlib.Path(run.folder).resolve() / "index.html", folder.resolve())
    href = href if href.startswith(".") else f"./{href}"  # never read as a scheme (javascript:)
    return f"<a href='{cell_text(href)}'>{label}</a>"


def _shown(cmp) -> list:
    """The headline numbers with a value in at least one run (the columns of the tables)."""
    return [q for q in cmp.quantities()
            if any(np.isfinite(run.numbers[(q.statistic, q.quantity)].value).any()
                   for run in cmp.runs if (q.statistic, q.quantity) in run.numbers)]


def _scroll(table: str) -> str:
    return f"<div class='scroll'>{table}</div>"


def headline_table(cmp, window: int = -1, folder: pathlib.Path | None = None, embed: bool = True) -> str:
    """The headline numbers of every run at one window (default the last) as an escaped HTML
    table: the run, the settings that differ, t_w, then value ± SE per headline number
    (flagged values grey, marked *, the reason in a tooltip)."""
    quantities = _shown(cmp)
    header = ["run", *cmp.varying, "t_w", *[q.label for q in quantities]]
    values = {q.column: cmp.at_window(q, window) for q in quantities}
    rows = []
    for i, run in enumerate(cmp.runs):
        t_w = next((values[q.column][i][0] for q in quantities if math.isfinite(values[q.column][i][0])), math.nan)
        cells = [_run_link(cmp, i, folder, embed) if folder is not None else cell_text(cmp.labels[i])]
        cells += [setting_cell(run.settings.get(n)) for n in cmp.varying]
        cells.append(_num(t_w))
        cells += [_cell(*values[q.column][i][1:]) for q in quantities]
        rows.append(cells)
    return _scroll(html_table(header, rows, css="headline", first_class="run"))


def _groups_table(cmp) -> str:
    """Mean ± SE across the runs of each group at each run's last window, the within-run SE beside."""
    quantities = _shown(cmp)
    stats: dict = {}
    for s in cmp.group_stats():
        stats.setdefault((s["group"], s["column"]), []).append(s)
    rows = []
    for g, members in enumerate(cmp.groups):
        cells = [cell_text(cmp.group_labels[g]), str(len(members))]
        for q in quantities:
            found = stats.get((g, q.column), [])
            s = found[-1] if found else None  # the last window (per-run numbers: their one row)
            if s is None or not s["n"]:
                cells.append("–")
                continue
            within = f"within ± {_num(s['se_within'])}, " if math.isfinite(s["se_within"]) else ""
            flagged = f", {s['n_flagged']} flagged" if s["n_flagged"] else ""
            cells.append(f"{_pm(s['mean'], s['se_runs'])}<br><span class='within'>{within}n={s['n']}{flagged}</span>")
        rows.append(cells)
    return _scroll(html_table(["group", "runs", *[q.label for q in quantities]], rows, css="groups", first_class="run"))


def _trends_table(trends: list) -> str:
    rows = []
    for t in trends:
        unit = "per decade" if t.scale == "log" else "per unit"
        where = ", ".join(f"{k}={v}" for k, v in t.where.items())
        rows.append([cell_text(t.column), cell_text(t.setting), cell_text(where or "–"), cell_text(t.scale),
                     cell_text(f"{_pm(t.slope, t.slope_se)} {unit}"), _num(t.slope_se_within), str(t.n_points),
                     str(t.n_values)])
    return _scroll(html_table(["headline number", "setting", "other settings", "fit in", "slope ± SE (scatter)",
                           "SE from the runs' SEs", "runs", "values"], rows, css="trends", first_class="run"))


# -- figures -------------------------------------------------------------------------------------


#: Most panels side by side; more go on further rows.
MAX_COLUMNS = 3


def _shape(panels: int) -> tuple[int, int]:
    """(rows, columns) of a figure with ``panels`` panels."""
    columns = min(panels, MAX_COLUMNS)
    return -(-panels // columns), columns


def _grid(fig, panels: int) -> np.ndarray:
    """The figure's axes, row by row; the unused ones of the last row hidden."""
    rows, columns = _shape(panels)
    axes = np.ravel(fig.subplots(rows, columns, squeeze=False))
    for ax in axes[panels:]:
        ax.set_visible(False)
    return axes[:panels]


def _group_colors(cmp) -> list:
    """A colour per group: ordered (viridis) along one numeric grouping setting, else categorical."""
    from matplotlib import colormaps

    n = len(cmp.groups)
    numeric = cmp.numeric_settings()
    if len(cmp.by) == 1 and cmp.by[0] in numeric and n > 1:
        return list(colormaps["viridis"](np.linspace(0.0, 0.9, n)))
    cmap = colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


def _plain(text: str) -> str:
    """Text from a file as matplotlib shows it literally (no mathtext between dollar signs)."""
    return str(text).replace("$", r"\$")


def _group_label(cmp, g: int) -> str:
    n = len(cmp.groups[g])
    return _plain(cmp.group_labels[g]) + (f" (mean of {n} runs ± SE)" if n > 1 else "")


def _legend(ax, cmp) -> None:
    from pyengine.results import legend_outside

    if not ax.get_legend_handles_labels()[0]:
        return
    if len(cmp.groups) <= LEGEND_INSIDE:
        ax.legend(fontsize="x-small")
    else:
        legend_outside(ax, ncol=3, fontsize="x-small")


def _draw_series(ax, t_w, value, se, flag, color, label, faint=False) -> None:
    ok = np.isfinite(value)
    if not ok.any():
        return
    if faint:
        ax.plot(t_w[ok], value[ok], "-", color=color, lw=0.8, alpha=0.35)
        return
    ax.errorbar(t_w[ok], value[ok], yerr=np.where(np.isfinite(se), se, 0)[ok], fmt="o-", color=color, ms=3.5, lw=1,
                elinewidth=0.7, capsize=2, label=label)
    bad = ok & np.array([f is not None for f in flag])
    if bad.any():
        ax.plot(t_w[bad], value[bad], "o", color=color, mfc="white", ms=3.5)


def _per_window_panel(ax, cmp, colors, stats, q, log: bool = False) -> None:
    """One headline number against t_w: each run (with ± its SE), or per group of several runs
    the runs faint and their mean ± SE across runs as a band."""
    key = (q.statistic, q.quantity)
    for g, members in enumerate(cmp.groups):
        series = [cmp.runs[i].numbers[key] for i in members if key in cmp.runs[i].numbers]
        if len(series) == 1:
            s = series[0]
            _draw_series(ax, s.t_w, s.value, s.se, s.flag, colors[g], _group_label(cmp, g))
        elif series:
            for s in series:
                _draw_series(ax, s.t_w, s.value, s.se, s.flag, colors[g], None, faint=True)
            rows = [r for r in stats.get((g, q.column), []) if r["n"]]
            t_w = np.array([r["t_w"] for r in rows])
            mean = np.array([r["mean"] for r in rows])
            se = np.array([r["se_runs"] for r in rows])
            ax.plot(t_w, mean, "o-", color=colors[g], ms=4, lw=1.6, label=_group_label(cmp, g))
            ax.fill_between(t_w, mean - se, mean + se, color=colors[g], alpha=0.2, lw=0)
    if log:
        ax.set_yscale("log")
    ax.set_xlabel("waiting time t_w (steps)")
    ax.set_title(q.label, fontsize="small")


def _draw_per_window(fig, cmp, columns: list[str], colors, stats) -> None:
    from pyengine.results import readable_ticks

    quantities = [q for q in cmp.quantities() if q.column in columns]
    axes = _grid(fig, len(quantities))
    for ax, q in zip(axes, quantities):
        _per_window_panel(ax, cmp, colors, stats, q, log=q.column == "tau0")
        if q.column.startswith("alpha"):
            ax.axhline(1.0, color="gray", lw=0.8)
        readable_ticks(ax)
    _legend(axes[0], cmp)


def _windows(cmp, windows) -> list[int]:
    n = min((run.curves["msd"][0].size for run in cmp.runs if "msd" in run.curves), default=0)
    if windows is not None:
        return [int(w) for w in windows]
    return list(dict.fromkeys(i % n for i in (0, n // 2, n - 1))) if n else []


def _draw_msd(fig, cmp, colors, windows: list[int]) -> None:
    from pyengine.results import readable_ticks

    axes = _grid(fig, len(windows))
    for ax, w in zip(axes, windows):
        seen_t_w = set()
        for g, members in enumerate(cmp.groups):
            for k, i in enumerate(members):
                curve = cmp.runs[i].curves.get("msd")
                if curve is None or not -curve[0].size <= w < curve[0].size:
                    continue
                t_w, lags, msd, se = curve
                seen_t_w.add(float(t_w[w]))
                ok = np.isfinite(msd[w]) & (msd[w] > 0)
                ax.loglog(lags[ok], msd[w][ok], color=colors[g], lw=1 if len(members) > 1 else 1.4,
                          label=_plain(cmp.group_labels[g]) if k == 0 else None)
                band = ok & np.isfinite(se[w])
                if band.any() and len(members) == 1:
                    low = np.clip(msd[w] - se[w], msd[w] * 0.05, None)
                    ax.fill_between(lags[band], low[band], (msd[w] + se[w])[band], color=colors[g], alpha=0.2, lw=0)
        where = f"t_w = {_num(seen_t_w.pop())}" if len(seen_t_w) == 1 else f"window {w} of each run"
        ax.set_title(f"MSD, {where}", fontsize="small")
        ax.set_xlabel("lag τ (steps)")
        ax.set_ylabel("Δr²(t_w, τ)")
        readable_ticks(ax)
    _legend(axes[0], cmp)


def _running_mean(values: np.ndarray, k: int) -> np.ndarray:
    return np.convolve(values, np.ones(k) / k, mode="valid")


def _draw_loss(fig, cmp, colors) -> None:
    from pyengine.results import readable_ticks

    with_eval = any("eval" in run.curves for run in cmp.runs)
    axes = np.ravel(fig.subplots(1, 2 if with_eval else 1, squeeze=False))
    for g, members in enumerate(cmp.groups):
        for k, i in enumerate(members):
            run = cmp.runs[i]
            label = _plain(cmp.group_labels[g]) if k == 0 else None
            if "loss" in run.curves:
                steps, loss = run.curves["loss"]
                ok = np.isfinite(loss)
                span = max(1, int(ok.sum()) // 50)
                axes[0].plot(_running_mean(steps[ok], span), _running_mean(loss[ok], span), color=colors[g], lw=1,
                             label=label)
            if with_eval and "eval" in run.curves:
                steps, losses = run.curves["eval"]
                for name, loss in losses.items():
                    if name == "test" or len(losses) == 1:
                        axes[1].plot(steps, loss, "o-", ms=3, color=colors[g], lw=1, label=label)
    axes[0].set_title("training loss (running mean over 2% of the run)", fontsize="small")
    if with_eval:
        axes[1].set_title("loss of the evaluation probe (test set)", fontsize="small")
    for ax in axes:
        ax.set_xlabel("step")
        ax.set_ylabel("loss")
        if all(line.get_ydata().min() > 0 for line in ax.get_lines() if len(line.get_ydata())):
            ax.set_yscale("log")
        readable_ticks(ax)
    _legend(axes[0], cmp)


def _draw_trends(fig, cmp, setting: str, trends: list) -> None:
    from pyengine.results import readable_ticks

    columns = [c for c in TREND_PANELS if any(t.column == c and np.isfinite(t.y).sum() >= 2 for t in trends)]
    axes = _grid(fig, len(columns))
    for ax, column in zip(axes, columns):
        mine = [t for t in trends if t.column == column]
        for j, t in enumerate(mine):
            color = f"C{j % 10}"
            where = _plain(", ".join(f"{k}={v}" for k, v in t.where.items()))
            ok = np.isfinite(t.y)
            ax.errorbar(t.x[ok], t.y[ok], yerr=np.where(np.isfinite(t.y_se), t.y_se, 0)[ok], fmt="o", ms=3,
                        color=color, alpha=0.45, elinewidth=0.7, capsize=0)
            xs = np.unique(t.x[ok])
            means = np.array([t.y[ok][t.x[ok] == x].mean() for x in xs])
            ax.plot(xs, means, "s", ms=6, color=color, label=where or None)
            if not t.flag:
                grid = np.geomspace(xs[0], xs[-1], 50) if t.scale == "log" else np.linspace(xs[0], xs[-1], 50)
                line, band = t.line(grid), t.line_se(grid)
                ax.plot(grid, line, "-", color=color, lw=1.2)
                ax.fill_between(grid, line - band, line + band, color=color, alpha=0.15, lw=0)
        if mine and mine[0].scale == "log":
            ax.set_xscale("log")
        fitted = [t for t in mine if not t.flag]
        unit = "/decade" if mine and mine[0].scale == "log" else "/unit"
        slope = f"slope {_pm(fitted[0].slope, fitted[0].slope_se)}{unit}" if len(fitted) == 1 else ""
        label = next(q.label for q in cmp.quantities() if q.column == column)
        ax.set_title(f"{label}\n{slope}", fontsize="small")
        ax.set_xlabel(_plain(setting))
        readable_ticks(ax)
    if axes.size and axes[0].get_legend_handles_labels()[0]:
        axes[0].legend(fontsize="x-small")


@dataclass(frozen=True)
class _Spec:
    """A figure of the page: its file name, title, caption, panels and how to draw it."""

    name: str
    title: str
    caption: str
    panels: int
    draw: Callable  # draw(fig, colors, stats)


#: The per-window figures: name, title, the headline numbers drawn (one panel each), caption.
PER_WINDOW = (
    ("exponents", "Diffusion exponents and τ0 against t_w", ("alpha", "alpha1", "alpha2", "tau0"),
     "α (whole window), α1 (τ < τ0), α2 (τ ≥ τ0) ± SE and τ0 per window; gray line: normal diffusion "
     "(α = 1)."),
    ("geometry", "MSL 2H and fractal dimension of the path", ("msl_2H", "D_f_below", "D_f_above"),
     "The loss landscape's 2H (MSL ∝ Δr^2H) and the path's D_f = 2/λ below and above the crossover ± SE per "
     "window."),
    ("tails", "Tail indices of the weight increments", ("tail_alpha", "stable_alpha"),
     "Mohammadi tail index and the α-stable fit's α ± SE per window (2: Gaussian)."),
)


def _figure_specs(cmp, windows: list[int]) -> list[_Spec]:
    """Every figure these runs allow."""
    have = {q.column for q in _shown(cmp)}
    seeds = any(len(m) > 1 for m in cmp.groups)
    more = " Open markers: values that fail the fit quality rule." + (
        " Groups of several runs (seeds): the runs faint, their mean ± SE across the runs as a band." if seeds else "")
    specs = []
    if windows and any("msd" in run.curves for run in cmp.runs):
        specs.append(_Spec("msd", "MSD curves", "Δr²(t_w, τ) of every run at the same windows (± SE as a band for "
                           "single runs); runs of one group share a colour.", len(windows),
                           lambda fig, colors, stats: _draw_msd(fig, cmp, colors, windows)))
    for name, title, columns, caption in PER_WINDOW:
        columns = [c for c in columns if c in have]
        if columns:
            specs.append(_Spec(name, title, caption + more, len(columns),
                               lambda fig, colors, stats, columns=columns:
                               _draw_per_window(fig, cmp, columns, colors, stats)))
    if any("loss" in run.curves or "eval" in run.curves for run in cmp.runs):
        panels = 2 if any("eval" in run.curves for run in cmp.runs) else 1
        specs.append(_Spec("loss", "Loss", "The training loss of every run (running mean over 2% of its steps) and, "
                           "where recorded, the evaluation probe's test loss.", panels,
                           lambda fig, colors, stats: _draw_loss(fig, cmp, colors)))
    for setting in cmp.numeric_settings():
        trends = [t for t in cmp.trends(setting=setting) if t.column in TREND_PANELS]
        panels = len({t.column for t in trends if np.isfinite(t.y).sum() >= 2})
        if panels:
            specs.append(_Spec(f"trend-{_safe(setting)}", f"Headline numbers against {setting}",
                               f"At each run's last window: the runs (± their SE, faint), the mean per {setting} "
                               "value (squares) and, with 3 values or more, the least-squares line ± its SE (see "
                               "the trends table).", panels,
                               lambda fig, colors, stats, setting=setting, trends=trends:
                               _draw_trends(fig, cmp, setting, trends)))
    return specs


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in name)[:60]


def _save_figures(cmp, folder: pathlib.Path, formats: tuple, windows: list[int], skipped: dict) -> list[dict]:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    folder.mkdir()
    colors = _group_colors(cmp)
    stats: dict = {}
    for s in cmp.group_stats():
        stats.setdefault((s["group"], s["column"]), []).append(s)
    saved = []
    for spec in _figure_specs(cmp, windows):
        name, panels = spec.name, spec.panels
        rows, columns = _shape(panels)
        fig = plt.figure(figsize=(4.2 * columns + 1.2, 4.2 * rows + 0.4))
        try:
            with warnings.catch_warnings():  # degenerate data (nothing to log-scale) only draws less
                warnings.simplefilter("ignore", UserWarning)
                warnings.simplefilter("ignore", RuntimeWarning)
                spec.draw(fig, colors, stats)
                fig.tight_layout()
            for fmt in formats:
                fig.savefig(folder / f"{name}.{fmt}", dpi=FIGURE_DPI)
        except ILL_POSED as exc:
            skipped[f"figure {name}"] = f"not drawn: {exc}"
            continue
        finally:
            plt.close(fig)
        files = {fmt: f"figures/{name}.{fmt}" for fmt in formats}
        saved.append({"file": files.get("png", files[formats[0]]), "files": files, "title": spec.title,
                      "caption": spec.caption, "panels": panels})
    return saved


# -- the page ------------------------------------------------------------------------------------


def _settings_section(cmp) -> str:
    varying = "".join(f"<li><code>{cell_text(n)}</code></li>" for n in cmp.varying) or "<li>none: the runs are named "\
        "by where they came from</li>"
    derived = "".join(f"<li><code>{cell_text(n)}</code> (follows from {cell_text(', '.join(src))})</li>"
                      for n, src in cmp.derived.items())
    shared = [(n, v) for n, v in cmp.runs[0].settings.items()
              if n not in cmp.varying and n not in cmp.derived and all(n in r.settings for r in cmp.runs)]
    groups = ("runs equal in " + ", ".join(f"<code>{cell_text(n)}</code>" for n in cmp.by) if cmp.by
              else "all runs together")
    parts = ["<h2>Settings</h2><p>The training settings stored in the runs' files that differ between them label "
             f"the runs:</p><ul>{varying}</ul>"]
    if derived:
        parts.append(f"<p>These differ too, but follow from the ones above:</p><ul>{derived}</ul>")
    parts.append(f"<p>Groups: {groups}.</p>")
    if shared:
        table = html_table(["setting", "value"], [[cell_text(n), setting_cell(v)] for n, v in shared], text=True,
                       css="settings", first_class="key")
        parts.append(f"<details><summary>{len(shared)} settings shared by every run</summary>{table}</details>")
    return "".join(parts)


def _analysis_section(cmp) -> str:
    rows = []
    for label, run in zip(cmp.labels, cmp.runs):
        a = run.analysis
        t_w = a.get("t_w") or []
        lags = a.get("lags") or [0, None, None]
        rows.append([cell_text(label), cell_text(run.name), cell_text(a.get("window")),
                     f"{len(t_w)}: {cell_text(t_w[0] if t_w else None)} … {cell_text(t_w[-1] if t_w else None)}",
                     f"{cell_text(lags[0])} ({cell_text(lags[1])} … {cell_text(lags[2])})", cell_text(a.get("threshold")),
                     cell_text(a.get("backend"))])
    alike = len({json.dumps([r[2], r[4], r[5]]) for r in rows}) == 1
    note = "" if alike else ("<p><b>The runs were analysed with different windows, lags or τ0 thresholds</b>: "
                             "their exponents are not measured alike.</p>")
    return "<h2>Runs</h2>" + note + _scroll(html_table(
        ["run", "read from", "window (steps)", "windows (t_w)", "MSD lags", "τ0 threshold", "backend"], rows,
        first_class="run"))


def _skipped_section(cmp) -> str:
    rows = [[cell_text(label), cell_text(k), cell_text(v)] for label, run in zip(cmp.labels, cmp.runs)
            for k, v in run.skipped.items() if k != "windows"]
    return "<h2>Not computed</h2>" + html_table(["run", "what", "reason"], rows, text=True) if rows else ""


def _page(cmp, folder: pathlib.Path, figures: list[dict], skipped: dict, embed: bool) -> str:
    from pyengine._version import __version__

    trends = [t for t in cmp.trends() if t.n_points]
    seeds = any(len(m) > 1 for m in cmp.groups)
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>pyengine comparison: {len(cmp.runs)} runs</title>",
        f"<style>{PAGE_STYLE}</style></head><body>",
        "<h1>pyengine comparison</h1>",
        f"<p class='meta'>pyengine {cell_text(__version__)}: {cell_text(cmp.headline())}</p>",
        "<h2>Headline numbers</h2><p>At each run's last window (its t_w), value ± the run's own standard error. "
        "Grey values marked * fail the fit quality rule (the reason in a tooltip): read them as unresolved.</p>",
        headline_table(cmp, folder=folder, embed=embed),
    ]
    if seeds:
        parts.append("<h2>Seeds</h2><p>Runs equal in every grouping setting, at their last window: mean ± "
                     "standard error across the runs (sd/√n); below it, the runs' own SEs propagated to the mean "
                     "(√ΣSE²/n). An SE across runs well above the within-run one means the runs differ more than "
                     "their error bars say.</p>" + _groups_table(cmp))
    if trends:
        lines = [t for t in trends if not t.flag]
        most: dict = {}
        for t in trends:
            most[t.setting] = max(most.get(t.setting, 0), t.n_values)
        few = [setting for setting, n in most.items() if n < 3]
        note = (f"<p>{cell_text(', '.join(few))}: fewer than 3 values, no line (the figure shows the values).</p>"
                if few else "")
        parts.append("<h2>Trends</h2><p>Each headline number at the runs' last window against each numeric setting "
                     "that differs: a least-squares line in log10 of the setting (all values positive) or in the "
                     "setting, one point per run; the SE comes from the scatter about the line (n − 2 degrees of "
                     "freedom), beside it the SE the runs' own errors alone would give. A line needs 3 setting "
                     "values.</p>" + note + (_trends_table(lines) if lines else ""))
    parts += [_settings_section(cmp), _analysis_section(cmp), _skipped_section(cmp)]
    if skipped:
        parts.append("<h2>Figures not drawn</h2>" + html_table(["figure", "reason"],
                                                           [[cell_text(k), cell_text(v)] for k, v in skipped.items()], text=True))
    if figures:
        parts.append("<h2>Figures</h2><div class='figs'>")
        parts.extend(figure_html(folder, f, embed) for f in figures)
        parts.append("</div>")
    parts.append("<p class='meta'>All numbers: comparison.json"
                 + ("" if embed else " in this folder") + ".</p></body></html>")
    return "\n".join(parts)


def write_comparison(cmp, folder: pathlib.Path, *, formats=("png", "svg"), windows=None,
                     self_contained: bool = False) -> pathlib.Path:
    """Draw the figures and write ``comparison.json`` and ``index.html`` into ``folder`` (an
    empty folder: :meth:`pyengine.compare.Comparison.save` passes its temporary one).

    Returns
    -------
    Path
        ``folder/index.html``.
    """
    folder = pathlib.Path(folder)
    skipped: dict = {}
    figures = _save_figures(cmp, folder / "figures", tuple(formats), _windows(cmp, windows), skipped)
    doc = {**cmp.to_dict(), "figures": figures, "figures_skipped": skipped}
    (folder / "comparison.json").write_text(json.dumps(doc, indent=1, allow_nan=False, default=str))
    index = write_page(folder / "index.html", _page(cmp, folder, figures, skipped, embed=False))
    if self_contained:
        write_page(folder / SELF_CONTAINED, _page(cmp, folder, figures, skipped, embed=True))
    return index
