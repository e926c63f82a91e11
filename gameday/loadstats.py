"""Statistics of a load run (pure): outcome classes, per-second timeline, percentiles."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from hdrh.histogram import HdrHistogram

ERROR_CLASSES = ("5xx", "timeout", "connection")
OK_CLASSES = ("2xx", "4xx")
MAX_LATENCY_US = 120_000_000


def classify_status(status: int) -> str:
    """Outcome class of an HTTP status: 2xx, 4xx or 5xx (1xx/3xx count as 2xx)."""
    if status >= 500:
        return "5xx"
    if status >= 400:
        return "4xx"
    return "2xx"


def percentile(sorted_values: list[float], q: float) -> float:
    """The q-th percentile (0..100) of sorted values, nearest rank; NaN when empty."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


@dataclass
class SecondStats:
    """What happened to the requests due in one second of the run."""

    due: int = 0
    sent: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)

    def as_dict(self, second: int) -> dict[str, Any]:
        """A flat JSON view of this second."""
        ordered = sorted(self.latencies_ms)
        ok = sum(self.outcomes[c] for c in OK_CLASSES)
        return {
            "t": second, "due": self.due, "sent": self.sent, "ok": ok,
            "errors": {c: self.outcomes[c] for c in ERROR_CLASSES},
            "p50_ms": _round(percentile(ordered, 50)),
            "p95_ms": _round(percentile(ordered, 95)),
            "p99_ms": _round(percentile(ordered, 99)),
        }


def _round(value: float) -> float | None:
    return None if math.isnan(value) else round(value, 3)


@dataclass
class LoadStats:
    """Running totals of a load run; latency measured from each request's due time."""

    target_rps: float
    histogram: HdrHistogram = field(default_factory=lambda: HdrHistogram(1, MAX_LATENCY_US, 3))
    lag_histogram: HdrHistogram = field(default_factory=lambda: HdrHistogram(1, MAX_LATENCY_US, 3))
    seconds: dict[int, SecondStats] = field(default_factory=dict)
    late_starts: int = 0

    def second(self, index: int) -> SecondStats:
        """The stats bucket of second ``index`` since the start."""
        return self.seconds.setdefault(index, SecondStats())

    def record_start(self, index: int, lag_s: float, late: bool) -> None:
        """A request due in second ``index`` started ``lag_s`` after its due time."""
        bucket = self.second(index)
        bucket.due += 1
        bucket.sent += 1
        self.late_starts += int(late)
        self.lag_histogram.record_value(max(1, min(MAX_LATENCY_US, int(lag_s * 1e6))))

    def record_outcome(self, index: int, outcome: str, latency_s: float) -> None:
        """A request due in second ``index`` ended as ``outcome`` after ``latency_s``."""
        bucket = self.second(index)
        bucket.outcomes[outcome] += 1
        bucket.latencies_ms.append(latency_s * 1000)
        self.histogram.record_value(max(1, min(MAX_LATENCY_US, int(latency_s * 1e6))))

    def totals(self) -> Counter[str]:
        """Outcome counts over the whole run."""
        total: Counter[str] = Counter()
        for bucket in self.seconds.values():
            total.update(bucket.outcomes)
        return total

    def summary(self, elapsed_s: float) -> dict[str, Any]:
        """The run's JSON summary: rates, outcomes, latency percentiles, timeline."""
        totals = self.totals()
        sent = sum(b.sent for b in self.seconds.values())
        answered = sum(totals.values())
        ok = sum(totals[c] for c in OK_CLASSES)
        errors = {c: totals[c] for c in ERROR_CLASSES}
        return {
            "target_rps": self.target_rps,
            "achieved_rps": round(sent / elapsed_s, 3) if elapsed_s > 0 else 0.0,
            "elapsed_s": round(elapsed_s, 3),
            "sent": sent, "answered": answered, "ok": ok, "errors": errors,
            "error_rate": round(sum(errors.values()) / answered, 6) if answered else None,
            "latency_ms": _latency_ms(self.histogram),
            "late_starts": self.late_starts,
            "scheduler_lag_ms": {"p99": self.lag_histogram.get_value_at_percentile(99) / 1000},
            "timeline": [self.seconds[s].as_dict(s) for s in sorted(self.seconds)],
        }


def _latency_ms(histogram: HdrHistogram) -> dict[str, float]:
    return {
        "p50": histogram.get_value_at_percentile(50) / 1000,
        "p95": histogram.get_value_at_percentile(95) / 1000,
        "p99": histogram.get_value_at_percentile(99) / 1000,
        "max": histogram.get_max_value() / 1000,
    }
