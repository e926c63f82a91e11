"""``gameday explore pairs`` (pure part): which single faults of the catalog to combine,
which pairs to skip and why, and what each run found.

A single fault or a pair is held for a while on shared traffic, then undone; it *holds*
when the clients' p95 stayed within the SLA's bound while it was on (the service failed
fast, whatever it answered) and the service recovered afterwards (every breaker closed
and the client-side SLA back) within the recovery bound.

Pairs are pruned before anything runs out of the budget:

- a pair with a single fault that already fails is skipped (it cannot tell more);
- two broker simulator modes cannot be combined (the simulator has one mode at a time);
- the broker link down with a broker mode is the link down alone (no call reaches the
  simulator to be slowed or failed);
- (A, B) and (B, A) are the same pair.

The finding is each pair that fails while both of its single faults hold.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["SINGLES", "Outcome", "Single", "findings", "plan_pairs"]


@dataclass(frozen=True)
class Single:
    """One catalog fault: what it injects (gameday.faults.inject's kind and arguments)."""

    name: str
    kind: str  # partition, broker, kill
    args: Mapping[str, Any]
    stands_for: str

    @property
    def broker_mode(self) -> bool:
        """It sets the broker simulator's mode."""
        return self.kind == "broker"


SINGLES: tuple[Single, ...] = (
    Single("broker-down", "partition", {"link": "service-broker"}, "the broker link down"),
    Single("broker-slow", "broker", {"mode": "slow", "latency_ms": 2000},
           "the broker answers after 2 s"),
    Single("broker-errors", "broker", {"mode": "error", "status": 503, "probability": 0.5},
           "half the broker calls answered 503"),
    Single("broker-flapping", "broker", {"mode": "flap", "up_s": 2, "down_s": 2},
           "the broker up 2 s, down 2 s"),
    Single("replica-partition", "partition", {"link": "lb-replica-2"},
           "one replica cut off from the load balancer"),
    Single("pod-kill", "kill", {"selector": "name=replica-1", "qty": 1, "mode": "fixed"},
           "one replica killed"),
)


@dataclass(frozen=True)
class Outcome:
    """What a run of one fault or a pair showed."""

    names: tuple[str, ...]
    p95_during_s: float
    recovered_s: float | None  # None: not within the bound
    holds: bool

    def as_json(self) -> dict[str, Any]:
        """Plain JSON."""
        return {"faults": list(self.names), "p95_during_s": round(self.p95_during_s, 4),
                "recovered_s": None if self.recovered_s is None else round(self.recovered_s, 2),
                "holds": self.holds}


def skip_reason(a: Single, b: Single, failed: set[str]) -> str | None:
    """Why the pair (a, b) is not run, or None to run it."""
    broken = [s.name for s in (a, b) if s.name in failed]
    if broken:
        return f"{' and '.join(broken)} already fails alone"
    if a.broker_mode and b.broker_mode:
        return "both set the broker simulator's mode (one at a time)"
    for link_down, mode in ((a, b), (b, a)):
        if link_down.name == "broker-down" and mode.broker_mode:
            return f"the same as broker-down alone (no call reaches the broker to {mode.name})"
    return None


def plan_pairs(singles: Sequence[Single], failed: set[str]) -> tuple[
        list[tuple[Single, Single]], list[tuple[tuple[str, str], str]]]:
    """(pairs to run, [(pair, why skipped)]) for ``singles`` given which of them failed."""
    run, skipped = [], []
    for a, b in itertools.combinations(singles, 2):
        reason = skip_reason(a, b, failed)
        if reason is None:
            run.append((a, b))
        else:
            skipped.append(((a.name, b.name), reason))
    return run, skipped


def findings(singles: Sequence[Outcome], pairs: Sequence[Outcome]) -> list[str]:
    """The pairs that fail while each of their faults holds alone."""
    held = {o.names[0] for o in singles if o.holds}
    return [f"{' + '.join(o.names)} fails together (p95 {o.p95_during_s * 1000:.0f} ms during, "
            f"{'no recovery' if o.recovered_s is None else f'recovered in {o.recovered_s:.1f} s'})"
            " while each holds alone"
            for o in pairs if not o.holds and all(n in held for n in o.names)]
