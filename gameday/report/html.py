"""One experiment's report as a self-contained HTML page (pure: data in, text out).

First screen: the verdict (red FAIL with every reason, or green PASS) and the scorecard.
Then the timeline (client-side and Prometheus side by side, fault windows shaded, SLA
thresholds drawn), the steady-state probes and every activity with its timing and
output. No script and no external asset: the page opens offline.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from gameday.report.data import Activity, ExperimentData
from gameday.report.prom import ServerSeries
from gameday.report.style import CSS, figure, fmt, fmt_pct, fmt_time, page, verdict_banner
from gameday.report.svg import Band, Chart, Line, band_chart, line_chart

__all__ = ["experiment_page"]

CLIENT_COLOR, SERVER_COLOR = "#1f5fbf", "#e07b00"
MARGIN_S = 2.0


def _bound(data: ExperimentData, key: str) -> float | None:
    try:
        return float(data.configuration[key])
    except (KeyError, TypeError, ValueError):
        return None


ORDER_FIGURES = ("orders", "acked", "lost", "duplicated", "failed_but_filled", "unknown_filled",
                 "unknown_outcome")


def _order_label(key: str) -> str:
    return "orders of this experiment" if key == "orders" else f"orders {key.replace('_', ' ')}"


def _scorecard(data: ExperimentData) -> str:
    card, orders = data.scorecard, data.scorecard.orders
    cells = [
        figure("trip_s", "time to trip", fmt(card.trip_s, "s"), card.trip_s,
               _bound(data, "breaker_open_within_s")),
        figure("recover_s", "time to recover", fmt(card.recover_s, "s"), card.recover_s,
               _bound(data, "breaker_close_within_s")),
        figure("budget_burned", f"error budget burned (at {data.targets.availability_min:.1%})",
               fmt_pct(card.budget_burned), card.budget_burned),
        figure("worst_p95_ms", "worst p95 of a second (client)", fmt(card.worst_p95_ms, "ms"),
               card.worst_p95_ms),
        figure("client_p95_ms", "p95 over the experiment (client)",
               fmt(card.client_p95_ms, "ms"), card.client_p95_ms,
               data.targets.p95_latency_max_s * 1000),
        figure("failed", "requests failed / due", f"{fmt(card.failed)} / {fmt(card.due)}",
               card.failed),
    ]
    if orders:
        cells += [figure(k, _order_label(k), fmt(orders.get(k)), orders.get(k))
                  for k in ORDER_FIGURES if k in orders]
    else:
        cells.append(figure("orders", "orders acked / lost / duplicated / unknown",
                            "not reconciled in this experiment"))
    return f'<section class="scorecard">{"".join(cells)}</section>'


def _client_lines(data: ExperimentData) -> dict[str, Line]:
    client = data.client

    def line(values: Sequence[tuple[float, float | None]]) -> Line:
        points = [(x + 0.5, y) for x, y in values if y is not None]
        return Line("client (load generator)", CLIENT_COLOR, points)

    return {
        "throughput_rps": line([(c.x_s, float(c.answered)) for c in client]),
        "error_rate": line([(c.x_s, c.errors / c.due * 100 if c.due else None)
                            for c in client]),
        "p95_ms": line([(c.x_s, c.p95_ms) for c in client]),
    }


def _server_line(server: ServerSeries, name: str, scale: float, window_s: float) -> Line:
    points = [(x, y * scale) for x, y in server.lines.get(name, ())]
    return Line(f"Prometheus ({window_s:g} s window)", SERVER_COLOR, points, dashed=True)


def _charts(data: ExperimentData, server: ServerSeries, window_s: float) -> list[str]:
    x_range = (-MARGIN_S, data.duration_s + MARGIN_S)
    client, t = _client_lines(data), data.targets
    span = (0.0, data.duration_s)

    def chart(chart_id: str, title: str, fmt_y: str, threshold: tuple[float, str]) -> Chart:
        return Chart(chart_id, title, x_range, data.faults,
                     fmt_y.format, threshold, span=span)

    charts = [
        line_chart(chart("throughput", "Throughput (answered requests/s)", "{:g}",
                         (t.throughput_min_rps, f"SLA ≥ {t.throughput_min_rps:g} req/s")),
                   [client["throughput_rps"], _server_line(server, "throughput_rps", 1, window_s)]),
        line_chart(chart("error_rate", "Error rate (% of requests)", "{:g} %",
                         (t.error_rate_max * 100, f"SLA ≤ {t.error_rate_max:.2%}")),
                   [client["error_rate"], _server_line(server, "error_rate", 100, window_s)]),
        line_chart(chart("p95", "p95 latency (ms)", "{:g} ms",
                         (t.p95_latency_max_s * 1000, f"SLA ≤ {t.p95_latency_max_s * 1000:g} ms")),
                   [client["p95_ms"], _server_line(server, "p95_latency_s", 1000, window_s)]),
    ]
    if server.breaker:
        frame = Chart("breaker", "Circuit breaker (worst replica, Prometheus)", x_range,
                      data.faults, span=span)
        charts.append(band_chart(frame, Band("breaker", server.breaker)))
    if server.lines.get("ready"):
        charts.append(line_chart(
            Chart("ready", "Ready replicas (Prometheus up)", x_range, data.faults, span=span),
            [Line("replicas up", SERVER_COLOR, server.lines["ready"])]))
    return charts


def _notes(data: ExperimentData, server: ServerSeries) -> str:
    notes = [f'<p class="note">{escape(data.client_note)}. Shaded: fault injected '
             "(a red line: an instant fault such as a pod kill); grey: before or after "
             "this experiment. Seconds since the experiment's start.</p>"]
    if server.problem:
        notes.append(f'<p class="warning" data-problem="prometheus">Server-side series '
                     f"missing: {escape(server.problem)}</p>")
    faults = [f"<li>{escape(f.label)}: {f.start_s:.1f} s → {f.end_s:.1f} s"
              f"{'' if f.undone else ' (not undone in the method)'}</li>" for f in data.faults]
    if faults:
        notes.append(f'<ul class="faults">{"".join(faults)}</ul>')
    return "".join(notes)


def _met(activity: Activity) -> str:
    if activity.status != "succeeded":
        return f'<td class="bad">{escape(activity.status)}</td>'
    if activity.tolerance_met is None:
        return '<td class="muted">-</td>' if activity.kind == "action" or not activity.tolerance \
            else '<td class="muted">not judged by Chaos Toolkit</td>'
    return '<td class="ok">met</td>' if activity.tolerance_met else '<td class="bad">NOT met</td>'


def _activity_rows(activities: Sequence[Activity]) -> str:
    rows = []
    for a in activities:
        rows.append(
            f'<tr class="{"" if a.status == "succeeded" else "failed"}"><td>{escape(a.phase)}'
            f"</td><td>{escape(a.kind)}</td><td><b>{escape(a.name)}</b><br>"
            f'<span class="muted">{escape(a.call)}</span></td><td>{a.start_s:.1f}</td>'
            f"<td>{a.end_s - a.start_s:.2f}</td><td><code>{escape(a.output)}</code></td>"
            f"<td><code>{escape(a.tolerance)}</code></td>{_met(a)}</tr>")
    header = ("<tr><th>phase</th><th>type</th><th>activity</th><th>start (s)</th>"
              "<th>took (s)</th><th>output</th><th>tolerance</th><th>result</th></tr>")
    return f"<table>{header}{''.join(rows)}</table>"


def experiment_page(data: ExperimentData, server: ServerSeries, window_s: float) -> str:
    """The whole HTML page of one experiment."""
    body = [
        verdict_banner(data.verdict, data.name),
        f'<p class="meta">{escape(data.title)} · service {escape(data.service)} · '
        f'status {escape(data.status)} · '
        f"{data.duration_s:.0f} s · started {fmt_time(data.start_unix)}</p>",
        _scorecard(data),
        "<h2>Timeline</h2>", _notes(data, server), *_charts(data, server, window_s),
        "<h2>Steady-state hypothesis</h2>", _activity_rows(data.steady),
        "<h2>Method and rollbacks</h2>", _activity_rows([*data.method, *data.rollbacks]),
    ]
    return page(f"{data.verdict.kind} {data.name}", CSS, "".join(body))

