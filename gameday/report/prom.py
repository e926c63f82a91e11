"""Server-side series for a report: Prometheus ``query_range`` over an experiment's span.

Queried at report time with the same PromQL as the SLA probes (:func:`gameday.contract.
sla_expressions`), plus the breaker state (``broker_circuit_breaker_state``) and the ready
replicas (``sum(up{selector})``), through a :class:`~gameday.clients.prometheus.Prometheus`
client that speaks the service's metric names (its spec's ``metrics:`` and ``labels:``).
When Prometheus cannot be reached or holds no data for the span (the lab was restarted,
the report is made later elsewhere), the series are absent and
:attr:`ServerSeries.problem` says why: a report never draws a series it did not measure.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from gameday.clients.prometheus import Prometheus, Series
from gameday.contract import DEFAULT_SELECTOR, METRIC_BREAKER_STATE, MeasurementError
from gameday.contract import sla_expressions as expressions

__all__ = ["ServerSeries", "breaker_band", "fetch_server_series", "matrix_points"]

Points = tuple[tuple[float, float], ...]
MARGIN_S = 2.0
STATE_ORDER = ("open", "half_open", "closed")


@dataclass(frozen=True)
class ServerSeries:
    """Prometheus' view over an experiment, x in seconds since its start.

    ``lines`` maps ``throughput_rps``, ``error_rate``, ``p95_latency_s``, ``ready`` to
    points; ``breaker`` is the worst breaker state over the replicas at each step;
    ``problem`` explains missing series (None when everything was measured).
    """

    lines: Mapping[str, Points] = field(default_factory=dict)
    breaker: tuple[tuple[float, str], ...] = ()
    problem: str | None = None
    source: str = ""


def matrix_points(series: Sequence[Series], start_unix: float) -> Points:
    """The points of the first series of a range query, x in seconds since
    ``start_unix`` (pure); NaN dropped."""
    if not series:
        return ()
    return tuple((t - start_unix, v) for t, v in series[0].points if not math.isnan(v))


def breaker_band(series: Sequence[Series], start_unix: float) -> tuple[tuple[float, str], ...]:
    """Worst state at each step from ``sum by (state)`` of the breaker enum (pure):
    open if any replica is open, else half_open if any is, else closed."""
    counts: dict[float, dict[str, float]] = {}
    for one in series:
        state = one.labels.get(METRIC_BREAKER_STATE, "?")
        for t, v in one.points:
            counts.setdefault(t, {})[state] = v
    band = []
    for t in sorted(counts):
        present = [s for s in STATE_ORDER if counts[t].get(s, 0) > 0]
        band.append((t - start_unix, present[0] if present else "unknown"))
    return tuple(band)


@dataclass(frozen=True)
class RangeQuery:
    """``prometheus`` asked for ``start..end`` (± 2 s) every ``step_s``."""

    prometheus: Prometheus
    start_unix: float
    end_unix: float
    step_s: float = 1.0

    def __call__(self, promql: str) -> list[Series]:
        """Every series of ``promql`` over the span; MeasurementError when Prometheus
        cannot answer."""
        return self.prometheus.query_range(promql, self.start_unix - MARGIN_S,
                                           self.end_unix + MARGIN_S, self.step_s)


def _queries(selector: str, window_s: float) -> dict[str, str]:
    sla = expressions(selector, window_s)
    return {"throughput_rps": sla["throughput_rps"], "error_rate": sla["error_rate"],
            "p95_latency_s": sla["p95_latency_s"], "ready": f"sum(up{{{selector}}})"}


def _missing(names: Sequence[str], url: str) -> str | None:
    if not names:
        return None
    return (f"Prometheus at {url} has no data for {', '.join(names)} in this experiment's "
            "time range (the lab was restarted or its data removed since the run)")


def fetch_server_series(prometheus: Prometheus, start_unix: float, end_unix: float, *,
                        selector: str = DEFAULT_SELECTOR,
                        window_s: float = 10.0) -> ServerSeries:
    """Query ``prometheus`` for the experiment's span (± 2 s); SLA rates over a trailing
    ``window_s``. Never raises: an unreachable Prometheus gives a problem."""
    url = prometheus.url
    query = RangeQuery(prometheus, start_unix, end_unix)
    lines: dict[str, Points] = {}
    try:
        for name, promql in _queries(selector, window_s).items():
            points = matrix_points(query(promql), start_unix)
            if points:
                lines[name] = points
        band = breaker_band(query(
            f"sum by ({METRIC_BREAKER_STATE}) ({METRIC_BREAKER_STATE}{{{selector}}})"),
            start_unix)
    except (MeasurementError, KeyError, TypeError, ValueError) as exc:
        return ServerSeries(problem=f"Prometheus at {url} could not be queried ({exc}): "
                                    "no server-side series are shown", source=url)
    absent = [n for n in (*_queries(selector, window_s), "breaker state")
              if n not in lines and (n != "breaker state" or not band)]
    return ServerSeries(lines, band, _missing(absent, url), url)
