"""Placing one order with the broker: breaker permission, attempts, retries.

:func:`place` asks the breaker before every attempt and records every attempt's
result with it, so retries can never hammer a broker the breaker has given up on;
it waits between attempts as :func:`lab.service.retry.retry_delay_s` says. The
attempt itself (HTTP, metrics) is passed in.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from lab.service.breaker import CircuitBreaker, Clock
from lab.service.broker_client import BrokerReply
from lab.service.retry import RetrySettings, attempt_timeout_s, retry_delay_s

__all__ = ["Attempt", "Placement", "place"]

Attempt = Callable[[float], Awaitable[BrokerReply]]
"""One broker call, given its timeout in seconds."""


@dataclass(frozen=True)
class Placement:
    """How placing an order ended.

    reply: the last attempt's reply; None when the breaker refused the first attempt.
    attempts: broker calls made (0 when the breaker refused the first).
    unknown: the last reply whose outcome was unknown (the order may have been filled
        then), if any: a later definite failure (e.g. the retry's connection refused)
        does not undo it, so the order's outcome stays unknown.
    """

    reply: BrokerReply | None
    attempts: int
    unknown: BrokerReply | None = None


async def _recorded(attempt: Attempt, breaker: CircuitBreaker, timeout_s: float) -> BrokerReply:
    try:
        reply = await attempt(timeout_s)
    except BaseException:
        breaker.record_failure()  # every allowed call records exactly one result
        raise
    if reply.healthy:
        breaker.record_success()
    else:
        breaker.record_failure()
    return reply


async def place(
    attempt: Attempt,
    breaker: CircuitBreaker,
    retry: RetrySettings,
    timeout_s: float,
    clock: Clock = time.monotonic,
    *,
    leaks: bool = False,
) -> Placement:
    """Call ``attempt`` through ``breaker`` until it succeeds or retrying must stop.

    Each attempt's timeout is ``timeout_s`` cut to what is left of ``retry.budget_s``.
    ``leaks`` is a sabotage: the call goes out even when the breaker refuses it (the
    breaker still changes state as usual, it just protects nothing).
    """
    started = clock()
    reply: BrokerReply | None = None
    unknown: BrokerReply | None = None
    attempts = 0
    while breaker.allow() or leaks:
        attempts += 1
        left_s = attempt_timeout_s(timeout_s, retry.budget_s, clock() - started)
        reply = await _recorded(attempt, breaker, left_s)
        unknown = reply if reply.ambiguous else unknown
        delay_s = retry_delay_s(reply, attempts, clock() - started, retry)
        if delay_s is None:
            break
        await asyncio.sleep(delay_s)
    return Placement(reply, attempts, unknown)
