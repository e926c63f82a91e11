"""`gameday plan` / `gameday run --dry-run`: the plan of a run, from the files alone.

These run in the unit tier, where opening a socket or starting a process fails the
test: so the plan provably touches no target and injects nothing.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from support.labs import ROOT

from gameday.cli.main import main
from gameday.engine.plan import ExperimentPlan, plan_of, render, total_s
from gameday.engine.runner import load_experiment, select


@pytest.fixture(autouse=True)
def _in_the_repository(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("GAMEDAY_LAB_DIR", str(tmp_path / "no-lab"))
    monkeypatch.setenv("GAMEDAY_TARGET", "lab")


def test_a_plan_lists_each_fault_in_order_with_its_blast_radius() -> None:
    plan = plan_of(Path("experiments/broker-down.yaml"), {})
    assert [(s.kind, s.name) for s in plan.steps][:4] == [
        ("action", "take-broker-link-down"), ("probe", "breaker-opened-within-bound"),
        ("probe", "time-to-trip"), ("probe", "broker-link-carries-the-service-traffic")]
    assert plan.steps[0].blast == "the link to the broker, for every replica (all orders)"
    assert [s.kind for s in plan.steps].count("undo") == 1
    assert plan.traffic == "200 orders/s, warm-up 12 s"
    assert plan.safeguard == "interrupt when fewer than 2 replicas are ready"
    assert plan.bounds["breaker_open_within_s"] == 5
    assert plan.estimate_s == 12 + 10 + 8 + 11 + 5
    assert plan.waits_up_to_s == 5 + 20


def test_var_values_reach_the_arguments_pauses_and_bounds() -> None:
    plan = plan_of(Path("experiments/pod-kill-majority.yaml"),
                   {"sla_window_s": 20, "safeguard_min_ready": 1})
    assert plan.bounds["sla_window_s"] == 20
    assert plan.safeguard == "interrupt when fewer than 1 replicas are ready"
    assert plan.steps[0].blast == "2 of 3 replicas killed"
    partition = plan_of(Path("experiments/replica-partition.yaml"), {})
    assert partition.steps[0].blast == "lb-replica-2: 1 of 3 replicas (about 1/3 of the orders)"


def test_the_whole_catalog_plans_without_touching_anything(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan"]) == 0
    out = capsys.readouterr().out
    names = [p.stem for p in (ROOT / "experiments").glob("*.yaml")]
    assert all(f"\n{name} — " in f"\n{out}" for name in names)
    assert out.rstrip().endswith("nothing was injected (dry run)")
    assert main(["run", "--dry-run", "--tag", "pods"]) == 0
    dry = capsys.readouterr().out
    assert "pod-kill-majority — " in dry and "broker-down — " not in dry


def test_a_bad_experiment_in_the_set_exits_2_naming_the_problem(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text((ROOT / "experiments" / "broker-down.yaml").read_text(encoding="utf-8")
                   .replace("func: partition\n      arguments:\n        link: service-broker",
                            "func: partition\n      arguments:\n        link: nowhere", 1),
                   encoding="utf-8")
    assert main(["plan", "experiments/pod-kill.yaml", str(bad)]) == 2
    captured = capsys.readouterr()
    assert "nowhere" in captured.err and captured.out == ""


def test_one_shared_load_warms_up_once() -> None:
    plans = [plan_of(Path(f"experiments/{name}.yaml"), {})
             for name in ("pod-kill", "broker-down")]
    low, high = total_s(plans)
    assert low == plans[0].estimate_s + plans[1].estimate_s - plans[1].warmup_s
    assert high == low + sum(p.waits_up_to_s for p in plans)
    assert total_s(plans[:1]) == (plans[0].estimate_s,
                                  plans[0].estimate_s + plans[0].waits_up_to_s)


def test_a_broker_faults_blast_radius_is_its_share_of_the_orders() -> None:
    errors = plan_of(Path("experiments/broker-errors.yaml"), {})
    action = next(s for s in errors.steps if s.kind == "action")
    assert action.blast == "the broker API, for every replica (about 50% of the orders)"
    slow = plan_of(Path("experiments/broker-slow.yaml"), {})
    assert next(s for s in slow.steps if s.kind == "action").blast.endswith("(all orders)")


FULL_BOUND_S = 900  # README, "What you see": the full game day within 15 minutes
QUICK_BOUND_S = 300  # ... and the quick one (tag `quick`) within 5 minutes
README = ROOT / "README.md"
FAMILIES = {"pods", "network", "broker", "orders", "gray"}


def _plans(*tags: str) -> list[ExperimentPlan]:
    return [plan_of(path, {}) for path in select((), tags)]


def _tags(*tags: str) -> set[str]:
    """Every tag of the experiments with any of ``tags``."""
    return {tag for path in select((), tags) for tag in load_experiment(path)["tags"]}


def test_the_full_game_day_fits_in_the_readmes_bound() -> None:
    _, high = total_s(_plans())
    assert high <= FULL_BOUND_S, f"the catalog may take {high:.0f} s: split it by tags"
    assert f"within 15 minutes ({FULL_BOUND_S} s)" in " ".join(README.read_text().split())


def test_the_quick_game_day_fits_its_bound_and_keeps_every_family() -> None:
    quick = _plans("quick")
    _, high = total_s(quick)
    assert high <= QUICK_BOUND_S, f"the quick game day may take {high:.0f} s"
    assert f"within 5 minutes ({QUICK_BOUND_S} s)" in " ".join(README.read_text().split())
    missing = FAMILIES - _tags("quick")
    assert not missing, f"no quick experiment of the families {sorted(missing)}"
    assert len(quick) < len(_plans()) / 2


def test_a_gray_fault_names_its_replica_and_a_target_without_it_is_said_first() -> None:
    plan = plan_of(Path("experiments/replica-cpu-starved.yaml"), {})
    assert plan.steps[0].blast == "name=replica-2 limited to 0.015 CPU core (1 of 3 replicas)"
    assert [s.kind for s in plan.steps].count("undo") == 1
    blocked = plan_of(Path("experiments/replica-freeze.yaml"), {},
                      {"freeze": "not supported on the kubernetes target yet"})
    assert blocked.not_runnable == ("not runnable here: freeze-replica-2 needs the freeze "
                                    "fault: not supported on the kubernetes target yet",)


def test_without_traffic_the_plan_says_only_the_control_plane_cut_runs() -> None:
    why = "its nodes are kwok's fake nodes"
    pods = render([plan_of(Path("experiments/pod-kill.yaml"), {}, {}, why)])
    cut = next(line for line in pods.splitlines() if "CONTROL-PLANE CUT" in line)
    assert why in cut and "not run:" in cut and "sla-within-targets" in cut
    assert "never PASS" in cut and "traffic: none (no request reaches" in pods
    assert "NOT RUNNABLE" not in pods
    broker = render([plan_of(Path("experiments/broker-errors.yaml"), {}, {}, why)])
    assert "NOT RUNNABLE" in broker and "CONTROL-PLANE CUT" not in broker
    assert "CONTROL-PLANE CUT" not in render([plan_of(Path("experiments/pod-kill.yaml"), {})])
