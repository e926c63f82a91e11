"""Whether an open breaker protects (pure): when every breaker was open, and the clients'
latency and the broker's own count of orders received over those seconds."""

from __future__ import annotations

from typing import Any

import pytest

from gameday.contract import MeasurementError
from gameday.engine.verdict import _describe
from gameday.load.output import LiveHeader, live_document
from gameday.load.stats import LoadStats
from gameday.measurements.breaker import (
    counted_in,
    open_spans,
    protection,
    replica_open_spans,
)

T0 = 1_000_000.0
HEADER = LiveHeader(t0_unix=T0, rate_rps=100, in_time_s=1.0, timeout_s=2.0)


def _live(latency_s: float, seconds: int = 20, per_second: int = 100) -> dict[str, Any]:
    """A live file: ``per_second`` orders a second, each answered after ``latency_s``."""
    stats = LoadStats(target_rps=per_second)
    for t in range(seconds):
        for _ in range(per_second):
            stats.record_due(t)
            stats.record_start(t, 0.0, float(t))
            stats.record_end(t, "5xx", latency_s)
    stats.schedule_reaches(seconds)
    stats.finalize()
    return live_document(HEADER, stats.timeline, T0 + seconds + 0.5, done=False)


def _counter(per_second: float, seconds: int = 20, offset_s: float = 0.3) -> list[tuple[float,
                                                                                          float]]:
    """A counter scraped every second, growing by ``per_second``."""
    return [(T0 + t + offset_s, per_second * (t + offset_s)) for t in range(seconds)]


def _open_from(start_s: float, seconds: int = 20) -> list[tuple[float, float]]:
    return [(T0 + t + 0.5, 1.0 if t + 0.5 >= start_s else 0.0) for t in range(seconds)]


def test_a_replica_is_open_between_the_transitions_its_samples_call_open() -> None:
    samples = _open_from(3.0)
    spans = replica_open_spans([T0 + 2.9], samples, T0, T0 + 20)
    assert spans == [(T0 + 2.9, T0 + 20)]


def test_a_piece_no_scrape_saw_is_not_open() -> None:
    samples = _open_from(3.0)  # a half-open blip from 10.0 to 10.2, unseen by any scrape
    spans = replica_open_spans([T0 + 2.9, T0 + 10.0, T0 + 10.2], samples, T0, T0 + 20)
    assert spans == [(T0 + 2.9, T0 + 10.0), (T0 + 10.2, T0 + 20)]


def test_every_breaker_open_is_the_intersection_of_the_replicas() -> None:
    history = {"r1": [T0 + 2.0], "r2": [T0 + 4.0]}
    samples = {"r1": _open_from(2.0), "r2": _open_from(4.0)}
    assert open_spans(history, samples, T0, T0 + 20) == [(T0 + 4.0, T0 + 20)]
    never = {"r1": _open_from(2.0), "r2": _open_from(99.0)}
    assert open_spans(history, never, T0, T0 + 20) == []
    with pytest.raises(MeasurementError, match="no replica"):
        open_spans({}, {}, T0, T0 + 20)


def test_a_counter_counts_only_inside_the_span_scaled_to_its_length() -> None:
    counter = _counter(100.0)
    assert counted_in(counter, (T0 + 4, T0 + 10)) == pytest.approx(600.0)
    assert counted_in(counter, (T0 + 4, T0 + 4.9)) is None, "fewer than two samples"
    burst = [(T0 + 0.3, 0.0), (T0 + 1.3, 500.0), (T0 + 2.3, 500.0), (T0 + 3.3, 500.0)]
    assert counted_in(burst, (T0 + 2, T0 + 4)) == 0.0, "what came before the span stays out"


def test_a_breaker_that_fails_fast_and_calls_nobody_passes() -> None:
    result = protection(_live(0.004), [(T0 + 4.5, T0 + 20)], [_counter(0.0)], 50.0, 0.05)
    assert result["ok"] and result["p95_ms_ok"] and result["broker_call_share_ok"]
    assert (result["open_s"], result["orders"], result["broker_calls"]) == (15, 1500, 0.0)
    assert result["p95_ms"] == pytest.approx(4.0, rel=0.01)


def test_a_leaking_breaker_fails_on_the_broker_call_share() -> None:
    result = protection(_live(0.004), [(T0 + 4.5, T0 + 20)], [_counter(100.0)], 50.0, 0.05)
    assert (result["ok"], result["p95_ms_ok"], result["broker_call_share_ok"]) == (
        False, True, False)
    assert result["broker_call_share"] == pytest.approx(1.0)
    assert _describe(result) == "broker_call_share 1.0 over its maximum 0.05"


def test_a_breaker_that_makes_clients_wait_fails_on_latency() -> None:
    result = protection(_live(0.8), [(T0 + 4.5, T0 + 20)], [_counter(0.0)], 50.0, 0.05)
    assert not result["ok"] and not result["p95_ms_ok"]
    assert _describe(result).startswith("p95_ms 80")
    assert _describe(result).endswith("over its maximum 50.0")


def test_it_refuses_to_judge_what_it_cannot_measure() -> None:
    live = _live(0.004)
    with pytest.raises(MeasurementError, match="never all open"):
        protection(live, [], [_counter(0.0)], 50.0, 0.05)
    with pytest.raises(MeasurementError, match="no finished second"):
        protection(live, [(T0 + 30, T0 + 40)], [_counter(0.0)], 50.0, 0.05)
    with pytest.raises(MeasurementError, match="too few samples"):
        protection(live, [(T0 + 4.5, T0 + 20)], [], 50.0, 0.05)
    with pytest.raises(MeasurementError, match="too few samples"):
        protection(live, [(T0 + 4.5, T0 + 20)], [[(T0 + 5.3, 0.0)]], 50.0, 0.05)
