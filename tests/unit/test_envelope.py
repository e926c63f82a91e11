"""The envelope (pure): which value to measure next, and where each property changes."""

from __future__ import annotations

import pytest

from gameday.contract import ConfigError
from gameday.engine.envelope import (
    PARAMETERS,
    Knee,
    Step,
    capacity_agreement,
    knees,
    next_value,
    parse_range,
)
from gameday.measurements.sla import SlaTargets

SLA = SlaTargets()
LATENCY = PARAMETERS["broker-latency"]


def _service(value: float, timeout_s: float = 0.8) -> Step:
    """A service whose broker calls time out above ``timeout_s``: then every order fails
    and the breakers open."""
    if value < timeout_s:
        return Step(value, 1.0, 0.0, value, value + 0.05, value + 0.08, 1000, 0)
    return Step(value, 0.0, 1.0, 0.003, 0.006, 0.02, 1000, 3)


def _sweep(low: float, high: float, resolution: float, timeout_s: float) -> list[Step]:
    steps: list[Step] = []
    while (value := next_value(steps, low, high, resolution, SLA)) is not None:
        steps.append(_service(value, timeout_s))
        assert len(steps) < 50, "the sweep must end"
    return steps


def test_coarse_grid_first_then_bisection_to_the_resolution() -> None:
    steps = _sweep(0.2, 1.6, 0.05, 0.8)
    assert [round(s.value, 3) for s in steps[:5]] == [0.2, 0.55, 0.9, 1.25, 1.6]
    assert len(steps) <= 5 + 3, "bisecting a 0.35 gap to 0.05 takes 3 steps"
    found = {k.property: k for k in knees(steps, SLA)}
    for name in ("sla", "orders_ok", "breaker_closed"):
        assert found[name].value is not None and found[name].uncertainty is not None
        assert abs(found[name].value - 0.8) <= found[name].uncertainty <= 0.025


@pytest.mark.parametrize("timeout_s", [0.3, 0.45, 1.1])
def test_the_knee_follows_the_timeout(timeout_s: float) -> None:
    found = {k.property: k for k in knees(_sweep(0.1, 1.5, 0.02, timeout_s), SLA)}
    orders = found["orders_ok"].value
    assert orders is not None and abs(orders - timeout_s) <= 0.01 + 1e-9
    # the SLA breaks at the timeout, or earlier where p95 (value + 0.05 s) passes 1 s
    sla = found["sla"].value
    assert sla is not None and abs(sla - min(timeout_s, 0.95)) <= 0.01 + 1e-9


def test_a_property_that_never_changes_says_whether_it_held() -> None:
    steps = _sweep(0.1, 0.5, 0.05, 0.8)
    assert len(steps) == 5, "nothing changes: the coarse grid is enough"
    assert all(k.value is None and k.holds for k in knees(steps, SLA))
    broken = [_service(v, 0.0) for v in (0.1, 0.2)]
    assert all(k.value is None and not k.holds for k in knees(broken, SLA))


def test_a_slow_but_correct_service_breaks_the_sla_before_the_orders() -> None:
    steps = [Step(v, 1.0, 0.0, v, v * 1.2, v * 1.3, 500, 0) for v in (0.5, 0.8, 0.9, 1.0)]
    found = {k.property: k for k in knees(steps, SLA)}
    assert found["sla"].value == pytest.approx(0.85)  # p95 0.96 s holds, 1.08 s does not
    assert found["orders_ok"].value is None and found["orders_ok"].holds


def test_the_fault_a_value_sets() -> None:
    assert LATENCY.fault(0.725) == {"mode": "slow", "latency_ms": 725.0}
    assert PARAMETERS["broker-errors"].fault(0.3) == {"mode": "error", "probability": 0.3}


@pytest.mark.parametrize(("text", "message"), [
    ("1", "write LO:HI in s"), ("a:b", "write LO:HI in s"), ("1:0.5", "need 0 <= LO < HI"),
    ("-1:2", "need 0 <= LO < HI")])
def test_a_bad_range_is_refused(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_range(text, LATENCY)
    assert parse_range("0.1:1.5", LATENCY) == (0.1, 1.5)
    with pytest.raises(ConfigError, match="a share of calls is at most 1"):
        parse_range("0:2", PARAMETERS["broker-errors"])


def test_a_step_whose_orders_started_late_is_starved() -> None:
    assert Step(0.1, 1, 0, 0.1, 0.1, 0.1, 100, 0, late_share=0.11).starved
    assert not Step(0.1, 1, 0, 0.1, 0.1, 0.1, 100, 0, late_share=0.1).starved


def test_the_rate_is_a_parameter_without_a_fault() -> None:
    rate = PARAMETERS["rate"]
    assert rate.is_rate and not LATENCY.is_rate
    assert parse_range("100:1500", rate) == (100.0, 1500.0)


@pytest.mark.parametrize(("knee", "highest", "runs", "agrees", "why"), [
    (Knee("sla", 875.0, 25.0, False), 850.0, {500: True, 750: True, 1000: False}, True,
     "every fixed run agrees with a capacity of 875 ± 50"),
    (Knee("sla", 600.0, 25.0, False), 575.0, {500: True, 750: True, 1000: False}, False,
     "the SLA held at 750 orders/s in a fixed run, above the capacity explore found (600"),
    (Knee("sla", 1100.0, 25.0, False), 1075.0, {500: True, 750: True, 1000: False}, False,
     "the SLA failed at 1000 orders/s in a fixed run, below the capacity explore found"),
    (Knee("sla", None, None, True), 1200.0, {500: True, 750: True, 1000: True}, True,
     "every fixed run agrees with a capacity of 1200"),
    (Knee("sla", None, None, True), 1200.0, {500: True, 1000: False}, False,
     "the SLA failed at 1000 orders/s"),
    (Knee("sla", None, None, False), None, {500: True}, False, "no rate at which the SLA held"),
    (Knee("sla", 760.0, 120.0, False), 640.0, {500: True, 750: True, 1000: False}, True,
     "± 120 orders/s"),
])
def test_an_explored_capacity_agrees_with_fixed_runs_within_the_margin(
        knee: Knee, highest: float | None, runs: dict[float, bool], agrees: bool,
        why: str) -> None:
    result = capacity_agreement(knee, highest, runs, margin=50.0)
    assert result[0] is agrees
    assert why in result[1]
