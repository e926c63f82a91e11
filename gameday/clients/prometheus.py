"""PromQL queries that return floats, or raise when there is nothing to measure.

Queries are written with the contract's metric and label names (docs/contract.md). A
service that names them otherwise says so in its spec (``metrics:``, ``labels:``); the
client then sends each query in the service's names and hands back every answer's
labels in the contract's names, so the callers never see the difference. An error
quotes the query as sent and, when it differs from the contract's, which of the
service's names it used.
"""

from __future__ import annotations

import json
import math
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from gameday.contract import MeasurementError, MetricNaming

__all__ = ["Prometheus", "Sample", "Series"]


@dataclass(frozen=True)
class Sample:
    """One series of an instant vector: its labels and value."""

    labels: dict[str, str]
    value: float


@dataclass(frozen=True)
class Series:
    """One series of a range query: its labels and its (unix time, value) points."""

    labels: dict[str, str]
    points: tuple[tuple[float, float], ...]


@dataclass(frozen=True)
class Prometheus:
    """A Prometheus HTTP API at ``url``; every query times out after ``timeout_s``.

    ``naming`` holds the service's names for the contract's metrics and labels (default:
    the contract's own): queries go out in the service's names, labels come back in the
    contract's.
    """

    url: str
    timeout_s: float = 5.0
    naming: MetricNaming = field(default_factory=MetricNaming)

    def quote(self, promql: str) -> str:
        """``promql`` as it is sent, quoted, naming the service's names it uses instead of
        the contract's (for error messages)."""
        sent = self.naming.promql(promql)
        renames = self.naming.renames(promql)
        if not renames:
            return repr(sent)
        names = ", ".join(f"{old} -> {new}" for old, new in renames.items())
        return f"{sent!r} (the service's names from its spec: {names})"

    def _get(self, api: str, promql: str, params: dict[str, str]) -> dict[str, Any]:
        """The ``data`` of an answer of ``/api/v1/<api>`` to ``promql`` in the service's names."""
        query = urllib.parse.urlencode({"query": self.naming.promql(promql), **params})
        try:
            with urllib.request.urlopen(
                f"{self.url}/api/v1/{api}?{query}", timeout=self.timeout_s
            ) as response:
                body: dict[str, Any] = json.load(response)
        except urllib.error.HTTPError as exc:
            body = _error_body(exc)
            if not body:
                raise MeasurementError(
                    f"Prometheus at {self.url} could not answer {self.quote(promql)}: {exc}"
                ) from exc
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise MeasurementError(
                f"Prometheus at {self.url} could not answer {self.quote(promql)}: {exc}"
            ) from exc
        if body.get("status") != "success":
            raise MeasurementError(
                f"Prometheus rejected {self.quote(promql)}: {body.get('error')}")
        data: dict[str, Any] = body.get("data") or {}
        return data

    def _result(self, api: str, promql: str, kind: str,
                params: dict[str, str] | None = None) -> list[dict[str, Any]]:
        data = self._get(api, promql, params or {})
        if data.get("resultType") != kind:
            raise MeasurementError(
                f"{self.quote(promql)} returned a {data.get('resultType')}, not a {kind}")
        result: list[dict[str, Any]] = data.get("result") or []
        return result

    def _labels(self, series: dict[str, Any]) -> dict[str, str]:
        return self.naming.contract_labels(series.get("metric") or {})

    def vector(self, promql: str) -> list[Sample]:
        """Every series of an instant query; raises when the result is empty."""
        samples = [Sample(self._labels(r), float(r["value"][1]))
                   for r in self._result("query", promql, "vector")]
        if not samples:
            raise MeasurementError(
                f"no data for {self.quote(promql)} at {self.url}: the metric is missing, "
                "renamed, or has no samples in the window"
            )
        return samples

    def matrix(self, promql: str) -> dict[str, list[tuple[float, float]]]:
        """A range-vector query: each series (by its sorted labels, as JSON) →
        [(time, value)]; raises when the result is empty."""
        series = {
            json.dumps(self._labels(r), sort_keys=True): [(float(t), float(v))
                                                          for t, v in r["values"]]
            for r in self._result("query", promql, "matrix")
        }
        if not series:
            raise MeasurementError(f"no data for {self.quote(promql)} at {self.url}")
        return series

    def scalar(self, promql: str) -> float:
        """The single value of an instant query; raises on no data, NaN or several series."""
        samples = self.vector(promql)
        if len(samples) != 1:
            raise MeasurementError(
                f"{self.quote(promql)} returned {len(samples)} series, expected one")
        value = samples[0].value
        if math.isnan(value):
            raise MeasurementError(
                f"{self.quote(promql)} is NaN: no traffic in the window to measure")
        return value

    def query_range(self, promql: str, start_unix: float, end_unix: float,
                    step_s: float = 1.0) -> list[Series]:
        """Every series of ``promql`` evaluated from ``start_unix`` to ``end_unix`` every
        ``step_s`` (``query_range``); empty when there is no data; raises when Prometheus
        cannot answer."""
        params = {"start": f"{start_unix:.3f}", "end": f"{end_unix:.3f}", "step": f"{step_s:g}"}
        return [Series(self._labels(r), tuple((float(t), float(v)) for t, v in r["values"]))
                for r in self._result("query_range", promql, "matrix", params)]


def _error_body(exc: urllib.error.HTTPError) -> dict[str, Any]:
    """The JSON error Prometheus sends with a 4xx/5xx (a bad query: 400), else empty."""
    try:
        body = json.load(exc)
    except (OSError, ValueError):
        return {}
    return body if isinstance(body, dict) and body.get("status") == "error" else {}
