"""The soak's settings and its fault schedule (pure).

:func:`parse_settings` reads the command line of ``python -m bench.soak`` (a bad value
exits 2 naming what is valid); :func:`fault_schedule` turns a seed into the list of
faults to inject: one at a time, each held a few seconds, then healed, then a quiet gap.
The same seed always gives the same schedule.
"""

from __future__ import annotations

import argparse
import math
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["FAULT_KINDS", "FaultKind", "PlannedFault", "SoakSettings", "fault_schedule",
           "parse_settings", "warmup_schedule"]

SOAK_PORT_BASE = 20500
SEED_LIMIT = 2**32
DURATION_RANGE_S = (15.0, 7200.0)
RATE_RANGE_RPS = (1.0, 1000.0)
WARMUP_RANGE_S = (5.0, 600.0)


@dataclass(frozen=True)
class SoakSettings:
    """One soak run.

    Attributes:
        seed: seeds the fault schedule (printed, so a run can be repeated).
        duration_s: seconds of faults (after the warm-up); 15..7200.
        rate_rps: orders per second sent for the whole run (open model); 1..1000.
        warmup_s: seconds of load without faults at the start.
        warmup_faults: after those, inject every kind of fault once (``warmup_hold_s``
            each) before the first memory sample, so that each process has reached the
            memory its peak load takes (buffers, pools, connections: a high-water mark
            that is no leak) and the start-to-end growth shows accumulation only.
        port_base: the soak lab's port base (every port is an offset from it).
        state_dir: keep the lab's state (logs, ledger, injection record, order
            outcomes) here; None = a temporary directory, removed at the end.
        hold_s: (min, max) seconds each fault is held.
        gap_s: (min, max) seconds of quiet between a heal and the next fault.
        growth_limit_pct: a process' memory may grow less than this from start to end.
    """

    seed: int
    duration_s: float = 600.0
    rate_rps: float = 200.0
    warmup_s: float = 30.0
    warmup_faults: bool = True
    warmup_hold_s: float = 5.0
    port_base: int = SOAK_PORT_BASE
    state_dir: Path | None = None
    hold_s: tuple[float, float] = (3.0, 10.0)
    gap_s: tuple[float, float] = (3.0, 8.0)
    growth_limit_pct: float = 20.0


@dataclass(frozen=True)
class FaultKind:
    """A kind of fault: ``action`` is partition, degrade, broker or kill (the
    :mod:`gameday.faults.inject` function used), ``params`` its arguments; ``replica`` says
    which replicas it may hit: "" none, "any", or "spare-first" (never the first
    replica, so that one replica runs, and is measured, for the whole soak)."""

    name: str
    action: str
    params: Mapping[str, Any] = field(default_factory=dict)
    replica: str = ""


_BROKER_LINK = "service-broker"
FAULT_KINDS: tuple[FaultKind, ...] = (
    FaultKind("replica-kill", "kill", replica="spare-first"),
    FaultKind("replica-partition", "partition", replica="any"),
    FaultKind("broker-link-down", "partition", {"link": _BROKER_LINK}),
    FaultKind("broker-link-latency", "degrade",
              {"link": _BROKER_LINK, "toxic": "latency", "stream": "downstream",
               "toxicity": 1.0, "attributes": {"latency": 300, "jitter": 100}}),
    FaultKind("broker-link-blackhole", "degrade",
              {"link": _BROKER_LINK, "toxic": "timeout", "stream": "upstream",
               "toxicity": 1.0, "attributes": {"timeout": 0}}),
    FaultKind("broker-link-reset", "degrade",
              {"link": _BROKER_LINK, "toxic": "reset_peer", "stream": "downstream",
               "toxicity": 0.5, "attributes": {"timeout": 0}}),
    FaultKind("broker-errors", "broker", {"mode": "error", "status": 503, "probability": 0.5}),
    FaultKind("broker-maintenance", "broker", {"mode": "maintenance", "retry_after_s": 5}),
    FaultKind("broker-slow", "broker", {"mode": "slow", "latency_ms": 1500}),
    FaultKind("broker-rate-limit", "broker",
              {"mode": "rate_limit", "retry_after_s": 1, "probability": 0.5}),
    FaultKind("broker-hang", "broker", {"mode": "hang", "probability": 0.3}),
    FaultKind("broker-flap", "broker", {"mode": "flap", "up_s": 1, "down_s": 1}),
)


@dataclass(frozen=True)
class PlannedFault:
    """One fault of the schedule: its kind's name and action, the resolved arguments
    (``link`` or ``selector`` filled in), when it starts (seconds after the fault phase
    began) and how long it is held before it is healed."""

    name: str
    action: str
    params: Mapping[str, Any]
    start_s: float
    hold_s: float

    def describe(self) -> str:
        """The fault in words, e.g. ``broker-errors (mode=error, status=503, ...)``."""
        shown = ", ".join(f"{k}={v}" for k, v in self.params.items() if k != "attributes")
        extra = self.params.get("attributes")
        if extra:
            shown += ", " + ", ".join(f"{k}={v}" for k, v in extra.items())
        return f"{self.name} ({shown})" if shown else self.name


def _resolve(kind: FaultKind, rng: random.Random, replicas: Sequence[str]) -> dict[str, Any]:
    params = dict(kind.params)
    if not kind.replica:
        return params
    choices = list(replicas[1:]) if kind.replica == "spare-first" else list(replicas)
    replica = rng.choice(choices)
    if kind.action == "kill":
        params.update(selector=f"name={replica}", qty=1, mode="fixed")
    else:
        params["link"] = f"lb-{replica}"
    return params


def fault_schedule(seed: int, duration_s: float, replicas: Sequence[str], *,
                   hold_s: tuple[float, float] = (3.0, 10.0),
                   gap_s: tuple[float, float] = (3.0, 8.0),
                   kinds: Sequence[FaultKind] = FAULT_KINDS) -> list[PlannedFault]:
    """Faults chosen at random (uniformly among ``kinds``) for ``duration_s`` seconds.

    Each starts after a quiet gap (``gap_s`` range) and is held ``hold_s`` (range; the
    last one is shortened, never below the minimum, so that a quiet gap of at least
    the minimum always ends the phase). Kinds that hit a replica need two replicas or
    more when they spare the first. Deterministic for a given seed.
    """
    if len(replicas) < 2:
        kinds = [k for k in kinds if k.replica != "spare-first"]
    rng = random.Random(seed)
    planned: list[PlannedFault] = []
    t = rng.uniform(*gap_s)
    while True:
        hold = min(rng.uniform(*hold_s), duration_s - gap_s[0] - t)
        if hold < hold_s[0]:
            return planned
        kind = rng.choice(list(kinds))
        params = _resolve(kind, rng, replicas)
        planned.append(PlannedFault(kind.name, kind.action, params, round(t, 3), round(hold, 3)))
        t += hold + rng.uniform(*gap_s)


def warmup_schedule(seed: int, replicas: Sequence[str], hold_s: float = 5.0,
                    gap_s: float = 3.0,
                    kinds: Sequence[FaultKind] = FAULT_KINDS) -> list[PlannedFault]:
    """Every kind once, in a seeded random order: each held ``hold_s``, ``gap_s`` apart."""
    if len(replicas) < 2:
        kinds = [k for k in kinds if k.replica != "spare-first"]
    rng = random.Random(seed)
    order = rng.sample(list(kinds), len(kinds))
    return [PlannedFault(kind.name, kind.action, _resolve(kind, rng, replicas),
                         gap_s + index * (hold_s + gap_s), hold_s)
            for index, kind in enumerate(order)]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.soak",
        description="Soak the lab: randomly chosen faults under steady order traffic; "
                    "per-process memory at start and end, and reconciliation.")
    add = parser.add_argument
    add("--seed", type=int, help="seed of the fault schedule (default: a random one, printed)")
    add("--duration-s", type=float, default=600.0,
        help="seconds of faults, after the warm-up (default 600)")
    add("--rate", type=float, default=200.0, help="orders per second (default 200)")
    add("--warmup-s", type=float, default=30.0,
        help="seconds of load without faults at the start (default 30)")
    add("--no-warmup-faults", dest="warmup_faults", action="store_false",
        help="skip the warm-up round of every fault kind before the start sample "
             "(quicker; the memory growth then includes each process' high-water mark)")
    add("--port-base", type=int, default=SOAK_PORT_BASE,
        help=f"the soak lab's port base (default {SOAK_PORT_BASE})")
    add("--state-dir", type=Path,
        help="keep the lab's state and logs here (a new or empty directory); "
             "default: a temporary directory, removed at the end")
    return parser


def _check_range(name: str, value: float, bounds: tuple[float, float], unit: str) -> str:
    low, high = bounds
    if math.isfinite(value) and low <= value <= high:
        return ""
    return f"{name} must be between {low:g} and {high:g} {unit}, got {value:g}"


def _problems(args: argparse.Namespace) -> list[str]:
    problems = [
        _check_range("--duration-s", args.duration_s, DURATION_RANGE_S, "seconds"),
        _check_range("--rate", args.rate, RATE_RANGE_RPS, "orders/s"),
        _check_range("--warmup-s", args.warmup_s, WARMUP_RANGE_S, "seconds"),
        _check_range("--port-base", args.port_base, (1024, 65000), ""),
    ]
    if args.seed is not None and not 0 <= args.seed < SEED_LIMIT:
        problems.append(f"--seed must be between 0 and {SEED_LIMIT - 1}, got {args.seed}")
    state = args.state_dir
    if state is not None and state.exists() and (not state.is_dir() or any(state.iterdir())):
        problems.append(f"--state-dir {state} must be a new or empty directory")
    return [p for p in problems if p]


def parse_settings(argv: Sequence[str] | None,
                   draw_seed: Callable[[], int] = lambda: random.SystemRandom().randrange(
                       SEED_LIMIT)) -> SoakSettings:
    """Settings from the command line; exits 2 with every problem named on bad values.
    ``draw_seed`` gives the seed when ``--seed`` is not set."""
    parser = _parser()
    args = parser.parse_args(argv)
    problems = _problems(args)
    if problems:
        parser.error("; ".join(problems))
    seed = args.seed if args.seed is not None else draw_seed()
    return SoakSettings(seed=seed, duration_s=args.duration_s, rate_rps=args.rate,
                        warmup_s=args.warmup_s, warmup_faults=args.warmup_faults,
                        port_base=args.port_base,
                        state_dir=args.state_dir)
