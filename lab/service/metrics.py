"""The service's monitoring contract (docs/contract.md), on a per-app registry.

Metric names, types and labels here are what every probe and recording rule is
written against; change them only together with the contract.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Enum, Gauge, Histogram

from gameday.contract import (
    METRIC_API_REQUEST_SECONDS,
    METRIC_BREAKER_LAST_TRANSITION,
    METRIC_BREAKER_STATE,
    METRIC_BREAKER_TRANSITIONS,
    METRIC_CONNECTION_STATUS,
    METRIC_ORDER_SECONDS,
    METRIC_ORDERS_TOTAL,
    METRIC_SLIPPAGE_PIPS,
    ORDER_STATUSES,
)
from lab.service.breaker import BreakerState

__all__ = ["ORDER_STATUSES", "ServiceMetrics"]

LATENCY_BUCKETS_S = (
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5,
    0.6, 0.7, 0.8, 0.9, 1.0, 1.25, 1.5, 2.0, 3.0, 5.0, 10.0,
)  # fmt: skip
SLIPPAGE_BUCKETS_PIPS = (-5.0, -2.0, -1.0, -0.5, -0.25, 0.0, 0.25, 0.5, 1.0, 2.0, 5.0)
TRANSITIONS = (
    (BreakerState.CLOSED, BreakerState.OPEN),
    (BreakerState.OPEN, BreakerState.HALF_OPEN),
    (BreakerState.HALF_OPEN, BreakerState.CLOSED),
    (BreakerState.HALF_OPEN, BreakerState.OPEN),
)


class ServiceMetrics:
    """All contract metrics of one service instance, registered on ``registry``.

    ``wall_clock`` (unix seconds) stamps the last-transition gauge; it is read once
    at construction, so the gauge starts at process start time.
    """

    def __init__(self, wall_clock: Callable[[], float]) -> None:
        self.registry = CollectorRegistry()
        self._wall_clock = wall_clock
        self._define_order_metrics()
        self._define_breaker_metrics()

    def _define_order_metrics(self) -> None:
        reg = self.registry
        self.orders_total = Counter(
            METRIC_ORDERS_TOTAL, "Orders handled, by outcome.", ["status"], registry=reg
        )
        for status in ORDER_STATUSES:
            self.orders_total.labels(status=status)
        self.order_execution_seconds = Histogram(
            METRIC_ORDER_SECONDS,
            "Order latency as seen by the service (request in -> answer out).",
            buckets=LATENCY_BUCKETS_S,
            registry=reg,
        )
        self.slippage_pips = Histogram(
            METRIC_SLIPPAGE_PIPS,
            "Fill price minus requested price, in pips.",
            buckets=SLIPPAGE_BUCKETS_PIPS,
            registry=reg,
        )
        self.api_request_seconds = Histogram(
            METRIC_API_REQUEST_SECONDS,
            "Calls to the broker API; status is the HTTP code, timeout or connection_error.",
            ["endpoint", "status"],
            buckets=LATENCY_BUCKETS_S,
            registry=reg,
        )
        self.connection_status = Gauge(
            METRIC_CONNECTION_STATUS,
            "1 when the last broker call reached the broker, else 0.",
            registry=reg,
        )

    def _define_breaker_metrics(self) -> None:
        reg = self.registry
        self.breaker_state = Enum(
            METRIC_BREAKER_STATE,
            "Circuit breaker state.",
            states=[state.value for state in BreakerState],
            registry=reg,
        )
        self.breaker_transitions_total = Counter(
            METRIC_BREAKER_TRANSITIONS,
            "Circuit breaker state changes.",
            ["from_state", "to_state"],
            registry=reg,
        )
        for from_state, to_state in TRANSITIONS:
            self.breaker_transitions_total.labels(from_state=from_state, to_state=to_state)
        self.breaker_last_transition = Gauge(
            METRIC_BREAKER_LAST_TRANSITION,
            "Unix time of the last breaker state change (process start until then).",
            registry=reg,
        )
        self.breaker_last_transition.set(self._wall_clock())

    def on_transition(self, from_state: BreakerState, to_state: BreakerState, at: float) -> None:
        """Breaker listener: record a transition (``at`` is ignored; wall clock is used)."""
        self.breaker_state.state(to_state.value)
        self.breaker_transitions_total.labels(from_state=from_state, to_state=to_state).inc()
        self.breaker_last_transition.set(self._wall_clock())

    def count_order(self, status: str) -> None:
        """Count one order outcome: filled, rejected, failed or circuit_open."""
        self.orders_total.labels(status=status).inc()
