"""Post-incident verification: replay an incident's fault as a Chaos Toolkit experiment.

An incident file (YAML) says what failed, for how long, and which bounds the fix
promised; ``to_experiment`` turns it into an experiment that injects the same fault
under traffic and checks those bounds, with the full SLA before and after. See
``experiments/incidents/TEMPLATE.yaml``. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gameday.contract import ConfigError

__all__ = ["FAULTS", "is_incident", "to_experiment"]

Activity = dict[str, Any]


def _action(name: str, module: str, func: str, **arguments: Any) -> Activity:
    provider: dict[str, Any] = {"type": "python", "module": module, "func": func}
    if arguments:
        provider["arguments"] = arguments
    return {"type": "action", "name": name, "provider": provider}


def _probe(name: str, module: str, func: str, tolerance: Any, **arguments: Any) -> Activity:
    probe = _action(name, module, func, **arguments)
    return {**probe, "type": "probe", "tolerance": tolerance}


def _heal() -> Activity:
    return _action("restore-broker-link", "actions.network", "heal", link="service-broker")


def _recover() -> Activity:
    return _action("broker-back-to-normal", "actions.broker", "recover")


FAULTS: Mapping[str, tuple[str, str, dict[str, Any], str]] = {
    # kind: (module, func, fixed arguments, undo)
    "broker-link-down": ("actions.network", "partition", {"link": "service-broker"}, "heal"),
    "broker-blackhole": ("actions.network", "degrade", {
        "link": "service-broker", "toxic": "timeout", "attributes": {"timeout": 0}}, "heal"),
    "broker-errors": ("actions.broker", "fail", {"mode": "error"}, "recover"),
    "broker-slow": ("actions.broker", "fail", {"mode": "slow"}, "recover"),
    "broker-rate-limit": ("actions.broker", "fail", {"mode": "rate_limit"}, "recover"),
    "broker-flapping": ("actions.broker", "fail", {"mode": "flap"}, "recover"),
    "broker-hang": ("actions.broker", "fail", {"mode": "hang"}, "recover"),
}
FAULT_PARAMETERS = ("status", "probability", "latency_ms", "retry_after_s", "up_s", "down_s")
FIELDS = ("incident", "title", "summary", "fault", "promised")
PROMISES = ("breaker_open_within_s", "recovery_within_s", "sla")
# promised SLA bound -> its valid range
SLA_BOUNDS = {"availability_min": (0.0, 1.0), "p95_latency_max_s": (0.001, 3600.0),
              "error_rate_max": (0.0, 1.0), "throughput_min_rps": (0.0, 1e6)}


def is_incident(document: Mapping[str, Any]) -> bool:
    """True when a YAML document is an incident file rather than an experiment."""
    return "incident" in document and "method" not in document


def _section(document: Mapping[str, Any], key: str, valid: tuple[str, ...],
             where: str = "") -> Mapping[str, Any]:
    """A mapping inside the incident file, with only ``valid`` keys; {} when absent."""
    section, name = document.get(key), where + key
    if section is None:
        return {}
    if not isinstance(section, Mapping):
        raise ConfigError(f"{name} must be a mapping with {', '.join(valid)}, not {section!r}")
    unknown = sorted(str(k) for k in set(section) - set(valid))
    if unknown:
        raise ConfigError(f"{name} fields {unknown} are unknown: valid are {', '.join(valid)}")
    return section


def _number(section: Mapping[str, Any], key: str, low: float, high: float,
            default: float | None = None) -> float:
    raw = section.get(key, default)
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise ConfigError(f"{key}={raw!r} is not a number (valid: {low:g}..{high:g})")
    value = float(raw)
    if not low <= value <= high:
        raise ConfigError(f"{key}={raw!r} is out of range: valid is {low:g}..{high:g}")
    return value


def _inject(fault: Mapping[str, Any]) -> tuple[Activity, Activity]:
    kind = str(fault.get("kind"))
    if kind not in FAULTS:
        raise ConfigError(f"fault kind {kind!r} is unknown: valid are {', '.join(FAULTS)}")
    module, func, fixed, undo = FAULTS[kind]
    extra = {k: fault[k] for k in FAULT_PARAMETERS if k in fault}
    if module == "actions.network" and extra:
        raise ConfigError(f"fault kind {kind} takes no {', '.join(extra)}")
    inject = _action(f"replay-{kind}", module, func, **fixed, **extra)
    return inject, _heal() if undo == "heal" else _recover()


def _method(incident: Mapping[str, Any]) -> list[Activity]:
    fault = _section(incident, "fault", ("kind", "duration_s", *FAULT_PARAMETERS))
    promised = _section(incident, "promised", PROMISES)
    duration = _number(fault, "duration_s", 5, 3600)
    trip = _number(promised, "breaker_open_within_s", 0.1, 600, 5)
    recover = _number(promised, "recovery_within_s", 1, 3600, 30)
    inject, undo = _inject(fault)
    opened = _probe("breaker-opened-as-promised", "probes.breaker", "opened_within", True,
                    seconds=trip)
    hold = max(1.0, duration - trip)
    latency = _probe("p95-latency-during-the-fault", "probes.sla", "p95_latency_s",
                     {"type": "range", "range": [0, "${sla_p95_latency_max_s}"]},
                     window_s=max(2.0, min(10.0, hold)))
    closed = _probe("recovered-as-promised", "probes.breaker", "closed_within", True,
                    seconds=recover)
    return [inject, {**opened, "pauses": {"after": hold}}, latency, undo,
            {**closed, "pauses": {"after": "${settle_s}"}}]


def _hypothesis() -> dict[str, Any]:
    return {"title": "The SLA holds and every breaker is closed", "probes": [
        _probe("sla-within-targets", "probes.sla", "report",
               {"type": "jsonpath", "path": "$.ok", "expect": True},
               window_s="${sla_window_s}"),
        _probe("every-breaker-closed", "probes.breaker", "all_closed", True),
    ]}


def _sla(bounds: Mapping[str, Any]) -> dict[str, float]:
    """The promised SLA bounds as configuration keys (``sla_p95_latency_max_s`` ...)."""
    return {f"sla_{key}": _number(bounds, key, *SLA_BOUNDS[key]) for key in bounds}


def to_experiment(incident: Mapping[str, Any]) -> dict[str, Any]:
    """The Chaos Toolkit experiment that replays an incident and checks its promises."""
    raw_name = incident.get("incident")
    name = str(raw_name).strip() if isinstance(raw_name, str | int) else ""
    if not name:
        raise ConfigError("the incident file needs `incident:` (its id, e.g. INC-2041)")
    unknown = sorted(str(k) for k in set(incident) - set(FIELDS))
    if unknown:
        raise ConfigError(f"fields {unknown} are unknown: valid are {', '.join(FIELDS)}")
    method = _method(incident)
    sla = _sla(_section(_section(incident, "promised", PROMISES), "sla", tuple(SLA_BOUNDS),
                        "promised."))
    return {
        "version": "1.0.0",
        "title": f"{name}: {incident.get('title', 'incident replay')}",
        "description": str(incident.get("summary", "")) or f"Replay of {name}.",
        "tags": ["incident", name],
        "configuration": {"sla_window_s": 10, "settle_s": 11, "sla_p95_latency_max_s": 1.0,
                          **sla},
        "controls": [{"name": "gameday-traffic", "provider": {
            "type": "python", "module": "controls.traffic",
            "arguments": {"rate_rps": 200, "warmup_s": 12}}}],
        "steady-state-hypothesis": _hypothesis(),
        "method": method,
        "rollbacks": [method[3]],
    }
