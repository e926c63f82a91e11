"""Where a game day is (phase from the Chaos Toolkit log, active faults), the metrics a
run serves, and the shipped Grafana dashboard (pure)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from gameday.engine.exporter import RunCollector
from gameday.engine.status import RunStatus, active_faults, phase_of
from gameday.faults.record import InjectionLog
from gameday.report.dashboard import dashboard, panels

ROOT = Path(__file__).resolve().parents[2]
LOG = [
    "[INFO] [run:440] Running experiment: x",
    "[INFO] [hypothesis:205] Steady state hypothesis: The SLA holds",
    "[INFO] [run:778] Playing your experiment's method now...",
    "[INFO] [hypothesis:205] Steady state hypothesis: The SLA holds",
    "[INFO] [run:1072] Let's rollback...",
    "[INFO] [run:598] Experiment ended with status: completed",
]


@pytest.mark.parametrize(("lines", "phase"), [
    (1, "warm-up"), (2, "baseline"), (3, "method"), (4, "after"), (5, "rollback"),
    (6, "ended")])
def test_the_phase_follows_the_chaos_log(lines: int, phase: str) -> None:
    assert phase_of("\n".join(LOG[:lines])) == phase


def test_a_failed_baseline_goes_straight_to_rollback_and_end() -> None:
    assert phase_of("\n".join([LOG[0], LOG[1], LOG[4]])) == "rollback"


def test_active_faults_name_what_they_hit(tmp_path: Path) -> None:
    log = InjectionLog(tmp_path)
    log.record("partition", {"link": "service-broker"})
    log.record("broker", {"mode": "slow", "latency_ms": 2000})
    undone = log.record("degrade", {"link": "lb-replica-2", "toxic": {}})
    log.record("kill", {"selector": "replica", "qty": 1}, undoable=False)
    log.resolve(lambda i: i.id == undone.id)
    assert [(f.kind, f.target) for f in active_faults(log.pending())] == [
        ("partition", "service-broker"), ("broker", "slow")]


def _scrape(collector: RunCollector) -> str:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return generate_latest(registry).decode()


def test_the_run_metrics_show_faults_phase_and_verdicts(tmp_path: Path) -> None:
    status = RunStatus("lab", "reference", tmp_path / "reports", run_started_unix=0.0)
    log = InjectionLog(tmp_path / "state")
    log.record("partition", {"link": "service-broker"})
    log.record("kill", {"selector": "replica", "qty": 1}, undoable=False)
    status.begin(Path("experiments/broker-down.yaml"))
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "broker-down-20261202T100000.chaos.log").write_text(
        "\n".join(LOG[:3]))
    text = _scrape(RunCollector(status, lambda: log))
    assert 'gameday_run_info{service="reference",target="lab"} 1.0' in text
    assert ('gameday_fault_active{experiment="broker-down",fault="partition",'
            'target="service-broker"} 1.0') in text
    assert 'gameday_faults_injected_total{fault="kill"} 1.0' in text
    assert 'gameday_experiment_phase{experiment="broker-down",phase="method"} 1.0' in text
    status.finish("FAIL")
    text = _scrape(RunCollector(status, lambda: log))
    assert 'gameday_experiments_total{verdict="FAIL"} 1.0' in text
    assert "gameday_experiment_phase{" not in text, "no phase between experiments"


def test_faults_from_before_the_run_are_not_counted(tmp_path: Path) -> None:
    log = InjectionLog(tmp_path)
    log.record("kill", {"selector": "replica", "qty": 1}, undoable=False)
    status = RunStatus("lab", "reference", tmp_path)
    assert "gameday_faults_injected_total{" not in _scrape(RunCollector(status, lambda: log))


def test_the_shipped_dashboard_is_the_one_made_from_the_contract() -> None:
    shipped = json.loads((ROOT / "deploy" / "grafana" / "gameday.json").read_text())
    assert shipped == json.loads(json.dumps(dashboard())), \
        "run: python -m gameday.report.dashboard > deploy/grafana/gameday.json"
    exprs = [t["expr"] for p in shipped["panels"] for t in p["targets"]]
    assert exprs == [p.expr for p in panels()] and len(set(exprs)) == len(exprs)
    assert [a["expr"] for a in shipped["annotations"]["list"]] == [
        "gameday_fault_active == 1", "gameday_experiment_phase == 1"]


def test_sla_bounds_are_the_panels_thresholds() -> None:
    shipped = dashboard()
    steps = {p["title"]: p["fieldConfig"]["defaults"]["thresholds"]["steps"]
             for p in shipped["panels"]}
    assert steps["p95 latency (30 s)"][-1] == {"color": "red", "value": 1.0}
    assert steps["Availability (30 s)"][-1] == {"color": "green", "value": 0.995}
    assert steps["Throughput"][-1] == {"color": "green", "value": 100.0}
