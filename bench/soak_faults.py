"""Inject the soak's faults into the lab and heal them, through :mod:`gameday.faults.inject`.

Every fault goes through the same functions the experiments' actions use: it is
recorded in the lab's ``injected.jsonl`` *before* it is injected, and each has its
idempotent undo (a killed replica has none: it comes back by itself, and healing it
means waiting until it is ready again). :func:`undo_everything` undoes whatever the
record still holds, for an interrupted soak.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bench.soak_plan import PlannedFault
from gameday.contract import GamedayError
from gameday.faults import inject
from gameday.faults.record import InjectionLog
from gameday.targets import Target

__all__ = ["FaultRecord", "run_schedule", "undo_everything"]

READY_TIMEOUT_S = 30.0
READY_POLL_S = 0.25


@dataclass
class FaultRecord:
    """What the schedule did: faults injected (by kind name), replicas killed (by
    role), and every error met while injecting or healing."""

    injected: dict[str, int] = field(default_factory=dict)
    killed: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        """Faults injected in all."""
        return sum(self.injected.values())


def _wait_ready(target: Target, selector: str) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while target.ready_replicas(selector) < 1:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{selector} not ready {READY_TIMEOUT_S:.0f} s after its kill")
        time.sleep(READY_POLL_S)


def inject_fault(target: Target, fault: PlannedFault) -> Callable[[], Any]:
    """Inject ``fault``; returns its undo (for a kill: wait until the replica is ready)."""
    params = dict(fault.params)
    if fault.action == "kill":
        inject.kill(target, params["selector"], params["qty"], params["mode"])
        return lambda: _wait_ready(target, params["selector"])
    if fault.action == "partition":
        inject.partition(target, params["link"])
    elif fault.action == "degrade":
        link = params.pop("link")
        inject.degrade(target, link, **params)
    elif fault.action == "broker":
        inject.broker_fail(target, params)
        return lambda: inject.broker_recover(target)
    else:
        raise ValueError(f"unknown fault action {fault.action!r}")
    return lambda: inject.heal(target, fault.params["link"])


def _one(target: Target, fault: PlannedFault, record: FaultRecord,
         log: Callable[[str], None]) -> None:
    log(f"inject {fault.describe()}, hold {fault.hold_s:.1f} s")
    try:
        undo = inject_fault(target, fault)
    except (GamedayError, OSError) as exc:
        record.errors.append(f"{fault.name} at {fault.start_s:.1f} s: inject failed: {exc}")
        try:
            undo_everything(target)  # whatever part of it was recorded
        except (GamedayError, OSError) as undo_exc:
            record.errors.append(f"{fault.name}: undo after the failure failed: {undo_exc}")
        return
    record.injected[fault.name] = record.injected.get(fault.name, 0) + 1
    if fault.action == "kill":
        role = fault.params["selector"].removeprefix("name=")
        record.killed[role] = record.killed.get(role, 0) + 1
    time.sleep(fault.hold_s)
    try:
        undo()
    except (GamedayError, OSError) as exc:
        record.errors.append(f"{fault.name} at {fault.start_s:.1f} s: heal failed: {exc}")


def run_schedule(target: Target, schedule: list[PlannedFault], started: float,
                 log: Callable[[str], None], record: FaultRecord | None = None) -> FaultRecord:
    """Inject and heal each fault at its time (seconds after the monotonic ``started``);
    a fault whose time has passed (the previous heal took longer) starts at once.
    Adds to ``record`` (a new one by default) and returns it."""
    record = record if record is not None else FaultRecord()
    for fault in schedule:
        time.sleep(max(0.0, started + fault.start_s - time.monotonic()))
        _one(target, fault, record, log)
    return record


def undo_everything(target: Target) -> list[str]:
    """Undo every fault the lab's record holds as injected and not undone; returns them."""
    return inject.cleanup(target)


def recorded_counts(target: Target) -> dict[str, int]:
    """From the lab's record: ``injected`` (entries), ``undone`` and ``pending``."""
    entries = InjectionLog(target.state_dir()).entries()
    injected = sum(1 for e in entries if e.get("event") == "injected")
    undone = sum(1 for e in entries if e.get("event") == "undone")
    pending = len(InjectionLog(target.state_dir()).pending())
    return {"injected": injected, "undone": undone, "pending": pending}
