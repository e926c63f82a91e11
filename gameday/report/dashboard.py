"""The Grafana dashboard gameday ships (``deploy/grafana/gameday.json``): the contract's
metrics with the SLA bounds as thresholds, and the game day's fault windows and phases
as annotations (from the metrics ``gameday run`` serves, see gameday.engine.exporter).

Made here from the contract, so the file cannot drift from the names gameday queries:
``python -m gameday.report.dashboard > deploy/grafana/gameday.json`` writes it again, and a
unit test checks the committed file. The queries use the contract's names and the job
``broker-integration``; a service with names of its own (a service spec's ``metrics:``)
needs them edited in.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from gameday.contract import (
    DEFAULT_SELECTOR,
    METRIC_API_REQUEST_SECONDS,
    METRIC_BREAKER_STATE,
    METRIC_CONNECTION_STATUS,
    sla_expressions,
)
from gameday.measurements.sla import SlaTargets

__all__ = ["Panel", "dashboard", "panels"]

WINDOW_S = 30
FAULT_ANNOTATION = "gameday_fault_active == 1"
PHASE_ANNOTATION = "gameday_experiment_phase == 1"
_DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
_WIDTH, _HEIGHT, _COLUMNS = 12, 8, 2


@dataclass(frozen=True)
class Panel:
    """One time-series panel: its title, query, legend, unit and SLA bound (if any)."""

    title: str
    expr: str
    legend: str = ""
    unit: str = "short"
    bound: float | None = None
    bound_is_minimum: bool = False


def panels(selector: str = DEFAULT_SELECTOR, sla: SlaTargets | None = None) -> list[Panel]:
    """The dashboard's panels, in order."""
    sla = sla or SlaTargets()
    slas = sla_expressions(selector, WINDOW_S)
    return [
        Panel(f"Availability ({WINDOW_S} s)", slas["availability"], "availability",
              "percentunit", sla.availability_min, bound_is_minimum=True),
        Panel(f"p95 latency ({WINDOW_S} s)", slas["p95_latency_s"], "p95", "s",
              sla.p95_latency_max_s),
        Panel(f"Error rate ({WINDOW_S} s)", slas["error_rate"], "errors", "percentunit",
              sla.error_rate_max),
        Panel("Throughput", slas["throughput_rps"], "orders/s", "reqps",
              sla.throughput_min_rps, bound_is_minimum=True),
        Panel("Circuit breaker state", f"{METRIC_BREAKER_STATE}{{{selector}}} == 1",
              f"{{{{instance}}}} {{{{{METRIC_BREAKER_STATE}}}}}"),
        Panel("Broker API calls by status",
              f"sum by (status) (rate({METRIC_API_REQUEST_SECONDS}_count{{{selector}}}"
              f"[{WINDOW_S}s]))", "{{status}}", "reqps"),
        Panel("Broker connection", f"{METRIC_CONNECTION_STATUS}{{{selector}}}",
              "{{instance}}"),
        Panel("Faults active (gameday)", "gameday_fault_active",
              "{{fault}} {{target}} ({{experiment}})"),
    ]


def _panel(number: int, panel: Panel) -> dict[str, Any]:
    steps: list[dict[str, Any]] = [{"color": "green", "value": None}]
    if panel.bound is not None:
        steps = ([{"color": "red", "value": None}, {"color": "green", "value": panel.bound}]
                 if panel.bound_is_minimum else
                 [*steps, {"color": "red", "value": panel.bound}])
    return {
        "id": number + 1, "type": "timeseries", "title": panel.title,
        "datasource": _DATASOURCE,
        "gridPos": {"x": (number % _COLUMNS) * _WIDTH, "y": (number // _COLUMNS) * _HEIGHT,
                    "w": _WIDTH, "h": _HEIGHT},
        "fieldConfig": {"defaults": {
            "unit": panel.unit,
            "thresholds": {"mode": "absolute", "steps": steps},
            "custom": {"thresholdsStyle": {"mode": "line" if panel.bound is not None
                                           else "off"}}}, "overrides": []},
        "targets": [{"refId": "A", "datasource": _DATASOURCE, "expr": panel.expr,
                     "legendFormat": panel.legend}],
    }


def _annotation(name: str, expr: str, color: str, title: str) -> dict[str, Any]:
    return {"name": name, "datasource": _DATASOURCE, "enable": True, "iconColor": color,
            "expr": expr, "step": "1s", "titleFormat": title, "useValueForTime": False}


def dashboard(selector: str = DEFAULT_SELECTOR) -> dict[str, Any]:
    """The Grafana dashboard (JSON model) for the service the selector picks."""
    return {
        "title": "gameday: broker integration", "uid": "gameday-broker-integration",
        "schemaVersion": 39, "refresh": "5s", "time": {"from": "now-30m", "to": "now"},
        "tags": ["gameday", "chaos"],
        "templating": {"list": [{"name": "datasource", "label": "Prometheus",
                                 "type": "datasource", "query": "prometheus"}]},
        "annotations": {"list": [
            _annotation("Fault windows", FAULT_ANNOTATION, "red",
                        "{{fault}} {{target}} ({{experiment}})"),
            _annotation("Experiment phases", PHASE_ANNOTATION, "blue",
                        "{{experiment}}: {{phase}}"),
        ]},
        "panels": [_panel(number, panel) for number, panel in enumerate(panels(selector))],
    }


def main() -> None:
    """Print the dashboard's JSON."""
    print(json.dumps(dashboard(), indent=2, sort_keys=True))


if __name__ == "__main__":
    main()
