"""What of an experiment a target without traffic can still judge (pure).

Some targets run the service in name only: a Kubernetes cluster whose nodes are kwok's
fake nodes (``GAMEDAY_K8S_TRAFFIC=none``) schedules, kills, replaces and readies pods and
stores NetworkPolicies, but no request ever reaches a pod. There, an experiment's
*control-plane cut* is what runs: its faults on pods and links, the probes the API
server answers (``probes.replicas``: kills landed, replicas ready again within the
bound), its rollbacks, and the cleanup check (nothing left injected). Everything that
needs traffic through the service is left out and named: the traffic control, the SLA
and breaker probes, the orders, the broker's and the links' counters.

Such a run is never a PASS, since the SLA was not measured: when the cut holds, the
verdict is INCONCLUSIVE ("not runnable here", with what was left out and why); when it
does not (a replica not ready again within the bound, a fault left behind), FAIL. An
experiment whose faults need traffic (the broker simulator's modes), or whose steady
state needs it and which names no ``replicas`` count to check instead, is not run.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

from gameday.engine.verdict import Verdict

__all__ = ["TRAFFIC_MODULES", "ControlPlaneCut", "control_plane_cut", "control_plane_verdict"]

# Modules of probes, actions and controls that need requests through the service (or a
# broker simulator behind it, or the links' byte counters).
TRAFFIC_MODULES = frozenset({"controls.traffic", "probes.sla", "probes.breaker",
                             "probes.orders", "probes.broker", "probes.network",
                             "actions.broker"})
HELD = ("what the control plane shows held: every fault was injected, every probe it can "
        "answer (kills landed, replicas ready again within the bound) was within its "
        "tolerance, and nothing was left injected")


@dataclass(frozen=True)
class ControlPlaneCut:
    """The experiment to run (``experiment``), what was left out of it, in words
    (``skipped``), and why it cannot run at all (``blocked``; then do not run it)."""

    experiment: dict[str, Any]
    skipped: tuple[str, ...]
    blocked: tuple[str, ...]


def modules(node: Any) -> Iterator[str]:
    """Every provider ``module`` named anywhere in ``node`` (nested probes too)."""
    if isinstance(node, Mapping):
        if isinstance(node.get("module"), str):
            yield node["module"]
        for value in node.values():
            yield from modules(value)
    elif isinstance(node, list):
        for value in node:
            yield from modules(value)


def needs_traffic(activity: Any) -> bool:
    """Whether an activity or control (or a probe nested in it) needs traffic."""
    return any(module in TRAFFIC_MODULES for module in modules(activity))


def _name(activity: Any) -> str:
    return str(activity.get("name", "?")) if isinstance(activity, Mapping) else "?"


def _kept(items: Any) -> tuple[list[Any], list[str]]:
    """(the items that need no traffic, the names of those that do)."""
    listed = items if isinstance(items, list) else []
    return ([item for item in listed if not needs_traffic(item)],
            [_name(item) for item in listed if needs_traffic(item)])


def ready_probe(replicas: int) -> dict[str, Any]:
    """The steady state the control plane can check: every replica ready (Chaos Toolkit
    wants a number in a hypothesis' range, so the experiment's ``replicas`` as written)."""
    return {"type": "probe", "name": "every-replica-ready (control plane)",
            "tolerance": {"type": "range", "range": [replicas, replicas]},
            "provider": {"type": "python", "module": "probes.replicas",
                         "func": "ready_count"}}


def _replicas(experiment: Mapping[str, Any]) -> int | None:
    value = (experiment.get("configuration") or {}).get("replicas")
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 \
        else None


def _steady_state(experiment: Mapping[str, Any]) -> tuple[dict[str, Any] | None, list[str]]:
    hypothesis = experiment.get("steady-state-hypothesis")
    if not isinstance(hypothesis, Mapping):
        return None, []
    probes, skipped = _kept(hypothesis.get("probes"))
    replicas = _replicas(experiment)
    if not probes and replicas is not None:
        probes = [ready_probe(replicas)]
    return ({**hypothesis, "probes": probes} if probes else None), skipped


def _blocked(experiment: Mapping[str, Any], why: str,
             hypothesis: dict[str, Any] | None) -> list[str]:
    actions = [_name(a) for a in experiment.get("method") or []
               if isinstance(a, Mapping) and a.get("type") == "action" and needs_traffic(a)]
    blocked = [f"not runnable here: action {name} needs traffic through the service: {why}"
               for name in actions]
    if hypothesis is None and experiment.get("steady-state-hypothesis"):
        blocked.append(f"not runnable here: its steady state needs traffic through the "
                       f"service and it names no `replicas` count to check instead: {why}")
    return blocked


def control_plane_cut(experiment: Mapping[str, Any], why: str) -> ControlPlaneCut:
    """The part of ``experiment`` that needs no traffic (see the module docs); ``why``
    says why the target has none."""
    hypothesis, skipped_state = _steady_state(experiment)
    method, skipped_method = _kept(experiment.get("method"))
    rollbacks, skipped_rollbacks = _kept(experiment.get("rollbacks"))
    controls, skipped_controls = _kept(experiment.get("controls"))
    cut: dict[str, Any] = {**experiment, "method": method, "rollbacks": rollbacks,
                           "controls": controls}
    if hypothesis is not None:
        cut["steady-state-hypothesis"] = hypothesis
    parts = [(f"{label} {', '.join(names)}") for label, names in (
        ("steady-state probes", skipped_state), ("method probes", skipped_method),
        ("rollbacks", skipped_rollbacks), ("controls", skipped_controls)) if names]
    skipped = (f"not runnable here: {why}; not run: {'; '.join(parts)}",) if parts else ()
    return ControlPlaneCut(cut, skipped, tuple(_blocked(experiment, why, hypothesis)))


def control_plane_verdict(verdict: Verdict, cut: ControlPlaneCut) -> Verdict:
    """The verdict of a cut's run: FAIL as judged, else INCONCLUSIVE naming what was left
    out (never PASS while something was; a cut that left nothing out is judged as is)."""
    if verdict.reasons or not cut.skipped:
        return replace(verdict, inconclusive=verdict.inconclusive + cut.skipped)
    held = () if verdict.inconclusive else (HELD,)
    return replace(verdict, inconclusive=(*verdict.inconclusive, *held, *cut.skipped))
