"""Client-side SLA from the live file (pure): exact figures, and refusals to guess."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path
from typing import Any

import pytest

from gameday.contract import ConfigError, MeasurementError
from gameday.load.output import LiveHeader, live_document
from gameday.load.stats import LoadStats
from gameday.measurements.client_sla import client_sla, read_live

T0 = 1_000_000.0
HEADER = LiveHeader(t0_unix=T0, rate_rps=100, in_time_s=1.0, timeout_s=2.0)
CLASSES = ("2xx", "2xx", "2xx", "2xx", "4xx", "5xx", "timeout", "connection")


def _requests(seconds: int, seed: int = 11) -> list[tuple[int, str, float]]:
    rng = random.Random(seed)
    return [(t, rng.choice(CLASSES), rng.lognormvariate(-2, 1.2))
            for t in range(seconds) for _ in range(rng.randrange(50, 150))]


def _live(requests: list[tuple[int, str, float]], seconds: int) -> dict[str, Any]:
    stats = LoadStats(target_rps=100)
    for t, klass, latency_s in requests:
        stats.record_due(t)
        stats.record_start(t, 0.0, float(t))
        stats.record_end(t, klass, latency_s)
    stats.schedule_reaches(seconds)
    stats.finalize()
    return live_document(HEADER, stats.timeline, T0 + seconds + 0.5, done=False)


def _p95_hdr_bound(latencies: list[float]) -> float:
    """The exact nearest-rank p95 of the raw latencies."""
    ordered = sorted(latencies)
    return ordered[math.ceil(0.95 * len(ordered)) - 1]


def test_figures_are_exact_over_the_last_window_s_seconds() -> None:
    requests = _requests(30)
    live = _live(requests, 30)
    sla = client_sla(live, window_s=10, now_unix=T0 + 30.5)
    window = [r for r in requests if r[0] >= 20]
    in_time = [r for r in window if r[1] in ("2xx", "4xx") and r[2] <= 1.0]
    errors = [r for r in window if r[1] in ("5xx", "timeout", "connection")]
    answered = [r for r in window if r[1] in ("2xx", "4xx", "5xx")]
    assert sla["seconds"] == 10 and sla["requests"] == len(window)
    assert sla["availability"] == round(len(in_time) / len(window), 6)
    assert sla["error_rate"] == round(len(errors) / len(window), 6)
    assert sla["throughput_rps"] == round(len(answered) / 10, 3)
    exact = _p95_hdr_bound([r[2] for r in window])
    assert exact <= sla["p95_latency_s"] <= exact * 1.001 + 1e-6, "HDR: 3 significant digits"


def test_the_window_counts_back_from_the_newest_finished_second() -> None:
    live = _live(_requests(30), 30)
    assert client_sla(live, window_s=2.5, now_unix=T0 + 31)["seconds"] == 3
    assert client_sla(live, window_s=1000, now_unix=T0 + 31)["seconds"] == 30


def test_a_stale_file_means_the_generator_is_gone() -> None:
    live = _live(_requests(5), 5)
    with pytest.raises(MeasurementError, match="old"):
        client_sla(live, window_s=5, now_unix=live["updated_unix"] + 3.5)
    client_sla(live, window_s=5, now_unix=live["updated_unix"] + 2.9)


def test_no_finished_second_is_refused() -> None:
    live = _live([], 0)
    with pytest.raises(MeasurementError, match="no finished second"):
        client_sla(live, window_s=10, now_unix=live["updated_unix"])


def test_seconds_finishing_no_more_mean_a_stuck_generator() -> None:
    live = _live(_requests(5), 5)
    live["updated_unix"] = T0 + 12.0
    with pytest.raises(MeasurementError, match="stuck"):
        client_sla(live, window_s=10, now_unix=T0 + 12.0)


def test_a_window_with_no_request_due_is_refused() -> None:
    live = _live([(0, "2xx", 0.01)], 3)
    with pytest.raises(MeasurementError, match="no request was due"):
        client_sla(live, window_s=2, now_unix=live["updated_unix"])
    assert client_sla(live, window_s=3, now_unix=live["updated_unix"])["requests"] == 1


def test_a_bad_window_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        client_sla(_live(_requests(2), 2), window_s=0, now_unix=T0)


def test_read_live_refuses_missing_or_broken_files(tmp_path: Path) -> None:
    with pytest.raises(MeasurementError, match="no live load figures"):
        read_live(tmp_path / "absent.json")
    broken = tmp_path / "broken.json"
    broken.write_text("{", encoding="utf-8")
    with pytest.raises(MeasurementError):
        read_live(broken)
    good = tmp_path / "live.json"
    good.write_text(json.dumps(_live(_requests(2), 2)), encoding="utf-8")
    assert read_live(good)["t0_unix"] == T0
