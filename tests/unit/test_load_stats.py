"""Pure statistics of the load generator: finishing seconds, summaries, exact merges."""

from __future__ import annotations

import random
from typing import Any

from gameday.load.generator import answer_outcome
from gameday.load.merge import LiveMerger, merge_entries, merge_summaries
from gameday.load.output import LiveHeader, live_document
from gameday.load.stats import (
    LoadStats,
    RunFacts,
    build_summary,
    decode_histogram,
    public_summary,
    timeline_entry,
)

CLASSES = ("2xx", "2xx", "2xx", "4xx", "5xx", "timeout", "connection")


def test_a_second_finishes_only_when_scheduled_past_and_all_its_requests_ended() -> None:
    stats = LoadStats(target_rps=2)
    stats.record_due(0)
    stats.record_start(0, 0.001, 0.001)
    stats.record_due(0)
    stats.record_start(0, 0.001, 0.5)
    stats.record_end(0, "2xx", 0.02)
    stats.record_end(0, "5xx", 0.03)
    assert stats.finalize() == 0, "second 0 may still get requests"
    stats.schedule_reaches(1)
    stats.record_due(1)
    stats.record_start(1, 0.0, 1.0)
    assert stats.finalize() == 1
    stats.schedule_reaches(3)
    assert stats.finalize() == 0, "second 1 has a request under way"
    stats.record_end(1, "timeout", 2.0)
    assert stats.finalize() == 2, "second 1, then the empty second 2"
    assert [e["due"] for e in stats.timeline] == [2, 1, 0]
    assert stats.timeline[2]["p95_ms"] is None and stats.timeline[2]["hist"] is None


def test_abandoned_requests_count_as_timeouts() -> None:
    stats = LoadStats(target_rps=1)
    stats.record_due(0)
    stats.finish_scheduling()
    stats.abandon_pending()
    stats.finalize()
    assert stats.timeline[0]["errors"]["timeout"] == 1 and stats.timeline[0]["sent"] == 0


def test_entry_counts_answers_in_time_and_errors() -> None:
    stats = LoadStats(target_rps=10, in_time_s=1.0, late_threshold_s=0.01)
    endings = [("2xx", 0.5), ("2xx", 1.5), ("4xx", 0.1), ("5xx", 0.1), ("timeout", 2.0),
               ("connection", 0.0)]
    for klass, latency_s in endings:
        stats.record_due(0)
        stats.record_start(0, 0.02 if klass == "2xx" else 0.0, 0.0)
        stats.record_end(0, klass, latency_s)
    stats.finish_scheduling()
    stats.finalize()
    entry = stats.timeline[0]
    assert entry["answered"] == 4 and entry["ok"] == 3 and entry["in_time"] == 2
    assert entry["errors"] == {"5xx": 1, "timeout": 1, "connection": 1}
    assert entry["status"] == {"2xx": 2, "4xx": 1, "5xx": 1}
    assert entry["late_starts"] == 2
    assert decode_histogram(entry["hist"]).get_total_count() == 6
    assert entry["max_ms"] >= 1999


def _feed(stats: LoadStats, rows: list[tuple[int, str, float]]) -> LoadStats:
    for t, klass, latency_s in rows:
        stats.record_due(t)
        stats.record_start(t, latency_s / 100, t + 0.5)
        stats.record_end(t, klass, latency_s)
    stats.finish_scheduling()
    stats.finalize()
    return stats


def _summary(stats: LoadStats, workers: int = 1) -> dict[str, Any]:
    facts = RunFacts(stats.target_rps, 10.0, stats.last_start_s, workers, {"ok": 1})
    return build_summary(stats.timeline, stats.latency, stats.lag, facts)


def _rows(count: int, seed: int) -> list[tuple[int, str, float]]:
    rng = random.Random(seed)
    return [(rng.randrange(10), rng.choice(CLASSES), rng.lognormvariate(-4, 1.5))
            for _ in range(count)]


def test_merged_workers_equal_one_process_fed_every_value() -> None:
    rows = _rows(5000, seed=7)
    single = _summary(_feed(LoadStats(target_rps=100), rows))
    parts = [_summary(_feed(LoadStats(target_rps=50), rows[i::2])) for i in range(2)]
    merged = merge_summaries(parts, target_rps=100)
    assert merged["sent"] == parts[0]["sent"] + parts[1]["sent"] == single["sent"] == 5000
    for key in ("due", "answered", "ok", "in_time", "errors", "status", "late_starts",
                "error_rate", "availability", "latency_ms", "scheduler_lag_ms"):
        assert merged[key] == single[key], key
    assert merged["timeline"] == single["timeline"]
    assert merged["outcomes"]["ok"] == 2 and merged["workers"] == 2


def test_merging_an_entry_with_nothing_gives_the_same_entry() -> None:
    stats = _feed(LoadStats(target_rps=100), _rows(300, seed=1))
    entry = stats.timeline[3]
    assert merge_entries(3, [entry, timeline_entry(3, {}, {}, None)]) == entry


def test_public_summary_drops_histograms() -> None:
    summary = _summary(_feed(LoadStats(target_rps=100), _rows(50, seed=2)))
    public = public_summary(summary)
    assert "histograms" not in public and all("hist" not in e for e in public["timeline"])
    assert "hist" in summary["timeline"][0], "the full summary is left alone"


def test_achieved_rate_uses_the_send_window() -> None:
    stats = LoadStats(target_rps=10)
    for i in range(20):
        stats.record_due(i // 10)
        stats.record_start(i // 10, 0.0, i / 10)
        stats.record_end(i // 10, "2xx", 0.001)
    stats.finish_scheduling()
    stats.finalize()
    summary = _summary(stats)
    assert summary["send_window_s"] == 2.0 and summary["achieved_rps"] == 10.0


def _live(header: LiveHeader, rows: list[tuple[int, str, float]], through: int,
          done: bool = False) -> dict[str, Any]:
    stats = LoadStats(target_rps=10)
    for t, klass, latency_s in rows:
        if t < through:
            stats.record_due(t)
            stats.record_start(t, 0.0, t)
            stats.record_end(t, klass, latency_s)
    stats.schedule_reaches(through)
    if done:
        stats.finish_scheduling()
    stats.finalize()
    return live_document(header, stats.timeline, 100.0, done)


def test_live_merger_waits_for_the_slowest_worker_and_merges_each_second_once() -> None:
    header = LiveHeader(t0_unix=0.0, rate_rps=20, in_time_s=1.0, timeout_s=2.0, keep_s=5)
    rows = _rows(400, seed=3)
    a, b = rows[::2], rows[1::2]
    merger = LiveMerger(header)
    assert merger.update([None, _live(header, b, 3)], 1.0)["timeline"] == []
    first = merger.update([_live(header, a, 2), _live(header, b, 4)], 2.0)
    assert [e["t"] for e in first["timeline"]] == [0, 1] and not first["done"]
    final = merger.update([_live(header, a, 10, done=True), _live(header, b, 10, done=True)],
                          3.0)
    assert final["done"] and [e["t"] for e in final["timeline"]] == [5, 6, 7, 8, 9]
    whole = _live(header, rows, 10, done=True)["timeline"]
    assert final["timeline"] == whole  # both hold seconds 5..9 (keep_s=5)
    assert final["updated_unix"] == 3.0


def test_an_answer_the_service_declares_unknown_is_an_unknown_outcome() -> None:
    assert answer_outcome(200, (502, 504)) == ("2xx", "ok")
    assert answer_outcome(504, (502, 504)) == ("5xx", "unknown")
    assert answer_outcome(500, (502, 504)) == ("5xx", "failed")
    assert answer_outcome(422, ()) == ("4xx", "failed")
    assert answer_outcome(504, ()) == ("5xx", "failed")
