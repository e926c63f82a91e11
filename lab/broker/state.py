"""Per-app state of the broker simulator: settings, current mode, fills, metrics."""

from __future__ import annotations

import random
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge

from lab.broker.modes import PARSERS, Mode, NormalMode
from lab.broker.orders import Fill

__all__ = ["BrokerSettings", "BrokerState", "FillBook"]

RESULTS = ("filled", "failed", "rejected")


@dataclass(frozen=True)
class BrokerSettings:
    """How to run the broker simulator.

    host: address both listeners bind (keep it 127.0.0.1: the admin API has no auth).
    port: order API port, 0 = any free port. admin_port: admin API port, 0 = any.
    latency_ms: median order latency; samples stay within [median/5, 4 x median].
    seed: seed for latency, slippage and error draws; None = unpredictable.
    max_fills: fills remembered for idempotency; the oldest are forgotten first.
    """

    host: str = "127.0.0.1"
    port: int = 0
    admin_port: int = 0
    latency_ms: float = 10.0
    seed: int | None = None
    max_fills: int = 100_000


class FillBook:
    """Fills by client_order_id, so a repeated order gets the very same fill."""

    def __init__(self, max_fills: int) -> None:
        self._fills: OrderedDict[str, Fill] = OrderedDict()
        self._max_fills = max_fills

    def __len__(self) -> int:
        return len(self._fills)

    def get_or_add(self, client_order_id: str, make: Callable[[], Fill]) -> Fill:
        """The fill already booked under ``client_order_id``, or book ``make()``."""
        fill = self._fills.get(client_order_id)
        if fill is None:
            fill = self._fills[client_order_id] = make()
            while len(self._fills) > self._max_fills:
                self._fills.popitem(last=False)
        return fill


class BrokerState:
    """Everything one simulator instance owns; shared by its order and admin apps."""

    def __init__(self, settings: BrokerSettings) -> None:
        self.settings = settings
        self.rng = random.Random(settings.seed)
        self.fills = FillBook(settings.max_fills)
        self.registry = CollectorRegistry()
        self.orders_total = Counter(
            "broker_sim_orders_total",
            "Orders answered by the broker simulator, by result.",
            ["result"],
            registry=self.registry,
        )
        self.mode_info = Gauge(
            "broker_sim_mode_info",
            "1 for the simulator's current mode, 0 for the others.",
            ["mode"],
            registry=self.registry,
        )
        for result in RESULTS:
            self.orders_total.labels(result=result)
        self._mode: Mode = NormalMode()
        self.set_mode(NormalMode())

    @property
    def mode(self) -> Mode:
        """The current mode."""
        return self._mode

    def set_mode(self, mode: Mode) -> None:
        """Replace the current mode (atomically: one assignment) and its gauge."""
        self._mode = mode
        current = mode.to_json()["mode"]
        for name in PARSERS:
            self.mode_info.labels(mode=name).set(1 if name == current else 0)

    def count(self, result: str) -> None:
        """Count one answered order: ``result`` is filled, failed or rejected."""
        self.orders_total.labels(result=result).inc()
