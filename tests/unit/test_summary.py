"""The end-of-run table and JUnit XML (pure)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from gameday.engine.results import ExperimentResult, key_figures
from gameday.engine.verdict import Verdict
from gameday.report.summary import junit_xml, table

JOURNAL = {
    "run": [
        {"activity": {"provider": {"func": "time_to_trip_s"}}, "output": 0.0612},
        {"activity": {"provider": {"func": "time_to_recover_s"}}, "output": 4.2},
        {"activity": {"provider": {"func": "partition"}}, "output": {"link": "x"}},
    ],
    "extensions": [{"name": "gameday-traffic", "summary": {
        "sent": 8000, "error_rate": 0.38, "latency_ms": {"p95": 26.3}}}],
}


def _results() -> list[ExperimentResult]:
    passed = ExperimentResult(Path("experiments/broker-down.yaml"), Verdict("down"),
                              Path("reports/a.journal.json"), 41.2, key_figures(JOURNAL))
    failed = ExperimentResult(Path("experiments/pod-kill.yaml"),
                              Verdict("kill", ("baseline (before): x", "rollback y failed")),
                              None, 12.0)
    return [passed, failed]


def test_key_figures_from_a_journal() -> None:
    assert key_figures(JOURNAL) == {"trip_s": 0.061, "recover_s": 4.2, "sent": 8000,
                                    "client_error_rate": 0.38, "client_p95_ms": 26.3}
    assert key_figures({}) == {}


def test_table_has_a_row_per_experiment() -> None:
    lines = table(_results()).splitlines()
    assert lines[0].split() == ["experiment", "verdict", "time_s", "trip_s", "recover_s",
                                "sent", "client_error_rate", "client_p95_ms"]
    assert lines[1].split() == ["broker-down", "PASS", "41", "0.061", "4.2", "8000", "0.38",
                                "26.3"]
    assert lines[2].split() == ["pod-kill", "FAIL", "12", "-", "-", "-", "-", "-"]


def test_junit_has_one_case_per_experiment_and_failures_carry_reasons() -> None:
    root = ET.fromstring(junit_xml(_results()))
    suite = root.find("testsuite")
    assert suite is not None and suite.get("tests") == "2" and suite.get("failures") == "1"
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    assert cases["broker-down"].find("failure") is None
    failure = cases["pod-kill"].find("failure")
    assert failure is not None and failure.get("message") == "baseline (before): x"
    assert failure.text == "baseline (before): x\nrollback y failed"
