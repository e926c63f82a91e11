"""What a report shows, taken from one Chaos Toolkit journal (pure; no I/O, no HTML).

Times are seconds since the experiment's start (the journal's ``start``). Fault windows
span an injecting action's start to its undo's end (``actions.network.partition``,
``degrade`` and ``drop_packets`` → ``heal`` on the same link, ``actions.broker.fail`` →
``recover``); ``actions.pods.kill`` is an instant. A fault never undone in the method ends at its
rollback, or at the end of the experiment.

The client-side series come from the traffic control's summary (extension
``gameday-traffic``): one entry per second of the load generator's timeline. Its second
``t`` started at ``t0_unix + t``; when the summary has no ``t0_unix`` (shared traffic
gives ``since_unix``, the first second at or after it) the alignment is known to ±0.5 s
and the report says so.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from gameday.engine.results import key_figures
from gameday.engine.verdict import Verdict, traffic_extension
from gameday.measurements.sla import SlaTargets

__all__ = ["Activity", "ClientSecond", "ExperimentData", "FaultWindow", "Scorecard",
           "experiment_data", "unix_time"]

INJECTIONS = {
    ("actions.network", "partition"): ("actions.network", "heal"),
    ("actions.network", "degrade"): ("actions.network", "heal"),
    ("actions.network", "drop_packets"): ("actions.network", "heal"),
    ("actions.broker", "fail"): ("actions.broker", "recover"),
}
INSTANT_FAULTS = {("actions.pods", "kill")}
MAX_OUTPUT_CHARS = 600


@dataclass(frozen=True)
class FaultWindow:
    """A span with a fault injected (``end_s`` equals ``start_s`` for an instant)."""

    label: str
    start_s: float
    end_s: float
    undone: bool = True


@dataclass(frozen=True)
class Activity:
    """One probe or action as it ran: timing (s since start), status, output, tolerance."""

    phase: str
    kind: str
    name: str
    call: str
    status: str
    start_s: float
    end_s: float
    output: str
    tolerance: str = ""
    tolerance_met: bool | None = None


@dataclass(frozen=True)
class ClientSecond:
    """One second of the load generator's timeline, placed at ``x_s`` (its start)."""

    x_s: float
    due: int
    answered: int
    in_time: int
    errors: int
    p95_ms: float | None


@dataclass(frozen=True)
class Scorecard:
    """The figures people look for first; None where the journal has no measure."""

    trip_s: float | None
    recover_s: float | None
    worst_p95_ms: float | None
    client_p95_ms: float | None
    due: int | None
    failed: int | None
    budget_burned: float | None
    orders: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class ExperimentData:
    """Everything an experiment's report shows."""

    name: str
    title: str
    verdict: Verdict
    start_unix: float
    end_unix: float
    status: str
    targets: SlaTargets
    configuration: Mapping[str, Any]
    faults: tuple[FaultWindow, ...]
    steady: tuple[Activity, ...]
    method: tuple[Activity, ...]
    rollbacks: tuple[Activity, ...]
    client: tuple[ClientSecond, ...]
    client_note: str
    scorecard: Scorecard
    service: str = "?"

    @property
    def duration_s(self) -> float:
        """How long the experiment ran, in seconds."""
        return self.end_unix - self.start_unix


def unix_time(stamp: str) -> float:
    """Unix time of a journal's ISO 8601 timestamp (naive ones are taken as UTC)."""
    moment = datetime.fromisoformat(stamp)
    if moment.tzinfo is None:
        moment = datetime.fromisoformat(stamp + "+00:00")
    return moment.timestamp()


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= MAX_OUTPUT_CHARS else text[: MAX_OUTPUT_CHARS - 1] + "…"


def _call(activity: Mapping[str, Any]) -> tuple[str, str]:
    provider = activity.get("provider") or {}
    return str(provider.get("module", "")), str(provider.get("func", ""))


def _activity(phase: str, run: Mapping[str, Any], start_unix: float) -> Activity:
    activity = run.get("activity") or {}
    module, func = _call(activity)
    output = run.get("output") if run.get("status") == "succeeded" else \
        "; ".join(ln.strip() for ln in (run.get("exception") or [])[-2:])
    tolerance = activity.get("tolerance")
    return Activity(
        phase=phase, kind=str(activity.get("type", "?")), name=str(activity.get("name", "?")),
        call=f"{module}.{func}".strip("."), status=str(run.get("status", "?")),
        start_s=unix_time(run["start"]) - start_unix if run.get("start") else 0.0,
        end_s=unix_time(run["end"]) - start_unix if run.get("end") else 0.0,
        output=_short(output), tolerance="" if tolerance is None else _short(tolerance),
        tolerance_met=run.get("tolerance_met"))


def _steady(journal: Mapping[str, Any], start_unix: float) -> tuple[Activity, ...]:
    states = journal.get("steady_states") or {}
    phases = [("before", states.get("before"))]
    phases += [(f"during #{i + 1}", s) for i, s in enumerate(states.get("during") or [])]
    phases.append(("after", states.get("after")))
    return tuple(_activity(phase, probe, start_unix)
                 for phase, state in phases if state
                 for probe in state.get("probes") or [])


def _same_target(inject: Mapping[str, Any], undo: Mapping[str, Any]) -> bool:
    link = ((inject.get("provider") or {}).get("arguments") or {}).get("link")
    other = ((undo.get("provider") or {}).get("arguments") or {}).get("link")
    return link is None or other is None or link == other


def _undo_end(inject: Mapping[str, Any], later: Sequence[Mapping[str, Any]]) -> float | None:
    wanted = INJECTIONS[_call(inject["activity"])]
    for run in later:
        if _call(run.get("activity") or {}) == wanted and _same_target(
                inject["activity"], run.get("activity") or {}) and run.get("end"):
            return unix_time(run["end"])
    return None


def fault_windows(journal: Mapping[str, Any], start_unix: float,
                  end_unix: float) -> tuple[FaultWindow, ...]:
    """The spans with a fault injected, in seconds since ``start_unix`` (pure)."""
    runs = [r for r in journal.get("run") or [] if r.get("start")]
    undos = [*runs, *(r for r in journal.get("rollbacks") or [] if r.get("start"))]
    windows = []
    for index, run in enumerate(runs):
        call = _call(run.get("activity") or {})
        name = str((run.get("activity") or {}).get("name", "?"))
        begin = unix_time(run["start"]) - start_unix
        if call in INSTANT_FAULTS:
            windows.append(FaultWindow(name, begin, begin))
        elif call in INJECTIONS:
            undone_at = _undo_end(run, undos[index + 1:])
            end = (undone_at if undone_at is not None else end_unix) - start_unix
            windows.append(FaultWindow(name, begin, end, undone_at is not None))
    return tuple(windows)


def _client_t0(summary: Mapping[str, Any], timeline: Sequence[Mapping[str, Any]],
               end_unix: float) -> tuple[float, str]:
    if summary.get("t0_unix") is not None:
        return float(summary["t0_unix"]), "client-side seconds aligned exactly (t0_unix)"
    first, last = int(timeline[0]["t"]), int(timeline[-1]["t"])
    if summary.get("since_unix") is not None:
        return (float(summary["since_unix"]) - first + 0.5,
                "client-side seconds aligned to ±0.5 s (shared traffic gives since_unix)")
    return (end_unix - last - 1.0,
            "client-side seconds aligned approximately: the traffic summary has no "
            "t0_unix, so its last second is placed at the experiment's end")


def _client_second(entry: Mapping[str, Any], x_s: float) -> ClientSecond:
    p95 = entry.get("p95_ms")
    return ClientSecond(
        x_s=x_s, due=int(entry.get("due", 0)), answered=int(entry.get("answered", 0)),
        in_time=int(entry.get("in_time", 0)),
        errors=sum(int(v) for v in (entry.get("errors") or {}).values()),
        p95_ms=float(p95) if isinstance(p95, (int, float)) else None)


def service_name(journal: Mapping[str, Any]) -> str:
    """The service the experiment ran against, as the traffic control noted it."""
    for extension in journal.get("extensions") or []:
        if isinstance(extension, dict) and extension.get("name") == "gameday-traffic":
            return str(extension.get("service", "?"))
    return "?"


def traffic_summary(journal: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The ``gameday-traffic`` extension's summary, when the journal has one."""
    for extension in journal.get("extensions") or []:
        if isinstance(extension, dict) and extension.get("name") == "gameday-traffic":
            summary = extension.get("summary")
            return summary if isinstance(summary, dict) else None
    return None


def client_series(journal: Mapping[str, Any], start_unix: float,
                  end_unix: float) -> tuple[tuple[ClientSecond, ...], str]:
    """The client-side seconds (x in s since start) and how exactly they are aligned."""
    summary = traffic_summary(journal)
    timeline = (summary or {}).get("timeline") or []
    if not summary or not timeline:
        return (), "no client-side figures: the journal has no traffic timeline"
    t0, note = _client_t0(summary, timeline, end_unix)
    seconds = tuple(_client_second(e, t0 + int(e["t"]) - start_unix) for e in timeline)
    return seconds, note


ORDER_KEYS = ("orders", "acked", "lost", "duplicated", "failed_but_filled", "unknown",
              "unknown_filled")


def _orders(journal: Mapping[str, Any]) -> dict[str, int]:
    """The experiment's own reconciliation (the traffic control's), else a reconcile
    probe's output in the method."""
    own = traffic_extension(journal).get("orders")
    if isinstance(own, dict) and "error" not in own:
        return {k: int(own[k]) for k in ORDER_KEYS if isinstance(own.get(k), int)}
    for run in journal.get("run") or []:
        output = run.get("output")
        if _call(run.get("activity") or {})[1] == "reconcile" and isinstance(output, dict):
            return {k: int(output[k]) for k in
                    ("acked", "lost", "duplicated", "unknown_outcome") if k in output}
    return {}


def scorecard(journal: Mapping[str, Any], client: Sequence[ClientSecond],
              targets: SlaTargets) -> Scorecard:
    """Time to trip/recover, worst and overall client p95, error budget burned (share of
    the window's allowance of ``1 - availability_min`` of the requests due), orders."""
    figures = key_figures(journal)
    summary = traffic_summary(journal) or {}
    due = summary.get("due")
    availability = summary.get("availability")
    failed = budget = None
    if isinstance(due, int) and due and isinstance(availability, (int, float)):
        failed = round(due * (1 - float(availability)))
        budget = failed / (due * (1 - targets.availability_min))
    p95s = [c.p95_ms for c in client if c.p95_ms is not None]
    return Scorecard(
        trip_s=figures.get("trip_s"), recover_s=figures.get("recover_s"),
        worst_p95_ms=max(p95s) if p95s else None, client_p95_ms=figures.get("client_p95_ms"),
        due=due if isinstance(due, int) else None, failed=failed, budget_burned=budget,
        orders=_orders(journal))


def experiment_data(name: str, journal: Mapping[str, Any], verdict: Verdict) -> ExperimentData:
    """Everything the report of experiment ``name`` shows, from its journal and verdict."""
    experiment = journal.get("experiment") or {}
    configuration = experiment.get("configuration") or {}
    start = unix_time(journal["start"])
    end = unix_time(journal["end"]) if journal.get("end") else \
        start + float(journal.get("duration") or 0)
    targets = SlaTargets.from_configuration(configuration)
    client, note = client_series(journal, start, end)
    return ExperimentData(
        name=name, title=str(experiment.get("title", name)), verdict=verdict,
        start_unix=start, end_unix=end, status=str(journal.get("status", "?")),
        targets=targets, configuration=configuration,
        faults=fault_windows(journal, start, end), steady=_steady(journal, start),
        method=tuple(_activity("method", r, start) for r in journal.get("run") or []),
        rollbacks=tuple(_activity("rollback", r, start) for r in journal.get("rollbacks") or []),
        client=client, client_note=note, scorecard=scorecard(journal, client, targets),
        service=service_name(journal))
