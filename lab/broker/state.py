"""Per-process state of the broker simulator: settings, mode, ledger, metrics."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from lab.broker.ledger import MEMORY, Ledger
from lab.broker.modeparse import MODES
from lab.broker.modes import Mode, NormalMode
from lab.broker.orders import LATENCY_SIGMA

__all__ = ["RESULTS", "BrokerMetrics", "BrokerSettings", "BrokerState"]

RESULTS = ("filled", "replayed", "rejected", "invalid", "failed", "rate_limited", "hung")
T = TypeVar("T")
LATENCY_BUCKETS_S = (0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)


@dataclass(frozen=True)
class BrokerSettings:
    """How to run the broker simulator.

    host: address the order API binds. port: order API port, 0 = any free port.
    admin_host: address the admin API binds (default 127.0.0.1: only this machine).
    admin_port: admin API port, 0 = any.
    admin_token: bearer token the admin API requires on every request (see
        :mod:`lab.admin_auth`), None = no token needed; never shown in ``repr``.
    latency_ms: median order latency (log-normal, long tail; see ``sample_latency_ms``).
    latency_sigma: the log-normal's sigma: 0 = always the median, larger = longer tail.
    seed: seed for latency, slippage and fault draws; None = unpredictable.
    ledger_path: SQLite file of the ledger; ``":memory:"`` = not kept across restarts.
    no_idempotency: sabotage — fill a repeated client order id again (to prove that the
        experiments catch a broker or service without idempotency).
    """

    host: str = "127.0.0.1"
    port: int = 0
    admin_port: int = 0
    latency_ms: float = 20.0
    seed: int | None = None
    ledger_path: str = MEMORY
    admin_host: str = "127.0.0.1"
    latency_sigma: float = LATENCY_SIGMA
    no_idempotency: bool = False
    admin_token: str | None = field(default=None, repr=False)


class BrokerMetrics:
    """The simulator's own metrics (``broker_sim_*``), on a per-instance registry."""

    def __init__(self) -> None:
        reg = self.registry = CollectorRegistry()
        self.orders_total = Counter(
            "broker_sim_orders_total",
            "Order requests answered (or hung) by the simulator, by result.",
            ["result"], registry=reg,
        )  # fmt: skip
        for result in RESULTS:
            self.orders_total.labels(result=result)
        self.orders_received = Counter(
            "broker_sim_orders_received",
            "Order requests received (POST /orders), counted on arrival, before any answer.",
            registry=reg,
        )  # fmt: skip
        self.order_seconds = Histogram(
            "broker_sim_order_seconds", "Time to answer an order request.",
            buckets=LATENCY_BUCKETS_S, registry=reg,
        )  # fmt: skip
        self.mode_info = Gauge(
            "broker_sim_mode_info", "1 for the simulator's current mode, 0 for the others.",
            ["mode"], registry=reg,
        )  # fmt: skip
        self.ledger_fills = Gauge(
            "broker_sim_ledger_fills", "Fills in the ledger.", registry=reg
        )
        self.mode_hits = Counter(
            "broker_sim_mode_hits_total",
            "Orders a failure mode actually affected (evidence that the fault landed).",
            ["mode"], registry=reg,
        )  # fmt: skip
        for name in MODES:
            if name != NormalMode.name:
                self.mode_hits.labels(mode=name)
        self.hanging = Gauge(
            "broker_sim_hanging_requests", "Order requests held unanswered (hang mode).",
            registry=reg,
        )  # fmt: skip

    def show_mode(self, mode: Mode) -> None:
        """Set the mode gauge: 1 for ``mode``, 0 for every other."""
        for name in MODES:
            self.mode_info.labels(mode=name).set(1 if name == mode.name else 0)


class BrokerState:
    """Everything one simulator instance owns; shared by its order and admin apps.

    ``clock`` (monotonic seconds) times flapping; ``wall_clock`` (unix seconds) stamps fills.
    """

    def __init__(
        self,
        settings: BrokerSettings,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.wall_clock = wall_clock
        self.rng = random.Random(settings.seed)
        self.ledger = Ledger(settings.ledger_path)
        self.metrics = BrokerMetrics()
        self.metrics.ledger_fills.set(self.ledger.count())
        self._tasks: set[asyncio.Task[Any]] = set()
        self._mode: Mode = NormalMode()
        self._mode_since = clock()
        self.set_mode(NormalMode())

    @property
    def mode(self) -> Mode:
        """The current mode."""
        return self._mode

    def mode_elapsed_s(self) -> float:
        """Seconds since the current mode was set."""
        return self.clock() - self._mode_since

    def set_mode(self, mode: Mode) -> None:
        """Replace the current mode (atomically: one assignment) and its gauge."""
        self._mode, self._mode_since = mode, self.clock()
        self.metrics.show_mode(mode)

    def count(self, result: str) -> None:
        """Count one order request by result (one of :data:`RESULTS`)."""
        self.metrics.orders_total.labels(result=result).inc()

    def hit(self, mode: str) -> None:
        """Count one order that mode ``mode`` affected."""
        self.metrics.mode_hits.labels(mode=mode).inc()

    def detach(self, work: Coroutine[Any, Any, T]) -> asyncio.Future[T]:
        """Run ``work`` to completion even if the request that wants it is cancelled
        (a client going away does not undo an order the broker already took)."""
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return asyncio.shield(task)

    async def close(self) -> None:
        """Cancel work still in progress and close the ledger."""
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=1.0)
        self.ledger.close()
