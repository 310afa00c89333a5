"""The static HTML report: one folder with index.html and its figures, viewable offline.

``render(folder)`` reads ``results.json`` (written by :meth:`pyengine.Analysis.save`) and
writes ``index.html`` next to it; ``pyengine report DIR`` re-renders an existing folder.
Only sections whose data exist appear.
"""

from __future__ import annotations

import html
import json
import os
import pathlib

__all__ = ["render"]

STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; color: #222; }
h1 { margin-bottom: 0.2em; } .meta { color: #666; }
table { border-collapse: collapse; margin: 1em 0; } td, th { border: 1px solid #ccc; padding: 3px 8px; }
th { background: #f3f3f3; } td { text-align: right; }
.figs { display: grid; grid-template-columns: repeat(auto-fill, minmax(480px, 1fr)); gap: 1.5em; }
figure { margin: 0; } figure.wide { grid-column: 1 / -1; } figure img { width: 100%; } figcaption { font-size: 0.9em; color: #444; }
"""


def _fmt(value, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return html.escape(str(value))


def _pm(fit: dict) -> str:
    if not fit or fit.get("alpha") is None:
        return "–"
    return f"{fit['alpha']:.3f} ± {fit['stderr']:.3f}"


def _table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{h}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _diffusion_section(diffusion: dict) -> str:
    rows = [[_fmt(w["t_w"]), _pm(w["early"]), _fmt(w["tau0"]), _pm(w["late"]),
             f"{w['regime_early']} → {w['regime_late']}", _fmt(w["whole"].get("rmse"))] for w in diffusion["windows"]]
    t0 = diffusion.get("t0")
    lead = f"<p>t0 (first window whose whole-window fit has RMSE &lt; {diffusion['threshold']}): <b>{_fmt(t0)}</b></p>"
    return "<h2>Diffusion exponents</h2>" + lead + _table(
        ["t_w", "α1 (τ < τ0)", "τ0", "α2 (τ ≥ τ0)", "regimes", "RMSE (whole)"], rows)


SECTIONS = {"diffusion": _diffusion_section}


def render(folder: str | os.PathLike) -> pathlib.Path:
    """Write ``index.html`` for the analysis outputs in ``folder``; return its path.

    Raises
    ------
    FileNotFoundError
        If ``folder`` has no ``results.json`` (run ``pyengine analyze`` first).
    """
    folder = pathlib.Path(folder)
    results_file = folder / "results.json"
    if not results_file.exists():
        raise FileNotFoundError(f"{folder} has no results.json: run `pyengine analyze FILE --out {folder}` first")
    doc = json.loads(results_file.read_text())
    src = doc.get("source", {})
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>pyengine report: {html.escape(str(src.get('path') or 'array'))}</title>",
        f"<style>{STYLE}</style></head><body>",
        "<h1>pyengine report</h1>",
        f"<p class='meta'>{html.escape(doc.get('producer', ''))}, {html.escape(doc.get('created', ''))}</p>",
        _table(["source", "snapshots", "parameters", "steps", "dtype"],
               [[_fmt(src.get("path") or "in-memory array"), _fmt(src.get("n_snapshots")), _fmt(src.get("n_params")),
                 f"{_fmt(src.get('first_step'))} … {_fmt(src.get('last_step'))}", _fmt(src.get("dtype"))]]),
        "<p class='meta'>Settings: " + html.escape(json.dumps(doc.get("settings", {}))) + "</p>",
    ]
    if src.get("warnings"):
        parts.append("<h2>Notes on the data</h2><ul>" + "".join(f"<li>{html.escape(w)}</li>" for w in src["warnings"])
                     + "</ul>")
    for key, section in SECTIONS.items():
        if key in doc.get("results", {}):
            parts.append(section(doc["results"][key]))
    if doc.get("skipped"):
        parts.append("<h2>Not computed</h2>" + _table(["estimate", "reason"], [[html.escape(k), html.escape(v)]
                                                                                for k, v in doc["skipped"].items()]))
    figures = [f for f in doc.get("figures", []) if (folder / f["file"]).exists()]
    if figures:
        parts.append("<h2>Figures</h2><div class='figs'>")
        for f in figures:
            wide = " class='wide'" if f.get("panels", 1) > 1 else ""
            parts.append(f"<figure{wide}><img src='{html.escape(f['file'])}' alt='{html.escape(f['title'])}'>"
                         f"<figcaption><b>{html.escape(f['title'])}.</b> {html.escape(f['caption'])}</figcaption></figure>")
        parts.append("</div>")
    parts.append("<p class='meta'>All numbers: results.json in this folder.</p></body></html>")
    index = folder / "index.html"
    tmp = index.with_suffix(".html.tmp")
    tmp.write_text("\n".join(parts))
    tmp.replace(index)
    return index
