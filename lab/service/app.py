"""The broker-integration reference service: takes orders, places them with the broker.

HTTP API::

    POST /orders   order JSON (see lab.broker.orders)
                   200 {"status": "filled", "fill_id", "client_order_id", "instrument",
                        "units", "fill_price", "filled_at"}
                   400 {"error": "...", "field": name}          invalid order
                   422 {"status": "rejected", "reason": "..."}  broker refused it (4xx)
                   502 {"error": "broker_unavailable", "detail": "..."}  5xx/429/no connection
                   503 {"error": "circuit_open"} + Retry-After  breaker open, broker not called
                   504 {"error": "broker_timeout", "detail": "..."}      no answer in timeout_s
    GET  /health   200 {"status": "ok", "name": NAME, "breaker": STATE} (never asks the broker)
    GET  /metrics  the monitoring contract (lab.service.metrics)
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiohttp
from aiohttp import web
from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4, generate_latest

from lab.broker.app import read_json
from lab.broker.orders import InvalidOrder, Order, parse_order, slippage_pips
from lab.service.breaker import (
    BreakerSettings,
    BreakerState,
    CircuitBreaker,
    Clock,
    Listener,
)
from lab.service.broker_client import BrokerReply, place_order
from lab.service.metrics import ServiceMetrics

__all__ = ["ServiceSettings", "make_app"]

log = logging.getLogger(__name__)
ENDPOINT = "/orders"


@dataclass(frozen=True)
class ServiceSettings:
    """How to run one service replica.

    broker_url: base URL of the broker API (orders go to ``{broker_url}/orders``).
    name: replica name, reported by /health and in logs.
    timeout_s: total time allowed for one broker call, connection included.
    port: 0 = any free port.
    """

    broker_url: str
    name: str
    host: str = "127.0.0.1"
    port: int = 0
    timeout_s: float = 0.8
    breaker: BreakerSettings = field(default_factory=BreakerSettings)


@dataclass(frozen=True)
class Parts:
    """What the handlers of one app share."""

    settings: ServiceSettings
    breaker: CircuitBreaker
    metrics: ServiceMetrics


PARTS = web.AppKey("parts", Parts)
SESSION = web.AppKey("session", aiohttp.ClientSession)


async def post_order(request: web.Request) -> web.Response:
    """Place one order through the breaker; see the module doc for the answers."""
    started = time.perf_counter()
    response = await _handle_order(request)
    request.app[PARTS].metrics.order_execution_seconds.observe(time.perf_counter() - started)
    return response


async def _handle_order(request: web.Request) -> web.Response:
    parts = request.app[PARTS]
    try:
        order = parse_order(await read_json(request))
    except InvalidOrder as exc:
        return web.json_response(exc.to_json(), status=400)
    if not parts.breaker.allow():
        parts.metrics.count_order("circuit_open")
        retry_after_s = max(1, math.ceil(parts.breaker.seconds_until_half_open()))
        headers = {"Retry-After": str(retry_after_s)}
        return web.json_response({"error": "circuit_open"}, status=503, headers=headers)
    reply = await _call_broker(request.app, order)
    return _answer(parts.metrics, order, reply)


async def _call_broker(app: web.Application, order: Order) -> BrokerReply:
    parts = app[PARTS]
    url = parts.settings.broker_url.rstrip("/") + ENDPOINT
    try:
        reply = await place_order(app[SESSION], url, order)
    except BaseException:
        parts.breaker.record_failure()  # every allowed call records exactly one result
        raise
    if reply.healthy:
        parts.breaker.record_success()
    else:
        parts.breaker.record_failure()
    api_seconds = parts.metrics.api_request_seconds.labels(ENDPOINT, reply.status_label)
    api_seconds.observe(reply.elapsed_s)
    parts.metrics.connection_status.set(1 if reply.reached else 0)
    return reply


def _answer(metrics: ServiceMetrics, order: Order, reply: BrokerReply) -> web.Response:
    if reply.kind == "filled":
        metrics.count_order("filled")
        fill_price = float(reply.fill["fill_price"])
        metrics.slippage_pips.observe(slippage_pips(order.instrument, order.price, fill_price))
        return web.json_response({"status": "filled", **reply.fill})
    if reply.kind == "rejected":
        metrics.count_order("rejected")
        return web.json_response({"status": "rejected", "reason": reply.detail}, status=422)
    metrics.count_order("failed")
    if reply.kind == "timeout":
        return web.json_response({"error": "broker_timeout", "detail": reply.detail}, status=504)
    return web.json_response({"error": "broker_unavailable", "detail": reply.detail}, status=502)


async def get_health(request: web.Request) -> web.Response:
    """Liveness and breaker state; independent of the broker on purpose."""
    parts = request.app[PARTS]
    body = {"status": "ok", "name": parts.settings.name, "breaker": parts.breaker.state.value}
    return web.json_response(body)


async def get_metrics(request: web.Request) -> web.Response:
    """Prometheus text exposition of this replica's registry."""
    body = generate_latest(request.app[PARTS].metrics.registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_PLAIN_0_0_4})


async def _client_session(app: web.Application) -> AsyncIterator[None]:
    timeout = aiohttp.ClientTimeout(total=app[PARTS].settings.timeout_s)
    app[SESSION] = aiohttp.ClientSession(timeout=timeout)
    yield
    await app[SESSION].close()


def _log_transition(name: str) -> Listener:
    def listener(from_state: BreakerState, to_state: BreakerState, at: float) -> None:
        level = logging.WARNING if to_state is BreakerState.OPEN else logging.INFO
        log.log(level, "%s: circuit breaker %s -> %s", name, from_state.value, to_state.value)

    return listener


def make_app(
    settings: ServiceSettings,
    clock: Clock = time.monotonic,
    wall_clock: Clock = time.time,
) -> web.Application:
    """The service app: breaker on ``clock``, metrics stamped with ``wall_clock``."""
    metrics = ServiceMetrics(wall_clock)
    breaker = CircuitBreaker(
        settings.breaker, clock, [metrics.on_transition, _log_transition(settings.name)]
    )
    app = web.Application()
    app[PARTS] = Parts(settings, breaker, metrics)
    app.cleanup_ctx.append(_client_session)
    app.router.add_post("/orders", post_order)
    app.router.add_get("/health", get_health)
    app.router.add_get("/metrics", get_metrics)
    return app
