"""Order outcomes and the service's structured log events (see :mod:`lab.service.logs`)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from aiohttp import web

from lab.service.breaker import BreakerState

__all__ = ["Outcome", "log_order", "log_transition"]

log = logging.getLogger("lab.service")


@dataclass(frozen=True)
class Outcome:
    """How one order request ended.

    status: the ``broker_orders_total`` label (filled, rejected, failed, circuit_open),
        or ``invalid`` for a 400 (not counted there).
    """

    status: str
    response: web.Response
    client_order_id: str | None = None
    attempts: int = 0
    broker_status: str | None = None
    detail: str = ""


def log_order(outcome: Outcome, elapsed_s: float) -> None:
    """Log the ``order`` event for ``outcome``, answered after ``elapsed_s``."""
    fields = {
        "event": "order",
        "client_order_id": outcome.client_order_id,
        "status": outcome.status,
        "http_status": outcome.response.status,
        "attempts": outcome.attempts,
        "broker_status": outcome.broker_status,
        "latency_ms": round(elapsed_s * 1000, 3),
        "detail": outcome.detail,
    }
    log.info("order %s", outcome.status, extra={"fields": fields})


def log_transition(from_state: BreakerState, to_state: BreakerState, at: float) -> None:
    """Breaker listener: log the ``breaker_transition`` event."""
    level = logging.WARNING if to_state is BreakerState.OPEN else logging.INFO
    fields = {"event": "breaker_transition", "from_state": from_state.value,
              "to_state": to_state.value}  # fmt: skip
    log.log(level, "circuit breaker %s -> %s", from_state.value, to_state.value,
            extra={"fields": fields})
