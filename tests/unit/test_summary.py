"""The end-of-run table and JUnit XML (pure)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from gameday.engine.results import ExperimentResult, counts, exit_code, key_figures, orders_cell
from gameday.engine.verdict import Verdict
from gameday.report.summary import junit_xml, table

JOURNAL = {
    "run": [
        {"activity": {"provider": {"func": "time_to_trip_s"}}, "output": 0.0612},
        {"activity": {"provider": {"func": "time_to_recover_s"}}, "output": 4.2},
        {"activity": {"provider": {"func": "partition"}}, "output": {"link": "x"}},
    ],
    "extensions": [{"name": "gameday-traffic", "summary": {
        "sent": 8000, "error_rate": 0.38, "latency_ms": {"p95": 26.3}},
        "orders": {"orders": 7990, "duplicated": 0, "lost": 0, "failed_but_filled": 0}}],
}


def _results() -> list[ExperimentResult]:
    passed = ExperimentResult(Path("experiments/broker-down.yaml"), Verdict("down"),
                              Path("reports/a.journal.json"), 41.2, key_figures(JOURNAL))
    failed = ExperimentResult(Path("experiments/pod-kill.yaml"),
                              Verdict("kill", ("baseline (before): x", "rollback y failed")),
                              None, 12.0)
    inconclusive = ExperimentResult(Path("experiments/broker-blip.yaml"),
                                    Verdict("blip", (), ("no evidence",)), None, 30.0)
    return [passed, failed, inconclusive]


def test_key_figures_from_a_journal() -> None:
    assert key_figures(JOURNAL) == {"trip_s": 0.061, "recover_s": 4.2, "sent": 8000,
                                    "client_error_rate": 0.38, "client_p95_ms": 26.3,
                                    "orders": "7990 ok"}
    assert key_figures({}) == {}


def test_table_has_a_row_per_experiment() -> None:
    lines = table(_results()).splitlines()
    assert lines[0].split() == ["experiment", "verdict", "time_s", "trip_s", "recover_s",
                                "sent", "client_error_rate", "client_p95_ms", "orders"]
    assert lines[1].split() == ["broker-down", "PASS", "41", "0.061", "4.2", "8000", "0.38",
                                "26.3", "7990", "ok"]
    assert lines[2].split() == ["pod-kill", "FAIL", "12", "-", "-", "-", "-", "-", "-"]
    assert lines[3].split()[:2] == ["broker-blip", "INCONCLUSIVE"]


def test_the_orders_cell_names_what_went_wrong() -> None:
    assert orders_cell({"orders": 10, "duplicated": 2, "lost": 0, "failed_but_filled": 1}) == \
        "10: 2 dup, 1 failed-but-filled"
    assert orders_cell({"orders": 10, "error": "ledger down"}) == "not reconciled"


def test_exit_code_and_counts_rank_fail_over_inconclusive() -> None:
    passed, failed, inconclusive = _results()
    assert exit_code([passed]) == 0
    assert exit_code([passed, inconclusive]) == 4
    assert exit_code([inconclusive, failed]) == 1
    assert counts([passed, failed, inconclusive]) == "1 passed, 1 failed, 1 inconclusive"
    assert counts([passed]) == "1 passed, 0 failed"


def test_junit_has_one_case_per_experiment_and_failures_carry_reasons() -> None:
    root = ET.fromstring(junit_xml(_results()))
    suite = root.find("testsuite")
    assert suite is not None and suite.get("tests") == "3" and suite.get("failures") == "1"
    assert suite.get("skipped") == "1"
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    assert cases["broker-down"].find("failure") is None
    failure = cases["pod-kill"].find("failure")
    assert failure is not None and failure.get("message") == "baseline (before): x"
    assert failure.text == "baseline (before): x\nrollback y failed"
    skipped = cases["broker-blip"].find("skipped")
    assert skipped is not None and skipped.get("message") == "INCONCLUSIVE: no evidence"
    assert cases["broker-blip"].find("failure") is None
