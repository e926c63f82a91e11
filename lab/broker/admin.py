"""The broker simulator's admin API: its own port, bound to 127.0.0.1 by default.

::

    GET    /admin/mode    200 the current mode, e.g. {"mode": "normal"}
    POST   /admin/mode    mode JSON -> 200 the new mode (all parameters filled in)
                          | 400 {"error": "... valid ..."}; replaces the current mode
    POST   /admin/reset   200 {"mode": "normal"}; idempotent
    DELETE /admin/mode    the same as reset

Every error is JSON, ``{"error": message, "status": code}``: a bad body is a 400 that
leaves the mode as it was, an unknown route a 404, a wrong method a 405, a body over
1 MiB a 413.

Admin token: with ``admin_token`` set (``GAMEDAY_ADMIN_TOKEN`` in the simulator's
environment), every route, ``GET /admin/mode`` included, needs
``Authorization: Bearer <token>``; without it or with another token the answer is a
401 with ``WWW-Authenticate: Bearer`` (:mod:`lab.admin_auth`). Nothing on this port is
left open: the broker's metrics are on the order port, which Prometheus scrapes.
Browsers (User-Agent ``Mozilla/...``) are refused with a 403 either way.

Modes and their parameters: :mod:`lab.broker.modes`.
"""

from __future__ import annotations

from aiohttp import web

from lab.admin_auth import AdminAuth, refuse_browsers
from lab.broker.app import STATE, json_errors, read_json
from lab.broker.modeparse import parse_mode
from lab.broker.modes import NormalMode
from lab.broker.state import BrokerState

__all__ = ["make_admin_app"]


async def get_mode(request: web.Request) -> web.Response:
    """The current mode as JSON."""
    return web.json_response(request.app[STATE].mode.to_json())


async def post_mode(request: web.Request) -> web.Response:
    """Switch to the mode in the body; 400 naming what is valid if it is bad."""
    try:
        mode = parse_mode(await read_json(request))
    except ValueError as exc:  # InvalidMode, or InvalidOrder: not JSON
        return web.json_response({"error": str(exc), "status": 400}, status=400)
    request.app[STATE].set_mode(mode)
    return web.json_response(mode.to_json())


async def reset(request: web.Request) -> web.Response:
    """Back to normal mode; idempotent."""
    state = request.app[STATE]
    state.set_mode(NormalMode())
    return web.json_response(state.mode.to_json())


def make_admin_app(state: BrokerState) -> web.Application:
    """The admin API app over ``state`` (serve it on its own port); it requires
    ``state.settings.admin_token`` when that is set."""
    auth = AdminAuth(state.settings.admin_token)
    app = web.Application(middlewares=[refuse_browsers, auth.middleware(), json_errors])
    app[STATE] = state
    app.router.add_get("/admin/mode", get_mode)
    app.router.add_post("/admin/mode", post_mode)
    app.router.add_delete("/admin/mode", reset)
    app.router.add_post("/admin/reset", reset)
    return app
