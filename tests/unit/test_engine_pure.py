"""Pure engine logic: kill counts, toxic validation, breaker timing, injection log, SLA."""

from __future__ import annotations

from pathlib import Path

import pytest

from gameday.contract import ConfigError, InjectionError, MeasurementError, recording_rules
from gameday.contract import sla_expressions as expressions
from gameday.faults.inject import cleanup, kill_count, toxic_body
from gameday.faults.record import InjectionLog
from gameday.measurements.breaker import all_in, time_since, time_to_first_change
from gameday.measurements.sla import SlaTargets, sla_report
from gameday.targets.lab import LabTarget
from lab.layout import LabLayout


@pytest.mark.parametrize(("mode", "qty", "matching", "expected"), [
    ("fixed", 1, 3, 1), ("fixed", 3, 3, 3), ("percentage", 50, 3, 1),
    ("percentage", 100, 3, 3), ("percentage", 1, 3, 1), ("percentage", 67, 3, 2),
])
def test_kill_count(mode: str, qty: float, matching: int, expected: int) -> None:
    assert kill_count(mode, qty, matching) == expected


@pytest.mark.parametrize(("mode", "qty", "message"), [
    ("fixed", 0, "valid is a whole number 1..3"), ("fixed", 4, "1..3"),
    ("fixed", 1.5, "whole number"), ("percentage", 0, "0 < qty <= 100"),
    ("percentage", 101, "0 < qty <= 100"), ("random", 1, "valid are fixed, percentage"),
])
def test_bad_kill_counts_name_the_valid_values(mode: str, qty: float, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        kill_count(mode, qty, 3)


def test_toxic_body() -> None:
    assert toxic_body("latency", "upstream", 0.5, {"latency": 100}) == {
        "name": "gameday-latency-upstream", "type": "latency", "stream": "upstream",
        "toxicity": 0.5, "attributes": {"latency": 100}}


@pytest.mark.parametrize(("toxic", "stream", "toxicity", "message"), [
    ("lag", "downstream", 1.0, "valid are latency, bandwidth"),
    ("latency", "sideways", 1.0, "valid are downstream, upstream"),
    ("latency", "downstream", 1.5, "valid is 0..1"),
])
def test_bad_toxics_are_refused(toxic: str, stream: str, toxicity: float, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        toxic_body(toxic, stream, toxicity, {})


def test_time_to_first_change_is_the_slowest_replica() -> None:
    history = {"r1": [50.0, 100.2, 105.3], "r2": [100.9], "r3": [99.0, 100.4]}
    assert time_to_first_change(history, 100.0) == pytest.approx(0.9)


def test_a_replica_that_never_changed_is_named() -> None:
    with pytest.raises(MeasurementError, match="the breaker of r2 has not changed"):
        time_to_first_change({"r1": [100.5], "r2": [90.0]}, 100.0)
    with pytest.raises(MeasurementError):
        time_to_first_change({}, 100.0)


def test_time_since_and_all_in() -> None:
    assert time_since({"a": 103.0, "b": 101.0}, 100.0) == 3.0
    assert time_since({"a": 90.0}, 100.0) == 0.0
    assert all_in({"a": "open", "b": "open"}, "open")
    assert not all_in({"a": "open", "b": "half_open"}, "open")
    assert not all_in({}, "open")


def test_injection_log_pending_resolve_last(tmp_path: Path) -> None:
    log = InjectionLog(tmp_path / "state")
    assert log.pending() == [] and log.last() is None
    first = log.record("partition", {"link": "service-broker"})
    log.record("kill", {"selector": "name=replica-1", "qty": 1}, undoable=False)
    second = log.record("broker", {"mode": "error"})
    assert [i.id for i in log.pending()] == [first.id, second.id]
    done = log.resolve(lambda i: i.kind == "partition")
    assert [i.id for i in done] == [first.id]
    assert [i.id for i in log.pending()] == [second.id]
    assert log.last(("partition",), event="undone") is not None
    assert log.last(("broker",)) == second.at_unix
    with log.path.open("a") as handle:
        handle.write("not json\n")
    assert [i.id for i in log.pending()] == [second.id]


def test_a_line_cut_short_by_a_kill_does_not_swallow_the_next_record(tmp_path: Path) -> None:
    log = InjectionLog(tmp_path)
    log.record("broker", {"mode": "error"})
    with log.path.open("a") as handle:
        handle.write('{"event": "injected", "id": "cut-sh')  # killed mid-write
    after = log.record("partition", {"link": "service-broker"})
    assert [i.kind for i in log.pending()] == ["broker", "partition"]
    assert log.pending()[-1].id == after.id


def test_sla_report_flags_each_bound() -> None:
    values = {"availability": 0.99, "p95_latency_s": 0.2, "error_rate": 0.01,
              "throughput_rps": 150.0}
    report = sla_report(values, SlaTargets())
    assert report["availability_ok"] is False and report["p95_latency_s_ok"] is True
    assert report["error_rate_ok"] is False and report["throughput_rps_ok"] is True
    assert report["ok"] is False
    good = {**values, "availability": 1.0, "error_rate": 0.0}
    assert sla_report(good, SlaTargets())["ok"] is True


def test_sla_targets_from_configuration() -> None:
    targets = SlaTargets.from_configuration({"sla_p95_latency_max_s": "0.5"})
    assert targets.p95_latency_max_s == 0.5 and targets.availability_min == 0.995
    with pytest.raises(ConfigError, match="sla_error_rate_max='x' is not a number"):
        SlaTargets.from_configuration({"sla_error_rate_max": "x"})


def test_probes_and_recording_rules_share_the_promql() -> None:
    rules = recording_rules()["groups"][0]["rules"]
    by_name = {r["record"]: r["expr"] for r in rules}
    assert by_name["gameday:sla_p95_latency_s:30s"] == \
        expressions('job="broker-integration"', 30)["p95_latency_s"]
    assert len(rules) == 12
    with pytest.raises(ConfigError, match=r"valid is 2\.\.3600"):
        expressions("x", 1)


def test_hand_edited_records_are_skipped_not_fatal(tmp_path: Path) -> None:
    log = InjectionLog(tmp_path)
    kept = log.record("broker", {"mode": "error"})
    with log.path.open("a") as handle:
        handle.write('{"event": "injected", "kind": "partition"}\n')  # no id, no params
        handle.write('{"event": "injected", "id": "x1", "kind": "broker", "params": 3}\n')
    assert [i.id for i in log.pending()] == [kept.id]


def test_cleanup_names_a_recorded_fault_it_cannot_undo(tmp_path: Path) -> None:
    InjectionLog(tmp_path).record("dns", {"zone": "broker.example"})
    with pytest.raises(InjectionError, match=r"cannot undo recorded dns \{'zone': "
                                             r"'broker.example'\} \(id \w+\): gameday undoes "
                                             r"only partition, degrade, broker"):
        cleanup(LabTarget(LabLayout(state_dir=tmp_path)))
