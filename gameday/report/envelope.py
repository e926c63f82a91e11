"""The page of a ``gameday explore`` sweep (pure): the envelope's knees, then the clients'
figures along the parameter, with each knee shaded (± its uncertainty), and every step.
Same look as the experiment reports."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from gameday.report.data import FaultWindow
from gameday.report.style import CSS, page
from gameday.report.svg import Chart, Line, line_chart

__all__ = ["edge_moves", "envelope_page", "knees_entry"]

COLORS = {"p50": "#1f77b4", "p95": "#ff7f0e", "p99": "#9467bd", "errors": "#d62728",
          "availability": "#2ca02c", "breakers": "#8c564b"}


def _knee_text(knee: Mapping[str, Any], unit: str) -> str:
    if knee["value"] is None:
        return "held over the whole range" if knee["holds_throughout"] \
            else "never held in the range"
    return f"changes at {knee['value']:.3f} ± {knee['uncertainty']:.3f} {unit}"


def _windows(knees: Sequence[Mapping[str, Any]]) -> list[FaultWindow]:
    return [FaultWindow(f"{k['property']} changes here", k["value"] - k["uncertainty"],
                        k["value"] + k["uncertainty"])
            for k in knees if k["value"] is not None]


def _charts(sweep: Mapping[str, Any]) -> str:
    steps = sweep["steps"]
    low, high = sweep["range"]
    unit = "s" if sweep["unit"] == "s" else ""
    windows = _windows(sweep["knees"])

    def points(key: str, scale: float = 1.0) -> list[tuple[float, float]]:
        return [(s["value"], s[key] * scale) for s in steps]

    latency = line_chart(
        Chart("latency", "Client latency (ms)", (low, high), windows,
              lambda v: f"{v:g}", (1000.0, "p95 bound 1 s"), x_unit=unit),
        [Line("p50", COLORS["p50"], points("p50_s", 1000)),
         Line("p95", COLORS["p95"], points("p95_s", 1000)),
         Line("p99", COLORS["p99"], points("p99_s", 1000), dashed=True)])
    outcome = line_chart(
        Chart("outcome", "Orders (share)", (low, high), windows, lambda v: f"{v:.0%}",
              x_unit=unit),
        [Line("errors", COLORS["errors"], points("error_rate")),
         Line("availability", COLORS["availability"], points("availability"))])
    breakers = line_chart(
        Chart("breakers", "Breakers that opened", (low, high), windows, x_unit=unit),
        [Line("breakers open", COLORS["breakers"], points("breakers_open"))])
    return latency + outcome + breakers


def _steps_table(sweep: Mapping[str, Any]) -> str:
    head = ("<tr><th>value</th><th>p50 ms</th><th>p95 ms</th><th>p99 ms</th><th>errors</th>"
            "<th>availability</th><th>breakers open</th><th>orders</th><th>late</th></tr>")
    rows = "".join(
        f"<tr><td class=num>{s['value']:.3f}</td><td class=num>{s['p50_s'] * 1000:.0f}</td>"
        f"<td class=num>{s['p95_s'] * 1000:.0f}</td><td class=num>{s['p99_s'] * 1000:.0f}</td>"
        f"<td class=num>{s['error_rate']:.2%}</td><td class=num>{s['availability']:.2%}</td>"
        f"<td class=num>{s['breakers_open']}</td><td class=num>{s['sent']}</td>"
        f"<td class=num>{s.get('late_share', 0):.1%}</td></tr>" for s in sweep["steps"])
    return f"<table>{head}{rows}</table>"


def envelope_page(sweep: Mapping[str, Any]) -> str:
    """The HTML page of a sweep (its JSON, as ``gameday explore`` writes it)."""
    name, unit = sweep["parameter"], sweep["unit"]
    knees = "".join(f"<li><b>{escape(k['property'])}</b>: {escape(_knee_text(k, unit))}</li>"
                    for k in sweep["knees"])
    body = (f"<h1>Envelope: {escape(name)}</h1>"
            f"<p class=meta>{len(sweep['steps'])} steps over {sweep['range'][0]:g} to "
            f"{sweep['range'][1]:g} {escape(unit)}, each held {sweep['hold_s']:g} s, in "
            f"{sweep['duration_s']:.0f} s: {escape(sweep['stopped'])}</p>"
            f"<h2>Where each property changes</h2><ul>{knees}</ul>"
            f"<h2>Along the parameter</h2>{_charts(sweep)}"
            f"<p class=note>Shaded: where a property changes (± its uncertainty).</p>"
            f"<h2>Steps</h2>{_steps_table(sweep)}")
    return page(f"gameday envelope: {name}", CSS, body)


def knees_entry(sweep: Mapping[str, Any]) -> dict[str, Any]:
    """The sweep's line in ``history.jsonl`` (its knees), so that a later sweep of the same
    parameter shows whether the edge moved."""
    return {"experiment": f"explore-{sweep['parameter']}",
            "started_unix": round(float(sweep["started_unix"]), 3),
            "range": sweep["range"], "resolution": sweep["resolution"],
            "stopped": sweep["stopped"],
            "knees": {k["property"]: [k["value"], k["uncertainty"]] for k in sweep["knees"]}}


def edge_moves(previous: Mapping[str, Any] | None, current: Mapping[str, Any]) -> list[str]:
    """How each knee compares with the previous sweep of the same parameter (history
    lines, see :func:`knees_entry`): moved when the two differ by more than their
    uncertainties together."""
    if previous is None:
        return ["no earlier sweep of this parameter to compare with"]
    lines = []
    for name, (value, uncertainty) in current["knees"].items():
        before, before_u = (previous.get("knees") or {}).get(name, [None, None])
        if value is None or before is None:
            lines.append(f"{name}: {_where(before)} before, {_where(value)} now")
            continue
        moved = abs(value - before) > (uncertainty or 0) + (before_u or 0)
        lines.append(f"{name}: {before:.3f} ± {before_u:.3f} before, {value:.3f} ± "
                     f"{uncertainty:.3f} now: "
                     + (f"MOVED by {value - before:+.3f}" if moved else "within the uncertainty"))
    return lines


def _where(value: float | None) -> str:
    return "no knee in the range" if value is None else f"{value:.3f}"
