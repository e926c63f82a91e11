"""The contract's Prometheus metrics (docs/contract.md, section 1).

They live in prometheus_client's default registry, so ``/metrics`` also carries the
library's process_*, python_gc_* and python_info series, and the ``*_created`` series
that prometheus_client adds to counters and histograms by default.
"""

from __future__ import annotations

import time

from prometheus_client import Counter, Enum, Gauge, Histogram

ORDER_STATUSES = ("filled", "rejected", "failed", "circuit_open")
BREAKER_STATES = ("closed", "open", "half_open")
# The changes the purgatory breaker can make (it has no open -> closed shortcut).
BREAKER_TRANSITIONS = (
    ("closed", "open"),
    ("open", "half_open"),
    ("half_open", "closed"),
    ("half_open", "open"),
)

LATENCY_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.7,
    0.8, 0.9, 1.0, 1.25, 1.5, 2.0, 3.0, 5.0, 10.0,
)  # fmt: skip
SLIPPAGE_BUCKETS = (-5.0, -2.0, -1.0, -0.5, -0.25, 0.0, 0.25, 0.5, 1.0, 2.0, 5.0)

ORDERS = Counter(
    "broker_orders_total",
    "Order requests answered, by outcome (a malformed request is not counted).",
    ["status"],
)
ORDER_SECONDS = Histogram(
    "broker_order_execution_seconds",
    "Order latency inside the service, from the handler's start to its answer.",
    buckets=LATENCY_BUCKETS,
)
SLIPPAGE_PIPS = Histogram(
    "broker_slippage_pips",
    "Fill price minus requested price, in pips (signed); one observation per fill.",
    buckets=SLIPPAGE_BUCKETS,
)
BROKER_API_SECONDS = Histogram(
    "broker_api_request_seconds",
    "Duration of each call to the broker API (one observation per attempt).",
    ["endpoint", "status"],
    buckets=LATENCY_BUCKETS,
)
BROKER_CONNECTION = Gauge(
    "broker_connection_status",
    "1 when the last broker call got an HTTP answer, else 0.",
)
BREAKER_STATE = Enum(
    "broker_circuit_breaker_state",
    "State of the circuit breaker that guards the broker calls.",
    states=list(BREAKER_STATES),
)
BREAKER_TRANSITIONS_TOTAL = Counter(
    "broker_circuit_breaker_transitions_total",
    "Circuit breaker state changes.",
    ["from_state", "to_state"],
)
BREAKER_LAST_TRANSITION = Gauge(
    "broker_circuit_breaker_last_transition_timestamp_seconds",
    "Unix time of the last breaker state change (process start until the first).",
)


def initialise() -> None:
    """Create the labelled series at 0, so that rates exist before the first event."""
    for status in ORDER_STATUSES:
        ORDERS.labels(status=status)
    for from_state, to_state in BREAKER_TRANSITIONS:
        BREAKER_TRANSITIONS_TOTAL.labels(from_state=from_state, to_state=to_state)
    BREAKER_STATE.state("closed")
    BREAKER_LAST_TRANSITION.set(time.time())


initialise()
