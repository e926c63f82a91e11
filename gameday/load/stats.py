"""Statistics of a load run (pure): outcome classes, per-second timeline, HDR histograms.

Every request counts in the second it was *due* in (``t`` = whole seconds since the
run's start), whenever it finished. A second is *finished* once no more requests can be
due in it and every request due in it has ended (answered, failed or timed out); it
then becomes a timeline entry (:func:`timeline_entry`) and never changes again.

Latencies are recorded in microseconds, measured from each request's due time, in HDR
histograms (``hdrh``) with 3 significant digits; histograms of the same configuration
merge exactly (their counts add), so percentiles over several seconds or several
worker processes are those of one histogram fed every value.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hdrh.histogram import HdrHistogram

__all__ = [
    "ERROR_CLASSES",
    "STATUS_CLASSES",
    "LoadStats",
    "RunFacts",
    "SecondStats",
    "build_summary",
    "classify_status",
    "decode_histogram",
    "merged_histogram",
    "new_histogram",
    "public_summary",
    "timeline_entry",
]

ERROR_CLASSES = ("5xx", "timeout", "connection")
STATUS_CLASSES = ("2xx", "4xx", "5xx")
OUTCOMES = ("ok", "failed", "unknown")
MAX_LATENCY_US = 120_000_000
SIGNIFICANT_DIGITS = 3


def new_histogram() -> HdrHistogram:
    """An empty latency histogram: 1 µs .. 120 s, 3 significant digits."""
    return HdrHistogram(1, MAX_LATENCY_US, SIGNIFICANT_DIGITS)


def record_s(histogram: HdrHistogram, seconds: float) -> None:
    """Record a duration in seconds as microseconds, clamped to the histogram's range."""
    histogram.record_value(max(1, min(MAX_LATENCY_US, int(seconds * 1e6))))


def decode_histogram(encoded: str) -> HdrHistogram:
    """A histogram from its base64 HDR encoding (as in timeline entries' ``hist``)."""
    return HdrHistogram.decode(encoded.encode("ascii"))


def merged_histogram(encoded: Iterable[str | None]) -> HdrHistogram:
    """One histogram holding every value of the encoded histograms (``None`` skipped)."""
    merged = new_histogram()
    for item in encoded:
        if item:
            merged.add(decode_histogram(item))
    return merged


def classify_status(status: int) -> str:
    """Outcome class of an HTTP status: 2xx, 4xx or 5xx (1xx/3xx count as 2xx)."""
    if status >= 500:
        return "5xx"
    if status >= 400:
        return "4xx"
    return "2xx"


def _ms(histogram: HdrHistogram, percentile: float) -> float | None:
    if histogram.get_total_count() == 0:
        return None
    return round(float(histogram.get_value_at_percentile(percentile)) / 1000, 3)


def timeline_entry(
    t: int, counts: Mapping[str, int], classes: Mapping[str, int],
    histogram: HdrHistogram | None,
) -> dict[str, Any]:
    """The JSON entry of second ``t``.

    ``counts`` holds ``due``, ``sent``, ``late_starts``, ``in_time``; ``classes`` the
    number of requests ended in each of 2xx, 4xx, 5xx, timeout, connection. Fields:
    ``answered`` = any HTTP answer; ``ok`` = answered with a non-5xx status;
    ``in_time`` = ``ok`` within the in-time bound (1 s by default); ``errors`` = 5xx,
    timeout, connection; ``status`` = answers by class; ``p50_ms``/``p95_ms``/
    ``p99_ms``/``max_ms`` = latency from the due time (null when nothing was due);
    ``hist`` = base64 HDR histogram of those latencies in µs (null when empty).
    """
    empty = histogram is None or histogram.get_total_count() == 0
    hist = new_histogram() if histogram is None else histogram
    return {
        "t": t, "due": counts.get("due", 0), "sent": counts.get("sent", 0),
        "answered": sum(classes.get(c, 0) for c in STATUS_CLASSES),
        "ok": classes.get("2xx", 0) + classes.get("4xx", 0),
        "in_time": counts.get("in_time", 0), "late_starts": counts.get("late_starts", 0),
        "errors": {c: classes.get(c, 0) for c in ERROR_CLASSES},
        "status": {c: classes.get(c, 0) for c in STATUS_CLASSES},
        "p50_ms": _ms(hist, 50), "p95_ms": _ms(hist, 95), "p99_ms": _ms(hist, 99),
        "max_ms": None if empty else round(hist.get_max_value() / 1000, 3),
        "hist": None if empty else hist.encode().decode("ascii"),
    }


@dataclass
class SecondStats:
    """The requests due in one second of the run, while some are still under way."""

    counts: Counter[str] = field(default_factory=Counter)
    classes: Counter[str] = field(default_factory=Counter)
    histogram: HdrHistogram = field(default_factory=new_histogram)

    def pending(self) -> int:
        """Requests due in this second that have not ended yet."""
        return self.counts["due"] - sum(self.classes.values())


@dataclass
class LoadStats:
    """Running statistics of one load run (one process).

    Attributes:
        target_rps: the rate this process was asked to send at.
        in_time_s: an answer within this many seconds of its due time is "in time".
        late_threshold_s: a start later than this after its due time is a late start.
    """

    target_rps: float
    in_time_s: float = 1.0
    late_threshold_s: float = 0.010
    latency: HdrHistogram = field(default_factory=new_histogram)
    lag: HdrHistogram = field(default_factory=new_histogram)
    open_seconds: dict[int, SecondStats] = field(default_factory=dict)
    timeline: list[dict[str, Any]] = field(default_factory=list)
    scheduled_through: int = 0
    last_start_s: float = 0.0

    def _second(self, t: int) -> SecondStats:
        bucket = self.open_seconds.get(t)
        if bucket is None:
            bucket = self.open_seconds[t] = SecondStats()
        return bucket

    def schedule_reaches(self, t: int) -> None:
        """Every request due before second ``t`` has been created (seconds < t may finish)."""
        self.scheduled_through = max(self.scheduled_through, t)

    def record_due(self, t: int) -> None:
        """A request due in second ``t`` was created."""
        self._second(t).counts["due"] += 1

    def record_start(self, t: int, lag_s: float, started_s: float) -> None:
        """It started ``lag_s`` after its due time, ``started_s`` after the run's start."""
        bucket = self._second(t)
        bucket.counts["sent"] += 1
        bucket.counts["late_starts"] += int(lag_s > self.late_threshold_s)
        self.last_start_s = max(self.last_start_s, started_s)
        record_s(self.lag, max(0.0, lag_s))

    def record_end(self, t: int, klass: str, latency_s: float) -> None:
        """It ended as ``klass`` (2xx, 4xx, 5xx, timeout, connection) ``latency_s`` after due."""
        bucket = self._second(t)
        bucket.classes[klass] += 1
        in_time = klass in ("2xx", "4xx") and latency_s <= self.in_time_s
        bucket.counts["in_time"] += int(in_time)
        record_s(bucket.histogram, latency_s)
        record_s(self.latency, latency_s)

    def finish_scheduling(self) -> None:
        """No more requests will be due: every second may finish once its requests end."""
        last = max(self.open_seconds, default=len(self.timeline) - 1)
        self.scheduled_through = max(self.scheduled_through, last + 1)

    def abandon_pending(self) -> None:
        """Count requests that never ended (cancelled at the end of the run) as timeouts."""
        for bucket in self.open_seconds.values():
            bucket.classes["timeout"] += bucket.pending()

    def finalize(self) -> int:
        """Move every finished second to the timeline, in order; returns how many moved."""
        moved = 0
        while len(self.timeline) < self.scheduled_through:
            t = len(self.timeline)
            bucket = self.open_seconds.get(t) or SecondStats()
            if bucket.pending() > 0:
                break
            self.timeline.append(timeline_entry(t, bucket.counts, bucket.classes,
                                                bucket.histogram))
            self.open_seconds.pop(t, None)
            moved += 1
        return moved


@dataclass(frozen=True)
class RunFacts:
    """What a summary needs besides the timeline and the histograms."""

    target_rps: float
    elapsed_s: float
    last_start_s: float
    workers: int = 1
    outcomes: Mapping[str, int] = field(default_factory=dict)
    outcomes_path: str | None = None


def _sum(timeline: Sequence[Mapping[str, Any]], key: str, sub: str | None = None) -> int:
    return sum(int(e[key][sub] if sub else e[key]) for e in timeline)


def _latency_ms(histogram: HdrHistogram) -> dict[str, float | None]:
    return {"p50": _ms(histogram, 50), "p95": _ms(histogram, 95), "p99": _ms(histogram, 99),
            "max": _ms(histogram, 100)}


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 6) if whole else None


def build_summary(
    timeline: Sequence[Mapping[str, Any]], latency: HdrHistogram, lag: HdrHistogram,
    facts: RunFacts,
) -> dict[str, Any]:
    """The run's JSON summary; totals are sums over the timeline (see the user docs)."""
    due, sent = _sum(timeline, "due"), _sum(timeline, "sent")
    errors = {c: _sum(timeline, "errors", c) for c in ERROR_CLASSES}
    window_s = facts.last_start_s + 1 / facts.target_rps if sent else 0.0
    return {
        "target_rps": facts.target_rps,
        "achieved_rps": round(sent / window_s, 3) if window_s > 0 else 0.0,
        "send_window_s": round(window_s, 3), "elapsed_s": round(facts.elapsed_s, 3),
        "workers": facts.workers, "due": due, "sent": sent,
        "answered": _sum(timeline, "answered"), "ok": _sum(timeline, "ok"),
        "in_time": _sum(timeline, "in_time"), "errors": errors,
        "status": {c: _sum(timeline, "status", c) for c in STATUS_CLASSES},
        "error_rate": _ratio(sum(errors.values()), due),
        "availability": _ratio(_sum(timeline, "in_time"), due),
        "latency_ms": _latency_ms(latency),
        "late_starts": _sum(timeline, "late_starts"),
        "late_start_ratio": _ratio(_sum(timeline, "late_starts"), sent),
        "scheduler_lag_ms": _latency_ms(lag),
        "outcomes": {o: int(facts.outcomes.get(o, 0)) for o in OUTCOMES},
        "outcomes_path": facts.outcomes_path,
        "timeline": [dict(e) for e in timeline],
        "histograms": {"latency": latency.encode().decode("ascii"),
                       "lag": lag.encode().decode("ascii")},
    }


def public_summary(summary: Mapping[str, Any]) -> dict[str, Any]:
    """The summary without the encoded histograms (what ``--json`` and journals hold)."""
    public = {k: v for k, v in summary.items() if k != "histograms"}
    public["timeline"] = [{k: v for k, v in e.items() if k != "hist"}
                          for e in summary["timeline"]]
    return public
