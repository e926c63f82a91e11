"""SLA targets and their server-side measurement over the service's metric contract.

Definitions (docs/contract.md): availability = share of order requests answered with a
non-5xx status; p95 latency = 95th percentile of order latency; error rate = share of
order requests that ended in a 5xx, a timeout or a connection error; throughput =
answered order requests per second. Server-side, from ``broker_orders_total`` and
``broker_order_execution_seconds`` over a trailing window.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gameday.clients.prometheus import Prometheus
from gameday.contract import DEFAULT_SELECTOR, ConfigError, sla_expressions

SOURCES = ("prometheus", "client")
"""Where an SLA probe measures: the service's metrics in Prometheus, or the load generator."""


@dataclass(frozen=True)
class SlaTargets:
    """The SLA's bounds; every experiment may override them in its configuration."""

    availability_min: float = 0.995
    p95_latency_max_s: float = 1.0
    error_rate_max: float = 0.001
    throughput_min_rps: float = 100.0

    @classmethod
    def from_configuration(cls, configuration: Mapping[str, Any] | None) -> SlaTargets:
        """Read ``sla_availability_min``, ``sla_p95_latency_max_s``, ``sla_error_rate_max``,
        ``sla_throughput_min_rps`` from a Chaos Toolkit configuration (defaults otherwise)."""
        config = configuration or {}
        values = {}
        for name in ("availability_min", "p95_latency_max_s", "error_rate_max",
                     "throughput_min_rps"):
            raw = config.get(f"sla_{name}", getattr(cls, name))
            try:
                values[name] = float(raw)
            except (TypeError, ValueError):
                raise ConfigError(f"configuration sla_{name}={raw!r} is not a number") from None
        return cls(**values)


@dataclass(frozen=True)
class ServerSla:
    """SLA values from Prometheus for the series matching ``selector``."""

    prometheus: Prometheus
    selector: str = DEFAULT_SELECTOR

    def measure(self, name: str, window_s: float) -> float:
        """One SLA value (``availability``, ``error_rate``, ``p95_latency_s``,
        ``throughput_rps``) over the trailing window; raises when it cannot measure."""
        return self.prometheus.scalar(sla_expressions(self.selector, window_s)[name])

    def throughput_rps(self, window_s: float) -> float:
        """Orders answered per second over the window."""
        return self.measure("throughput_rps", window_s)

    def availability(self, window_s: float) -> float:
        """Share of orders answered without a 5xx over the window (0..1)."""
        return self.measure("availability", window_s)

    def error_rate(self, window_s: float) -> float:
        """Share of orders that failed (5xx, timeout, broker error, circuit open) (0..1)."""
        return self.measure("error_rate", window_s)

    def p95_latency_s(self, window_s: float) -> float:
        """95th percentile of order latency over the window, in seconds."""
        return self.measure("p95_latency_s", window_s)


def sla_report(values: Mapping[str, float], targets: SlaTargets) -> dict[str, Any]:
    """A flat dict of each SLA value, its bound and ``*_ok``, plus one overall ``ok`` (pure)."""
    checks = {
        "availability": values["availability"] >= targets.availability_min,
        "p95_latency_s": values["p95_latency_s"] <= targets.p95_latency_max_s,
        "error_rate": values["error_rate"] <= targets.error_rate_max,
        "throughput_rps": values["throughput_rps"] >= targets.throughput_min_rps,
    }
    report: dict[str, Any] = {name: round(values[name], 6) for name in checks}
    report.update({
        "availability_min": targets.availability_min,
        "p95_latency_max_s": targets.p95_latency_max_s,
        "error_rate_max": targets.error_rate_max,
        "throughput_min_rps": targets.throughput_min_rps,
    })
    report.update({f"{name}_ok": ok for name, ok in checks.items()})
    report["ok"] = all(checks.values())
    return report
