"""Per-group numbers in the report, and per-group curves on demand.

:func:`groups_section` is the report's section for an analysis with ``groups=``: heat maps
of the groups × windows of α2 (the late diffusion exponent) and of the tail index of the
increments, each cell value ± SE, coloured by its distance from normal diffusion (α2 = 1)
or from Gaussian steps (α = 2); cells that fail the fit quality rule are greyed and hatched,
with the reason in their tooltip; and, for a Hessian probe recorded with groups, a table of
each group's diagonal block of the Hessian (λ_max, trace ± SE) beside them, also without
``groups=``. It reads ``results.json`` only (every value escaped).

:func:`plot_groups` draws one statistic's curves of every group on one axes (not part of the
default report: per-group figures would multiply the report by the number of groups).
"""

from __future__ import annotations

import html
import math

import numpy as np

__all__ = ["groups_section", "plot_groups", "GROUP_STYLE"]

#: Styles of the heat maps (added to the report's stylesheet).
GROUP_STYLE = """
table.heat td { text-align: center; white-space: nowrap; }
table.heat td.flagged { color: #888;
  background: repeating-linear-gradient(45deg, #eee 0 4px, #fafafa 4px 8px) !important; }
"""
#: Heat map quantities: (title, statistic, reference value, value at full colour distance).
_MAPS = (("α2, the late diffusion exponent (τ ≥ τ0)", "diffusion", 1.0, 1.0),
         ("tail index α of the increments (Mohammadi)", "tails", 2.0, 1.0))


def _number(value) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _colour(value: float, reference: float, span: float) -> str:
    """White at the reference, red above, blue below, full at ``span`` away."""
    x = max(-1.0, min(1.0, (value - reference) / span))
    far = (214, 96, 77) if x > 0 else (67, 147, 195)
    r, g, b = (round(255 + (c - 255) * abs(x)) for c in far)
    return f"#{r:02x}{g:02x}{b:02x}"


def _cells(statistic: str, group: dict) -> list[tuple[float | None, float | None, str | None]]:
    """(value, SE, flag) per window of a group's result."""
    if statistic == "diffusion":
        fits = [w.get("late") if isinstance(w, dict) else None for w in group.get("windows") or []]
    else:
        fits = group.get("tail") or []
    out = []
    for fit in fits:
        fit = fit if isinstance(fit, dict) else {}
        value = _number(fit.get("slope", fit.get("alpha")))
        out.append((value, _number(fit.get("slope_se", fit.get("alpha_se"))), fit.get("flag")))
    return out


def _heat_map(title: str, statistic: str, reference: float, span: float, result: dict, sizes: dict) -> str:
    groups = result.get("groups") if isinstance(result.get("groups"), dict) else {}
    t_w = result.get("t_w") if isinstance(result.get("t_w"), list) else None
    if statistic == "diffusion":
        t_w = [w.get("t_w") for w in result.get("windows") or [] if isinstance(w, dict)]
    if not groups or not t_w:
        return ""
    head = "".join(f"<th>{html.escape(str(t))}</th>" for t in t_w)
    rows = []
    for name, group in groups.items():
        cells = []
        for value, se, flag in _cells(statistic, group if isinstance(group, dict) else {})[: len(t_w)]:
            if value is None or not math.isfinite(value):
                cells.append(f"<td class='flagged' title='{html.escape(str(flag or 'no value'))}'>–</td>")
                continue
            text = f"{value:.3f}" + (f" ± {se:.3f}" if se is not None and math.isfinite(se) else "")
            if flag:
                cells.append(f"<td class='flagged' title='{html.escape(str(flag))}'>{html.escape(text)}</td>")
            else:
                cells.append(f"<td style='background:{_colour(value, reference, span)}'>{html.escape(text)}</td>")
        size = sizes.get(name)
        label = html.escape(str(name)) + (f" <small>({size:,})</small>" if isinstance(size, int) else "")
        rows.append(f"<tr><td class='text'>{label}</td>{''.join(cells)}</tr>")
    return (f"<h3>{html.escape(title)}</h3><table class='heat'><tr><th>group (parameters) \\ t_w</th>{head}</tr>"
            + "".join(rows) + "</table>")


def _kappa_table(results: dict, sizes: dict) -> str:
    kappa = results.get("kappa") if isinstance(results.get("kappa"), dict) else {}
    tails = results.get("tails") if isinstance(results.get("tails"), dict) else {}
    groups = kappa.get("groups") if isinstance(kappa.get("groups"), dict) else {}
    rows = []
    for name, fit in groups.items():
        fit = fit if isinstance(fit, dict) else {}
        inner = fit.get("fit") if isinstance(fit.get("fit"), dict) else {}
        ci = inner.get("ci") if isinstance(inner.get("ci"), list) else [None, None]
        tail = (tails.get("groups") or {}).get(name) if isinstance(tails.get("groups"), dict) else None
        coords = len(tail.get("columns") or []) if isinstance(tail, dict) else None
        low, high = (ci + [None, None])[:2]
        gaussian = inner.get("kappa") is None and _number(low) is not None  # κ = ∞ is stored as null
        kappa = "∞ (Gaussian)" if gaussian else _text(inner.get("kappa"))
        cells = [html.escape(str(name)), _text(sizes.get(name)), kappa,
                 f"{_text(low)} … {'∞' if gaussian or (high is None and _number(low) is not None) else _text(high)}",
                 _text(fit.get("n_sampled")), _text(coords)]
        rows.append("<tr><td class='text'>" + "</td><td>".join(cells) + "</td></tr>")
    if not rows:
        return ""
    return ("<h3>κ of the weights at the last window's end, and the tail index's sample</h3><table><tr><th>group</th>"
            "<th>parameters</th><th>κ</th><th>95% interval</th><th>weights fitted</th>"
            "<th>coordinates in the tail index</th></tr>" + "".join(rows) + "</table>")


def _text(value) -> str:
    number = _number(value)
    if number is None:
        return "–"
    return f"{number:,.0f}" if number.is_integer() and abs(number) < 1e15 else f"{number:.3g}"


def _final(values):
    """The last entry of a stored column (a list), or None."""
    return values[-1] if isinstance(values, list) and values else None


def _curvature_table(results: dict) -> str:
    """λ_max and trace ± SE of each group's diagonal block of the Hessian at the last probe
    step (``HessianProbe(groups=...)``), under the whole model's; "" without blocks."""
    hessian = results.get("hessian") if isinstance(results.get("hessian"), dict) else {}
    curvature = results.get("curvature") if isinstance(results.get("curvature"), dict) else {}

    def blocks(result: dict) -> dict:
        return {str(k): v for k, v in result.get("groups").items() if isinstance(v, dict)} \
            if isinstance(result.get("groups"), dict) else {}

    spectra, densities = blocks(hessian), blocks(curvature)
    names = list(dict.fromkeys([*spectra, *densities]))
    if not names:
        return ""

    def row(label: str, spectrum: dict, density: dict) -> str:
        settings = spectrum.get("settings") if isinstance(spectrum.get("settings"), dict) else {}
        size = density.get("n_params", settings.get("n_params"))
        top = _final(spectrum.get("eigenvalues"))
        lam = top[0] if isinstance(top, list) and top else _final(density.get("lambda_max"))
        trace, se = _final(density.get("trace")), _final(density.get("trace_se"))
        spread = f" ± {_text(se)}" if _number(trace) is not None and _number(se) is not None else ""
        cells = [html.escape(label), _text(size), _text(lam), _text(trace) + spread]
        return "<tr><td class='text'>" + "</td><td>".join(cells) + "</td></tr>"

    rows = [row("whole model", hessian, curvature)]
    rows += [row(name, spectra.get(name, {}), densities.get(name, {})) for name in names]
    step = _final(hessian.get("steps") or curvature.get("steps"))
    return (f"<h3>Curvature per group: the Hessian's diagonal blocks at step {_text(step)}</h3>"
            "<p>λ_max of each group's block H_LL (Lanczos on the Hessian-vector products in its tensors alone, not "
            "the whole Hessian's top eigenvector restricted to the group) and its trace tr H_LL ± SE (Hutchinson, "
            "from the SLQ vectors; the blocks' traces add up to the whole trace). – : not measured (no density).</p>"
            "<table><tr><th>group</th><th>parameters</th><th>λ_max</th><th>trace ± SE</th></tr>"
            + "".join(rows) + "</table>")


def groups_section(results: dict, settings: dict) -> str:
    """The report's per-group section (HTML, escaped), or "" without groups: the statistics
    of ``groups=`` and the Hessian's diagonal blocks of a probe recorded with groups."""
    blocks = _curvature_table(results)
    groups = settings.get("groups") if isinstance(settings.get("groups"), dict) else None
    if not groups:
        return "<h2>Per-group curvature</h2>" + blocks if blocks else ""
    names, counts = groups.get("names") or [], groups.get("sizes") or []
    sizes = {str(n): c for n, c in zip(names, counts) if isinstance(c, int)}
    maps = [_heat_map(title, stat, ref, span, results[stat], sizes) for title, stat, ref, span in _MAPS
            if isinstance(results.get(stat), dict)]
    lead = (f"<p>Every statistic per group of parameters (<code>groups={html.escape(str(groups.get('spec')))}</code>: "
            f"{len(names)} groups), from the same pass, each with its own jackknife SE (docs/estimators.md, "
            "\"Per-layer statistics\"). Colours: distance from normal diffusion (α2 = 1) and from Gaussian steps "
            "(α = 2), red above, blue below; hatched grey cells fail the fit quality rule (the tooltip says why). "
            "Every group's curves: <code>pyengine.report.groups.plot_groups(analysis[\"msd\"])</code>.</p>")
    return "<h2>Per-group statistics</h2>" + lead + "".join(maps) + _kappa_table(results, sizes) + blocks


def _group_colors(n: int) -> list:
    """Distinct colours: matplotlib's ten, or twenty (tab20) for more groups."""
    from matplotlib import cm

    return [f"C{k}" for k in range(n)] if n <= 10 else [cm.tab20(k % 20) for k in range(n)]


def plot_groups(result, ax=None, window: int = -1):
    """Every group's curve of one statistic on one axes; returns the axes.

    Parameters
    ----------
    result : MSDResult, DiffusionFit or IncrementTails with ``groups``
        (``pe.analyze(..., groups=...)["msd"]``, or ``pe.msd(..., groups=...)``).
    ax : matplotlib Axes, optional
    window : int
        The window of an MSD (index into ``t_w``).

    MSD: the MSD per parameter (Δr² / P_group) of one window against the lag, one line per
    group, the whole model dashed. DiffusionFit: α2 ± SE against t_w per group. IncrementTails:
    the tail index ± SE against t_w per group. Open markers fail the fit quality rule.

    Examples
    --------
    >>> res = pe.analyze("run.h5", groups="layer")  # doctest: +SKIP
    >>> plot_groups(res["diffusion"])  # doctest: +SKIP
    """
    from pyengine.estimators.diffusion import DiffusionFit
    from pyengine.estimators.increments import IncrementTails
    from pyengine.estimators.msd import MSDResult
    from pyengine.results import axes_or_new, plain_text, readable_ticks

    if not getattr(result, "groups", None):
        raise ValueError("this result has no per-group results: compute it with groups= (pe.analyze, pe.msd, …)")
    ax = axes_or_new(ax)
    colors = _group_colors(len(result.groups))
    if isinstance(result, MSDResult):
        for color, (name, res) in zip(colors, result.groups.items()):
            ax.loglog(res.lags, res.msd[window] / res.n_params, lw=1, color=color, label=plain_text(name, 30))
        ax.loglog(result.lags, result.msd[window] / result.n_params, "k--", lw=1, label="whole model")
        ax.set_xlabel("lag τ (steps)")
        ax.set_ylabel(f"MSD per parameter, t_w = {result.t_w[window]}")
    elif isinstance(result, (DiffusionFit, IncrementTails)):
        diffusion = isinstance(result, DiffusionFit)
        for color, (name, res) in zip(colors, result.groups.items()):
            fits = [w.late for w in res.windows] if diffusion else res.tail
            values = res.alpha2 if diffusion else res.alpha
            ses = res.alpha2_se if diffusion else res.alpha_se
            ok = np.array([f.flag is None for f in fits], dtype=bool)
            ax.plot(res.t_w, values, "-", color=color, lw=0.8)
            ax.errorbar(res.t_w[ok], values[ok], yerr=ses[ok], fmt="o", ms=4, capsize=2, color=color,
                        label=plain_text(name, 30))
            ax.errorbar(res.t_w[~ok], values[~ok], yerr=ses[~ok], fmt="o", ms=4, capsize=2, color=color, mfc="none",
                        alpha=0.5)
        ax.axhline(1.0 if diffusion else 2.0, color="gray", lw=0.8, ls=":")
        ax.set_xlabel("waiting time t_w (steps)")
        ax.set_ylabel("α2 ± SE (open: flagged)" if diffusion else "tail index α ± SE (open: flagged)")
    else:
        raise TypeError(f"plot_groups draws MSDResult, DiffusionFit and IncrementTails, got {type(result).__name__}; "
                        "draw another result's groups with result.groups[name].plot()")
    ax.legend(fontsize="small", ncol=1 + len(result.groups) // 8)
    readable_ticks(ax)
    return ax
