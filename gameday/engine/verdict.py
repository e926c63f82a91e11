"""A strict judge of Chaos Toolkit journals (pure).

Chaos Toolkit exits 0 when the steady state fails *before* the method, does not judge
tolerances of probes inside the method, and reports an activity interrupted by a signal
as a mere failure. A resilience job must not pass on any of those. An experiment passes
only when: the status is ``completed``; it did not deviate; the steady state was met
before and after; every continuous check was met; every action and probe of the method
succeeded and every method probe with a tolerance is within it; every rollback
succeeded; every required control left its mark; the cleanup check found nothing
left injected; and the experiment's own orders reconcile with the broker's ledger (none
lost, none filled twice, no more told "failed" but filled than
``orders_failed_but_filled_max``, default 0).

A third verdict, INCONCLUSIVE, is for an experiment that found nothing wrong but whose
evidence cannot be trusted: its fault left no trace (an evidence probe such as
``probes.broker.mode_hits``, ``probes.network.link_traffic``,
``probes.network.packets_dropped`` or ``probes.cgroups.*`` out of its tolerance: the
fault hit nothing, so it proved nothing, and the method's other probe misses are
consequences of that, not findings), the load generator fell behind (more than
``load_late_share_max``, default 0.10, of the orders started over 10 ms late: the
machine was starved), or the orders could not be reconciled. Any other reason to fail
makes it FAIL instead.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from chaoslib import substitute
from chaoslib.hypothesis import within_tolerance

from gameday.measurements.machine import MachineLoad

__all__ = ["EVIDENCE_PROBES", "RUN_EXTENSION", "TRAFFIC_EXTENSION", "VERDICT_KEYS", "Verdict",
           "judge", "recorded_verdict", "run_record",
           "traffic_extension"]

MAX_SHOWN_CHARS = 160
TRAFFIC_EXTENSION = "gameday-traffic"
RUN_EXTENSION = "gameday-run"
EVIDENCE_PROBES = frozenset({("probes.broker", "mode_hits"),
                             ("probes.network", "link_traffic"),
                             ("probes.network", "packets_dropped"),
                             ("probes.replicas", "replaced"),
                             ("probes.cgroups", "frozen"),
                             ("probes.cgroups", "cpu_throttled"),
                             ("probes.cgroups", "oom_killed")})
DEFAULT_FAILED_BUT_FILLED_MAX = 0
DEFAULT_LATE_SHARE_MAX = 0.10
DEFAULT_OTHERS_SHARE_MAX = 0.25
DEFAULT_BUSY_SHARE_MAX = 0.95
# The judge's own bounds: set in an experiment's configuration or with --var.
VERDICT_KEYS = {"orders_failed_but_filled_max": DEFAULT_FAILED_BUT_FILLED_MAX,
                "load_late_share_max": DEFAULT_LATE_SHARE_MAX,
                "machine_others_share_max": DEFAULT_OTHERS_SHARE_MAX,
                "machine_busy_share_max": DEFAULT_BUSY_SHARE_MAX}


@dataclass(frozen=True)
class Verdict:
    """Whether an experiment passed: every reason it failed, and every reason its
    evidence cannot be trusted (``inconclusive``; only shown when nothing failed)."""

    title: str
    reasons: tuple[str, ...] = field(default_factory=tuple)
    inconclusive: tuple[str, ...] = field(default_factory=tuple)

    @property
    def passed(self) -> bool:
        """True when nothing failed and the evidence holds."""
        return not self.reasons and not self.inconclusive

    @property
    def kind(self) -> str:
        """``PASS``, ``FAIL`` or ``INCONCLUSIVE``."""
        if self.reasons:
            return "FAIL"
        return "INCONCLUSIVE" if self.inconclusive else "PASS"

    @property
    def shown(self) -> tuple[str, ...]:
        """The reasons that explain :attr:`kind`."""
        return self.reasons or self.inconclusive


def _short(value: Any) -> str:
    text = json.dumps(value, default=str) if not isinstance(value, str) else value
    return text if len(text) <= MAX_SHOWN_CHARS else text[: MAX_SHOWN_CHARS - 1] + "…"


def _describe(output: Any) -> str:
    """A probe's output in words: for an SLA report, only the figures out of bounds."""
    if isinstance(output, dict) and output.get("ok") is False:
        failing = [key[:-3] for key, ok in output.items() if key.endswith("_ok") and ok is False]
        if failing:
            return "; ".join(f"{name} {output.get(name)} {_bound(output, name)}"
                             for name in failing)
    return _short(output)


def _bound(output: dict[str, Any], name: str) -> str:
    """The bound an SLA report gives for ``name`` (``availability`` → ``availability_min``,
    ``p95_latency_s`` → ``p95_latency_max_s``, ...), in words."""
    family = name.split("_", maxsplit=1)[0]
    for key, value in output.items():
        words = key.split("_")
        if words[0] == family and key != name and ("min" in words or "max" in words):
            return f"{'under its minimum' if 'min' in words else 'over its maximum'} {value}"
    return "out of bounds"


_OWN_PREFIXES = re.compile(r"^(?:chaoslib\.exceptions\.ActivityFailed: )?"
                           r"(?:(?:gameday\.(?:errors|contract|engine\.activity)|lab\.stack)"
                           r"\.\w+: )?")


def _exception_line(run: Mapping[str, Any]) -> str:
    """The exception's last line, without the class names of Chaos Toolkit's wrapper and
    of gameday's own errors (their messages say what happened; others keep theirs)."""
    lines = [ln.strip() for ln in run.get("exception") or [] if ln.strip()]
    return _OWN_PREFIXES.sub("", lines[-1]) if lines else "no exception recorded"


def _probe_reason(phase: str, run: Mapping[str, Any]) -> str | None:
    activity = run.get("activity", {})
    name = activity.get("name", "?")
    if run.get("status") != "succeeded":
        return f"{phase}: probe {name} could not measure: {_exception_line(run)}"
    if run.get("tolerance_met") is False:
        return (f"{phase}: {name} returned {_describe(run.get('output'))}, "
                f"tolerance {_short(activity.get('tolerance'))}")
    return None


def _hypothesis_reasons(phase: str, state: Mapping[str, Any] | None) -> list[str]:
    if state is None:
        return [f"{phase}: the steady state was never checked"]
    reasons = [r for r in (_probe_reason(phase, p) for p in state.get("probes", [])) if r]
    if not state.get("steady_state_met") and not reasons:
        reasons.append(f"{phase}: steady state not met")
    return reasons


def _has_hypothesis(experiment: Mapping[str, Any]) -> bool:
    return bool((experiment.get("steady-state-hypothesis") or {}).get("probes"))


def _steady_state_reasons(journal: Mapping[str, Any], has_method_run: bool) -> list[str]:
    if not _has_hypothesis(journal.get("experiment", {})):
        return ["experiment declares no steady-state hypothesis: nothing was verified"]
    states = journal.get("steady_states") or {}
    reasons = _hypothesis_reasons("baseline (before)", states.get("before"))
    if has_method_run or states.get("after") is not None:
        reasons += _hypothesis_reasons("after", states.get("after"))
    for index, during in enumerate(states.get("during") or []):
        reasons += _hypothesis_reasons(f"during #{index + 1}", during)
    return reasons


def _is_evidence(activity: Mapping[str, Any]) -> bool:
    provider = activity.get("provider") or {}
    return (provider.get("module"), provider.get("func")) in EVIDENCE_PROBES


def _method_reasons(runs: Iterable[Mapping[str, Any]],
                    config: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """(reasons to fail, reasons the evidence is missing). An evidence probe out of its
    tolerance means the fault did not land: then the method's other probes measured a
    service that was never faulted, and their misses are not held against it either."""
    reasons: list[str] = []
    misses: list[str] = []
    missing: list[str] = []
    for run in runs:
        activity = run.get("activity", {})
        kind, name = activity.get("type", "activity"), activity.get("name", "?")
        if run.get("status") != "succeeded":
            reasons.append(f"method: {kind} {name} {run.get('status')}: {_exception_line(run)}")
        elif kind == "probe" and "tolerance" in activity:
            tolerance = substitute(activity["tolerance"], dict(config), {})
            if not within_tolerance(tolerance, run.get("output"), dict(config), {}):
                text = (f"{name} returned {_describe(run.get('output'))}, "
                        f"tolerance {_short(tolerance)}")
                if _is_evidence(activity):
                    missing.append(f"the fault left no evidence that it took effect: {text}")
                else:
                    misses.append(f"method: {text}")
    if missing:
        return reasons, missing + [f"not judged, as the fault did not land: {m}" for m in misses]
    return reasons + misses, []


def _rollback_reasons(journal: Mapping[str, Any]) -> list[str]:
    declared = journal.get("experiment", {}).get("rollbacks") or []
    runs = journal.get("rollbacks") or []
    if declared and not runs:
        return ["rollbacks: none ran although the experiment declares them"]
    return [
        f"rollback {r.get('activity', {}).get('name', '?')} {r.get('status')}: "
        f"{_exception_line(r)}"
        for r in runs if r.get("status") != "succeeded"
    ]


def _control_reasons(journal: Mapping[str, Any], required: Iterable[str]) -> list[str]:
    marks = {e.get("name"): e for e in journal.get("extensions") or [] if isinstance(e, dict)}
    reasons = []
    for name in required:
        if name not in marks:
            reasons.append(f"control {name} left no mark in the journal: it did not run "
                           "(Chaos Toolkit skips a control it cannot import)")
        elif marks[name].get("error"):
            reasons.append(f"control {name}: {marks[name]['error']}")
    return reasons


def judge(
    journal: Mapping[str, Any],
    configuration: Mapping[str, Any] | None = None,
    required_controls: Iterable[str] = (),
    leftovers: Iterable[str] = (),
) -> Verdict:
    """Judge one journal; ``leftovers`` are the faults the cleanup check found."""
    experiment = journal.get("experiment", {})
    config = {**(experiment.get("configuration") or {}), **(configuration or {})}
    runs = journal.get("run") or []
    # Measured: what a starved machine could have caused (timing, SLA, the steady state).
    measured = []
    if journal.get("status") != "completed":
        measured.append(f"status is {journal.get('status')!r}, not 'completed'")
    if journal.get("deviated"):
        measured.append("the steady state deviated after the method")
    measured += _steady_state_reasons(journal, bool(runs))
    method, missing = _method_reasons(runs, config)
    measured += method
    # Broken whatever the machine: undo, controls, faults left behind, the orders.
    broken = _rollback_reasons(journal)
    broken += _control_reasons(journal, required_controls)
    broken += [f"left injected after the run: {item}" for item in leftovers]
    traffic = traffic_extension(journal)
    orders_failed, orders_unknown = _order_reasons(traffic.get("orders"), config)
    broken += orders_failed
    missing += orders_unknown + _load_reasons(traffic.get("summary"), config)
    starved = _starved_machine(traffic.get("machine"), config, measured)
    if starved and not broken:
        return Verdict(title=str(experiment.get("title", "?")),
                       inconclusive=(starved, *missing, *(
                           f"not judged, as the machine was starved: {r}" for r in measured)))
    reasons = [*measured, *broken]
    if measured:
        reasons += _machine_note(traffic.get("machine"), config)
    return Verdict(title=str(experiment.get("title", "?")), reasons=tuple(reasons),
                   inconclusive=tuple(missing))


def run_record(verdict: Verdict, variables: Mapping[str, Any]) -> dict[str, Any]:
    """The extension ``gameday run`` adds to a journal once it has judged it: the verdict
    and the ``--var`` values it was judged with (pure).

    A journal read back later (``gameday report``, ``gameday judge``) then shows the
    run's own verdict, which also weighed what the journal alone does not hold: the
    ``--var`` bounds (Chaos Toolkit keeps the experiment's configuration as written),
    faults found left injected after the run, controls that could not load, and the
    control-plane cut of a run without traffic (never PASS).
    """
    return {"name": RUN_EXTENSION, "kind": verdict.kind, "title": verdict.title,
            "reasons": list(verdict.reasons), "inconclusive": list(verdict.inconclusive),
            "variables": dict(variables)}


def recorded_verdict(journal: Mapping[str, Any]) -> Verdict | None:
    """The verdict ``gameday run`` recorded in the journal (see :func:`run_record`), or
    None for a journal it did not judge (a plain ``chaos run``)."""
    for extension in journal.get("extensions") or []:
        if isinstance(extension, dict) and extension.get("name") == RUN_EXTENSION:
            return Verdict(title=str(extension.get("title", "?")),
                           reasons=tuple(str(r) for r in extension.get("reasons") or ()),
                           inconclusive=tuple(str(r) for r in
                                              extension.get("inconclusive") or ()))
    return None


def traffic_extension(journal: Mapping[str, Any]) -> Mapping[str, Any]:
    """The traffic control's mark in the journal (empty when it left none)."""
    for extension in journal.get("extensions") or []:
        if isinstance(extension, dict) and extension.get("name") == TRAFFIC_EXTENSION:
            return extension
    return {}


def _order_reasons(orders: Any, config: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """(reasons to fail, reasons it is inconclusive) from the experiment's reconciliation."""
    if not isinstance(orders, Mapping):
        return [], []
    if orders.get("error"):
        return [], [f"orders: could not reconcile {orders.get('orders', '?')} orders with the "
                    f"broker's ledger: {orders['error']}"]
    reasons = []
    if orders.get("duplicated"):
        reasons.append(f"orders: {orders['duplicated']} of {orders.get('orders')} filled twice "
                       "or more by the broker")
    if orders.get("unexplained"):
        reasons.append(f"orders: {orders['unexplained']} fills under ids derived from the "
                       "clients' but never sent by them (the service placed orders again "
                       "under ids of its own: filled twice)")
    if orders.get("lost"):
        reasons.append(f"orders: {orders['lost']} acknowledged to the client as filled but "
                       "not in the broker's ledger (lost)")
    bound = _number(config, "orders_failed_but_filled_max", DEFAULT_FAILED_BUT_FILLED_MAX)
    if (orders.get("failed_but_filled") or 0) > bound:
        reasons.append(f"orders: {orders['failed_but_filled']} answered as failed to the client "
                       f"but filled by the broker (orders_failed_but_filled_max {bound:g}; a "
                       "service that cannot tell should answer 'outcome unknown')")
    return reasons, []


def _load_reasons(summary: Any, config: Mapping[str, Any]) -> list[str]:
    """Why the traffic's own figures cannot be trusted: its starts fell behind schedule."""
    if not isinstance(summary, Mapping):
        return []
    late, started = _late_starts(summary)
    bound = _number(config, "load_late_share_max", DEFAULT_LATE_SHARE_MAX)
    if started and late / started > bound:
        return [f"the load generator fell behind: {late} of {started} orders "
                f"({late / started:.0%}) started late (load_late_share_max {bound:g}); the "
                "machine is starved, so the figures measure it, not the service"]
    return []


def _starved_machine(machine: Any, config: Mapping[str, Any],
                     measured: list[str]) -> str | None:
    """Why the failed baseline measures the machine rather than the service, or None.

    Only a failed baseline (before any fault: the service was never tested) on a
    machine starved over the warm-up and baseline (see :func:`_starved_in`) is set
    aside. A failure during the fault stays a failure: the figures then go with it
    (see :func:`_machine_note`)."""
    if not any(r.startswith("baseline (before):") for r in measured):
        return None
    load = _starved_in(machine, "baseline", config)
    if load is None:
        return None
    return (f"the machine was starved before any fault: {load.words()} "
            "(machine_busy_share_max, machine_others_share_max); the failed baseline "
            "measures the machine, not the service: run it on a quiet machine")


def _machine_note(machine: Any, config: Mapping[str, Any]) -> list[str]:
    """A failure during a fault on a starved machine stays a failure (a service that
    needs the whole machine to survive a fault may be what failed), with the figures
    next to it, so that whoever reads it can run it again on a quiet machine."""
    load = _starved_in(machine, "method", config)
    if load is None:
        return []
    return [f"note: the machine was starved during the fault: {load.words()}; run it again "
            "on a quiet machine before blaming the service"]


def _starved_in(machine: Any, phase: str, config: Mapping[str, Any]) -> MachineLoad | None:
    """The machine's load in ``phase`` when other work starved it there
    (:meth:`MachineLoad.starved`: busier than ``machine_busy_share_max``, default 0.95,
    of its cores, more than ``machine_others_share_max``, default 0.25, of them
    others'); None when it did not, or was not sampled."""
    try:
        load = MachineLoad.from_json(machine[phase])
    except (KeyError, TypeError, ValueError):
        return None
    others, busy = (_number(config, key, VERDICT_KEYS[key])
                    for key in ("machine_others_share_max", "machine_busy_share_max"))
    return load if load.starved(others, busy) else None


def _late_starts(summary: Mapping[str, Any]) -> tuple[int, int]:
    """(late starts, orders started) over the summary's seconds or its totals."""
    timeline = summary.get("timeline")
    if isinstance(timeline, list) and timeline:
        return (sum(int(s.get("late_starts") or 0) for s in timeline if isinstance(s, Mapping)),
                sum(int(s.get("sent") or 0) for s in timeline if isinstance(s, Mapping)))
    return int(summary.get("late_starts") or 0), int(summary.get("sent") or 0)


def _number(config: Mapping[str, Any], key: str, default: float) -> float:
    try:
        return float(config.get(key, default))
    except (TypeError, ValueError):
        return default
