"""The game day's ``index.html`` and its Markdown summary for CI job pages (pure).

One row per experiment: verdict, key figures, regressions against the history (see
:mod:`gameday.report.history`) and a small trend of time to recover and p95 over the
last runs. Failed experiments come first.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from html import escape
from typing import Any

from gameday.engine.verdict import Verdict
from gameday.report.style import CSS, fmt, fmt_pct, page

__all__ = ["IndexRow", "index_page", "markdown_summary"]

SPARK_W, SPARK_H = 120, 26
BRIEF_CHARS = 90


@dataclass(frozen=True)
class IndexRow:
    """One experiment of the game day: its page, verdict, history line, regressions."""

    name: str
    href: str
    verdict: Verdict
    entry: Mapping[str, Any]
    regressions: Sequence[str] = ()
    trends: Mapping[str, Sequence[tuple[float, bool]]] = field(default_factory=dict)


def _ordered(rows: Sequence[IndexRow]) -> list[IndexRow]:
    return sorted(rows, key=lambda r: (r.verdict.passed, not r.regressions, r.name))


def sparkline(points: Sequence[tuple[float, bool]]) -> str:
    """A tiny SVG trend, oldest left; a red dot marks a failed run."""
    if len(points) < 2:
        return f'<span class="muted">{"first run" if points else "-"}</span>'
    top = max(v for v, _ in points) or 1.0
    step = SPARK_W / max(len(points) - 1, 1)
    xy = [(i * step if len(points) > 1 else SPARK_W / 2, SPARK_H - 3 - v / top * (SPARK_H - 6))
          for i, (v, _) in enumerate(points)]
    line = " ".join(f"{x:.1f},{y:.1f}" for x, y in xy)
    dots = "".join(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="'
                   f'{"#2e7d32" if ok else "#c62828"}"/>'
                   for (x, y), (_, ok) in zip(xy, points, strict=True))
    return (f'<svg class="spark" width="{SPARK_W + 6}" height="{SPARK_H}" '
            f'viewBox="-3 0 {SPARK_W + 6} {SPARK_H}"><polyline class="series" fill="none" '
            f'stroke="#1f5fbf" stroke-width="1.5" points="{line}"/>{dots}</svg>')


def _figures(entry: Mapping[str, Any]) -> list[str]:
    burned = entry.get("budget_burned")
    return [fmt(entry.get("trip_s"), "s"), fmt(entry.get("recover_s"), "s"),
            fmt(entry.get("p95_ms"), "ms"),
            fmt_pct(None if burned is None else float(burned))]


def _brief(reason: str, chars: int = BRIEF_CHARS) -> str:
    return reason if len(reason) <= chars else reason[: chars - 1] + "…"


def _html_row(row: IndexRow) -> str:
    kind = row.verdict.kind.lower()
    why = "".join(f"<li>{escape(_brief(r))}</li>" for r in row.verdict.shown)
    flags = "".join(f"<li>{escape(r)}</li>" for r in row.regressions)
    cells = "".join(f'<td class="num">{escape(v)}</td>' for v in _figures(row.entry))
    trends = "".join(f"<td>{sparkline(row.trends.get(m, ()))}</td>"
                     for m in ("recover_s", "p95_ms"))
    return (f'<tr data-experiment="{escape(row.name)}"><td><a href="{escape(row.href)}">'
            f'{escape(row.name)}</a><ul class="reasons bad">{why}</ul></td>'
            f'<td><span class="badge {kind}">{kind.upper()}</span></td>{cells}'
            f'<td class="{"bad" if flags else "ok"}">{f"<ul>{flags}</ul>" if flags else "none"}'
            f"</td>{trends}</tr>")


def _headline(rows: Sequence[IndexRow]) -> tuple[str, str]:
    kinds = [r.verdict.kind for r in rows]
    regressed = sum(bool(r.regressions) for r in rows)
    text = f"{kinds.count('PASS')} passed, {kinds.count('FAIL')} failed"
    if "INCONCLUSIVE" in kinds:
        text += f", {kinds.count('INCONCLUSIVE')} inconclusive"
    if regressed:
        text += f", {regressed} with a regression"
    if "FAIL" in kinds or regressed:
        return text, "fail"
    return text, "inconclusive" if "INCONCLUSIVE" in kinds else "pass"


def index_page(rows: Sequence[IndexRow], title: str = "Game day") -> str:
    """The game day's index: a headline, then one row per experiment."""
    headline, kind = _headline(rows)
    header = ("<tr><th>experiment</th><th>verdict</th><th>time to trip</th>"
              "<th>time to recover</th><th>p95 (client)</th><th>error budget burned</th>"
              "<th>regressions</th><th>recover trend</th><th>p95 trend</th></tr>")
    body = (f'<header class="verdict {kind}" data-verdict="{kind}"><h1>{escape(title)}: '
            f"{escape(headline)}</h1></header>"
            '<p class="note">Open an experiment for its timeline and every reason in full. '
            "Regression: over the experiment's recorded bound, or worse than "
            "its last passing run by more than the margin. Trends: the last runs in "
            "history.jsonl, oldest left (red dot: failed run).</p>"
            f"<table>{header}{''.join(_html_row(r) for r in _ordered(rows))}</table>")
    return page(f"{title}: {headline}", CSS, body)


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown_summary(rows: Sequence[IndexRow], title: str = "Game day") -> str:
    """GitHub-flavoured Markdown for a CI job page: headline, table, failure reasons."""
    headline, kind = _headline(rows)
    mark = {"pass": "✅", "fail": "❌", "inconclusive": "⚠️"}
    lines = [f"## {mark[kind]} {title}: {headline}", "",
             "| experiment | verdict | trip | recover | p95 (client) | budget burned "
             "| regressions |", "|---|---|---|---|---|---|---|"]
    for row in _ordered(rows):
        kind = row.verdict.kind
        verdict = f"{mark[kind.lower()]} {kind}"
        figures = " | ".join(_figures(row.entry))
        flags = "; ".join(row.regressions) or "none"
        lines.append(f"| {_md_cell(row.name)} | {verdict} | {figures} | {_md_cell(flags)} |")
    for row in _ordered(rows):
        if not row.verdict.passed:
            lines += ["", f"### {mark[row.verdict.kind.lower()]} {_md_cell(row.name)}", ""]
            lines += [f"- {_md_cell(reason)}" for reason in row.verdict.shown]
    return "\n".join(lines) + "\n"
