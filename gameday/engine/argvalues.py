"""Value checks of the arguments of gameday's own probes, actions and controls (pure).

Each check takes an activity's arguments (defaults filled in, types already checked by
:mod:`gameday.engine.argcheck`) and the target's link names (None when unknown before the run),
and raises ConfigError naming what is valid. They call the same validators the engine
applies when it injects (``window_selector``, ``toxic_body``, the broker simulator's
``parse_mode``), so that a run is refused before its first fault rather than failing in
the middle.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from typing import Any

from gameday.contract import ConfigError, window_selector
from gameday.faults.inject import (
    EVERYTHING_SELECTORS,
    HEADROOM_MIB_RANGE,
    LEAK_MIB_PER_S_RANGE,
    check_cores,
    check_loss_percent,
    check_mib,
    toxic_body,
)
from gameday.measurements.sla import SOURCES
from gameday.targets.lab import broker_fault_modes, check_broker_mode

__all__ = ["VALUE_CHECKS", "Links"]

Links = tuple[str, ...] | None


def _close(name: object, valid: tuple[str, ...]) -> str:
    match = difflib.get_close_matches(str(name), valid, n=1)
    return f" (did you mean {match[0]}?)" if match else ""


def _window(args: Mapping[str, Any], links: Links) -> None:
    window_selector(args["window_s"])


def _source_and_window(args: Mapping[str, Any], links: Links) -> None:
    _window(args, links)
    if args["source"] not in SOURCES:
        raise ConfigError(f"unknown source {args['source']!r}: valid are {', '.join(SOURCES)}")


def _seconds(args: Mapping[str, Any], links: Links) -> None:
    if not 0 < args["seconds"] <= 3600:
        raise ConfigError(f"seconds={args['seconds']} is out of range: valid is "
                          "0 < seconds <= 3600")


def _link(args: Mapping[str, Any], links: Links) -> None:
    if links is not None and args["link"] not in links:
        raise ConfigError(f"unknown link {args['link']!r}{_close(args['link'], links)}"
                          f": valid links are {', '.join(links)}")


def _degrade(args: Mapping[str, Any], links: Links) -> None:
    _link(args, links)
    toxic_body(args["toxic"], args["stream"], args["toxicity"], args["attributes"] or {})


def _drop_packets(args: Mapping[str, Any], links: Links) -> None:
    _link(args, links)
    check_loss_percent(args["loss_percent"])


def _kill(args: Mapping[str, Any], links: Links) -> None:
    selector, qty, mode = args["selector"], args["qty"], args["mode"]
    if selector.strip() in EVERYTHING_SELECTORS:
        raise ConfigError(f"selector {selector!r} would match everything: name the service's "
                          "pods, e.g. app=broker-integration")
    if mode == "fixed" and (qty != int(qty) or qty < 1):
        raise ConfigError(f"qty={qty} is invalid for mode fixed: valid is a whole number >= 1")
    if mode == "percentage" and not 0 < qty <= 100:
        raise ConfigError(f"qty={qty} is invalid for mode percentage: valid is 0 < qty <= 100")
    if mode not in ("fixed", "percentage"):
        raise ConfigError(f"unknown mode {mode!r}: valid are fixed, percentage")


def _replica_selector(args: Mapping[str, Any], links: Links) -> None:
    if args["selector"].strip() in EVERYTHING_SELECTORS:
        raise ConfigError(f"selector {args['selector']!r} would match everything: name the "
                          "replicas, e.g. name=replica-2")


def _throttle(args: Mapping[str, Any], links: Links) -> None:
    _replica_selector(args, links)
    check_cores(args["cores"])


def _memory(args: Mapping[str, Any], links: Links) -> None:
    _replica_selector(args, links)
    check_mib("headroom_mib", args["headroom_mib"], HEADROOM_MIB_RANGE)
    check_mib("leak_mib_per_s", args["leak_mib_per_s"], LEAK_MIB_PER_S_RANGE)


def _broker_mode(args: Mapping[str, Any], links: Links) -> None:
    check_broker_mode({k: v for k, v in args.items() if v is not None})


def _fault_mode(args: Mapping[str, Any], links: Links) -> None:
    valid = broker_fault_modes()
    if args["mode"] not in valid:
        raise ConfigError(f"unknown broker simulator mode {args['mode']!r}"
                          f"{_close(args['mode'], valid)}: valid are {', '.join(valid)}")


def _traffic(args: Mapping[str, Any], links: Links) -> None:
    for name in ("rate_rps", "max_duration_s"):
        if not args[name] > 0:
            raise ConfigError(f"{name}={args[name]} is out of range: valid is > 0")
    if not args["warmup_s"] >= 0:
        raise ConfigError(f"warmup_s={args['warmup_s']} is out of range: valid is >= 0")
    if not 1 <= args["workers"] <= 64:
        raise ConfigError(f"workers={args['workers']} is out of range: valid is 1..64")


VALUE_CHECKS: Mapping[str, Callable[[Mapping[str, Any], Links], None]] = {
    **{f"probes.sla.{name}": _source_and_window for name in (
        "availability", "p95_latency_s", "error_rate", "throughput_rps", "report")},
    "probes.orders.broker_calls_per_order": _window,
    "probes.breaker.opened_within": _seconds,
    "probes.breaker.closed_within": _seconds,
    "probes.breaker.max_transitions": _window,
    "probes.broker.mode_hits": _fault_mode,
    "actions.network.partition": _link,
    "actions.network.heal": _link,
    "actions.network.degrade": _degrade,
    "actions.network.drop_packets": _drop_packets,
    "probes.network.packets_dropped": _link,
    "actions.pods.kill": _kill,
    "actions.broker.fail": _broker_mode,
    "actions.freeze.freeze": _replica_selector,
    "actions.freeze.thaw": _replica_selector,
    "actions.cpu.throttle": _throttle,
    "actions.cpu.unthrottle": _replica_selector,
    "probes.cgroups.frozen": _replica_selector,
    "probes.cgroups.cpu_throttled": _replica_selector,
    "actions.memory.limit": _memory,
    "actions.memory.unlimit": _replica_selector,
    "probes.cgroups.oom_killed": _replica_selector,
    "controls.traffic": _traffic,
}
