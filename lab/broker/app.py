"""The broker simulator's order API (the admin API is in :mod:`lab.broker.admin`).

::

    POST /orders    order JSON (see lab.broker.orders), after a simulated latency:
                    200 fill {"fill_id", "client_order_id", "instrument", "units",
                              "fill_price", "filled_at"}  (a repeated client_order_id
                              gets its original fill back, never a second one)
                    400 {"error", "field"}                 malformed order
                    422 {"error": "rejected", "reason"}    refused (unknown_instrument,
                                                           units_limit_exceeded)
                    or the current mode's answer: {"error": "broker_error" | "broker_down"
                    | "rate_limited" | "maintenance"} (+ Retry-After), no answer (hang),
                    the connection dropped unanswered after the fill (reply_lost), or
                    {"error": "broker_error"} with a 5xx after the fill (error_after_fill)
    GET  /fills     ?since=UNIX_S&until=UNIX_S&client_order_id=ID (all optional)
                    200 {"fills": [fill, ...]} oldest first | 400 {"error", "field"}
    GET  /health    200 {"status": "ok"}
    GET  /metrics   Prometheus text: broker_sim_orders_total{result},
                    broker_sim_orders_received_total (every POST /orders, on arrival),
                    broker_sim_order_seconds, broker_sim_mode_info{mode},
                    broker_sim_ledger_fills, broker_sim_hanging_requests,
                    broker_sim_mode_hits_total{mode}

An unknown route, a wrong method or a body over 1 MiB is a 404, 405 or 413
``{"error", "status"}``; a body that is not JSON (or is nested too deeply) a 400.

An order the broker has taken is completed even when the client goes away before the
answer (its fill is in the ledger: an "unknown outcome" for that client). In
``maintenance`` mode every route but ``/metrics`` answers 503.

``broker_sim_mode_hits_total{mode}`` counts, per mode, the orders a mode other than
``normal`` actually affected: answered with its error (``error``, ``rate_limit``, a
flap's down phase, ``maintenance``), delayed (``slow``), held (``hang``), filled again
(``duplicate``: only a repeated id), or filled and then left unanswered (``reply_lost``)
or answered with an error (``error_after_fill``). An order the ``probability`` roll left
alone is not a hit, nor is a rejected order under a mode that fills first. Every mode
but ``normal`` has its series from the start, at 0. It is the evidence that a fault
landed; ``broker_sim_orders_total`` counts the same orders by what the ledger did
(``filled``/``replayed`` for the two modes that fill first).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Mapping

from aiohttp import web
from aiohttp.typedefs import Handler
from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4, generate_latest

from lab.broker.ledger import InvalidQuery, parse_fill_query
from lab.broker.modes import Verdict, decide, maintenance_verdict
from lab.broker.orders import (
    Fill,
    InvalidOrder,
    Order,
    fill_price,
    parse_order,
    rejection_reason,
    sample_latency_ms,
)
from lab.broker.state import BrokerState

__all__ = ["STATE", "json_errors", "make_order_app", "read_json"]

STATE = web.AppKey("broker_state", BrokerState)


async def read_json(request: web.Request) -> object:
    """The request body decoded as JSON; :class:`InvalidOrder` if it is not JSON (or is
    nested too deeply to decode)."""
    try:
        return await request.json()
    except ValueError as exc:
        raise InvalidOrder("body must be valid JSON") from exc
    except RecursionError as exc:
        raise InvalidOrder("body must be valid JSON, nested less deeply") from exc


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """aiohttp's own 4xx (unknown route, wrong method, body too large) as
    ``{"error": reason, "status": code}`` instead of plain text."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        body = {"error": exc.reason.lower(), "status": exc.status}
        return web.json_response(body, status=exc.status, headers=_kept(exc.headers))


def _kept(headers: Mapping[str, str]) -> dict[str, str]:
    """The headers of an HTTP error worth keeping on its JSON form (Allow on a 405)."""
    return {name: value for name, value in headers.items() if name.lower() == "allow"}


def _error_response(verdict: Verdict) -> web.Response:
    headers = {}
    if verdict.retry_after_s is not None:
        headers["Retry-After"] = str(math.ceil(verdict.retry_after_s))
    status = verdict.error_status or 500
    return web.json_response({"error": verdict.error}, status=status, headers=headers)


@web.middleware
async def count_received(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Count every order request as it arrives, whatever the answer (or none) will be:
    the broker's own evidence of how many orders reached it."""
    if request.method == "POST" and request.path == "/orders":
        request.app[STATE].metrics.orders_received.inc()
    return await handler(request)


@web.middleware
async def maintenance(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answer 503 on every route but /metrics while in maintenance mode."""
    state = request.app[STATE]
    verdict = None if request.path == "/metrics" else maintenance_verdict(state.mode, state.rng)
    if verdict is None:
        return await handler(request)
    if request.path == "/orders":
        state.hit(state.mode.name)
        state.count("failed")
    return _error_response(verdict)


async def post_order(request: web.Request) -> web.Response:
    """Take an order and answer as the current mode says; see the module doc."""
    state = request.app[STATE]
    started = time.perf_counter()
    try:
        order = parse_order(await read_json(request))
    except InvalidOrder as exc:
        state.count("invalid")
        return web.json_response(exc.to_json(), status=400)
    mode = state.mode
    verdict = decide(mode, state.rng, state.mode_elapsed_s())
    if verdict.hang:
        state.hit(mode.name)
        await _hang(state)
    response = await state.detach(_process(state, order, verdict, mode.name))
    state.metrics.order_seconds.observe(time.perf_counter() - started)
    return _drop_reply(request) if response is None else response


def _drop_reply(request: web.Request) -> web.Response:
    """Abort the request's connection: the client sees it reset, with no HTTP answer.
    The response returned is never sent (aiohttp finds the connection gone)."""
    if request.transport is not None:
        request.transport.abort()
    return web.Response(status=500)


async def _hang(state: BrokerState) -> None:
    """Never return: the request ends when its client goes away (handler cancelled)."""
    state.count("hung")
    state.metrics.hanging.inc()
    try:
        await asyncio.get_running_loop().create_future()
    finally:
        state.metrics.hanging.dec()


async def _process(
    state: BrokerState, order: Order, verdict: Verdict, mode: str
) -> web.Response | None:
    """The answer to ``order`` as ``verdict`` says (``mode`` set it); None = drop the
    connection unanswered. Runs detached: it completes when the client has gone."""
    if verdict.added_latency_ms > 0:
        state.hit(mode)
    if verdict.latency:
        settings = state.settings
        delay_ms = sample_latency_ms(state.rng, settings.latency_ms, settings.latency_sigma)
        await asyncio.sleep((delay_ms + verdict.added_latency_ms) / 1000)
    if verdict.error_status is not None and not verdict.book_first:
        state.hit(mode)
        state.count("rate_limited" if verdict.error_status == 429 else "failed")
        return _error_response(verdict)
    reason = rejection_reason(order)
    if reason is not None:
        state.count("rejected")
        return web.json_response({"error": "rejected", "reason": reason}, status=422)
    fill = _book(state, order, verdict, mode)
    if not verdict.book_first:
        return web.json_response(fill.to_json())
    state.hit(mode)
    return None if verdict.drop_reply else _error_response(verdict)


def _book(state: BrokerState, order: Order, verdict: Verdict, mode: str) -> Fill:
    """The fill of ``order``: the one booked before under its id, else a new one (a new
    one in any case under ``duplicate`` or the no-idempotency sabotage); committed to the
    ledger when this returns."""
    booked = state.ledger.first_fill(order.client_order_id)
    if booked is not None and not (verdict.duplicate or state.settings.no_idempotency):
        state.count("replayed")
        return booked
    if booked is not None and verdict.duplicate:
        state.hit(mode)
    fill = state.ledger.add(order, fill_price(order, state.rng), state.wall_clock())
    state.metrics.ledger_fills.inc()
    state.count("filled")
    return fill


async def get_fills(request: web.Request) -> web.Response:
    """Fills from the ledger, filtered by the query string; see the module doc."""
    try:
        query = parse_fill_query(request.query)
    except InvalidQuery as exc:
        return web.json_response({"error": str(exc), "field": exc.field}, status=400)
    fills = request.app[STATE].ledger.fills(query)
    return web.json_response({"fills": [fill.to_json() for fill in fills]})


async def get_health(request: web.Request) -> web.Response:
    """Liveness: ``{"status": "ok"}`` while the process serves (503 in maintenance)."""
    return web.json_response({"status": "ok"})


async def get_metrics(request: web.Request) -> web.Response:
    """Prometheus text exposition of this instance's registry."""
    body = generate_latest(request.app[STATE].metrics.registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_PLAIN_0_0_4})


def _closing(state: BrokerState) -> web.Application:
    async def close(app: web.Application) -> AsyncIterator[None]:
        yield
        await state.close()

    app = web.Application(middlewares=[count_received, json_errors, maintenance])
    app.cleanup_ctx.append(close)
    return app


def make_order_app(state: BrokerState) -> web.Application:
    """The order API app over ``state``; ``state`` is closed when the app is cleaned up."""
    app = _closing(state)
    app[STATE] = state
    app.router.add_post("/orders", post_order)
    app.router.add_get("/fills", get_fills)
    app.router.add_get("/health", get_health)
    app.router.add_get("/metrics", get_metrics)
    return app
