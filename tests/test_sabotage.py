"""Each experiment catches the failure it is about: against a deliberately broken lab
(breaker disabled, no health checks, no idempotency) it fails with the right reason."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import LAB_PORT_BASE, RunningLab, lab_env

from lab.layout import LayoutError
from lab.sabotage import Sabotage

SABOTAGE = "no-breaker,no-health-checks,no-idempotency"


@pytest.fixture(scope="module")
def broken_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningLab]:
    base = tmp_path_factory.mktemp("broken")
    env = {**lab_env(base / "state", LAB_PORT_BASE + 2000, base / "reports"),
           "GAMEDAY_LAB_SABOTAGE": SABOTAGE}
    running = RunningLab(env, base / "state")
    up = running.gameday("lab", "up", timeout_s=120)
    assert up.returncode == 0, up.stdout + up.stderr
    assert "SABOTAGED lab" in up.stdout
    try:
        yield running
    finally:
        running.gameday("lab", "down", timeout_s=60)


def test_each_experiment_catches_its_failure(broken_lab: RunningLab, tmp_path: Path) -> None:
    result = broken_lab.gameday(
        "run", "experiments/broker-down.yaml", "experiments/replica-partition.yaml",
        "experiments/pod-kill-majority.yaml", "experiments/broker-errors.yaml",
        "--reports", str(tmp_path), timeout_s=600)
    out = result.stdout
    assert result.returncode == 1, out[-3000:]
    assert "0 passed, 4 failed" in out
    # no breaker: it never opens
    assert "FAIL  experiments/broker-down.yaml" in out
    assert "method: breaker-opened-within-bound returned false" in out
    # no health checks: the cut-off replica stays in rotation
    assert "FAIL  experiments/replica-partition.yaml" in out
    assert "method: replica-2-out-of-rotation returned 3" in out
    # no idempotency: retried orders are filled twice
    assert "FAIL  experiments/pod-kill-majority.yaml" in out
    assert "method: no-order-lost-or-filled-twice returned" in out
    assert '"duplicated": 0' not in out.split("pod-kill-majority.yaml")[2]
    # no breaker, again: half the broker's answers failing must open it
    assert "FAIL  experiments/broker-errors.yaml" in out
    assert out.count("method: breaker-opened-within-bound returned false") == 2


def test_sabotage_kinds_are_checked() -> None:
    assert Sabotage.from_env({}).kinds == frozenset()
    sabotage = Sabotage.from_env({"GAMEDAY_LAB_SABOTAGE": SABOTAGE})
    assert "--failure-threshold" in sabotage.replica_args()
    assert sabotage.broker_args() == " --no-idempotency" and sabotage.server_check() == ""
    with pytest.raises(LayoutError, match="valid are no-breaker, no-health-checks"):
        Sabotage.from_env({"GAMEDAY_LAB_SABOTAGE": "no-breakers"})
