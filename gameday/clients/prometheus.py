"""Instant PromQL queries that return floats, or raise when there is nothing to measure."""

from __future__ import annotations

import json
import math
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

from gameday.contract import MeasurementError


@dataclass(frozen=True)
class Sample:
    """One series of an instant vector: its labels and value."""

    labels: dict[str, str]
    value: float


@dataclass(frozen=True)
class Prometheus:
    """A Prometheus HTTP API at ``url``; every query times out after ``timeout_s``."""

    url: str
    timeout_s: float = 5.0

    def _get(self, promql: str) -> dict[str, Any]:
        query = urllib.parse.urlencode({"query": promql})
        try:
            with urllib.request.urlopen(
                f"{self.url}/api/v1/query?{query}", timeout=self.timeout_s
            ) as response:
                body: dict[str, Any] = json.load(response)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise MeasurementError(
                f"Prometheus at {self.url} could not answer {promql!r}: {exc}"
            ) from exc
        if body.get("status") != "success":
            raise MeasurementError(f"Prometheus rejected {promql!r}: {body.get('error')}")
        return body

    def vector(self, promql: str) -> list[Sample]:
        """Every series of an instant query; raises when the result is empty."""
        data = self._get(promql)["data"]
        if data.get("resultType") != "vector":
            raise MeasurementError(f"{promql!r} returned a {data.get('resultType')}, not a vector")
        samples = [Sample(r["metric"], float(r["value"][1])) for r in data["result"]]
        if not samples:
            raise MeasurementError(
                f"no data for {promql!r} at {self.url}: the metric is missing, "
                "renamed, or has no samples in the window"
            )
        return samples

    def matrix(self, promql: str) -> dict[str, list[tuple[float, float]]]:
        """A range-vector query: each series (by its sorted labels) → [(time, value)];
        raises when the result is empty."""
        data = self._get(promql)["data"]
        if data.get("resultType") != "matrix":
            raise MeasurementError(f"{promql!r} returned a {data.get('resultType')}, not a matrix")
        series = {
            json.dumps(r["metric"], sort_keys=True): [(float(t), float(v)) for t, v in r["values"]]
            for r in data["result"]
        }
        if not series:
            raise MeasurementError(f"no data for {promql!r} at {self.url}")
        return series

    def scalar(self, promql: str) -> float:
        """The single value of an instant query; raises on no data, NaN or several series."""
        samples = self.vector(promql)
        if len(samples) != 1:
            raise MeasurementError(f"{promql!r} returned {len(samples)} series, expected one")
        value = samples[0].value
        if math.isnan(value):
            raise MeasurementError(f"{promql!r} is NaN: no traffic in the window to measure")
        return value
