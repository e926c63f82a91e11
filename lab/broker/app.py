"""HTTP apps of the broker simulator: the order API and the admin API.

Order API (``make_order_app``)::

    POST /orders    order JSON -> 200 fill JSON | 400 {"error", "field"}
                    | mode's status {"error": "broker_error"}
    GET  /health    200 {"status": "ok"}
    GET  /metrics   Prometheus text: broker_sim_orders_total{result},
                    broker_sim_mode_info{mode}

Admin API (``make_admin_app``, its own port)::

    GET  /admin/mode    200 current mode JSON
    POST /admin/mode    mode JSON -> 200 new mode JSON | 400 {"error": ...}
    POST /admin/reset   200 {"mode": "normal"}
"""

from __future__ import annotations

import asyncio

from aiohttp import web
from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4, generate_latest

from lab.broker.modes import InvalidMode, NormalMode, decide, parse_mode
from lab.broker.orders import InvalidOrder, make_fill, parse_order, sample_latency_ms
from lab.broker.state import BrokerState

__all__ = ["STATE", "make_admin_app", "make_order_app", "read_json"]

STATE = web.AppKey("broker_state", BrokerState)


async def read_json(request: web.Request) -> object:
    """The request body decoded as JSON; :class:`InvalidOrder` if it is not JSON."""
    try:
        return await request.json()
    except ValueError as exc:
        raise InvalidOrder("body must be valid JSON") from exc


async def post_order(request: web.Request) -> web.Response:
    """Fill an order after a simulated latency, unless the mode says otherwise."""
    state = request.app[STATE]
    try:
        order = parse_order(await read_json(request))
    except InvalidOrder as exc:
        state.count("rejected")
        return web.json_response(exc.to_json(), status=400)
    verdict = decide(state.mode, state.rng)
    latency_ms = sample_latency_ms(state.rng, state.settings.latency_ms)
    await asyncio.sleep((latency_ms + verdict.added_latency_ms) / 1000)
    if verdict.error_status is not None:
        state.count("failed")
        return web.json_response({"error": "broker_error"}, status=verdict.error_status)
    fill = state.fills.get_or_add(order.client_order_id, lambda: make_fill(order, state.rng))
    state.count("filled")
    return web.json_response(fill.to_json())


async def get_health(request: web.Request) -> web.Response:
    """Liveness: always ``{"status": "ok"}`` while the process serves."""
    return web.json_response({"status": "ok"})


async def get_metrics(request: web.Request) -> web.Response:
    """Prometheus text exposition of this instance's registry."""
    body = generate_latest(request.app[STATE].registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_PLAIN_0_0_4})


async def get_mode(request: web.Request) -> web.Response:
    """The current mode as JSON."""
    return web.json_response(request.app[STATE].mode.to_json())


async def post_mode(request: web.Request) -> web.Response:
    """Switch to the mode in the body; 400 naming the valid choices if it is bad."""
    state = request.app[STATE]
    try:
        body = await request.json()
        mode = parse_mode(body)
    except ValueError as exc:  # InvalidMode or malformed JSON
        message = str(exc) if isinstance(exc, InvalidMode) else "body must be valid JSON"
        return web.json_response({"error": message}, status=400)
    state.set_mode(mode)
    return web.json_response(mode.to_json())


async def post_reset(request: web.Request) -> web.Response:
    """Back to normal mode; idempotent."""
    state = request.app[STATE]
    state.set_mode(NormalMode())
    return web.json_response(state.mode.to_json())


def make_order_app(state: BrokerState) -> web.Application:
    """The order API app over ``state``."""
    app = web.Application()
    app[STATE] = state
    app.router.add_post("/orders", post_order)
    app.router.add_get("/health", get_health)
    app.router.add_get("/metrics", get_metrics)
    return app


def make_admin_app(state: BrokerState) -> web.Application:
    """The admin API app over ``state`` (serve it on its own port)."""
    app = web.Application()
    app[STATE] = state
    app.router.add_get("/admin/mode", get_mode)
    app.router.add_post("/admin/mode", post_mode)
    app.router.add_post("/admin/reset", post_reset)
    return app
