"""The static HTML report: one folder with index.html and its figures, viewable offline.

``render(folder)`` reads ``results.json`` (written by :meth:`pyengine.Analysis.save`) and
writes ``index.html`` next to it; ``pyengine report DIR`` re-renders an existing folder.
``render(folder, self_contained=True)`` also writes ``report-self-contained.html``, the same
report with its images embedded (one file to mail). Only sections whose data exist
appear. Every value from ``results.json`` is escaped: the file may have been edited by
anyone. docs/report.md describes the sections.
"""

from __future__ import annotations

import base64
import html
import json
import math
import os
import pathlib

from pyengine.report.groups import GROUP_STYLE, groups_section

__all__ = ["render", "SELF_CONTAINED", "STYLE", "cell_text", "html_table", "flatten", "setting_cell", "figure_html", "write_page",
           "FIRST_SETTINGS", "RECORDED_SETTINGS"]

#: The report with its images embedded, written next to index.html on request.
SELF_CONTAINED = "report-self-contained.html"
#: Figure files the report shows, by suffix, with their media type (for data URIs).
_IMAGE_TYPES = {".png": "image/png", ".svg": "image/svg+xml"}
#: Longest cell text of the training settings before it is shortened (the rest in a tooltip).
_SHORT = 100

STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; color: #222; }
h1 { margin-bottom: 0.2em; } .meta { color: #666; }
table { border-collapse: collapse; margin: 1em 0; } td, th { border: 1px solid #ccc; padding: 3px 8px; }
th { background: #f3f3f3; } td { text-align: right; } td.text { text-align: left; }
tr.flagged td { color: #999; background: #fafafa; } tr.flagged td.note { color: #a60; }
.figs { display: grid; grid-template-columns: repeat(auto-fill, minmax(480px, 1fr)); gap: 1.5em; }
figure { margin: 0; } figure.wide { grid-column: 1 / -1; } figure img { width: 100%; } figcaption { font-size: 0.9em; color: #444; }
table.settings td.key { font-family: ui-monospace, monospace; white-space: nowrap; }
table.fits td { white-space: nowrap; } table.fits td:last-child { white-space: normal; text-align: left; }
details pre { font-size: 0.8em; max-height: 24em; overflow: auto; background: #f8f8f8; padding: 0.5em; }
.t0 { font-size: 1.05em; }
""" + GROUP_STYLE


def cell_text(value, digits: int = 3) -> str:
    """A cell: numbers to ``digits`` significant digits, None as an en dash, everything escaped."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return html.escape(str(value))


def _number(value) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _pm(value, se) -> str:
    value, se = _number(value), _number(se)
    if value is None:
        return "–"
    return f"{value:.3f}" + (f" ± {se:.3f}" if se is not None else " (no SE)")


def html_table(header: list[str], rows: list[list[str]], classes: list[str] | None = None, text: bool = False,
           css: str = "", first_class: str = "") -> str:
    """An HTML table; cells must already be escaped (``cell_text``). ``text``: left-aligned cells;
    ``css``: the table's class; ``first_class``: an extra class of each row's first cell."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    classes = classes or [""] * len(rows)
    td = "<td class='text'>" if text else "<td>"
    first = f"<td class='text {first_class}'>" if first_class else td
    body = "".join(f"<tr class='{c}'>" + "".join(f"{first if i == 0 else td}{cell}</td>" for i, cell in enumerate(row))
                   + "</tr>" for row, c in zip(rows, classes))
    table = f"<table class='{css}'>" if css else "<table>"
    return f"{table}<tr>{head}</tr>{body}</table>"


def _fit_row(statistic: str, t_w, quantity: str, fit: dict) -> tuple[list[str], str]:
    """One row of the fits table from a serialized PowerFit."""
    fit = fit if isinstance(fit, dict) else {}
    lo, hi = (fit.get("x_range") or [None, None])[:2] if isinstance(fit.get("x_range"), list) else (None, None)
    span = f"{cell_text(lo)} … {cell_text(hi)} ({cell_text(fit.get('decades'), 2)} dec.)" if _number(lo) is not None else "–"
    flag = fit.get("flag")
    row = [cell_text(statistic), cell_text(t_w), cell_text(quantity), _pm(fit.get("slope"), fit.get("slope_se")), span,
           cell_text(fit.get("n_points")), cell_text(flag or "")]
    return row, "flagged" if flag else ""


def _tail_row(t_w, quantity: str, est: dict) -> tuple[list[str], str]:
    est = est if isinstance(est, dict) else {}
    flag = est.get("flag")
    row = [cell_text("tails"), cell_text(t_w), cell_text(quantity), _pm(est.get("alpha"), est.get("alpha_se")), "–",
           cell_text(est.get("n_used", est.get("n"))), cell_text(flag or "")]
    return row, "flagged" if flag else ""


def _windows(result: dict, key: str) -> list:
    values = result.get(key)
    return values if isinstance(values, list) else []


def _fit_rows(results: dict) -> list[tuple[list[str], str]]:
    """Every fitted exponent of the results, in the order of the statistics."""
    rows = []
    diffusion = results.get("diffusion", {})
    for w in _windows(diffusion, "windows"):
        if not isinstance(w, dict):
            continue
        rows.append(_fit_row("diffusion", w.get("t_w"), "α1 (τ < τ0)", w.get("early")))
        rows.append(_fit_row("diffusion", w.get("t_w"), f"α2 (τ ≥ τ0 = {cell_text(w.get('tau0'))})", w.get("late")))
    path = results.get("path", {})
    for t_w, pair, transverse in zip(_windows(path, "t_w"), _windows(path, "fits"), _windows(path, "transverse_fits")):
        for side, fit in zip(("below", "above"), pair if isinstance(pair, list) else []):
            rows.append(_fit_row("path", t_w, f"λ ({side} the crossover)", fit))
        rows.append(_fit_row("path", t_w, "transverse ζ", transverse))
    msl = results.get("msl", {})
    rows += [_fit_row("msl", t_w, "2H", fit) for t_w, fit in zip(_windows(msl, "t_w"), _windows(msl, "fits"))]
    inc = results.get("increments", {})
    rows += [_fit_row("increments", t_w, "spectral slope", fit)
             for t_w, fit in zip(_windows(inc, "t_w"), _windows(inc, "slope_fits"))]
    tails = results.get("tails", {})
    for i, (t_w, est) in enumerate(zip(_windows(tails, "t_w"), _windows(tails, "tail"))):
        rows.append(_tail_row(t_w, "α (Mohammadi)", est))
        stable = _windows(tails, "stable")
        if i < len(stable):
            rows.append(_tail_row(t_w, "α (α-stable MLE)", stable[i]))
    return rows


def _fits_section(results: dict) -> str:
    rows = _fit_rows(results)
    if not rows:
        return ""
    lead = ("<p>Every fitted exponent with its standard error, fit range and number of points. Grey rows fail the "
            "fit quality rule (fewer than 5 points, less than a decade, or SE above 0.1): the note says why; read "
            "them as unresolved, not as measurements.</p>")
    return "<h2>Fitted exponents</h2>" + lead + html_table(
        ["statistic", "t_w", "quantity", "value ± SE", "fit range", "points", "note"],
        [r for r, _ in rows], [c for _, c in rows], css="fits")


def _diffusion_section(diffusion: dict) -> str:
    rows = [[cell_text(w.get("t_w")), cell_text(w.get("tau0")), cell_text(f"{w.get('regime_early')} → {w.get('regime_late')}"),
             cell_text((w.get("whole") or {}).get("rmse")), cell_text(w.get("reason") or "")]
            for w in _windows(diffusion, "windows") if isinstance(w, dict)]
    t0 = diffusion.get("t0")
    rule = "data-derived (SD of all RMSEs)" if diffusion.get("threshold_rule") == "data" else "fixed"
    reason = diffusion.get("t0_reason")
    why = f" (undefined: {cell_text(reason)})" if t0 is None and reason else ""
    lead = (f"<p class='t0'>t0 (first window whose whole-window fit has RMSE &lt; "
            f"{cell_text(diffusion.get('threshold'))}, {cell_text(rule)} threshold): <b>{cell_text(t0)}</b>{why}</p>")
    return "<h2>Diffusion regimes</h2>" + lead + html_table(
        ["t_w", "τ0", "regimes (within 2 SE of 1: normal)", "RMSE (whole)", "note"], rows)


def _settings_section(settings: dict) -> str:
    plan = settings.get("plan") if isinstance(settings.get("plan"), dict) else {}
    t_w = plan.get("t_w") if isinstance(plan.get("t_w"), list) else []
    lags = plan.get("lags") if isinstance(plan.get("lags"), list) else []
    rows = [
        ("window T (steps)", f"{cell_text(plan.get('window'))} ({cell_text(plan.get('rule'))})"),
        ("windows", f"{len(t_w)}: t_w = {cell_text(', '.join(map(str, t_w[:8])) + (' …' if len(t_w) > 8 else ''))}"),
        ("MSD lags", f"{len(lags)} from {cell_text(lags[0] if lags else None)} to {cell_text(lags[-1] if lags else None)}"
                     f" steps; origins {cell_text(plan.get('origins'))}"),
        ("backend used", cell_text(settings.get("backend"))),
        ("τ0 threshold", cell_text(settings.get("threshold"))),
        ("NaN/Inf weights", cell_text(settings.get("nonfinite"))),
        ("statistics", cell_text(", ".join(map(str, settings.get("statistics") or [])))),
    ]
    groups = settings.get("groups") if isinstance(settings.get("groups"), dict) else None
    if groups:
        rows.append(("groups", cell_text(f"{groups.get('spec')}: {len(groups.get('names') or [])} groups")))
    return "<h2>Settings</h2>" + html_table(["setting", "value"], [[cell_text(k), v] for k, v in rows], text=True)


#: Settings the recorder adds by itself: after the first ones, shown folded.
RECORDED_SETTINGS = ("model.", "optimizer.", "recorder.", "torch_version")
#: Training settings shown first, in this order (flattened names); the others follow as stored.
FIRST_SETTINGS = ("model.class", "model.n_params", "optimizer.class", "optimizer.lr", "lr", "optimizer.momentum",
          "optimizer.weight_decay", "batch_size", "seed", "dataset", "dataset_size", "steps", "epochs")


def flatten(prefix: str, value, rows: list) -> None:
    """(name, value) pairs of nested settings: dicts as ``a.b``; an optimizer's one parameter
    group into the optimizer (``optimizer.lr``), several as ``optimizer.param_groups[i].lr``."""
    if isinstance(value, dict):
        if not value and prefix:
            rows.append((prefix, "{}"))
        for key, item in value.items():
            flatten(f"{prefix}.{key}" if prefix else str(key), item, rows)
    elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        if len(value) == 1 and prefix.endswith(".param_groups"):
            flatten(prefix[: -len(".param_groups")], value[0], rows)
        elif prefix.endswith(".param_groups"):
            for i, item in enumerate(value):
                flatten(f"{prefix}[{i}]", item, rows)
        else:  # e.g. the recorder's probes: one row each, its settings inline
            rows.extend((f"{prefix}[{i}]", ", ".join(f"{k}={_text(v)}" for k, v in item.items()))
                        for i, item in enumerate(value))
    else:
        rows.append((prefix, value))


def _text(value) -> str:
    """A setting as plain text (not yet escaped): lists as their items, None as "–"."""
    if value is None:
        return "–"
    if isinstance(value, list):
        return "[" + ", ".join(_text(v) for v in value) + "]"
    if isinstance(value, dict):
        return json.dumps(value)
    return str(value)


def setting_cell(value) -> str:
    """An escaped cell: long lists counted and shortened, long or multi-line text shortened
    with the whole in a tooltip (single line) or a collapsible block (several lines)."""
    text = _text(value)
    if isinstance(value, list) and len(text) > _SHORT:
        text = f"{len(value)} items: {text[1:-1]}"
    if "\n" in text.strip():
        first = text.strip().splitlines()[0]
        body = text if len(text) <= 20_000 else text[:20_000] + f"\n… ({len(text) - 20_000} more characters)"
        return (f"<details><summary>{html.escape(first[:_SHORT])} … ({len(text.splitlines())} lines)</summary>"
                f"<pre>{html.escape(body)}</pre></details>")
    if len(text) > _SHORT:
        return f"<span title='{html.escape(text[:2000])}'>{html.escape(text[:_SHORT])} …</span>"
    return html.escape(text)


def _training_section(stored) -> str:
    """The run settings stored in the trajectory file (``source.settings``) as a table."""
    if not isinstance(stored, dict) or not stored:
        return ""
    rows: list = []
    flatten("", stored, rows)
    first = {name: i for i, name in enumerate(FIRST_SETTINGS)}
    rows.sort(key=lambda row: first.get(row[0], len(first)))  # stable: the rest keep the stored order
    main = [r for r in rows if r[0] in first or not r[0].startswith(RECORDED_SETTINGS)]
    rest = [r for r in rows if r not in main]

    def table(part: list) -> str:
        return html_table(["setting", "value"], [[cell_text(name), setting_cell(value)] for name, value in part], text=True,
                      css="settings", first_class="key")

    lead = ("<p>As recorded in the trajectory file (its <code>settings</code> attribute): the model, the "
            "optimizer and the settings given to the recorder.</p>")
    more = (f"<details><summary>{len(rest)} more recorded settings (model, optimizer, recorder)</summary>"
            f"{table(rest)}</details>") if rest else ""
    return "<h2>Training run</h2>" + lead + (table(main) if main else "") + more


def _reduction_section(src: dict) -> str:
    """A sampled or sketched recording: per statistic, exact, an estimate or not available."""
    red, acc = src.get("reduction"), src.get("accuracy")
    if not isinstance(red, dict) or not isinstance(acc, dict):
        return ""
    size = f"k = {cell_text(red.get('k'))} sketch coordinates" if red.get("method") == "sketch" else \
        f"{cell_text(red.get('n_kept'))} sampled coordinates (f = {cell_text(red.get('fraction'))})"
    rows = [[cell_text(k), cell_text(v.get("status")), cell_text(v.get("note"))] for k, v in acc.items() if isinstance(v, dict)]
    return (f"<h2>Reduced recording</h2><p>{size} of P = {cell_text(red.get('n_full'))} parameters, seed "
            f"{cell_text(red.get('seed'))}.</p>" + html_table(["statistic", "status", "note"], rows, text=True))


def render(folder: str | os.PathLike, *, self_contained: bool = False) -> pathlib.Path:
    """Write ``index.html`` for the analysis outputs in ``folder``; return its path.

    Parameters
    ----------
    folder : path
        A folder written by :meth:`pyengine.Analysis.save` (its ``results.json``).
    self_contained : bool
        Also write :data:`SELF_CONTAINED` (``report-self-contained.html``): the same report
        with every image embedded as a data URI, a single file that can be mailed. In an
        output folder it is added to the folder's manifest.

    Raises
    ------
    FileNotFoundError
        If ``folder`` has no ``results.json`` (run ``pyengine analyze`` first).
    ValueError
        If ``results.json`` is not a JSON object.

    Examples
    --------
    >>> render("out", self_contained=True)  # doctest: +SKIP
    PosixPath('out/index.html')
    """
    folder = pathlib.Path(folder)
    results_file = folder / "results.json"
    if not results_file.exists():
        raise FileNotFoundError(f"{folder} has no results.json: run `pyengine analyze FILE --out {folder}` first")
    doc = json.loads(results_file.read_text())
    if not isinstance(doc, dict):
        raise ValueError(f"{results_file} is not a pyengine results file (expected a JSON object)")
    index = write_page(folder / "index.html", _page(folder, doc, embed=False))
    if self_contained:
        write_page(folder / SELF_CONTAINED, _page(folder, doc, embed=True))
        _list_in_manifest(folder, SELF_CONTAINED)
    return index


def _page(folder: pathlib.Path, doc: dict, embed: bool) -> str:
    """The report's HTML; ``embed``: images as data URIs and no link to another file."""
    src = doc.get("source") if isinstance(doc.get("source"), dict) else {}
    results = doc.get("results") if isinstance(doc.get("results"), dict) else {}
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>pyengine report: {cell_text(src.get('path') or 'array')}</title>",
        f"<style>{STYLE}</style></head><body>",
        "<h1>pyengine report</h1>",
        f"<p class='meta'>{cell_text(doc.get('producer', ''))}, {cell_text(doc.get('created', ''))}</p>",
        html_table(["source", "snapshots", "parameters", "steps", "dtype"],
               [[cell_text(src.get("path") or "in-memory array"), cell_text(src.get("n_snapshots")), cell_text(src.get("n_params")),
                 f"{cell_text(src.get('first_step'))} … {cell_text(src.get('last_step'))}", cell_text(src.get("dtype"))]]),
        _training_section(src.get("settings")),
        _reduction_section(src),
    ]
    if isinstance(doc.get("settings"), dict):
        parts.append(_settings_section(doc["settings"]))
    if isinstance(src.get("warnings"), list) and src["warnings"]:
        parts.append("<h2>Notes on the data</h2><ul>" + "".join(f"<li>{cell_text(w)}</li>" for w in src["warnings"])
                     + "</ul>")
    if isinstance(results.get("diffusion"), dict):
        parts.append(_diffusion_section(results["diffusion"]))
    parts.append(_fits_section(results))
    parts.append(groups_section(results, doc["settings"] if isinstance(doc.get("settings"), dict) else {}))
    if isinstance(doc.get("skipped"), dict) and doc["skipped"]:
        parts.append("<h2>Not computed</h2>" + html_table(
            ["what", "reason"], [[cell_text(k), cell_text(v)] for k, v in doc["skipped"].items()], text=True))
    figures = [f for f in doc.get("figures", []) if isinstance(f, dict) and _inside(folder, f.get("file"))]
    if figures:
        parts.append("<h2>Figures</h2><div class='figs'>")
        parts.extend(figure_html(folder, f, embed) for f in figures)
        parts.append("</div>")
    where = "results.json of the analysis output" if embed else "results.json in this folder"
    parts.append(f"<p class='meta'>All numbers: {where}.</p></body></html>")
    return "\n".join(parts)


def figure_html(folder: pathlib.Path, entry: dict, embed: bool) -> str:
    """One figure: its image (embedded, or the file with a link to its SVG) and caption."""
    wide = " class='wide'" if entry.get("panels", 1) != 1 else ""
    title = cell_text(entry.get("title"))
    if embed:
        path = (folder / entry["file"]).resolve()  # checked by _inside: an image inside the folder
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        img = f"<img src='data:{_IMAGE_TYPES[path.suffix.lower()]};base64,{data}' alt='{title}'>"
    else:
        img = f"<img src='{cell_text(entry['file'])}' alt='{title}'>"
    links = []
    files = entry.get("files") if isinstance(entry.get("files"), dict) else {}
    if not embed:
        links = [f"<a href='{cell_text(name)}'>{cell_text(fmt.upper())}</a>" for fmt, name in files.items()
                 if isinstance(name, str) and name != entry["file"] and _inside(folder, name, any_file=True)]
    more = f" ({', '.join(links)})" if links else ""
    return f"<figure{wide}>{img}<figcaption><b>{title}.</b> {cell_text(entry.get('caption'))}{more}</figcaption></figure>"


def write_page(path: pathlib.Path, text: str) -> pathlib.Path:
    """Write ``text`` to ``path`` through a temporary file (a reader never sees half a report)."""
    tmp = path.with_suffix(".html.tmp")
    tmp.write_text(text)
    tmp.replace(path)
    return path


def _list_in_manifest(folder: pathlib.Path, name: str) -> None:
    """Add ``name`` to the manifest of a pyengine output folder, so that a later save may replace it."""
    from pyengine.output import MANIFEST, claim_output

    if (folder / MANIFEST).exists():
        try:
            claim_output(folder, [name])
        except FileExistsError:  # the folder holds files pyengine did not write: it is not replaced anyway
            pass


def _inside(folder: pathlib.Path, name, any_file: bool = False) -> bool:
    """Whether a figure entry names an existing image (PNG or SVG; ``any_file``: any file)
    inside ``folder``, never one elsewhere."""
    if not isinstance(name, str):
        return False
    path = (folder / name).resolve()
    image = any_file or path.suffix.lower() in _IMAGE_TYPES
    return image and folder.resolve() in path.parents and path.is_file()
