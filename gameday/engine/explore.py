"""``gameday explore PARAMETER``: sweep one fault parameter on a running lab and find
the envelope (the logic is pure, in :mod:`gameday.engine.envelope`).

One shared load runs for the whole sweep. Each step switches the broker simulator to the
parameter's value (recorded like every fault, so ``gameday cleanup`` undoes it after a
kill), holds it ``hold_s``, measures the clients' figures over that window (from the load
generator's live file) and whether any breaker opened (Prometheus), puts the broker back
and waits until every breaker is closed again, so that each step starts from a healthy
service. It stops when every knee is known to the resolution, or the budget is spent.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gameday.contract import DEFAULT_SELECTOR, METRIC_BREAKER_STATE, GamedayError, MeasurementError
from gameday.engine import traffic
from gameday.engine.envelope import Knee, Parameter, Step, knees, next_value
from gameday.engine.pairs import SINGLES, Outcome, Single, findings, plan_pairs
from gameday.faults import inject
from gameday.load.stats import merged_histogram
from gameday.measurements.breaker import BreakerView, all_in
from gameday.measurements.client_sla import client_sla, figures, read_live, seconds_between
from gameday.measurements.sla import SlaTargets
from gameday.targets import Target

__all__ = ["ExploreSettings", "PairsResult", "PairsSettings", "Sweep", "explore", "explore_pairs"]

WARMUP_S = 6.0
RECOVERY_MAX_S = 30.0
STARVED = "the machine is starved"
STOPPED = "stopped at"
RATE_WARMUP_S = 3.0
RATE_PER_WORKER = 800.0
EDGE_S = 1.0  # seconds left out at each end of a step's window (switching, lag)


@dataclass(frozen=True)
class ExploreSettings:
    """One sweep: the parameter and its range, how long each step holds, the budget."""

    parameter: Parameter
    low: float
    high: float
    resolution: float
    hold_s: float = 8.0
    budget_s: float = 600.0
    rate_rps: float = 200.0
    selector: str = DEFAULT_SELECTOR


@dataclass(frozen=True)
class Sweep:
    """What a sweep found: every step measured, the knees, and why it stopped."""

    settings: ExploreSettings
    steps: tuple[Step, ...]
    knees: tuple[Knee, ...]
    stopped: str
    duration_s: float
    started_unix: float

    @property
    def inconclusive(self) -> bool:
        """The sweep stopped short: the machine was starved, or the service did not
        recover from a step (the knees found so far are still reported)."""
        return self.stopped.startswith((STARVED, STOPPED))

    def as_json(self) -> dict[str, Any]:
        """Plain JSON (the ``--json`` output and the file next to the report)."""
        p = self.settings.parameter
        return {"parameter": p.name, "unit": p.unit, "range": [self.settings.low,
                                                               self.settings.high],
                "resolution": self.settings.resolution, "hold_s": self.settings.hold_s,
                "stopped": self.stopped, "duration_s": round(self.duration_s, 1),
                "started_unix": round(self.started_unix, 3),
                "knees": [k.as_json() for k in self.knees],
                "steps": [vars(s) for s in sorted(self.steps, key=lambda s: s.value)]}


def explore(target: Target, settings: ExploreSettings, run_dir: Path,
            say: Callable[[str], None]) -> Sweep:
    """Run the sweep on ``target`` (a lab with a broker simulator)."""
    started, started_unix = time.monotonic(), time.time()
    sla = SlaTargets()
    measure = _Measure(target, settings, run_dir,
                       BreakerView(target.prometheus(), settings.selector))
    process = None if settings.parameter.is_rate else traffic.start_shared(
        traffic.orders_of(target), settings.rate_rps, run_dir)
    steps: list[Step] = []
    stopped = "every knee found to the resolution"
    try:
        time.sleep(0 if process is None else WARMUP_S)
        while (value := next_value(steps, settings.low, settings.high, settings.resolution,
                                   sla)) is not None:
            if time.monotonic() - started + settings.hold_s + RECOVERY_MAX_S > settings.budget_s:
                stopped = f"budget of {settings.budget_s:.0f} s spent"
                break
            try:
                step = measure.step(value)
                if step.starved:  # measured again once: a passing burst of other work
                    say(_line(settings.parameter, step, sla) + "  (starved: measured again)")
                    step = measure.step(value)
            except MeasurementError as exc:
                stopped = f"{STOPPED} {value:g} {settings.parameter.unit}: {exc}"
                break
            say(_line(settings.parameter, step, sla))
            if step.starved:
                stopped = (f"{STARVED}: {step.late_share:.0%} of the orders started late at "
                           f"{value:g} {settings.parameter.unit}, so the figures measure the "
                           "machine, not the service")
                break
            steps.append(step)
    finally:
        if process is None:
            measure.stop()
        else:
            inject.broker_recover(target)
            traffic.stop_shared(process)
    return Sweep(settings, tuple(steps), tuple(knees(steps, sla)), stopped,
                 time.monotonic() - started, started_unix)


@dataclass
class _Measure:
    """Measures one step: a broker mode held on the shared load, or a load of the step's
    own rate (``rate``)."""

    target: Target
    settings: ExploreSettings
    run_dir: Path
    breakers: BreakerView
    load: subprocess.Popen[bytes] | None = None

    def step(self, value: float) -> Step:
        """Hold ``value`` for the step, measure, and come back to a healthy service."""
        if self.settings.parameter.is_rate:
            self.load = traffic.start_shared(traffic.orders_of(self.target), value,
                                             self.run_dir, _workers(value))
            time.sleep(RATE_WARMUP_S)
            _wait_closed(self.breakers)  # under load: an open breaker closes on a trial call
        start = time.time()
        if not self.settings.parameter.is_rate:
            inject.broker_fail(self.target, self.settings.parameter.fault(value))
        try:
            time.sleep(self.settings.hold_s)
        finally:
            end = time.time()
            if not self.settings.parameter.is_rate:
                inject.broker_recover(self.target)
        time.sleep(EDGE_S + 1)  # the window's last second finishes in the live file
        window = seconds_between(read_live(traffic.shared_files(self.run_dir).live),
                                 start + EDGE_S, end)
        self.stop()
        if not window:
            raise MeasurementError(f"no finished second of load between the step's start "
                                   f"and end (value {value:g}): is the load generator running?")
        opened = _opened(self.target, self.settings.selector, end - start)
        if not self.settings.parameter.is_rate:
            _wait_closed(self.breakers)
        return _measured(value, window, opened)

    def stop(self) -> None:
        """Stop the step's own load, if it has one."""
        if self.load is not None:
            traffic.stop_shared(self.load)
            self.load = None


def _workers(rate_rps: float) -> int:
    """Load generator processes for a rate (one keeps up to about 800 orders/s here)."""
    return 1 if rate_rps <= RATE_PER_WORKER else 2


def _measured(value: float, window: list[Any], opened: int) -> Step:
    shown = figures(window)
    histogram = merged_histogram(e.get("hist") for e in window)
    late = sum(int(e.get("late_starts", 0)) for e in window)
    sent = sum(int(e.get("sent", 0)) for e in window)
    return Step(value, shown["availability"], shown["error_rate"],
                histogram.get_value_at_percentile(50) / 1e6, shown["p95_latency_s"],
                histogram.get_value_at_percentile(99) / 1e6, int(shown["requests"]), opened,
                round(late / sent, 4) if sent else 0.0)


def _opened(target: Target, selector: str, window_s: float) -> int:
    """How many replicas' breakers were open at some point of the last ``window_s``."""
    promql = (f"max_over_time({METRIC_BREAKER_STATE}"
              f"{{{selector},{METRIC_BREAKER_STATE}=\"open\"}}[{max(2, round(window_s))}s])")
    return sum(1 for sample in target.prometheus().vector(promql) if sample.value == 1)


def _wait_closed(breakers: BreakerView) -> None:
    """Until every breaker is closed again (the next step starts healthy)."""
    states = breakers.wait_for("closed", RECOVERY_MAX_S)
    if not all_in(states, "closed"):
        raise MeasurementError(f"the breakers did not all close within {RECOVERY_MAX_S:g} s "
                               f"of the fault's end ({states}): the service did not "
                               "recover, so the sweep cannot go on")


def _line(parameter: Parameter, step: Step, sla: SlaTargets) -> str:
    held = step.holds(sla)
    marks = " ".join(f"{name}={'yes' if ok else 'NO'}" for name, ok in held.items())
    return (f"{parameter.name} {step.value:.3f} {parameter.unit}: p50 "
            f"{step.p50_s * 1000:.0f} ms, p95 {step.p95_s * 1000:.0f} ms, errors "
            f"{step.error_rate:.2%}, breakers open {step.breakers_open}  {marks}")


@dataclass(frozen=True)
class PairsSettings:
    """``explore pairs``: how long each fault (or pair) is held, the recovery bound, the
    budget."""

    hold_s: float = 10.0
    recovery_max_s: float = 20.0
    budget_s: float = 600.0
    rate_rps: float = 200.0
    selector: str = DEFAULT_SELECTOR


@dataclass(frozen=True)
class PairsResult:
    """Every single fault and pair run, the pairs skipped and why, the findings."""

    singles: tuple[Outcome, ...]
    pairs: tuple[Outcome, ...]
    skipped: tuple[tuple[tuple[str, str], str], ...]
    found: tuple[str, ...]
    duration_s: float

    def as_json(self) -> dict[str, Any]:
        """Plain JSON."""
        return {"singles": [o.as_json() for o in self.singles],
                "pairs": [o.as_json() for o in self.pairs],
                "skipped": [{"faults": list(names), "why": why}
                            for names, why in self.skipped],
                "findings": list(self.found), "duration_s": round(self.duration_s, 1)}


def explore_pairs(target: Target, settings: PairsSettings, run_dir: Path,
                  say: Callable[[str], None]) -> PairsResult:
    """Run every single fault, then the pairs the pruning leaves, within the budget."""
    started = time.monotonic()
    process = traffic.start_shared(traffic.orders_of(target), settings.rate_rps, run_dir)
    run = _FaultRun(target, settings, traffic.shared_files(run_dir).live,
                    BreakerView(target.prometheus(), settings.selector))
    skipped: list[tuple[tuple[str, str], str]] = []
    try:
        time.sleep(WARMUP_S)
        singles = [run.outcome((single,), say) for single in SINGLES]
        pairs, skipped = plan_pairs(SINGLES, {o.names[0] for o in singles if not o.holds})
        outcomes = []
        for a, b in pairs:
            if time.monotonic() - started + settings.hold_s + settings.recovery_max_s \
                    > settings.budget_s:
                skipped.append(((a.name, b.name), "the budget was spent"))
                continue
            outcomes.append(run.outcome((a, b), say))
    finally:
        inject.cleanup(target)
        traffic.stop_shared(process)
    return PairsResult(tuple(singles), tuple(outcomes), tuple(skipped),
                       tuple(findings(singles, outcomes)), time.monotonic() - started)


@dataclass(frozen=True)
class _FaultRun:
    target: Target
    settings: PairsSettings
    live_path: Path
    breakers: BreakerView

    def outcome(self, faults: tuple[Single, ...], say: Callable[[str], None]) -> Outcome:
        """Hold ``faults`` together, undo them, and see whether the service held."""
        start = time.time()
        try:
            for fault in faults:
                _inject(self.target, fault)
            time.sleep(self.settings.hold_s)
        finally:
            end = time.time()
            inject.cleanup(self.target)
        recovered = self._recovery(end)
        time.sleep(EDGE_S + 1)
        window = seconds_between(read_live(self.live_path), start + EDGE_S, end)
        if not window:
            names = " + ".join(f.name for f in faults)
            raise MeasurementError(f"no finished second of load while {names} was on: is "
                                   "the load generator running?")
        p95 = figures(window)["p95_latency_s"]
        holds = p95 <= SlaTargets().p95_latency_max_s and recovered is not None
        outcome = Outcome(tuple(f.name for f in faults), p95, recovered, holds)
        say(f"{' + '.join(outcome.names)}: p95 {p95 * 1000:.0f} ms while on, "
            + ("no recovery" if recovered is None else f"recovered in {recovered:.1f} s")
            + ("  holds" if holds else "  FAILS"))
        return outcome

    def _recovery(self, undone: float) -> float | None:
        """Seconds from the undo until every breaker is closed and the clients' last 3 s
        meet the SLA; None when that takes longer than the bound."""
        sla = SlaTargets()
        while time.time() - undone < self.settings.recovery_max_s:
            time.sleep(0.5)
            try:
                closed = all_in(self.breakers.states(), "closed")
                recent = client_sla(read_live(self.live_path), 3, time.time())
            except GamedayError:
                continue
            if closed and recent["availability"] >= sla.availability_min and \
                    recent["error_rate"] <= sla.error_rate_max and \
                    recent["p95_latency_s"] <= sla.p95_latency_max_s:
                return time.time() - undone
        return None


def _inject(target: Target, fault: Single) -> None:
    args = dict(fault.args)
    if fault.kind == "partition":
        inject.partition(target, args["link"])
    elif fault.kind == "broker":
        inject.broker_fail(target, args)
    else:
        inject.kill(target, args["selector"], args["qty"], args["mode"])
