"""The live view's content (pure): what it shows for a snapshot, and when it is on."""

from __future__ import annotations

from rich.console import Console

from gameday.engine.live import Snapshot, render, wanted
from gameday.engine.status import ActiveFault

SLA = {"throughput_rps": 199.6, "p95_latency_s": 0.0412, "error_rate": 0.0123,
       "availability": 0.9877}


def _text(snap: Snapshot) -> str:
    console = Console(width=120, record=True, color_system=None)
    console.print(render(snap))
    return console.export_text()


def test_a_fault_in_progress() -> None:
    text = _text(Snapshot("broker-down", "(2 of 12)", "method", 21.4,
                          (ActiveFault("partition", "service-broker", 1000.0),), SLA,
                          {"replica-1": "open", "replica-2": "open"}, 1012.6))
    assert "gameday broker-down  (2 of 12)  phase: method  21 s" in text
    assert "FAULT  partition service-broker  on for 13 s" in text
    assert ("client SLA (last 10 s): 200 orders/s, p95 41 ms, errors 1.23%, "
            "availability 98.77%") in text
    assert "breakers: replica-1 open, replica-2 open" in text


def test_what_could_not_be_read_is_shown_with_why() -> None:
    text = _text(Snapshot("", "(3 of 12)", "", 0.0, (), "no load yet",
                          "no data for broker_circuit_breaker_state", 0.0))
    assert "gameday between experiments  (3 of 12)" in text and "phase" not in text
    assert "no fault injected" in text
    assert "client SLA (last 10 s): - (no load yet)" in text
    assert "breakers: - (no data for broker_circuit_breaker_state)" in text


def test_on_a_terminal_only_unless_switched_off() -> None:
    assert wanted(True, {}) and wanted(True, {"GAMEDAY_LIVE": "1"})
    assert not wanted(False, {}) and not wanted(True, {"GAMEDAY_LIVE": "0"})
