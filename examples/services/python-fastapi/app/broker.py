"""The broker API client: httpx.AsyncClient, one purgatory breaker, tenacity retries.

:meth:`BrokerClient.place` sends one order to ``POST {broker_url}/orders`` and returns
the broker's 2xx answer, or raises what ended the last attempt:

- ``purgatory``'s ``OpenedState`` (:data:`app.breaker.CircuitOpen`): the circuit is
  open, the broker was not called;
- ``httpx.TimeoutException``: no answer within the attempt's timeout;
- ``httpx.TransportError``: no connection, or the connection broke;
- ``httpx.HTTPStatusError``: the broker answered with a non-2xx status.

Every attempt asks the breaker first and sends the same body, the client's
``client_order_id`` included, so a retry after a lost answer gets the original fill
back. Retried: transport errors (timeouts included), 5xx and 429, at most
``MAX_ATTEMPTS`` attempts, with exponential backoff and jitter, all within
``RETRY_BUDGET_S``; a ``Retry-After`` from the broker replaces the backoff, and when it
does not fit in the budget the order fails at once with that answer.
"""

from __future__ import annotations

import email.utils
import math
import time
from typing import Any

import httpx
from purgatory import AsyncCircuitBreakerFactory
from tenacity import (
    RetryCallState,
    retry,
    retry_if_exception,
    stop_after_attempt,
    stop_before_delay,
    wait_exponential_jitter,
)

from app import config
from app.metrics import BROKER_API_SECONDS, BROKER_CONNECTION

__all__ = ["BrokerClient", "is_retryable", "retry_after_header"]


def is_retryable(exc: BaseException) -> bool:
    """Transport errors (timeouts included), broker 5xx and 429."""
    if isinstance(exc, httpx.TransportError):
        return True
    if isinstance(exc, httpx.HTTPStatusError):
        status = exc.response.status_code
        return status == 429 or status >= 500
    return False


def retry_after_header(response: httpx.Response) -> float | None:
    """The ``Retry-After`` header in seconds (delta-seconds or an HTTP date), or None."""
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - time.time()
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


_backoff = wait_exponential_jitter(
    initial=config.BACKOFF_INITIAL_S,
    max=config.BACKOFF_MAX_S,
    jitter=config.BACKOFF_JITTER_S,
)


def _wait(retry_state: RetryCallState) -> float:
    """The broker's Retry-After when it sent one, else exponential backoff. A wait that
    does not fit in the budget makes ``stop_before_delay`` give up at once."""
    outcome = retry_state.outcome
    exc = outcome.exception() if outcome is not None else None
    if isinstance(exc, httpx.HTTPStatusError):
        seconds = retry_after_header(exc.response)
        if seconds is not None:
            return seconds
    return _backoff(retry_state)


def _unanswered(exc: BaseException) -> bool:
    """Whether ``exc`` ended a call that may have reached the broker (a timeout after
    connecting, a connection broken after sending), not one that never left."""
    never_sent = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
    return isinstance(exc, httpx.TransportError) and not isinstance(exc, never_sent)


class BrokerClient:
    """Places orders with the broker; see the module doc."""

    def __init__(self, base_url: str, breakers: AsyncCircuitBreakerFactory) -> None:
        self._client = httpx.AsyncClient(
            base_url=base_url, timeout=httpx.Timeout(config.ATTEMPT_TIMEOUT_S)
        )
        self._breakers = breakers

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._client.aclose()

    async def place(self, order: dict[str, Any]) -> httpx.Response:
        """The broker's 2xx answer to ``order``; raises as the module doc says (with
        ``KEEP_SENT_OUTCOME``, an earlier attempt's unanswered send outranks a later
        definite failure: the order may have been filled)."""
        deadline = time.monotonic() + config.RETRY_BUDGET_S
        sent: list[httpx.TransportError] = []
        try:
            return await self._attempt(order, deadline, sent)
        except Exception as exc:
            if config.KEEP_SENT_OUTCOME and sent and not _unanswered(exc):
                raise sent[-1] from exc
            raise

    @retry(
        retry=retry_if_exception(is_retryable),
        stop=(
            stop_after_attempt(config.MAX_ATTEMPTS)
            | stop_before_delay(config.RETRY_BUDGET_S - config.MIN_ATTEMPT_S)
        ),
        wait=_wait,
        reraise=True,
    )
    async def _attempt(self, order: dict[str, Any], deadline: float,
                       sent: list[httpx.TransportError]) -> httpx.Response:
        """One guarded call; the budget left (at most ATTEMPT_TIMEOUT_S) is its timeout.
        An unanswered send is noted in ``sent``."""
        timeout = max(0.001, min(config.ATTEMPT_TIMEOUT_S, deadline - time.monotonic()))
        breaker = await self._breakers.get_breaker(config.BREAKER_NAME)
        async with breaker:
            try:
                response = await self._post(order, timeout)
            except httpx.TransportError as exc:
                if _unanswered(exc):
                    sent.append(exc)
                raise
            response.raise_for_status()
        return response

    async def _post(self, order: dict[str, Any], timeout: float) -> httpx.Response:
        """POST the order, observing the call's duration and outcome."""
        started = time.perf_counter()
        try:
            response = await self._client.post(
                config.BROKER_ORDERS_PATH, json=order, timeout=timeout
            )
        except httpx.TimeoutException:
            self._observe("timeout", started, connected=False)
            raise
        except httpx.TransportError:
            self._observe("connection_error", started, connected=False)
            raise
        self._observe(str(response.status_code), started, connected=True)
        return response

    @staticmethod
    def _observe(status: str, started: float, *, connected: bool) -> None:
        BROKER_API_SECONDS.labels(endpoint=config.BROKER_ORDERS_PATH, status=status).observe(
            time.perf_counter() - started
        )
        BROKER_CONNECTION.set(1 if connected else 0)
