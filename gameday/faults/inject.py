"""Inject faults and undo them, recording each in the target's injection log first.

This is the engine behind ``actions``: every fault kind has an idempotent undo, and
``cleanup`` undoes whatever the log still holds as pending (after a crash, say).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from gameday.clients.http import admin_call
from gameday.clients.toxiproxy import STREAMS, TOXIC_TYPES, Toxiproxy
from gameday.contract import (
    CPU_THROTTLE_FAULT,
    FREEZE_FAULT,
    KILL_FAULT,
    LB_LINK_PREFIX,
    MEMORY_LIMIT_FAULT,
    PACKET_LOSS_FAULT,
    REPLICA_LINK_DEGRADE_FAULT,
    ConfigError,
    InjectionError,
)
from gameday.faults.record import Injection, InjectionLog
from gameday.targets import Target

LINK_KINDS = ("partition", "degrade", PACKET_LOSS_FAULT)
EVERYTHING_SELECTORS = ("", "*", "all")
# The actions that inject a fault a target may not offer everywhere, and its kind.
ACTION_FAULTS = {("actions.freeze", "freeze"): FREEZE_FAULT,
                 ("actions.cpu", "throttle"): CPU_THROTTLE_FAULT,
                 ("actions.memory", "limit"): MEMORY_LIMIT_FAULT,
                 ("actions.network", "drop_packets"): PACKET_LOSS_FAULT}
CORES_MIN, CORES_MAX = 0.01, 64.0
HEADROOM_MIB_RANGE = (1, 4096)
LEAK_MIB_PER_S_RANGE = (1, 1024)
LOSS_PERCENT_MAX = 100.0


def fault_kind(provider: Mapping[str, Any]) -> str | None:
    """The fault kind a target may be unable to inject (``Target.unsupported_faults``)
    that an activity's provider asks for, or None (pure)."""
    call = (str(provider.get("module")), str(provider.get("func")))
    if call == ("actions.network", "degrade"):
        link = (provider.get("arguments") or {}).get("link", "")
        return REPLICA_LINK_DEGRADE_FAULT if str(link).startswith(LB_LINK_PREFIX) else None
    return ACTION_FAULTS.get(call)


def _log(target: Target) -> InjectionLog:
    return InjectionLog(target.state_dir())


def _check_link(target: Target, link: str) -> None:
    links = target.links()
    if link not in links:
        raise ConfigError(f"unknown link {link!r}: valid links are {', '.join(links)}")


def partition(target: Target, link: str) -> dict[str, Any]:
    """Cut ``link``; undo with ``heal``."""
    _check_link(target, link)
    _log(target).record("partition", {"link": link})
    target.partition(link)
    return {"link": link, "state": "down"}


def heal(target: Target, link: str) -> dict[str, Any]:
    """Restore ``link`` and remove its degradations; idempotent."""
    _check_link(target, link)
    target.heal(link)
    removed = Toxiproxy(target.fault_proxy_url()).remove_toxics(link)
    _log(target).resolve(lambda i: i.kind in LINK_KINDS and i.params.get("link") == link)
    return {"link": link, "state": "up", "toxics_removed": removed}


def toxic_body(toxic: str, stream: str, toxicity: float,
               attributes: Mapping[str, Any]) -> dict[str, Any]:
    """A Toxiproxy toxic, validated (pure)."""
    if toxic not in TOXIC_TYPES:
        raise ConfigError(f"unknown toxic {toxic!r}: valid are {', '.join(TOXIC_TYPES)}")
    if stream not in STREAMS:
        raise ConfigError(f"unknown stream {stream!r}: valid are {', '.join(STREAMS)}")
    if not 0 <= float(toxicity) <= 1:
        raise ConfigError(f"toxicity={toxicity} is out of range: valid is 0..1")
    return {"name": f"gameday-{toxic}-{stream}", "type": toxic, "stream": stream,
            "toxicity": float(toxicity), "attributes": dict(attributes)}


def degrade(target: Target, link: str, *, toxic: str, stream: str, toxicity: float,
            attributes: Mapping[str, Any]) -> dict[str, Any]:
    """Add a Toxiproxy toxic to ``link`` (through the target: on Kubernetes a replica
    link's latency is a Chaos Mesh delay); undo with ``heal``."""
    body = toxic_body(toxic, stream, toxicity, attributes)
    if link.startswith(LB_LINK_PREFIX):
        _check_supported(target, REPLICA_LINK_DEGRADE_FAULT)
    _log(target).record("degrade", {"link": link, "toxic": body})
    return target.degrade(link, body)


def check_loss_percent(loss_percent: float) -> float:
    """``loss_percent`` as a float in (0, 100], or ConfigError naming the range (pure)."""
    if isinstance(loss_percent, bool) or not isinstance(loss_percent, int | float) or not (
            0 < loss_percent <= LOSS_PERCENT_MAX):
        raise ConfigError(f"loss_percent={loss_percent!r} is out of range: valid is 0 < "
                          f"loss_percent <= {LOSS_PERCENT_MAX:g} (the share of the link's "
                          "packets dropped, e.g. 2)")
    return float(loss_percent)


def drop_packets(target: Target, link: str, loss_percent: float) -> dict[str, Any]:
    """Drop ``loss_percent`` % of ``link``'s packets, either way, at random; undo with
    ``heal``."""
    _check_link(target, link)
    percent = check_loss_percent(loss_percent)
    _check_supported(target, PACKET_LOSS_FAULT)
    _log(target).record(PACKET_LOSS_FAULT, {"link": link, "loss_percent": percent})
    target.drop_packets(link, percent / 100)
    return {"link": link, "loss_percent": percent}


def _broker_admin(target: Target, path: str, body: dict[str, Any]) -> Any:
    response = admin_call("broker simulator (admin API)", "POST",
                          target.broker_admin_url() + path, body)
    if response.status == 400:
        raise ConfigError(f"broker simulator refused {body}: {response.body}")
    if response.status >= 300:
        raise InjectionError(f"broker simulator answered {response.status}: {response.body}")
    return response.body


def broker_fail(target: Target, mode: Mapping[str, Any]) -> Any:
    """Switch the broker simulator into a failure ``mode``; undo with ``broker_recover``."""
    _log(target).record("broker", dict(mode))
    return _broker_admin(target, "/admin/mode", dict(mode))


def broker_recover(target: Target) -> Any:
    """Put the broker simulator back to normal; idempotent."""
    answer = _broker_admin(target, "/admin/reset", {})
    _log(target).resolve(lambda i: i.kind == "broker")
    return answer


def kill_count(mode: str, qty: float, matching: int) -> int:
    """How many of ``matching`` replicas to kill (pure): ``fixed`` = qty, ``percentage`` =
    qty % rounded down but at least 1."""
    if mode == "fixed":
        count = int(qty)
        if count != qty or not 1 <= count <= matching:
            raise ConfigError(f"qty={qty} is invalid: valid is a whole number 1..{matching}")
        return count
    if mode == "percentage":
        if not 0 < qty <= 100:
            raise ConfigError(f"qty={qty} is invalid for mode percentage: valid is 0 < qty <= 100")
        return max(1, math.floor(matching * qty / 100))
    raise ConfigError(f"unknown mode {mode!r}: valid are fixed, percentage")


def kill(target: Target, selector: str, qty: float, mode: str) -> list[str]:
    """Kill replicas matching ``selector``; they come back by themselves (no undo)."""
    if selector.strip() in EVERYTHING_SELECTORS:
        raise ConfigError(f"selector {selector!r} would match everything: name the service's "
                          "pods, e.g. app=broker-integration")
    count = kill_count(mode, qty, target.ready_replicas(selector))
    before = target.replica_instances(selector)
    killed = target.kill_pods(selector, count)
    # recorded after the kill (nothing to undo), with what each replica ran as before it:
    # probes.replicas.replaced then checks that none of it still runs
    _log(target).record(KILL_FAULT, {"selector": selector, "qty": count,
                                     "instances": {name: before.get(name, [])
                                                   for name in killed}}, undoable=False)
    return killed


def _check_selector(selector: str) -> None:
    if selector.strip() in EVERYTHING_SELECTORS:
        raise ConfigError(f"selector {selector!r} would match everything: name the service's "
                          "pods, e.g. name=replica-2")


def _check_supported(target: Target, kind: str) -> None:
    """InjectionError saying why when the target cannot inject ``kind`` here."""
    reason = target.unsupported_faults().get(kind)
    if reason:
        raise InjectionError(f"not runnable here: {reason}")


def freeze(target: Target, selector: str) -> dict[str, Any]:
    """Freeze the replicas matching ``selector``; undo with ``thaw``."""
    _check_selector(selector)
    _check_supported(target, FREEZE_FAULT)
    _log(target).record(FREEZE_FAULT, {"selector": selector})
    return {"frozen": target.freeze(selector)}


def _undone(target: Target, kind: str, selector: str) -> None:
    """Mark the recorded ``kind`` faults on ``selector`` as undone."""
    _log(target).resolve(lambda i: i.kind == kind and i.params.get("selector") == selector)


def thaw(target: Target, selector: str) -> dict[str, Any]:
    """Thaw the replicas matching ``selector``; idempotent."""
    _check_selector(selector)
    thawed = target.thaw(selector)
    _undone(target, FREEZE_FAULT, selector)
    return {"thawed": thawed}


def check_cores(cores: float) -> float:
    """``cores`` as a float, or ConfigError naming the valid range (pure)."""
    if isinstance(cores, bool) or not isinstance(cores, int | float) or not (
            CORES_MIN <= cores <= CORES_MAX):
        raise ConfigError(f"cores={cores!r} is out of range: valid is {CORES_MIN:g}.."
                          f"{CORES_MAX:g} (a share of one CPU core, e.g. 0.1)")
    return float(cores)


def throttle(target: Target, selector: str, cores: float) -> dict[str, Any]:
    """Limit the replicas matching ``selector`` to ``cores`` of CPU; undo with
    ``unthrottle``."""
    _check_selector(selector)
    limit = check_cores(cores)
    _check_supported(target, CPU_THROTTLE_FAULT)
    _log(target).record(CPU_THROTTLE_FAULT, {"selector": selector, "cores": limit})
    return {"throttled": target.throttle_cpu(selector, limit), "cores": limit}


def unthrottle(target: Target, selector: str) -> dict[str, Any]:
    """Lift the CPU limit of the replicas matching ``selector``; idempotent."""
    _check_selector(selector)
    released = target.unthrottle_cpu(selector)
    _undone(target, CPU_THROTTLE_FAULT, selector)
    return {"unthrottled": released}


def check_mib(name: str, value: int, valid: tuple[int, int]) -> int:
    """``value`` as a whole number of MiB within ``valid``, or ConfigError (pure)."""
    low, high = valid
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(f"{name}={value!r} is out of range: valid is a whole number "
                          f"{low}..{high} (MiB)")
    return value


def limit_memory(target: Target, selector: str, headroom_mib: int,
                 leak_mib_per_s: int) -> dict[str, Any]:
    """Limit the memory of the replicas matching ``selector`` and leak into it until the
    kernel OOM-kills them; undo with ``unlimit_memory``. The record keeps each replica's
    OOM-kill count and what it ran as (see ``Target.replica_instances``) from before: the
    baselines of ``probes.cgroups.oom_killed``."""
    _check_selector(selector)
    headroom = check_mib("headroom_mib", headroom_mib, HEADROOM_MIB_RANGE)
    rate = check_mib("leak_mib_per_s", leak_mib_per_s, LEAK_MIB_PER_S_RANGE)
    _check_supported(target, MEMORY_LIMIT_FAULT)
    before = {name: int(figures["oom_kills"])
              for name, figures in target.cgroup_figures(selector).items()}
    _log(target).record(MEMORY_LIMIT_FAULT, {"selector": selector, "headroom_mib": headroom,
                                             "leak_mib_per_s": rate,
                                             "oom_kills_before": before,
                                             "instances": target.replica_instances(selector)})
    return {"limited": target.limit_memory(selector, headroom, rate),
            "headroom_mib": headroom, "leak_mib_per_s": rate}


def unlimit_memory(target: Target, selector: str) -> dict[str, Any]:
    """End the leak and lift the memory limit of the replicas matching ``selector``;
    idempotent."""
    _check_selector(selector)
    released = target.unlimit_memory(selector)
    _undone(target, MEMORY_LIMIT_FAULT, selector)
    return {"unlimited": released}


UNDO: dict[str, Callable[[Target, Injection], Any]] = {
    "partition": lambda target, injection: heal(target, injection.params["link"]),
    "degrade": lambda target, injection: heal(target, injection.params["link"]),
    "broker": lambda target, injection: broker_recover(target),
    FREEZE_FAULT: lambda target, injection: thaw(target, injection.params["selector"]),
    CPU_THROTTLE_FAULT: lambda target, injection: unthrottle(target,
                                                            injection.params["selector"]),
    MEMORY_LIMIT_FAULT: lambda target, injection: unlimit_memory(
        target, injection.params["selector"]),
    PACKET_LOSS_FAULT: lambda target, injection: heal(target, injection.params["link"]),
}


def sweep(target: Target) -> list[str]:
    """Undo what gameday finds injected whether or not the log records it (a runner that
    lost its state directory, e.g. a Kubernetes runner pod with an emptyDir): heal every
    link (cuts, packet loss, gameday's NetworkPolicies and labels, toxics, Chaos Mesh
    delays), put
    the broker simulator back to normal where there is one, and release every gray
    fault; then mark everything in the log undone. Returns what was in place before, in
    words. Idempotent."""
    found = target.leftovers()
    for link in target.links():
        heal(target, link)
    try:
        target.broker_admin_url()
    except ConfigError:
        pass  # no broker simulator on this target: no broker fault to undo
    else:
        broker_recover(target)
    target.release_gray()
    _log(target).resolve(lambda i: True)
    return found


def cleanup(target: Target) -> list[str]:
    """Undo every fault the log holds as pending; returns what was undone, in words.
    Raises InjectionError naming any recorded fault of a kind it cannot undo (after
    undoing the others)."""
    undone, unknown = [], []
    for injection in _log(target).pending():
        undo = UNDO.get(injection.kind)
        if undo is None:
            unknown.append(f"{injection.kind} {injection.params} (id {injection.id})")
            continue
        undo(target, injection)
        undone.append(f"{injection.kind} {injection.params}")
    if unknown:
        raise InjectionError(
            f"cannot undo recorded {'; '.join(unknown)}: gameday undoes only "
            f"{', '.join(UNDO)}; undo it by hand, then remove its line from "
            f"{_log(target).path}")
    return undone
