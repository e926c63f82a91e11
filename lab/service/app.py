"""The broker-integration reference service: takes orders, places them with the broker.

HTTP API::

    POST /orders   order JSON (see lab.broker.orders)
                   200 {"status": "filled", "fill_id", "client_order_id", "instrument",
                        "units", "fill_price", "filled_at"}
                   400 {"error": "...", "field": name}          invalid order
                   422 {"status": "rejected", "reason": "..."}  broker refused it (4xx)
                   500 {"error": "broker_failed", "detail": "..."}  definitely not filled:
                       the broker answered 429, or it could not be reached at all
                       (+ Retry-After when the broker sent one)
                   502 {"error": "broker_unavailable", "detail": "..."}  outcome unknown:
                       the broker answered 5xx (it may have filled the order first), the
                       connection broke after the order was sent, or an unreadable fill
                   503 {"error": "circuit_open"} + Retry-After  breaker open, broker not called
                   504 {"error": "broker_timeout", "detail": "..."}  outcome unknown: no
                       answer in time

A client must treat 502 and 504 as "maybe filled" (look the order up, or retry with the
same client order id), and 500 and 503 as "not filled"; the service says which because
only it knows whether the order left.
    GET  /health   200 {"status": "ok", "name": NAME, "breaker": STATE} (alive; never asks
                   the broker)
    GET  /ready    200 {"status": "ready", "name": NAME} | 503 {"status": "starting" |
                   "draining", "name": NAME}: whether to send this replica traffic
    GET  /metrics  the monitoring contract (lab.service.metrics)

An order goes to the broker through the circuit breaker with a per-call timeout,
retried with the same client order id where that is safe (:mod:`lab.service.retry`).

Two sabotages, to prove that the experiments catch them (:mod:`lab.sabotage`):
``breaker_leaks`` calls the broker even when the breaker says no (its state and metric
still open as usual); ``ambiguous_status`` answers an unknown outcome with that status
(e.g. 500, as if the order had definitely failed); ``retry_new_id`` sends each retry
under a new client order id, so the broker cannot tell it is the same order;
``no_keepalive`` opens a new connection to the broker for every call.
"""

from __future__ import annotations

import math
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from pathlib import Path

from aiohttp import web
from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4, generate_latest

from gameday.http1 import AnswerPool, Endpoint, RequestHead
from lab.broker.app import read_json
from lab.broker.orders import InvalidOrder, Order, parse_order, slippage_pips
from lab.broker.serving import DrainSettings, Lifecycle
from lab.service.breaker import BreakerSettings, CircuitBreaker, Clock
from lab.service.broker_client import BrokerReply, place_order
from lab.service.metrics import ServiceMetrics
from lab.service.outcomes import Outcome, log_order, log_transition
from lab.service.placing import Attempt, Placement, place
from lab.service.retry import RetrySettings

__all__ = ["ServiceSettings", "make_app"]

ENDPOINT = "/orders"
MAX_BROKER_CONNECTIONS = 512


@dataclass(frozen=True)
class ServiceSettings:
    """How to run one service replica.

    broker_url: base URL of the broker API (orders go to ``{broker_url}/orders``).
    name: replica name, reported by /health, /ready and in logs.
    timeout_s: time allowed for one broker call, connection included.
    port: 0 = any free port. retry: retries and the order's time budget.
    drain: what SIGTERM does (not ready for ``delay_s``, then in-flight orders finish).
    log_file: where the JSON logs go; None = stderr.
    breaker_leaks: sabotage — call the broker even when the breaker refuses.
    ambiguous_status: sabotage — answer an unknown outcome with this HTTP status instead
        of 502/504 (None = no sabotage).
    retry_new_id: sabotage — retry under client order id ``ID-rN`` instead of ``ID``.
    no_keepalive: sabotage — a new connection to the broker for every call (none kept
        open for the next), so every call waits for a TCP handshake.
    """

    broker_url: str
    name: str
    host: str = "127.0.0.1"
    port: int = 0
    timeout_s: float = 0.8
    breaker: BreakerSettings = field(default_factory=BreakerSettings)
    retry: RetrySettings = field(default_factory=RetrySettings)
    drain: DrainSettings = field(default_factory=lambda: DrainSettings(1.0, 5.0))
    log_file: Path | None = None
    breaker_leaks: bool = False
    ambiguous_status: int | None = None
    retry_new_id: bool = False
    no_keepalive: bool = False


@dataclass(frozen=True)
class Parts:
    """What the handlers of one app share."""

    settings: ServiceSettings
    breaker: CircuitBreaker
    metrics: ServiceMetrics
    lifecycle: Lifecycle


@dataclass(frozen=True)
class BrokerLine:
    """The connections to the broker's /orders and the head of every order sent there."""

    pool: AnswerPool
    head: RequestHead


PARTS = web.AppKey("parts", Parts)
BROKER = web.AppKey("broker", BrokerLine)


async def post_order(request: web.Request) -> web.Response:
    """Place one order through the breaker; see the module doc for the answers."""
    started = time.perf_counter()
    outcome = await _handle_order(request)
    elapsed_s = time.perf_counter() - started
    parts = request.app[PARTS]
    parts.metrics.order_execution_seconds.observe(elapsed_s)
    log_order(outcome, elapsed_s)
    return outcome.response


async def _handle_order(request: web.Request) -> Outcome:
    parts = request.app[PARTS]
    try:
        order = parse_order(await read_json(request))
    except InvalidOrder as exc:
        return Outcome("invalid", web.json_response(exc.to_json(), status=400), detail=str(exc))
    attempt = _attempt(request.app, order)
    settings = parts.settings
    placement = await place(attempt, parts.breaker, settings.retry, settings.timeout_s,
                            leaks=settings.breaker_leaks)
    outcome = _answer(parts, order, placement)
    parts.metrics.count_order(outcome.status)
    return outcome


def _attempt(app: web.Application, order: Order) -> Attempt:
    parts, broker = app[PARTS], app[BROKER]

    attempts = 0

    async def attempt(timeout_s: float) -> BrokerReply:
        nonlocal attempts
        attempts += 1
        sent = order
        if parts.settings.retry_new_id and attempts > 1:
            sent = replace(order, client_order_id=f"{order.client_order_id}-r{attempts}")
        reply = await place_order(broker.pool, broker.head, sent, timeout_s)
        api_seconds = parts.metrics.api_request_seconds.labels(ENDPOINT, reply.status_label)
        api_seconds.observe(reply.elapsed_s)
        parts.metrics.connection_status.set(1 if reply.reached else 0)
        return reply

    return attempt


def _answer(parts: Parts, order: Order, placement: Placement) -> Outcome:
    reply = placement.reply
    if reply is None:
        retry_after_s = max(1, math.ceil(parts.breaker.seconds_until_half_open()))
        headers = {"Retry-After": str(retry_after_s)}
        response = web.json_response({"error": "circuit_open"}, status=503, headers=headers)
        return Outcome("circuit_open", response, order.client_order_id)
    if reply.kind not in ("filled", "rejected") and placement.unknown is not None:
        reply = placement.unknown  # an earlier attempt may have filled it: still unknown
    return _answer_reply(parts, order, reply, placement.attempts)


def _answer_reply(parts: Parts, order: Order, reply: BrokerReply, attempts: int) -> Outcome:
    def outcome(status: str, response: web.Response) -> Outcome:
        return Outcome(status, response, order.client_order_id, attempts, reply.status_label,
                       reply.detail)  # fmt: skip

    if reply.kind == "filled":
        fill_price = float(reply.fill["fill_price"])
        parts.metrics.slippage_pips.observe(
            slippage_pips(order.instrument, order.price, fill_price))
        return outcome("filled", web.json_response({"status": "filled", **reply.fill}))
    if reply.kind == "rejected":
        body = {"status": "rejected", "reason": reply.detail}
        return outcome("rejected", web.json_response(body, status=422))
    if reply.ambiguous:
        return outcome("failed", _unknown_outcome(reply, parts.settings.ambiguous_status))
    headers = {}
    if reply.retry_after_s is not None:
        headers["Retry-After"] = str(math.ceil(reply.retry_after_s))
    body = {"error": "broker_failed", "detail": reply.detail}
    return outcome("failed", web.json_response(body, status=500, headers=headers))


def _unknown_outcome(reply: BrokerReply, sabotaged_status: int | None) -> web.Response:
    """504 (no answer in time) or 502 (connection broken, unreadable fill): the order may
    be filled; ``sabotaged_status`` replaces either."""
    timeout = reply.kind == "timeout"
    body = {"error": "broker_timeout" if timeout else "broker_unavailable",
            "detail": reply.detail}
    return web.json_response(body, status=sabotaged_status or (504 if timeout else 502))


async def get_health(request: web.Request) -> web.Response:
    """Liveness and breaker state; independent of the broker on purpose."""
    parts = request.app[PARTS]
    body = {"status": "ok", "name": parts.settings.name, "breaker": parts.breaker.state.value}
    return web.json_response(body)


async def get_ready(request: web.Request) -> web.Response:
    """Readiness: 200 once serving, 503 while starting or draining."""
    parts = request.app[PARTS]
    body = {"status": parts.lifecycle.phase.value, "name": parts.settings.name}
    return web.json_response(body, status=200 if parts.lifecycle.ready else 503)


async def get_metrics(request: web.Request) -> web.Response:
    """Prometheus text exposition of this replica's registry."""
    body = generate_latest(request.app[PARTS].metrics.registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_PLAIN_0_0_4})


def broker_endpoint(broker_url: str) -> Endpoint:
    """Where orders go: ``{broker_url}/orders``; ValueError names what is wrong."""
    return Endpoint.from_url(broker_url.rstrip("/") + ENDPOINT)


async def _broker_line(app: web.Application) -> AsyncIterator[None]:
    settings = app[PARTS].settings
    endpoint = broker_endpoint(settings.broker_url)
    pool = AnswerPool(endpoint, MAX_BROKER_CONNECTIONS, keep_alive=not settings.no_keepalive)
    async with pool:
        app[BROKER] = BrokerLine(pool, RequestHead("POST", endpoint))
        yield


def make_app(
    settings: ServiceSettings,
    clock: Clock = time.monotonic,
    wall_clock: Clock = time.time,
    lifecycle: Lifecycle | None = None,
) -> web.Application:
    """The service app: breaker on ``clock``, metrics stamped with ``wall_clock``;
    ``/ready`` follows ``lifecycle`` (which the serving loop moves along)."""
    metrics = ServiceMetrics(wall_clock)
    breaker = CircuitBreaker(settings.breaker, clock, [metrics.on_transition, log_transition])
    app = web.Application()
    app[PARTS] = Parts(settings, breaker, metrics, lifecycle or Lifecycle())
    app.cleanup_ctx.append(_broker_line)
    app.router.add_post("/orders", post_order)
    app.router.add_get("/health", get_health)
    app.router.add_get("/ready", get_ready)
    app.router.add_get("/metrics", get_metrics)
    return app
