"""The control-plane cut of the catalog's experiments (gameday.engine.controlplane): what
a target without traffic (kwok's fake nodes) runs of each, and the verdict it gets."""

from __future__ import annotations

from pathlib import Path

from gameday.engine.controlplane import (
    HELD,
    control_plane_cut,
    control_plane_verdict,
    modules,
)
from gameday.engine.runner import load_experiment
from gameday.engine.verdict import Verdict

WHY = "no traffic here"


def test_pod_kill_keeps_its_kills_and_the_probes_the_api_server_answers() -> None:
    cut = control_plane_cut(load_experiment(Path("experiments/pod-kill.yaml")), WHY)
    assert cut.blocked == ()
    method = cut.experiment["method"]
    assert [a["name"] for a in method] == ["kill-replica-1", "kill-replica-2",
                                           "kill-replica-3", "the-kills-landed",
                                           "every-replica-ready-again"]
    assert method[2]["pauses"] == {"after": "${ready_within_s}"}  # the bound stays
    assert [c["name"] for c in cut.experiment["controls"]] == ["safeguards"]
    probes = cut.experiment["steady-state-hypothesis"]["probes"]
    assert [(p["provider"]["module"], p["provider"]["func"]) for p in probes] == [
        ("probes.replicas", "ready_count")]
    assert probes[0]["tolerance"]["range"] == [3, 3]  # a number: Chaos Toolkit wants one
    assert cut.skipped == (
        "not runnable here: no traffic here; not run: steady-state probes "
        "sla-within-targets, every-breaker-closed; method probes sla-held-through-the-kills, "
        "sla-held-through-the-kills-client-side; controls gameday-traffic",)
    assert not {"probes.sla", "probes.breaker", "controls.traffic"} & set(
        modules(cut.experiment))


def test_a_broker_fault_needs_traffic_and_is_not_run() -> None:
    cut = control_plane_cut(load_experiment(Path("experiments/broker-errors.yaml")), WHY)
    assert cut.blocked and all(b.startswith("not runnable here: action ") and
                               b.endswith("needs traffic through the service: no traffic here")
                               for b in cut.blocked), cut.blocked


def test_a_steady_state_of_traffic_without_a_replica_count_is_not_run() -> None:
    sla = {"type": "probe", "name": "sla", "provider": {"type": "python",
                                                        "module": "probes.sla"}}
    kill = {"type": "action", "name": "kill", "provider": {"type": "python",
                                                           "module": "actions.pods"}}
    experiment = {"steady-state-hypothesis": {"title": "t", "probes": [sla]}, "method": [kill]}
    assert control_plane_cut(experiment, WHY).blocked == (
        "not runnable here: its steady state needs traffic through the service and it "
        "names no `replicas` count to check instead: no traffic here",)


def test_a_cut_that_held_is_inconclusive_never_pass_and_one_that_failed_fails() -> None:
    cut = control_plane_cut(load_experiment(Path("experiments/pod-kill-majority.yaml")), WHY)
    held = control_plane_verdict(Verdict("t"), cut)
    assert held.kind == "INCONCLUSIVE" and held.shown == (HELD, *cut.skipped)
    failed = control_plane_verdict(Verdict("t", reasons=("method: not ready",)), cut)
    assert failed.kind == "FAIL" and failed.shown == ("method: not ready",)
    missed = control_plane_verdict(Verdict("t", inconclusive=("no evidence",)), cut)
    assert missed.shown == ("no evidence", *cut.skipped)
