"""The circuit breaker: purgatory's AsyncCircuitBreakerFactory, and a hook that keeps
the contract's breaker metrics.

purgatory counts every exception raised inside ``async with breaker:`` as a failure,
except those its ``exclude`` list lets through. The broker client raises
``httpx.HTTPStatusError`` (``raise_for_status``) inside the block, so 4xx answers are
excluded there: a rejection is a success for the breaker. 429 is a client error too,
but the contract counts it as a failure, so it is not excluded (purgatory's own docs
exclude every ``is_client_error``, 429 included).

purgatory names its states ``closed``, ``opened`` and ``half-opened``; the metrics use
the contract's ``closed``, ``open`` and ``half_open``. Its state changes reach the hook
as ``state_changed`` events, which purgatory delivers when a guarded call ends (see the
README: the ``open -> half_open`` change is reported when the trial call finishes).
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

import httpx
from purgatory import AsyncCircuitBreakerFactory
from purgatory.domain.model import OpenedState

from app import config
from app.metrics import BREAKER_LAST_TRANSITION, BREAKER_STATE, BREAKER_TRANSITIONS_TOTAL

__all__ = ["BreakerMonitor", "CircuitOpen", "make_breakers", "retry_after_s"]

log = logging.getLogger(__name__)

# The exception purgatory raises on entering an open circuit.
CircuitOpen = OpenedState

STATE_NAMES = {"closed": "closed", "opened": "open", "half-opened": "half_open"}


def _is_rejection(exc: httpx.HTTPStatusError) -> bool:
    """A broker 4xx other than 429: the broker refused the order, it is not failing."""
    response = exc.response
    return response.is_client_error and response.status_code != 429


class BreakerMonitor:
    """purgatory hook: mirrors state changes into the contract's metrics and the log."""

    def __init__(self) -> None:
        self.state = "closed"

    def __call__(self, circuit_name: str, event_type: str, event: Any) -> None:
        if event_type != "state_changed":
            return
        new_state = STATE_NAMES.get(event.state, event.state)
        old_state = self.state
        if new_state == old_state:
            return
        # An "opened" event carries the wall-clock time the circuit opened; the other
        # changes are stamped when purgatory delivers them.
        when = event.opened_at if event.opened_at is not None else time.time()
        self.state = new_state
        BREAKER_STATE.state(new_state)
        BREAKER_TRANSITIONS_TOTAL.labels(from_state=old_state, to_state=new_state).inc()
        BREAKER_LAST_TRANSITION.set(when)
        log.warning("circuit %s: %s -> %s", circuit_name, old_state, new_state)


def make_breakers(monitor: BreakerMonitor) -> AsyncCircuitBreakerFactory:
    """The breaker factory, with the contract's threshold and reset timeout."""
    breakers = AsyncCircuitBreakerFactory(
        default_threshold=config.BREAKER_THRESHOLD,
        default_ttl=config.BREAKER_TTL_S,
        exclude=[(httpx.HTTPStatusError, _is_rejection)],
    )
    breakers.add_listener(monitor)
    return breakers


def retry_after_s(exc: OpenedState) -> int:
    """Whole seconds until the open circuit lets a trial call through, at least 1."""
    remaining = exc.opened_at + config.BREAKER_TTL_S - time.time()
    return max(1, math.ceil(remaining))
