"""Deliberate defects for the lab, to prove that the experiments catch them.

``GAMEDAY_LAB_SABOTAGE`` is a comma-separated list of:

- ``no-breaker``: the replicas' circuit breakers never open;
- ``no-health-checks``: HAProxy sends traffic to every replica without checking it;
- ``no-idempotency``: the broker fills a repeated client order id again;
- ``no-lb-retries``: HAProxy does not retry a request whose replica failed;
- ``breaker-thrash``: the breakers try the broker again after 0.1 s instead of 5 s;
- ``retry-storm``: the replicas retry a failed call up to 10 times, ignoring
  ``Retry-After``;
- ``breaker-leaks``: the breakers open as usual (state and metric) but every order is
  still sent to the broker;
- ``ambiguous-as-failed``: an order whose outcome is unknown (timeout, connection broken
  after sending) is answered 500, the definite-failure status, instead of 502/504;
- ``retry-new-id``: the replicas retry an order under a new client order id, so a
  retry after a lost reply or a timeout fills it twice (under two ids);
- ``lb-round-robin``: HAProxy balances round robin instead of least connections, blind
  to a slow (CPU-starved) replica piling up requests;
- ``no-keepalive``: the replicas open a new connection to the broker for every call
  instead of keeping their connections open, so every call waits for a TCP handshake
  and a lost SYN or SYN-ACK costs the kernel's 1 s initial retransmission timeout;
- ``fault-bypass``: the replicas call the broker directly instead of through the fault
  proxy's ``service-broker`` link, so faults on that link never reach them (not with
  ``GAMEDAY_LAB_NETNS=1``, where the replicas cannot reach the broker directly).

A sabotaged lab is for tests of the experiments themselves, never for a game day.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from lab.layout import LayoutError

KINDS = ("no-breaker", "no-health-checks", "no-idempotency", "no-lb-retries",
         "breaker-thrash", "retry-storm", "breaker-leaks", "ambiguous-as-failed",
         "fault-bypass", "retry-new-id", "lb-round-robin", "no-keepalive")
DEFINITE_FAILURE_STATUS = 500
NEVER = 1_000_000_000


@dataclass(frozen=True)
class Sabotage:
    """Which defects the lab is started with (none by default)."""

    kinds: frozenset[str] = frozenset()

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Sabotage:
        """Read ``GAMEDAY_LAB_SABOTAGE``; LayoutError naming the valid kinds."""
        env = dict(os.environ) if environ is None else environ
        kinds = frozenset(k.strip() for k in env.get("GAMEDAY_LAB_SABOTAGE", "").split(",")
                          if k.strip())
        unknown = sorted(kinds - set(KINDS))
        if unknown:
            raise LayoutError(f"GAMEDAY_LAB_SABOTAGE has unknown {unknown}: valid are "
                              f"{', '.join(KINDS)}")
        return cls(kinds)

    def replica_argv(self) -> list[str]:
        """Extra command-line arguments for each replica of the reference service."""
        args: list[str] = []
        if "no-breaker" in self.kinds:
            args += ["--failure-threshold", str(NEVER), "--min-calls", str(NEVER)]
        if "breaker-thrash" in self.kinds:
            args += ["--reset-timeout-s", "0.1"]
        if "retry-storm" in self.kinds:
            args += ["--max-attempts", "10", "--ignore-retry-after"]
        if "breaker-leaks" in self.kinds:
            args += ["--breaker-leaks"]
        if "retry-new-id" in self.kinds:
            args += ["--retry-new-id"]
        if "no-keepalive" in self.kinds:
            args += ["--no-keepalive"]
        if "ambiguous-as-failed" in self.kinds:
            args += ["--ambiguous-status", str(DEFINITE_FAILURE_STATUS)]
        return args

    def bypasses_fault_proxy(self) -> bool:
        """Whether the replicas call the broker directly (``fault-bypass``)."""
        return "fault-bypass" in self.kinds

    def broker_args(self) -> str:
        """Extra command-line arguments for the broker simulator."""
        return " --no-idempotency" if "no-idempotency" in self.kinds else ""

    def server_check(self) -> str:
        """What follows each HAProxy server line: `` check`` unless sabotaged."""
        return "" if "no-health-checks" in self.kinds else " check"

    def lb_balance(self) -> str:
        """HAProxy's balance algorithm: ``leastconn`` unless sabotaged."""
        return "roundrobin" if "lb-round-robin" in self.kinds else "leastconn"

    def lb_retries(self) -> int:
        """How often HAProxy retries a request on another replica."""
        return 0 if "no-lb-retries" in self.kinds else 2
