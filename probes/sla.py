"""SLA probes: availability, p95 latency, error rate, throughput — measured, never assumed.

Each probe measures over the trailing ``window_s`` seconds, from one of two sources:
``prometheus`` (server side: PromQL over the service's metric contract) or ``client``
(the load generator's figures for the experiment's traffic: latency from each request's
due time, so stalls are not hidden). When it cannot measure — Prometheus unreachable, a
metric missing or renamed, no traffic in the window, a dead load generator — it raises
with the cause; it never returns a default.
"""


import time
from typing import Any

from gameday.contract import DEFAULT_SELECTOR, ConfigError, MeasurementError
from gameday.engine.activity import activity
from gameday.engine.traffic import current_files
from gameday.faults.record import fault_time
from gameday.measurements.client_sla import client_sla, figures, read_live, seconds_between
from gameday.measurements.sla import SOURCES, ServerSla, SlaTargets, sla_report
from gameday.targets import get_target

__all__ = ["availability", "error_rate", "fault_window", "p95_latency_s", "report",
           "throughput_rps"]


SLA_NAMES = ("availability", "p95_latency_s", "error_rate", "throughput_rps")


def _measure(name: str, window_s: float, source: str,
             configuration: dict[str, Any] | None) -> float:
    if source == "prometheus":
        return _server(configuration).measure(name, window_s)
    return float(_client(window_s, source)[name])


def _client(window_s: float, source: str) -> dict[str, Any]:
    if source != "client":
        raise ConfigError(f"unknown source {source!r}: valid are {', '.join(SOURCES)}")
    live = read_live(current_files().live)
    return client_sla(live, float(window_s), time.time())


def _server(configuration: dict[str, Any] | None) -> ServerSla:
    config = configuration or {}
    selector = str(config.get("prometheus_service_selector", DEFAULT_SELECTOR))
    return ServerSla(get_target().prometheus(), selector)


@activity
def availability(window_s: float = 10, source: str = "prometheus",
                 configuration: dict[str, Any] | None = None) -> float:
    """Share of order requests answered without a 5xx, over a trailing window.

    Args:
        window_s: the window, in seconds (2..3600).
        source: ``prometheus`` (server side, PromQL) or ``client`` (the load
            generator's figures for the experiment's traffic).

    Returns a float in 0..1. Pair it with a range tolerance, e.g. ``[0.995, 1.0]``.
    """
    return _measure("availability", window_s, source, configuration)


@activity
def p95_latency_s(window_s: float = 10, source: str = "prometheus",
                  configuration: dict[str, Any] | None = None) -> float:
    """95th percentile of order latency, over a trailing window.

    Args:
        window_s: the window, in seconds (2..3600).
        source: ``prometheus`` (server side, PromQL) or ``client`` (the load
            generator's figures for the experiment's traffic).

    Returns seconds, a float. Pair it with a range tolerance, e.g. ``[0, 1.0]``.
    """
    return _measure("p95_latency_s", window_s, source, configuration)


@activity
def error_rate(window_s: float = 10, source: str = "prometheus",
               configuration: dict[str, Any] | None = None) -> float:
    """Share of order requests that failed (5xx, timeout, circuit open), over a window.

    Args:
        window_s: the window, in seconds (2..3600).
        source: ``prometheus`` (server side, PromQL) or ``client`` (the load
            generator's figures for the experiment's traffic).

    Returns a float in 0..1. Pair it with a range tolerance, e.g. ``[0, 0.001]``.
    """
    return _measure("error_rate", window_s, source, configuration)


@activity
def throughput_rps(window_s: float = 10, source: str = "prometheus",
                   configuration: dict[str, Any] | None = None) -> float:
    """Order requests answered per second, over a trailing window.

    Args:
        window_s: the window, in seconds (2..3600).
        source: ``prometheus`` (server side, PromQL) or ``client`` (the load
            generator's figures for the experiment's traffic).

    Returns requests per second, a float. Pair it with a range tolerance, e.g.
    ``[100, 1000000]``.
    """
    return _measure("throughput_rps", window_s, source, configuration)


@activity
def report(window_s: float = 10, source: str = "prometheus",
           configuration: dict[str, Any] | None = None) -> dict[str, Any]:
    """Every SLA value over a trailing window, with its bound and verdict.

    Args:
        window_s: the window, in seconds (2..3600).
        source: ``prometheus`` (server side, PromQL) or ``client`` (the load
            generator's figures for the experiment's traffic).

    Bounds come from the configuration keys ``sla_availability_min``,
    ``sla_p95_latency_max_s``, ``sla_error_rate_max``, ``sla_throughput_min_rps``.
    Returns a flat dict (``availability``, ``availability_min``, ``availability_ok``, ...,
    ``ok``); pair it with ``{type: jsonpath, path: "$.ok", expect: true}``.
    """
    targets = SlaTargets.from_configuration(configuration)
    if source == "prometheus":
        server = _server(configuration)
        values = {name: server.measure(name, window_s) for name in SLA_NAMES}
    else:
        client = _client(window_s, source)
        values = {name: float(client[name]) for name in SLA_NAMES}
    return {"source": source, **sla_report(values, targets)}


@activity
def fault_window(since: float | None = None,
                 configuration: dict[str, Any] | None = None) -> dict[str, Any]:
    """Every SLA value over the whole fault so far, client-side, with its bound and verdict.

    The window runs from the second the last fault was injected (as recorded by gameday's
    actions; or ``since``, unix seconds) to now: every faulty second counts, the ones
    before the breaker trips included, not only a trailing window at one moment. The
    figures are the load generator's for the experiment's traffic (latency from each
    order's due time).

    Args:
        since: when the fault began, in unix seconds (default: the last injection).

    Bounds as in :func:`report` (``sla_*`` configuration keys). Returns the same flat
    dict plus ``seconds`` (how many whole seconds were covered); pair it with
    ``{type: jsonpath, path: "$.ok", expect: true}``, or with ``$.p95_latency_s_ok`` when
    only latency must hold through the fault (errors are expected while a breaker is
    open). Raises when no fault was recorded or no whole second has passed since.
    """
    start = fault_time(since, lambda: get_target().state_dir())
    now = time.time()
    live = read_live(current_files().live)
    window = seconds_between(live, start, now)
    if not window:
        raise MeasurementError(f"no whole second of traffic since the fault began "
                               f"{now - start:.1f} s ago")
    client = figures(window)
    values = {name: float(client[name]) for name in SLA_NAMES}
    targets = SlaTargets.from_configuration(configuration)
    return {"source": "client", "seconds": len(window), **sla_report(values, targets)}

