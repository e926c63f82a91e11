"""The strict judge: every failing journal shape fails with a reason naming the cause."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from gameday.engine.runner import journal_verdict
from gameday.engine.verdict import judge, recorded_verdict, run_record
from gameday.measurements.machine import MachineLoad

PROBE = {"type": "probe", "name": "sla-within-targets", "tolerance": True,
         "provider": {"type": "python", "module": "probes.breaker", "func": "all_closed"}}
ACTION = {"type": "action", "name": "take-broker-link-down",
          "provider": {"type": "python", "module": "actions.network", "func": "partition"}}
METHOD_PROBE = {"type": "probe", "name": "p95-during", "tolerance": {"type": "range",
                "range": [0, "${p95_max}"]},
                "provider": {"type": "python", "module": "probes.sla", "func": "p95_latency_s"}}
ROLLBACK = {"type": "action", "name": "restore-link",
            "provider": {"type": "python", "module": "actions.network", "func": "heal"}}


def _run(activity: dict[str, Any], status: str = "succeeded", output: Any = None,
         **extra: Any) -> dict[str, Any]:
    return {"activity": activity, "status": status, "output": output, **extra}


def _state(met: bool, output: Any = True) -> dict[str, Any]:
    return {"steady_state_met": met,
            "probes": [_run(PROBE, output=output, tolerance_met=met)]}


def passing_journal() -> dict[str, Any]:
    experiment = {"title": "outage", "configuration": {"p95_max": 1.0},
                  "steady-state-hypothesis": {"title": "ok", "probes": [PROBE]},
                  "method": [ACTION, METHOD_PROBE], "rollbacks": [ROLLBACK]}
    return {
        "experiment": experiment, "status": "completed", "deviated": False,
        "steady_states": {"before": _state(True), "after": _state(True), "during": []},
        "run": [_run(ACTION, output={"link": "service-broker"}), _run(METHOD_PROBE, output=0.05)],
        "rollbacks": [_run(ROLLBACK)],
        "extensions": [{"name": "gameday-traffic", "summary": {"sent": 100}}],
    }


def test_a_clean_journal_passes() -> None:
    verdict = judge(passing_journal(), required_controls=["gameday-traffic"])
    assert verdict.passed, verdict.reasons
    assert verdict.title == "outage"


def test_failed_baseline_fails_even_though_chaos_exits_zero() -> None:
    journal = passing_journal()
    journal.update(status="failed", run=[], rollbacks=[_run(ROLLBACK)])
    journal["steady_states"] = {"before": _state(False, output=False), "after": None,
                                "during": []}
    verdict = judge(journal)
    assert not verdict.passed
    assert any("baseline (before): sla-within-targets returned false" in r
               for r in verdict.reasons), verdict.reasons


def test_baseline_probe_that_could_not_measure_names_the_cause() -> None:
    journal = passing_journal()
    journal["status"] = "failed"
    journal["run"] = []
    failed = _run(PROBE, status="failed", tolerance_met=False,
                  exception=["Traceback...", "MeasurementError: no data for 'x'\n"])
    journal["steady_states"]["before"] = {"steady_state_met": False, "probes": [failed]}
    reasons = judge(journal).reasons
    assert "baseline (before): probe sla-within-targets could not measure: " \
           "MeasurementError: no data for 'x'" in reasons


@pytest.mark.parametrize(("last_line", "shown"), [
    ("chaoslib.exceptions.ActivityFailed: gameday.contract.MeasurementError: no data for 'x'",
     "no data for 'x'"),
    ("chaoslib.exceptions.ActivityFailed: KeyError: 'window'", "KeyError: 'window'"),
    ("gameday.contract.InjectionError: broker admin API unreachable",
     "broker admin API unreachable"),
])
def test_wrapper_class_names_are_dropped_from_reasons(last_line: str, shown: str) -> None:
    journal = passing_journal()
    journal["run"][1] = _run(METHOD_PROBE, status="failed", exception=["Traceback...", last_line])
    assert judge(journal).reasons == (f"method: probe p95-during failed: {shown}",)


def test_deviation_fails() -> None:
    journal = passing_journal()
    journal["deviated"] = True
    journal["steady_states"]["after"] = _state(False, output=False)
    reasons = judge(journal).reasons
    assert "the steady state deviated after the method" in reasons
    assert any(r.startswith("after: sla-within-targets returned false") for r in reasons)


def test_failed_action_fails() -> None:
    journal = passing_journal()
    journal["run"][0] = _run(ACTION, status="failed",
                             exception=["InjectionError: fault proxy unreachable"])
    reasons = judge(journal).reasons
    assert list(reasons) == ["method: action take-broker-link-down failed: "
                       "InjectionError: fault proxy unreachable"]


def test_method_probe_outside_its_tolerance_fails() -> None:
    journal = passing_journal()
    journal["run"][1] = _run(METHOD_PROBE, output=2.5)
    reasons = judge(journal).reasons
    assert len(reasons) == 1 and "p95-during returned 2.5" in reasons[0]


def test_method_probe_tolerance_uses_var_overrides() -> None:
    journal = passing_journal()
    assert not judge(journal, configuration={"p95_max": 0.01}).passed


def test_interrupted_run_fails() -> None:
    journal = passing_journal()
    journal["status"] = "interrupted"
    journal["steady_states"]["after"] = None
    reasons = judge(journal).reasons
    assert "status is 'interrupted', not 'completed'" in reasons
    assert "after: the steady state was never checked" in reasons


def test_failed_rollback_fails() -> None:
    journal = passing_journal()
    journal["rollbacks"] = [_run(ROLLBACK, status="failed", exception=["OSError: refused"])]
    assert list(judge(journal).reasons) == ["rollback restore-link failed: OSError: refused"]


def test_rollbacks_that_never_ran_fail() -> None:
    journal = passing_journal()
    journal["rollbacks"] = []
    assert list(judge(journal).reasons) == [
        "rollbacks: none ran although the experiment declares them"]


def test_missing_control_mark_fails() -> None:
    journal = passing_journal()
    journal["extensions"] = []
    reasons = judge(journal, required_controls=["gameday-traffic"]).reasons
    assert len(reasons) == 1 and "did not run" in reasons[0]


def test_control_error_fails() -> None:
    journal = passing_journal()
    journal["extensions"] = [{"name": "gameday-traffic", "error": "no summary"}]
    assert list(judge(journal, required_controls=["gameday-traffic"]).reasons) == [
        "control gameday-traffic: no summary"]


def test_leftovers_fail() -> None:
    verdict = judge(passing_journal(), leftovers=["link service-broker is down"])
    assert verdict.reasons == ("left injected after the run: link service-broker is down",)


def test_experiment_without_hypothesis_fails() -> None:
    journal = passing_journal()
    del journal["experiment"]["steady-state-hypothesis"]
    assert any("no steady-state hypothesis" in r for r in judge(journal).reasons)


@pytest.mark.parametrize("status", ["aborted", "failed", None])
def test_any_status_but_completed_fails(status: str | None) -> None:
    journal = copy.deepcopy(passing_journal())
    journal["status"] = status
    assert not judge(journal).passed


def test_an_sla_report_failure_names_the_figures_out_of_bounds() -> None:
    journal = passing_journal()
    report = {"availability": 0.99, "availability_min": 0.995, "availability_ok": False,
              "p95_latency_s": 0.2, "p95_latency_max_s": 1.0, "p95_latency_s_ok": True,
              "throughput_rps": 50.0, "throughput_min_rps": 100.0, "throughput_rps_ok": False,
              "ok": False}
    journal["steady_states"]["before"] = _state(False, output=report)
    reasons = judge(journal).reasons
    assert reasons[0].startswith(
        "baseline (before): sla-within-targets returned availability 0.99 under its minimum "
        "0.995; throughput_rps 50.0 under its minimum 100.0, tolerance")


CLEAN_ORDERS = {"orders": 2000, "acked": 1990, "filled": 1995, "lost": 0, "duplicated": 0,
                "unknown_outcome": 5, "failed_but_filled": 0, "unknown": 8,
                "unknown_filled": 5}


def _with_orders(**counts: Any) -> dict[str, Any]:
    journal = passing_journal()
    journal["extensions"][0]["orders"] = {**CLEAN_ORDERS, **counts}
    return journal


def test_clean_orders_pass() -> None:
    verdict = judge(_with_orders())
    assert verdict.passed and verdict.kind == "PASS", verdict.shown


@pytest.mark.parametrize(("counts", "words"), [
    ({"duplicated": 3}, "3 of 2000 filled twice"),
    ({"lost": 1}, "1 acknowledged to the client as filled but not in the broker's ledger"),
    ({"unexplained": 4}, "4 fills under ids derived from the clients' but never sent"),
    ({"failed_but_filled": 2}, "2 answered as failed to the client but filled by the broker"),
])
def test_an_order_filled_twice_lost_or_filled_after_failing_fails(
        counts: dict[str, int], words: str) -> None:
    verdict = judge(_with_orders(**counts))
    assert verdict.kind == "FAIL"
    assert any(words in reason for reason in verdict.reasons), verdict.reasons


def test_failed_but_filled_is_bounded_by_configuration() -> None:
    journal = _with_orders(failed_but_filled=2)
    assert judge(journal, {"orders_failed_but_filled_max": 2}).passed
    assert not judge(journal, {"orders_failed_but_filled_max": 1}).passed


def test_orders_that_could_not_be_reconciled_make_it_inconclusive() -> None:
    journal = passing_journal()
    journal["extensions"][0]["orders"] = {"orders": 10, "error": "ledger answered 500"}
    verdict = judge(journal)
    assert verdict.kind == "INCONCLUSIVE" and not verdict.passed
    assert "ledger answered 500" in verdict.shown[0]


EVIDENCE = {"type": "probe", "name": "mode-hits",
            "tolerance": {"type": "range", "range": [1, 1000000000]},
            "provider": {"type": "python", "module": "probes.broker", "func": "mode_hits"}}


def test_a_fault_that_hit_nothing_is_inconclusive_not_pass() -> None:
    journal = passing_journal()
    journal["experiment"]["method"].append(EVIDENCE)
    journal["run"].append(_run(EVIDENCE, output=0))
    verdict = judge(journal)
    assert verdict.kind == "INCONCLUSIVE"
    assert verdict.shown == ("the fault left no evidence that it took effect: mode-hits "
                             "returned 0, tolerance {\"type\": \"range\", \"range\": [1, "
                             "1000000000]}",)
    journal["run"][-1]["output"] = 12
    assert judge(journal).passed


def test_a_failure_outranks_missing_evidence() -> None:
    journal = _with_orders(duplicated=1)
    journal["experiment"]["method"].append(EVIDENCE)
    journal["run"].append(_run(EVIDENCE, output=0))
    verdict = judge(journal)
    assert verdict.kind == "FAIL" and verdict.inconclusive
    assert all("filled twice" in reason for reason in verdict.shown)


def test_a_starved_load_generator_makes_it_inconclusive() -> None:
    journal = passing_journal()
    journal["extensions"][0]["summary"] = {
        "sent": 400, "timeline": [{"sent": 200, "late_starts": 150},
                                  {"sent": 200, "late_starts": 10}]}
    verdict = judge(journal)
    assert verdict.kind == "INCONCLUSIVE"
    assert "160 of 400 orders (40%) started late" in verdict.shown[0]
    assert judge(journal, {"load_late_share_max": 0.5}).passed


LINK_EVIDENCE = {"type": "probe", "name": "link-carries-broker-calls",
                 "tolerance": {"type": "range", "range": [1, 1.0e15]},
                 "provider": {"type": "python", "module": "probes.network",
                              "func": "link_traffic"}}


def test_a_fault_off_the_services_path_makes_method_misses_inconclusive() -> None:
    journal = passing_journal()
    journal["experiment"]["method"].insert(0, LINK_EVIDENCE)
    journal["run"].insert(0, _run(LINK_EVIDENCE, output=0.0))
    journal["run"][-1]["output"] = 5.0  # p95 out of range, but the fault never landed
    verdict = judge(journal)
    assert verdict.kind == "INCONCLUSIVE", verdict.shown
    assert verdict.shown[0].startswith("the fault left no evidence that it took effect: "
                                       "link-carries-broker-calls returned 0.0")
    assert verdict.shown[1].startswith("not judged, as the fault did not land: method: "
                                       "p95-during returned 5.0")


def test_with_evidence_a_method_miss_fails() -> None:
    journal = passing_journal()
    journal["experiment"]["method"].insert(0, LINK_EVIDENCE)
    journal["run"].insert(0, _run(LINK_EVIDENCE, output=52000.0))
    journal["run"][-1]["output"] = 5.0
    verdict = judge(journal)
    assert verdict.kind == "FAIL" and verdict.reasons[0].startswith("method: p95-during")


# A starved machine (gameday.measurements.machine): a failed baseline is set aside.
STARVED = MachineLoad(20.0, 2, 1.98, 0.6, 1.38, 0.7).as_json()
QUIET = MachineLoad(20.0, 2, 0.9, 0.85, 0.05, 0.2).as_json()


def _failed_baseline(machine: dict[str, Any]) -> dict[str, Any]:
    journal = passing_journal()
    journal.update(status="failed", run=[], rollbacks=[_run(ROLLBACK)])
    journal["steady_states"] = {"before": _state(False, output=False), "after": None,
                                "during": []}
    journal["extensions"][0]["machine"] = {"cores": 2, **machine}
    return journal


def test_a_baseline_failed_on_a_starved_machine_is_inconclusive_naming_the_figures() -> None:
    verdict = judge(_failed_baseline({"baseline": STARVED}))
    assert verdict.kind == "INCONCLUSIVE", verdict.shown
    assert verdict.shown[0].startswith("the machine was starved before any fault: other "
                                       "processes than the lab's and gameday's took 1.38 of "
                                       "the machine's 2 cores")
    assert "ours waited for a CPU 70% of the time they could run" in verdict.shown[0]
    assert any(r.startswith("not judged, as the machine was starved: baseline (before): ")
               for r in verdict.shown), verdict.shown


def test_a_baseline_failed_on_a_quiet_machine_fails() -> None:
    verdict = judge(_failed_baseline({"baseline": QUIET}))
    assert verdict.kind == "FAIL"
    assert not any("starved" in r for r in verdict.reasons), verdict.reasons
    assert judge(_failed_baseline({})).kind == "FAIL"  # not sampled: nothing claimed


def test_the_bounds_are_configuration() -> None:
    journal = _failed_baseline({"baseline": STARVED})
    assert judge(journal, {"machine_others_share_max": 0.8}).kind == "FAIL"
    assert judge(journal, {"machine_busy_share_max": 0.995}).kind == "FAIL"


def test_starvation_never_excuses_what_is_broken_whatever_the_machine() -> None:
    verdict = judge(_failed_baseline({"baseline": STARVED}), leftovers=["link cut"])
    assert verdict.kind == "FAIL"
    assert "left injected after the run: link cut" in verdict.reasons


def test_a_failure_during_a_starved_fault_stays_a_failure_with_the_figures() -> None:
    journal = passing_journal()
    journal["run"][1] = _run(journal["run"][1]["activity"], output=2.5)  # p95 over its bound
    journal["extensions"][0]["machine"] = {"cores": 2, "method": STARVED, "baseline": QUIET}
    verdict = judge(journal)
    assert verdict.kind == "FAIL"
    assert verdict.reasons[-1].startswith("note: the machine was starved during the fault: ")
    journal["extensions"][0]["machine"]["method"] = QUIET
    assert not any(r.startswith("note:") for r in judge(journal).reasons)


def test_a_pass_on_a_starved_machine_stays_a_pass() -> None:
    journal = passing_journal()
    journal["extensions"][0]["machine"] = {"cores": 2, "method": STARVED, "baseline": STARVED}
    assert judge(journal).kind == "PASS"


def test_a_journal_read_back_gives_the_verdict_its_run_recorded() -> None:
    journal = passing_journal()
    journal["run"][1]["output"] = 0.5  # p95 0.5 s: within the experiment's 1 s
    run_verdict = judge(journal, {"p95_max": 0.2}, leftovers=["partition service-broker"])
    assert run_verdict.kind == "FAIL"
    assert journal_verdict(journal).kind == "PASS"  # the journal alone: its own 1 s bound
    journal.setdefault("extensions", []).append(run_record(run_verdict, {"p95_max": 0.2}))
    assert journal_verdict(journal) == run_verdict
    assert recorded_verdict(passing_journal()) is None


def test_a_plain_chaos_run_journal_needs_its_traffic_control_mark() -> None:
    journal = passing_journal()
    journal["experiment"]["controls"] = [{"name": "gameday-traffic", "provider": {
        "type": "python", "module": "controls.traffic"}}]
    assert journal_verdict(journal).kind == "PASS"
    journal["extensions"] = []  # Chaos Toolkit skipped the control: it left no mark
    verdict = journal_verdict(journal)
    assert verdict.kind == "FAIL"
    assert any("control gameday-traffic left no mark" in r for r in verdict.reasons)
