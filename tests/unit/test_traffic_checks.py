"""The traffic control's own checks (pure): an unreachable target, a load generator that
stopped early, an experiment shorter than a second of traffic."""

from __future__ import annotations

from typing import Any

import pytest
from chaoslib.exceptions import InterruptExecution

from gameday.contract import MeasurementError
from gameday.engine.traffic import check_reachable, shared_mark, stopped_early

T0 = 1_800_000_000.0
URL = "http://127.0.0.1:18000/orders"


def second(t: int, due: int = 100, connection: int = 0, fivexx: int = 0) -> dict[str, Any]:
    """One finished second of a live file."""
    answered = due - connection
    return {"t": t, "due": due, "sent": due, "answered": answered,
            "ok": answered - fivexx, "in_time": answered - fivexx, "late_starts": 0,
            "errors": {"5xx": fivexx, "timeout": 0, "connection": connection},
            "status": {"2xx": answered - fivexx, "4xx": 0, "5xx": fivexx}, "hist": None}


def live(timeline: list[dict[str, Any]], updated: float) -> dict[str, Any]:
    """A live document whose newest second is the last of ``timeline``."""
    return {"t0_unix": T0, "updated_unix": updated, "rate_rps": 100.0, "in_time_s": 1.0,
            "timeout_s": 2.0, "done": False, "timeline": timeline}


def test_every_order_refused_means_unreachable() -> None:
    doc = live([second(t, connection=100) for t in range(10)], T0 + 10.5)
    with pytest.raises(InterruptExecution, match=r"unreachable: 300 of 300 orders in the last "
                                                 r"3 s could not connect to http://127"):
        check_reachable(doc, URL, T0 + 10.6)


def test_server_errors_or_some_refusals_are_not_unreachable() -> None:
    check_reachable(live([second(t, fivexx=100) for t in range(10)], T0 + 10.5), URL, T0 + 10.6)
    half = live([second(t, connection=50) for t in range(10)], T0 + 10.5)
    check_reachable(half, URL, T0 + 10.6)


def test_reachability_cannot_be_told_from_stale_figures() -> None:
    doc = live([second(t, connection=100) for t in range(10)], T0 + 10.5)
    with pytest.raises(MeasurementError, match="stopped or died"):
        check_reachable(doc, URL, T0 + 30)


def test_a_load_generator_that_stopped_is_named() -> None:
    doc = live([second(t) for t in range(10)], T0 + 10.5)
    assert stopped_early(doc, T0 + 12) is None
    assert "stopped 10 s before the experiment ended" in str(stopped_early(doc, T0 + 20.5))
    assert stopped_early({**doc, "done": True}, T0 + 60) is None


def test_shared_mark_summarises_flags_and_notes() -> None:
    doc = live([second(t) for t in range(20)], T0 + 20.5)
    mark = shared_mark(doc, T0 + 5, T0 + 15)
    assert mark["summary"]["due"] == 1000 and "error" not in mark
    short = shared_mark(doc, T0 + 5.2, T0 + 5.9)
    assert short == {"note": "the experiment covered no whole second of the traffic"}
    dead = shared_mark(doc, T0 + 5, T0 + 40)
    assert "load generator stopped" in dead["error"] and dead["summary"]["due"] == 1500
