"""The broker simulator's admin API: its own port, bound to 127.0.0.1 (no auth).

::

    GET    /admin/mode    200 the current mode, e.g. {"mode": "normal"}
    POST   /admin/mode    mode JSON -> 200 the new mode (all parameters filled in)
                          | 400 {"error": "... valid ..."}; replaces the current mode
    POST   /admin/reset   200 {"mode": "normal"}; idempotent
    DELETE /admin/mode    the same as reset

Modes and their parameters: :mod:`lab.broker.modes`.
"""

from __future__ import annotations

from aiohttp import web

from lab.broker.app import STATE
from lab.broker.modeparse import InvalidMode, parse_mode
from lab.broker.modes import NormalMode
from lab.broker.state import BrokerState

__all__ = ["make_admin_app"]


async def get_mode(request: web.Request) -> web.Response:
    """The current mode as JSON."""
    return web.json_response(request.app[STATE].mode.to_json())


async def post_mode(request: web.Request) -> web.Response:
    """Switch to the mode in the body; 400 naming what is valid if it is bad."""
    try:
        mode = parse_mode(await request.json())
    except ValueError as exc:  # InvalidMode or malformed JSON
        message = str(exc) if isinstance(exc, InvalidMode) else "body must be valid JSON"
        return web.json_response({"error": message}, status=400)
    request.app[STATE].set_mode(mode)
    return web.json_response(mode.to_json())


async def reset(request: web.Request) -> web.Response:
    """Back to normal mode; idempotent."""
    state = request.app[STATE]
    state.set_mode(NormalMode())
    return web.json_response(state.mode.to_json())


def make_admin_app(state: BrokerState) -> web.Application:
    """The admin API app over ``state`` (serve it on its own port)."""
    app = web.Application()
    app[STATE] = state
    app.router.add_get("/admin/mode", get_mode)
    app.router.add_post("/admin/mode", post_mode)
    app.router.add_delete("/admin/mode", reset)
    app.router.add_post("/admin/reset", reset)
    return app
