"""The static HTML report: one folder with index.html and its figures, viewable offline.

``render(folder)`` reads ``results.json`` (written by :meth:`pyengine.Analysis.save`) and
writes ``index.html`` next to it; ``pyengine report DIR`` re-renders an existing folder.
Only sections whose data exist appear. Every value from ``results.json`` is escaped: the
file may have been edited by anyone.
"""

from __future__ import annotations

import html
import json
import math
import os
import pathlib

__all__ = ["render"]

STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; color: #222; }
h1 { margin-bottom: 0.2em; } .meta { color: #666; }
table { border-collapse: collapse; margin: 1em 0; } td, th { border: 1px solid #ccc; padding: 3px 8px; }
th { background: #f3f3f3; } td { text-align: right; } td.text { text-align: left; }
tr.flagged td { color: #999; background: #fafafa; } tr.flagged td.note { color: #a60; }
.figs { display: grid; grid-template-columns: repeat(auto-fill, minmax(480px, 1fr)); gap: 1.5em; }
figure { margin: 0; } figure.wide { grid-column: 1 / -1; } figure img { width: 100%; } figcaption { font-size: 0.9em; color: #444; }
"""


def _fmt(value, digits: int = 3) -> str:
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


def _table(header: list[str], rows: list[list[str]], classes: list[str] | None = None, text: bool = False) -> str:
    """An HTML table; cells must already be escaped (``_fmt``). ``text``: left-aligned cells."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    classes = classes or [""] * len(rows)
    td = "<td class='text'>" if text else "<td>"
    body = "".join(f"<tr class='{c}'>" + "".join(f"{td}{cell}</td>" for cell in row) + "</tr>"
                   for row, c in zip(rows, classes))
    return f"<table><tr>{head}</tr>{body}</table>"


def _fit_row(statistic: str, t_w, quantity: str, fit: dict) -> tuple[list[str], str]:
    """One row of the fits table from a serialized PowerFit."""
    fit = fit if isinstance(fit, dict) else {}
    lo, hi = (fit.get("x_range") or [None, None])[:2] if isinstance(fit.get("x_range"), list) else (None, None)
    span = f"{_fmt(lo)} … {_fmt(hi)} ({_fmt(fit.get('decades'), 2)} dec.)" if _number(lo) is not None else "–"
    flag = fit.get("flag")
    row = [_fmt(statistic), _fmt(t_w), _fmt(quantity), _pm(fit.get("slope"), fit.get("slope_se")), span,
           _fmt(fit.get("n_points")), _fmt(flag or "")]
    return row, "flagged" if flag else ""


def _tail_row(t_w, quantity: str, est: dict) -> tuple[list[str], str]:
    est = est if isinstance(est, dict) else {}
    flag = est.get("flag")
    row = [_fmt("tails"), _fmt(t_w), _fmt(quantity), _pm(est.get("alpha"), est.get("alpha_se")), "–",
           _fmt(est.get("n_used", est.get("n"))), _fmt(flag or "")]
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
        rows.append(_fit_row("diffusion", w.get("t_w"), f"α2 (τ ≥ τ0 = {_fmt(w.get('tau0'))})", w.get("late")))
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
    return "<h2>Fitted exponents</h2>" + lead + _table(
        ["statistic", "t_w", "quantity", "value ± SE", "fit range", "points", "note"],
        [r for r, _ in rows], [c for _, c in rows])


def _diffusion_section(diffusion: dict) -> str:
    rows = [[_fmt(w.get("t_w")), _fmt(w.get("tau0")), _fmt(f"{w.get('regime_early')} → {w.get('regime_late')}"),
             _fmt((w.get("whole") or {}).get("rmse")), _fmt(w.get("reason") or "")]
            for w in _windows(diffusion, "windows") if isinstance(w, dict)]
    t0 = diffusion.get("t0")
    rule = "data-derived (SD of all RMSEs)" if diffusion.get("threshold_rule") == "data" else "fixed"
    lead = (f"<p>t0 (first window whose whole-window fit has RMSE &lt; {_fmt(diffusion.get('threshold'))}, "
            f"{_fmt(rule)} threshold): <b>{_fmt(t0)}</b> {_fmt(diffusion.get('t0_reason') or '')}</p>")
    return "<h2>Diffusion regimes</h2>" + lead + _table(
        ["t_w", "τ0", "regimes (within 2 SE of 1: normal)", "RMSE (whole)", "note"], rows)


def _settings_section(settings: dict) -> str:
    plan = settings.get("plan") if isinstance(settings.get("plan"), dict) else {}
    t_w = plan.get("t_w") if isinstance(plan.get("t_w"), list) else []
    lags = plan.get("lags") if isinstance(plan.get("lags"), list) else []
    rows = [
        ("window T (steps)", f"{_fmt(plan.get('window'))} ({_fmt(plan.get('rule'))})"),
        ("windows", f"{len(t_w)}: t_w = {_fmt(', '.join(map(str, t_w[:8])) + (' …' if len(t_w) > 8 else ''))}"),
        ("MSD lags", f"{len(lags)} from {_fmt(lags[0] if lags else None)} to {_fmt(lags[-1] if lags else None)}"
                     f" steps; origins {_fmt(plan.get('origins'))}"),
        ("backend used", _fmt(settings.get("backend"))),
        ("τ0 threshold", _fmt(settings.get("threshold"))),
        ("NaN/Inf weights", _fmt(settings.get("nonfinite"))),
        ("statistics", _fmt(", ".join(map(str, settings.get("statistics") or [])))),
    ]
    return "<h2>Settings</h2>" + _table(["setting", "value"], [[_fmt(k), v] for k, v in rows], text=True)


def render(folder: str | os.PathLike) -> pathlib.Path:
    """Write ``index.html`` for the analysis outputs in ``folder``; return its path.

    Raises
    ------
    FileNotFoundError
        If ``folder`` has no ``results.json`` (run ``pyengine analyze`` first).
    ValueError
        If ``results.json`` is not a JSON object.
    """
    folder = pathlib.Path(folder)
    results_file = folder / "results.json"
    if not results_file.exists():
        raise FileNotFoundError(f"{folder} has no results.json: run `pyengine analyze FILE --out {folder}` first")
    doc = json.loads(results_file.read_text())
    if not isinstance(doc, dict):
        raise ValueError(f"{results_file} is not a pyengine results file (expected a JSON object)")
    src = doc.get("source") if isinstance(doc.get("source"), dict) else {}
    results = doc.get("results") if isinstance(doc.get("results"), dict) else {}
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>pyengine report: {_fmt(src.get('path') or 'array')}</title>",
        f"<style>{STYLE}</style></head><body>",
        "<h1>pyengine report</h1>",
        f"<p class='meta'>{_fmt(doc.get('producer', ''))}, {_fmt(doc.get('created', ''))}</p>",
        _table(["source", "snapshots", "parameters", "steps", "dtype"],
               [[_fmt(src.get("path") or "in-memory array"), _fmt(src.get("n_snapshots")), _fmt(src.get("n_params")),
                 f"{_fmt(src.get('first_step'))} … {_fmt(src.get('last_step'))}", _fmt(src.get("dtype"))]]),
    ]
    if isinstance(doc.get("settings"), dict):
        parts.append(_settings_section(doc["settings"]))
    if isinstance(src.get("warnings"), list) and src["warnings"]:
        parts.append("<h2>Notes on the data</h2><ul>" + "".join(f"<li>{_fmt(w)}</li>" for w in src["warnings"])
                     + "</ul>")
    if isinstance(results.get("diffusion"), dict):
        parts.append(_diffusion_section(results["diffusion"]))
    parts.append(_fits_section(results))
    if isinstance(doc.get("skipped"), dict) and doc["skipped"]:
        parts.append("<h2>Not computed</h2>" + _table(
            ["what", "reason"], [[_fmt(k), _fmt(v)] for k, v in doc["skipped"].items()], text=True))
    figures = [f for f in doc.get("figures", []) if isinstance(f, dict) and _inside(folder, f.get("file"))]
    if figures:
        parts.append("<h2>Figures</h2><div class='figs'>")
        for f in figures:
            wide = " class='wide'" if f.get("panels", 1) != 1 else ""
            parts.append(f"<figure{wide}><img src='{_fmt(f['file'])}' alt='{_fmt(f.get('title'))}'>"
                         f"<figcaption><b>{_fmt(f.get('title'))}.</b> {_fmt(f.get('caption'))}</figcaption></figure>")
        parts.append("</div>")
    parts.append("<p class='meta'>All numbers: results.json in this folder.</p></body></html>")
    index = folder / "index.html"
    tmp = index.with_suffix(".html.tmp")
    tmp.write_text("\n".join(parts))
    tmp.replace(index)
    return index


def _inside(folder: pathlib.Path, name) -> bool:
    """Whether a figure entry names an existing file inside ``folder`` (never one elsewhere)."""
    if not isinstance(name, str):
        return False
    path = (folder / name).resolve()
    return folder.resolve() in path.parents and path.is_file()
