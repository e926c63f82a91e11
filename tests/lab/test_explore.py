"""``gameday explore broker-latency`` on the reference lab: orders start to fail where the
broker's latency reaches the service's broker timeout, and the knee moves with it.

Tolerance: an order fails when the broker's whole answer time (the added latency plus
the simulator's normal latency) passes the timeout, and one failed call per replica
opens its breaker (then every order fails fast). So the knee lies at most the normal
latency's p99 (measured at the sweep's lowest step, less that step's added value) plus
the resolution below the timeout, and at most the resolution above it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from support.labs import ROOT, PortBases, RunningLab, lab_env

RESOLUTION_S = 0.05


def _sweep(lab: RunningLab) -> dict[str, object]:
    result = lab.gameday("explore", "broker-latency", "--range", "0.1:1.3", "--resolution",
                         str(RESOLUTION_S), "--hold-s", "5", "--budget-min", "4", "--json",
                         timeout_s=400)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    explored = Path(lab.env["GAMEDAY_RUN_DIR"]) / "explore"
    page = max(explored.glob("explore-broker-latency-*.html"), key=lambda p: p.stat().st_mtime)
    assert "<h1>Envelope: broker-latency</h1>" in page.read_text()
    assert "explore-broker-latency" in (explored / "history.jsonl").read_text()
    return dict(json.loads(result.stdout))


def _assert_knee_near(sweep: dict[str, object], timeout_s: float) -> None:
    steps = sweep["steps"]
    knees = {k["property"]: k for k in sweep["knees"]}  # type: ignore[union-attr]
    lowest = steps[0]  # type: ignore[index]
    normal_p99_s = lowest["p99_s"] - lowest["value"]
    orders = knees["orders_ok"]
    assert orders["value"] is not None, sweep
    assert orders["uncertainty"] <= RESOLUTION_S, sweep
    # The first order fails once the added latency plus that call's own latency passes
    # the timeout: the slowest of the ~1,000 calls of a step, well beyond the normal p99
    # when another lab shares the 2 cores (seen: knee 0.644 s for the 0.8 s timeout with
    # p99 85 ms). So the knee lies within the slowest normal call (taken as 3 x p99, at
    # least 0.15 s) below the timeout, and never above it (beyond the resolution); the
    # 0.4 s and 0.8 s timeouts' windows still do not overlap.
    slowest_s = max(3 * normal_p99_s, 0.15)
    assert timeout_s - slowest_s - RESOLUTION_S <= orders["value"] \
        <= timeout_s + RESOLUTION_S, (timeout_s, normal_p99_s, sweep)
    assert knees["breaker_closed"]["value"] is not None, "the failures must open the breakers"
    assert sweep["stopped"] == "every knee found to the resolution", sweep


def test_the_knee_is_at_the_broker_timeout(lab: RunningLab) -> None:
    _assert_knee_near(_sweep(lab), 0.8)


def test_with_half_the_timeout_the_knee_moves(tmp_path: Path, port_bases: PortBases) -> None:
    spec = yaml.safe_load((ROOT / "lab" / "service" / "service.yaml").read_text())
    spec.update(name="reference-fast-timeout", workdir=str(ROOT),
                command=[*spec["command"], "--timeout-s", "0.4"])
    (tmp_path / "service.yaml").write_text(yaml.safe_dump(spec))
    env = lab_env(tmp_path / "state", port_bases.take(), tmp_path / "reports")
    lab = RunningLab(env, tmp_path / "state")
    up = lab.gameday("lab", "up", "--service", str(tmp_path / "service.yaml"), timeout_s=120)
    assert up.returncode == 0, up.stdout + up.stderr
    try:
        _assert_knee_near(_sweep(lab), 0.4)
    finally:
        lab.gameday("lab", "down", timeout_s=60)


@pytest.mark.parametrize(("args", "message"), [
    (["broker-latency", "--range", "2:1"], "--range '2:1': need 0 <= LO < HI"),
    (["broker-latency", "--hold-s", "1"], "--hold-s 1"),
    (["broker-lag"], "invalid choice: 'broker-lag'"),
])
def test_bad_explore_input_is_refused(lab: RunningLab, args: list[str], message: str) -> None:
    result = lab.gameday("explore", *args)
    assert result.returncode == 2 and message in result.stderr, result.stderr


def test_the_capacity_is_found_or_bounded(lab: RunningLab) -> None:
    """``explore rate``: the SLA holds at the catalog's 200 orders/s and beyond; where it
    stops holding (or where this 2-core machine starves first, exit 4) is reported."""
    result = lab.gameday("explore", "rate", "--range", "100:700", "--resolution", "100",
                         "--hold-s", "4", "--budget-min", "4", timeout_s=400)
    assert result.returncode in (0, 4), result.stdout[-3000:] + result.stderr[-3000:]
    held = [float(line.split()[1]) for line in result.stdout.splitlines()
            if line.startswith("rate ") and "sla=yes" in line and "starved" not in line]
    assert held and max(held) >= 300, result.stdout
    assert "capacity: " in result.stdout and "x the SLA's 100 orders/s floor" in result.stdout


def test_pairs_within_a_budget_prune_and_say_why(lab: RunningLab) -> None:
    result = lab.gameday("explore", "pairs", "--hold-s", "5", "--budget-min", "3", "--json",
                         timeout_s=400)
    assert result.returncode in (0, 1), result.stdout[-3000:] + result.stderr[-3000:]
    found = json.loads(result.stdout)
    assert [s["faults"][0] for s in found["singles"]] == [
        "broker-down", "broker-slow", "broker-errors", "broker-flapping", "replica-partition",
        "pod-kill"]
    assert found["pairs"], "some pairs ran within the budget"
    why = {tuple(s["faults"]): s["why"] for s in found["skipped"]}
    assert why[("broker-slow", "broker-errors")].startswith("both set the broker simulator")
    assert why[("broker-down", "broker-slow")].startswith("the same as broker-down alone")
    assert found["duration_s"] <= 3 * 60 + 60, "the budget bounds the run"
    assert (result.returncode == 1) == bool(found["findings"])
    doctor = lab.gameday("lab", "doctor")
    assert doctor.returncode == 0 and "nothing is injected" in doctor.stdout, doctor.stdout
