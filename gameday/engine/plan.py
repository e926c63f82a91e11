"""What ``gameday plan`` (``gameday run --dry-run``) shows before anything is broken.

For each experiment, from its file alone (``${...}`` filled from its configuration and
``--var``): the traffic, the safeguard, the steady state, every fault and probe in order
with its arguments and blast radius, the rollbacks, the bounds and an estimate of the
wall time. Nothing here talks to a target (pure, apart from reading the files).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gameday.engine.controlplane import control_plane_cut
from gameday.engine.listing import entry
from gameday.engine.runner import load_experiment, not_runnable

__all__ = ["ExperimentPlan", "Step", "plan_of", "render", "total_s"]

_VAR = re.compile(r"\$\{([^}]+)\}")
UNDO_FUNCS = frozenset({("actions.network", "heal"), ("actions.broker", "recover"),
                        ("actions.freeze", "thaw"), ("actions.cpu", "unthrottle"),
                        ("actions.memory", "unlimit")})
RUN_OVERHEAD_S = 5.0


@dataclass(frozen=True)
class Step:
    """One activity of the method or the rollbacks, its arguments filled in."""

    kind: str
    name: str
    call: str
    blast: str
    pause_s: float


@dataclass(frozen=True)
class ExperimentPlan:
    """One experiment as it would run."""

    name: str
    title: str
    stands_for: str
    must_hold: str
    traffic: str
    safeguard: str
    steady: tuple[str, ...]
    steps: tuple[Step, ...]
    rollbacks: tuple[Step, ...]
    bounds: Mapping[str, Any]
    estimate_s: float
    waits_up_to_s: float
    warmup_s: float = 0.0
    rate_rps: float = 0.0
    not_runnable: tuple[str, ...] = ()
    cut_only: tuple[str, ...] = ()  # on a target without traffic: what a run leaves out


def _fill(value: Any, config: Mapping[str, Any]) -> Any:
    if isinstance(value, str):
        whole = _VAR.fullmatch(value)
        if whole and whole.group(1) in config:
            return config[whole.group(1)]
        return _VAR.sub(lambda m: str(config.get(m.group(1), m.group(0))), value)
    if isinstance(value, Mapping):
        return {key: _fill(item, config) for key, item in value.items()}
    if isinstance(value, list):
        return [_fill(item, config) for item in value]
    return value


def plan_of(path: Path, variables: Mapping[str, Any],
            unsupported: Mapping[str, str] | None = None,
            no_traffic: str | None = None) -> ExperimentPlan:
    """The plan of the experiment (or incident) at ``path`` with ``--var`` values, on a
    target that cannot inject the fault kinds of ``unsupported`` (kind → why) here, and
    through whose service no traffic flows for the reason ``no_traffic`` (then only the
    experiment's control-plane cut runs: see :mod:`gameday.engine.controlplane`)."""
    experiment = load_experiment(path)
    cut = None if no_traffic is None else control_plane_cut(experiment, no_traffic)
    config = {**(experiment.get("configuration") or {}), **variables}
    filled: dict[str, Any] = _fill(experiment, config)
    listed = entry(path)
    replicas = int(config.get("replicas", 3))
    steps = tuple(_step(a, replicas) for a in filled.get("method") or [])
    rollbacks = tuple(_step(a, replicas) for a in filled.get("rollbacks") or [])
    rate, warmup = _traffic(filled)
    pauses = sum(s.pause_s for s in steps)
    waits = sum(_waits(a) for a in filled.get("method") or [])
    return ExperimentPlan(
        name=path.stem, title=str(filled.get("title", path.stem)),
        stands_for=listed.stands_for, must_hold=listed.must_hold,
        traffic=("none (no request reaches the service here)" if no_traffic
                 else f"{rate:g} orders/s, warm-up {warmup:g} s" if rate else "none of its own"),
        safeguard=_safeguard(filled), steady=tuple(
            str(p.get("name")) for p in (filled.get("steady-state-hypothesis") or {}).get(
                "probes") or []),
        steps=steps, rollbacks=rollbacks,
        bounds={k: v for k, v in config.items() if k.startswith(("sla_", "breaker_"))},
        estimate_s=warmup + pauses + RUN_OVERHEAD_S, waits_up_to_s=waits, warmup_s=warmup,
        rate_rps=rate,
        not_runnable=(*not_runnable(filled, unsupported or {}), *(cut.blocked if cut else ())),
        cut_only=cut.skipped if cut else ())


def _provider(activity: Mapping[str, Any]) -> Mapping[str, Any]:
    provider = activity.get("provider")
    return provider if isinstance(provider, Mapping) else {}


def _step(activity: Mapping[str, Any], replicas: int) -> Step:
    provider = _provider(activity)
    module, func = str(provider.get("module", "?")), str(provider.get("func", "?"))
    arguments = provider.get("arguments") or {}
    args = ", ".join(f"{k}={v}" for k, v in arguments.items()) if isinstance(
        arguments, Mapping) else ""
    pauses = activity.get("pauses") or {}
    pause = float(pauses.get("after", 0) or 0) if isinstance(pauses, Mapping) else 0.0
    kind = str(activity.get("type", "?"))
    if (module, func) in UNDO_FUNCS:
        kind = "undo"
    blast = _blast(module, func, arguments if isinstance(arguments, Mapping) else {}, replicas)
    return Step(kind, str(activity.get("name", "?")), f"{module}.{func}({args})", blast, pause)


def _blast(module: str, func: str, arguments: Mapping[str, Any], replicas: int) -> str:
    """Who the fault reaches: its blast radius, in words (empty for probes and undos)."""
    if (module, func) in UNDO_FUNCS or not module.startswith("actions."):
        return ""
    if module == "actions.broker":
        return f"the broker API, for every replica ({_share(arguments.get('probability', 1))})"
    if module == "actions.pods":
        qty = arguments.get("qty", 1)
        return f"{qty} of {replicas} replicas killed"
    if module in ("actions.freeze", "actions.cpu", "actions.memory"):
        return f"{arguments.get('selector', '?')} {_gray_what(module, arguments)} (1 of " \
               f"{replicas} replicas)"
    return _link_blast(func, arguments, replicas)


def _link_blast(func: str, arguments: Mapping[str, Any], replicas: int) -> str:
    link = str(arguments.get("link", "service-broker"))
    if link == "service-broker":
        reach = "the link to the broker, for every replica (all orders)"
    else:
        reach = f"{link}: 1 of {replicas} replicas (about 1/{replicas} of the orders)"
    if func == "drop_packets":
        return f"{arguments.get('loss_percent', 2.0)} % of the packets at random on {reach}"
    return reach


def _gray_what(module: str, arguments: Mapping[str, Any]) -> str:
    if module == "actions.freeze":
        return "frozen"
    if module == "actions.cpu":
        return f"limited to {arguments.get('cores', 0.1)} CPU core"
    return (f"leaking {arguments.get('leak_mib_per_s', 32)} MiB/s past a limit "
            f"{arguments.get('headroom_mib', 48)} MiB above its use, until OOM-killed")


def _share(probability: Any) -> str:
    """``all orders`` or ``about 5 % of the orders`` for a fault's probability."""
    try:
        share = float(probability)
    except (TypeError, ValueError):
        return f"a share {probability!r} of the orders"
    return "all orders" if share >= 1 else f"about {share:.0%} of the orders"


def _waits(activity: Mapping[str, Any]) -> float:
    """How long a probe may wait for what it checks (its ``seconds`` bound)."""
    if activity.get("type") != "probe":
        return 0.0
    arguments = _provider(activity).get("arguments") or {}
    seconds = arguments.get("seconds", arguments.get("within_s"))
    return float(seconds) if isinstance(seconds, int | float) else 0.0


def _traffic(experiment: Mapping[str, Any]) -> tuple[float, float]:
    for control in experiment.get("controls") or []:
        arguments = _provider(control).get("arguments") or {}
        if _provider(control).get("module") == "controls.traffic":
            return float(arguments.get("rate_rps", 200)), float(arguments.get("warmup_s", 12))
    return 0.0, 0.0


def _safeguard(experiment: Mapping[str, Any]) -> str:
    for control in experiment.get("controls") or []:
        if _provider(control).get("module") != "chaosaddons.controls.safeguards":
            continue
        for probe in (_provider(control).get("arguments") or {}).get("probes") or []:
            minimum = (_provider(probe).get("arguments") or {}).get("minimum")
            if minimum is not None:
                return f"interrupt when fewer than {minimum} replicas are ready"
        return "a safeguard control"
    return "none"


def total_s(plans: Sequence[ExperimentPlan]) -> tuple[float, float]:
    """The run's estimated wall time, low and high (pure). When every experiment asks for
    the same traffic rate, ``gameday run`` shares one load and warms up once."""
    low = sum(p.estimate_s for p in plans)
    rates = {p.rate_rps for p in plans}
    if len(plans) > 1 and len(rates) == 1 and rates != {0.0}:
        low -= sum(p.warmup_s for p in plans[1:])
    return low, low + sum(p.waits_up_to_s for p in plans)


def render(plans: Sequence[ExperimentPlan]) -> str:
    """The plans as text, with the total estimate (pure)."""
    lines = [line for plan in plans for line in _lines(plan)]
    low, high = total_s(plans)
    shared = " (one shared load, one warm-up)" if low < sum(p.estimate_s for p in plans) else ""
    lines.append(f"{len(plans)} experiment(s), about {low:.0f} to {high:.0f} s{shared}; "
                 "nothing was injected (dry run)")
    return "\n".join(lines)


def _lines(plan: ExperimentPlan) -> Iterator[str]:
    yield f"{plan.name} — {plan.title}"
    for reason in plan.not_runnable:
        yield f"  NOT RUNNABLE on this target ({reason.removeprefix('not runnable here: ')}): "\
              "a run reports it INCONCLUSIVE without running it"
    for left_out in () if plan.not_runnable else plan.cut_only:
        yield (f"  CONTROL-PLANE CUT only ({left_out.removeprefix('not runnable here: ')}): "
               "a run is never PASS here: INCONCLUSIVE when what runs holds, FAIL when not")
    yield f"  stands for: {plan.stands_for}; must hold: {plan.must_hold}"
    yield f"  traffic: {plan.traffic}; safeguard: {plan.safeguard}"
    yield f"  steady state, before and after: {', '.join(plan.steady) or 'none'}"
    for number, step in enumerate(plan.steps, 1):
        pause = f", then wait {step.pause_s:g} s" if step.pause_s else ""
        blast = f"  [{step.blast}]" if step.blast else ""
        yield f"  {number}. {step.kind} {step.name}: {step.call}{pause}{blast}"
    yield f"  rollbacks: {', '.join(s.name for s in plan.rollbacks) or 'none'}"
    bounds = ", ".join(f"{k}={v}" for k, v in plan.bounds.items())
    yield f"  bounds: {bounds or 'none'}"
    yield (f"  about {plan.estimate_s:.0f} s (warm-up and pauses), up to "
           f"{plan.estimate_s + plan.waits_up_to_s:.0f} s if every wait runs to its bound")
    yield ""
