"""SLA probes: availability, p95 latency, error rate, throughput — measured, never assumed.

Each probe measures over the trailing ``window_s`` seconds from the target's Prometheus
(PromQL over the service's metric contract). When it cannot measure — Prometheus
unreachable, a metric missing or renamed, no traffic in the window — it raises with the
query and the cause; it never returns a default.
"""


from typing import Any

from gameday.prometheus import Prometheus
from gameday.sla import DEFAULT_SELECTOR, ServerSla, SlaTargets, sla_report
from gameday.targets import get_target

__all__ = ["availability", "error_rate", "p95_latency_s", "report", "throughput_rps"]


def _server(configuration: dict[str, Any] | None) -> ServerSla:
    config = configuration or {}
    selector = str(config.get("prometheus_service_selector", DEFAULT_SELECTOR))
    return ServerSla(Prometheus(get_target().prometheus_url()), selector)


def availability(window_s: float = 10, configuration: dict[str, Any] | None = None) -> float:
    """Share of order requests answered without a 5xx, over a trailing window.

    Args:
        window_s: the window, in seconds (2..3600).

    Returns a float in 0..1. Pair it with a range tolerance, e.g. ``[0.995, 1.0]``.
    """
    return _server(configuration).availability(window_s)


def p95_latency_s(window_s: float = 10, configuration: dict[str, Any] | None = None) -> float:
    """95th percentile of order latency, over a trailing window.

    Args:
        window_s: the window, in seconds (2..3600).

    Returns seconds, a float. Pair it with a range tolerance, e.g. ``[0, 1.0]``.
    """
    return _server(configuration).p95_latency_s(window_s)


def error_rate(window_s: float = 10, configuration: dict[str, Any] | None = None) -> float:
    """Share of order requests that failed (5xx, timeout, circuit open), over a window.

    Args:
        window_s: the window, in seconds (2..3600).

    Returns a float in 0..1. Pair it with a range tolerance, e.g. ``[0, 0.001]``.
    """
    return _server(configuration).error_rate(window_s)


def throughput_rps(window_s: float = 10, configuration: dict[str, Any] | None = None) -> float:
    """Order requests answered per second, over a trailing window.

    Args:
        window_s: the window, in seconds (2..3600).

    Returns requests per second, a float. Pair it with a range tolerance, e.g.
    ``[100, 1000000]``.
    """
    return _server(configuration).throughput_rps(window_s)


def report(window_s: float = 10, configuration: dict[str, Any] | None = None) -> dict[str, Any]:
    """Every SLA value over a trailing window, with its bound and verdict.

    Args:
        window_s: the window, in seconds (2..3600).

    Bounds come from the configuration keys ``sla_availability_min``,
    ``sla_p95_latency_max_s``, ``sla_error_rate_max``, ``sla_throughput_min_rps``.
    Returns a flat dict (``availability``, ``availability_min``, ``availability_ok``, ...,
    ``ok``); pair it with ``{type: jsonpath, path: "$.ok", expect: true}``.
    """
    server = _server(configuration)
    values = {
        "availability": server.availability(window_s),
        "p95_latency_s": server.p95_latency_s(window_s),
        "error_rate": server.error_rate(window_s),
        "throughput_rps": server.throughput_rps(window_s),
    }
    return sla_report(values, SlaTargets.from_configuration(configuration))
