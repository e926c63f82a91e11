"""Server-side series for a report: Prometheus ``query_range`` over an experiment's span.

Queried at report time with the same PromQL as the SLA probes (:func:`gameday.measurements.sla.
expressions`), plus the breaker state (``broker_circuit_breaker_state``) and the ready
replicas (``sum(up{selector})``). When Prometheus cannot be reached or holds no data
for the span (the lab was restarted, the report is made later elsewhere), the series
are absent and :attr:`ServerSeries.problem` says why: a report never draws a series it
did not measure.
"""

from __future__ import annotations

import json
import math
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from gameday.contract import DEFAULT_SELECTOR, METRIC_BREAKER_STATE
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


def matrix_points(body: Mapping[str, Any], start_unix: float) -> Points:
    """The points of the single series of a ``query_range`` answer (pure); NaN dropped."""
    result = (body.get("data") or {}).get("result") or []
    if not result:
        return ()
    return tuple((float(t) - start_unix, float(v)) for t, v in result[0]["values"]
                 if not math.isnan(float(v)))


def breaker_band(body: Mapping[str, Any], start_unix: float) -> tuple[tuple[float, str], ...]:
    """Worst state at each step from ``sum by (state)`` of the breaker enum (pure):
    open if any replica is open, else half_open if any is, else closed."""
    counts: dict[float, dict[str, float]] = {}
    for series in (body.get("data") or {}).get("result") or []:
        state = series["metric"].get(METRIC_BREAKER_STATE, "?")
        for t, v in series["values"]:
            counts.setdefault(float(t), {})[state] = float(v)
    band = []
    for t in sorted(counts):
        present = [s for s in STATE_ORDER if counts[t].get(s, 0) > 0]
        band.append((t - start_unix, present[0] if present else "unknown"))
    return tuple(band)


@dataclass(frozen=True)
class RangeQuery:
    """A Prometheus at ``url`` asked for ``start..end`` every ``step_s``."""

    url: str
    start_unix: float
    end_unix: float
    step_s: float = 1.0
    timeout_s: float = 5.0

    def __call__(self, promql: str) -> dict[str, Any]:
        """The raw JSON answer; OSError/ValueError when Prometheus cannot answer."""
        query = urllib.parse.urlencode({
            "query": promql, "start": f"{self.start_unix - MARGIN_S:.3f}",
            "end": f"{self.end_unix + MARGIN_S:.3f}", "step": f"{self.step_s:g}"})
        with urllib.request.urlopen(f"{self.url}/api/v1/query_range?{query}",
                                    timeout=self.timeout_s) as response:
            body: dict[str, Any] = json.load(response)
        if body.get("status") != "success":
            raise ValueError(f"Prometheus rejected {promql!r}: {body.get('error')}")
        return body


def _queries(selector: str, window_s: float) -> dict[str, str]:
    sla = expressions(selector, window_s)
    return {"throughput_rps": sla["throughput_rps"], "error_rate": sla["error_rate"],
            "p95_latency_s": sla["p95_latency_s"], "ready": f"sum(up{{{selector}}})"}


def _missing(names: Sequence[str], url: str) -> str | None:
    if not names:
        return None
    return (f"Prometheus at {url} has no data for {', '.join(names)} in this experiment's "
            "time range (the lab was restarted or its data removed since the run)")


def fetch_server_series(url: str, start_unix: float, end_unix: float, *,
                        selector: str = DEFAULT_SELECTOR, window_s: float = 10.0,
                        timeout_s: float = 5.0) -> ServerSeries:
    """Query Prometheus at ``url`` for the experiment's span (± 2 s); SLA rates over a
    trailing ``window_s``. Never raises: an unreachable Prometheus gives a problem."""
    query = RangeQuery(url, start_unix, end_unix, timeout_s=timeout_s)
    lines: dict[str, Points] = {}
    try:
        for name, promql in _queries(selector, window_s).items():
            points = matrix_points(query(promql), start_unix)
            if points:
                lines[name] = points
        band = breaker_band(query(
            f"sum by ({METRIC_BREAKER_STATE}) ({METRIC_BREAKER_STATE}{{{selector}}})"),
            start_unix)
    except (urllib.error.URLError, OSError, ValueError, KeyError) as exc:
        return ServerSeries(problem=f"Prometheus at {url} could not be queried ({exc}): "
                                    "no server-side series are shown", source=url)
    absent = [n for n in (*_queries(selector, window_s), "breaker state")
              if n not in lines and (n != "breaker state" or not band)]
    return ServerSeries(lines, band, _missing(absent, url), url)
