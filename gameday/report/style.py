"""The look shared by every report page: CSS, the verdict banner, figure cells (pure)."""

from __future__ import annotations

from datetime import UTC, datetime
from html import escape

from gameday.engine.verdict import Verdict

__all__ = ["CSS", "figure", "fmt", "fmt_pct", "fmt_time", "page", "verdict_banner"]

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0 auto;
 max-width:1180px;padding:16px 24px;color:#1d1d1f;background:#fff}
h1{margin:0;font-size:26px} h2{margin:28px 0 8px;font-size:18px;border-bottom:1px solid #ddd}
.verdict{padding:14px 18px;border-radius:6px;margin-bottom:10px}
.verdict.fail{background:#fde8e8;border:3px solid #c62828;color:#7f1010}
.verdict.pass{background:#e7f5ec;border:2px solid #2e7d32;color:#1b4d20}
.verdict.inconclusive{background:#fff4e0;border:3px solid #b26a00;color:#5c3700}
.verdict ul{margin:8px 0 0;padding-left:22px} .verdict li{margin:2px 0}
.badge{display:inline-block;padding:2px 10px;border-radius:4px;color:#fff;font-weight:700}
.badge.fail{background:#c62828} .badge.pass{background:#2e7d32}
.badge.inconclusive{background:#b26a00}
.meta,.note,.muted{color:#555} .note{font-size:13px}
.warning{background:#fff4d6;border:1px solid #e0a100;padding:8px 12px;border-radius:4px}
.scorecard{display:grid;grid-template-columns:repeat(auto-fill,minmax(200px,1fr));gap:8px}
.figure{border:1px solid #ddd;border-radius:6px;padding:8px 10px}
.figure.over{border:2px solid #c62828;background:#fde8e8;color:#7f1010}
.figure .label{font-size:12px;color:#555} .figure .value{font-size:20px;font-weight:600}
table{border-collapse:collapse;width:100%;font-size:13px;margin:6px 0}
th,td{border-bottom:1px solid #e4e4e4;padding:4px 6px;text-align:left;vertical-align:top}
th{background:#f5f5f7} td.num{white-space:nowrap} code{font-size:12px;word-break:break-all}
tr.failed td,td.bad{color:#b71c1c;font-weight:600} td.ok{color:#2e7d32}
svg.chart{display:block;margin:6px 0 2px;background:#fcfcfd;border:1px solid #eee}
svg .title{font-weight:600;font-size:14px} svg .tick,svg .legend{font-size:11px;fill:#444}
svg .grid{stroke:#e6e6e6} svg .fault{fill:#d62728;opacity:.12}
svg .outside{fill:#9e9e9e;opacity:.18}
svg .fault-instant{stroke:#d62728;stroke-width:2}
svg .threshold{stroke:#b71c1c;stroke-dasharray:6 4;stroke-width:1.3}
svg .threshold-label{font-size:11px;fill:#b71c1c}
ul.faults{font-size:13px;margin:4px 0} ul.reasons.bad{color:#b71c1c;font-size:12px}
"""


def page(title: str, css: str, body: str) -> str:
    """A complete HTML document with inline CSS and no external asset."""
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{escape(title)}</title><style>{css}</style></head>"
            f"<body>{body}</body></html>\n")


def fmt(value: float | int | None, unit: str = "") -> str:
    """A figure for people: ``-`` when unmeasured, 3 significant digits for floats."""
    if value is None:
        return "-"
    text = f"{value:.3g}" if isinstance(value, float) else str(value)
    return f"{text} {unit}".strip()


def fmt_pct(share: float | None) -> str:
    """A share (1.0 = 100 %) for people: ``-`` when unmeasured, ``12,770 %`` when large."""
    if share is None:
        return "-"
    percent = share * 100
    return f"{percent:,.0f} %" if percent >= 100 else f"{percent:.3g} %"


def fmt_time(unix: float) -> str:
    """A unix time as ``2026-11-27 14:31:10 UTC``."""
    return datetime.fromtimestamp(unix, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def figure(key: str, label: str, value: str, raw: float | int | None = None,
           bound: float | None = None) -> str:
    """A scorecard cell, red when ``raw`` is over ``bound``; ``data-figure`` names it and
    ``data-value`` holds the exact number (empty when unmeasured), for tests and scrapers."""
    exact = "" if raw is None else repr(raw)
    over = raw is not None and bound is not None and raw > bound
    limit = "" if bound is None else f" (bound {bound:g})"
    return (f'<div class="figure{" over" if over else ""}"><div class="label">'
            f"{escape(label + limit)}</div>"
            f'<div class="value" data-figure="{escape(key)}" data-value="{exact}">'
            f"{escape(value)}</div></div>")


def verdict_banner(verdict: Verdict, name: str) -> str:
    """The first thing on a page: PASS in green, FAIL in red or INCONCLUSIVE in amber,
    with every reason."""
    kind = verdict.kind.lower()
    reasons = "".join(f"<li>{escape(r)}</li>" for r in verdict.shown)
    detail = f'<ul class="reasons">{reasons}</ul>' if reasons else \
        "<div>Every check held: steady state before and after, every activity, cleanup.</div>"
    return (f'<header class="verdict {kind}" data-verdict="{kind}"><h1>'
            f'<span class="badge {kind}">{kind.upper()}</span> {escape(name)}</h1>'
            f"<div>{escape(verdict.title)}</div>{detail}</header>")
