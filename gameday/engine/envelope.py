"""The resilience envelope (pure): which fault parameter values a service holds under,
and where each property changes (``gameday explore``).

A sweep measures *steps*: the fault held at one value of a parameter (the broker's added
latency, the share of broker calls that fail...) on shared traffic, with the client-side
figures of that window. Three properties are judged at each step:

- ``sla``: the SLA held (availability, p95, error rate within their bounds);
- ``orders_ok``: no order failed (client error rate 0: every order filled or rejected);
- ``breaker_closed``: no replica's breaker opened.

The *knee* of a property is where it changes: between the highest value where it held
and the lowest where it did not, reported as the midpoint ± half the gap. The sweep is
adaptive: a coarse grid first, then bisection of every gap where a property changes,
until each knee is known to the resolution asked for or the budget is spent.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gameday.contract import ConfigError
from gameday.measurements.sla import SlaTargets

__all__ = ["PARAMETERS", "PROPERTIES", "Knee", "Parameter", "Step", "capacity_agreement",
           "knees", "next_value", "parse_range"]

PROPERTIES = ("sla", "orders_ok", "breaker_closed")
COARSE_STEPS = 5
LATE_SHARE_MAX = 0.10  # as the verdict's load_late_share_max


@dataclass(frozen=True)
class Parameter:
    """A fault parameter the explorer sweeps: its unit, default range and resolution,
    and the broker simulator mode that applies a value."""

    name: str
    unit: str
    low: float
    high: float
    resolution: float
    mode: str = ""
    field: str = ""
    scale: float = 1.0

    @property
    def is_rate(self) -> bool:
        """The parameter is the load's own rate (no fault: each step runs its own load)."""
        return not self.mode

    def fault(self, value: float) -> dict[str, Any]:
        """The broker simulator mode that holds this parameter at ``value``."""
        return {"mode": self.mode, self.field: round(value * self.scale, 6)}


PARAMETERS: Mapping[str, Parameter] = {
    "broker-latency": Parameter("broker-latency", "s", 0.1, 2.0, 0.05, "slow", "latency_ms",
                                1000.0),
    "broker-errors": Parameter("broker-errors", "share of calls", 0.0, 1.0, 0.05, "error",
                               "probability"),
    "rate": Parameter("rate", "orders/s", 100.0, 1500.0, 50.0),
}


@dataclass(frozen=True)
class Step:
    """One value held, and what the clients and the breakers showed meanwhile."""

    value: float
    availability: float
    error_rate: float
    p50_s: float
    p95_s: float
    p99_s: float
    sent: int
    breakers_open: int
    late_share: float = 0.0

    @property
    def starved(self) -> bool:
        """Too many orders started late: the machine, not the service, was measured."""
        return self.late_share > LATE_SHARE_MAX

    def holds(self, sla: SlaTargets) -> dict[str, bool]:
        """Each property at this step."""
        return {
            "sla": self.availability >= sla.availability_min
            and self.p95_s <= sla.p95_latency_max_s and self.error_rate <= sla.error_rate_max,
            "orders_ok": self.error_rate == 0,
            "breaker_closed": self.breakers_open == 0,
        }


@dataclass(frozen=True)
class Knee:
    """Where a property changes: ``value`` ± ``uncertainty`` (None when it never changed in
    the range: ``holds`` says whether it held throughout)."""

    property: str
    value: float | None
    uncertainty: float | None
    holds: bool

    def as_json(self) -> dict[str, Any]:
        """Plain JSON."""
        return {"property": self.property, "value": self.value,
                "uncertainty": self.uncertainty, "holds_throughout": self.holds}


def parse_range(text: str, parameter: Parameter) -> tuple[float, float]:
    """``LO:HI`` in the parameter's unit; ConfigError naming what is wrong."""
    parts = text.split(":")
    try:
        low, high = (float(part) for part in parts)
    except ValueError:
        raise ConfigError(f"--range {text!r}: write LO:HI in {parameter.unit}, e.g. "
                          f"{parameter.low:g}:{parameter.high:g}") from None
    if not 0 <= low < high:
        raise ConfigError(f"--range {text!r}: need 0 <= LO < HI")
    if parameter.unit == "share of calls" and high > 1:
        raise ConfigError(f"--range {text!r}: a share of calls is at most 1")
    return low, high


def _changes(steps: Sequence[Step], sla: SlaTargets) -> list[tuple[Step, Step]]:
    """Neighbouring steps (by value) between which some property changes."""
    ordered = sorted(steps, key=lambda s: s.value)
    return [(a, b) for a, b in itertools.pairwise(ordered)
            if a.holds(sla) != b.holds(sla)]


def next_value(steps: Sequence[Step], low: float, high: float, resolution: float,
               sla: SlaTargets) -> float | None:
    """The next value to measure: the coarse grid first, then the middle of the widest gap
    where a property changes; None when every knee is known to ``resolution``."""
    done = {round(s.value, 9) for s in steps}
    for index in range(COARSE_STEPS):
        value = low + (high - low) * index / (COARSE_STEPS - 1)
        if round(value, 9) not in done:
            return value
    gaps = [(b.value - a.value, a, b) for a, b in _changes(steps, sla)
            if b.value - a.value > resolution]
    if not gaps:
        return None
    _, a, b = max(gaps, key=lambda gap: gap[0])
    return (a.value + b.value) / 2


def knees(steps: Sequence[Step], sla: SlaTargets) -> list[Knee]:
    """Each property's knee: the first change from holding to not, going up the range."""
    ordered = sorted(steps, key=lambda s: s.value)
    found = []
    for name in PROPERTIES:
        held = [s.holds(sla)[name] for s in ordered]
        change = next((i for i in range(1, len(held)) if held[i - 1] and not held[i]), None)
        if change is None:
            found.append(Knee(name, None, None, bool(held) and all(held)))
            continue
        a, b = ordered[change - 1].value, ordered[change].value
        found.append(Knee(name, (a + b) / 2, (b - a) / 2, False))
    return found


def capacity_agreement(sla_knee: Knee, highest_held: float | None,
                       fixed_runs: Mapping[float, bool], margin: float) -> tuple[bool, str]:
    """Whether a capacity found by ``explore rate`` agrees with fixed-rate runs of the same
    lab (``make bench``: rate -> the SLA held), and why (pure).

    ``sla_knee`` is the sweep's SLA knee; when the SLA held over the whole range,
    ``highest_held`` is the highest rate it held at. They agree when no fixed rate that
    held lies above the capacity, and none that failed lies below it, beyond ``margin``
    (orders/s; at least the knee's own uncertainty)."""
    if sla_knee.value is None and highest_held is None:
        return False, "explore found no rate at which the SLA held"
    low = sla_knee.value if sla_knee.value is not None else highest_held
    assert low is not None
    slack = max(margin, sla_knee.uncertainty or 0.0)
    high = low if sla_knee.value is not None else float("inf")
    above = sorted(r for r, held in fixed_runs.items() if held and r > high + slack)
    below = sorted(r for r, held in fixed_runs.items() if not held and r < low - slack)
    if above:
        return False, (f"the SLA held at {above[0]:g} orders/s in a fixed run, above the "
                       f"capacity explore found ({low:.0f} ± {slack:.0f})")
    if below:
        return False, (f"the SLA failed at {below[-1]:g} orders/s in a fixed run, below the "
                       f"capacity explore found ({low:.0f} ± {slack:.0f})")
    return True, f"every fixed run agrees with a capacity of {low:.0f} ± {slack:.0f} orders/s"
