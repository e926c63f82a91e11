"""Toxiproxy 2.x's HTTP API over a ProxyCollection (aiohttp).

Same routes, JSON shapes and status codes as Toxiproxy: proxies, toxics, /populate,
/reset, /version, /metrics; updates accept POST and PATCH. Errors are
`{"error": message, "status": code}`; bad input is always a 4xx naming the problem.
Like Toxiproxy, requests from browsers (User-Agent "Mozilla/...") are refused, so a
web page cannot drive the lab.

Admin token: when the server is given one (`GAMEDAY_ADMIN_TOKEN`, see
`lab.admin_auth`), every route needs `Authorization: Bearer <token>` (401 otherwise)
except GET /version and GET /metrics: they change nothing and hold no secret (the
metrics name the proxies and count their toxics and bytes, which Prometheus keeps
anyway), and Prometheus scrapes /metrics and the lab's readiness check polls /version
without credentials, so no config file has to hold the token.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

from lab.admin_auth import AdminAuth, refuse_browsers
from lab.faultproxy.collection import ProxyCollection
from lab.faultproxy.errors import ApiError
from lab.faultproxy.metrics import CONTENT_TYPE, Metrics
from lab.faultproxy.schema import (
    decode,
    parse_proxy,
    parse_proxy_list,
    parse_proxy_update,
    parse_toxic,
    parse_toxic_update,
)

__all__ = ["OPEN_PATHS", "VERSION", "create_app"]

VERSION = "gameday-faultproxy 0.1.0 (Toxiproxy 2.x API)"
OPEN_PATHS = frozenset({"/version", "/metrics"})
"""Read-only routes that need no admin token (GET and HEAD only)."""


def _json(value: Any, status: int = 200) -> web.Response:
    return web.json_response(value, status=status)


def _no_content() -> web.Response:
    return web.Response(status=204)


async def _body(request: web.Request) -> Any:
    return decode(await request.read())


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """ApiError and aiohttp's own 4xx (unknown route, wrong method) as error JSON."""
    try:
        return await handler(request)
    except ApiError as error:
        return _json(error.to_json(), error.status)
    except web.HTTPException as error:
        if error.status < 400:
            raise
        return _json({"error": error.reason.lower(), "status": error.status}, error.status)


class _Handlers:
    """One method per route."""

    def __init__(self, proxies: ProxyCollection, metrics: Metrics) -> None:
        self._proxies = proxies
        self._metrics = metrics

    async def proxy_index(self, request: web.Request) -> web.Response:
        return _json({proxy.name: proxy.to_json() for proxy in self._proxies.all()})

    async def proxy_create(self, request: web.Request) -> web.Response:
        proxy = await self._proxies.create(parse_proxy(await _body(request)))
        return _json(proxy.to_json(), 201)

    async def populate(self, request: web.Request) -> web.Response:
        proxies = await self._proxies.populate(parse_proxy_list(await _body(request)))
        return _json({"proxies": [proxy.to_json() for proxy in proxies]}, 201)

    async def proxy_show(self, request: web.Request) -> web.Response:
        return _json(self._proxies.get(request.match_info["proxy"]).to_json())

    async def proxy_update(self, request: web.Request) -> web.Response:
        proxy = self._proxies.get(request.match_info["proxy"])
        spec = parse_proxy_update(await _body(request), proxy.spec())
        await self._proxies.update(proxy.name, spec.listen, spec.upstream, spec.enabled)
        return _json(proxy.to_json())

    async def proxy_delete(self, request: web.Request) -> web.Response:
        await self._proxies.delete(request.match_info["proxy"])
        return _no_content()

    async def toxic_index(self, request: web.Request) -> web.Response:
        proxy = self._proxies.get(request.match_info["proxy"])
        return _json([toxic.to_json() for toxic in proxy.toxics.ordered()])

    async def toxic_create(self, request: web.Request) -> web.Response:
        proxy = self._proxies.get(request.match_info["proxy"])
        toxic = parse_toxic(await _body(request))
        proxy.add_toxic(toxic)
        return _json(toxic.to_json())  # Toxiproxy answers 200 here, not 201

    async def toxic_show(self, request: web.Request) -> web.Response:
        proxy = self._proxies.get(request.match_info["proxy"])
        return _json(proxy.get_toxic(request.match_info["toxic"]).to_json())

    async def toxic_update(self, request: web.Request) -> web.Response:
        proxy = self._proxies.get(request.match_info["proxy"])
        current = proxy.get_toxic(request.match_info["toxic"])
        toxic = parse_toxic_update(await _body(request), current)
        proxy.update_toxic(toxic)
        return _json(toxic.to_json())

    async def toxic_delete(self, request: web.Request) -> web.Response:
        proxy = self._proxies.get(request.match_info["proxy"])
        proxy.remove_toxic(request.match_info["toxic"])
        return _no_content()

    async def reset(self, request: web.Request) -> web.Response:
        await self._proxies.reset()
        return _no_content()

    async def version(self, request: web.Request) -> web.Response:
        return _json({"version": VERSION})

    async def metrics(self, request: web.Request) -> web.Response:
        return web.Response(body=self._metrics.render(), headers={"Content-Type": CONTENT_TYPE})


def _routes(h: _Handlers) -> list[web.RouteDef]:
    # any character but "/" (aiohttp's default pattern also refuses "{" and "}")
    proxy = "/proxies/{proxy:[^/]+}"
    toxic = proxy + "/toxics/{toxic:[^/]+}"
    return [
        web.post("/reset", h.reset),
        web.get("/proxies", h.proxy_index),
        web.post("/proxies", h.proxy_create),
        web.post("/populate", h.populate),
        web.get(proxy, h.proxy_show),
        web.post(proxy, h.proxy_update),
        web.patch(proxy, h.proxy_update),
        web.delete(proxy, h.proxy_delete),
        web.get(proxy + "/toxics", h.toxic_index),
        web.post(proxy + "/toxics", h.toxic_create),
        web.get(toxic, h.toxic_show),
        web.post(toxic, h.toxic_update),
        web.patch(toxic, h.toxic_update),
        web.delete(toxic, h.toxic_delete),
        web.get("/version", h.version),
        web.get("/metrics", h.metrics),
    ]


def create_app(
    proxies: ProxyCollection, metrics: Metrics, admin_token: str | None = None
) -> web.Application:
    """The API application for `proxies`, reporting `metrics`; with `admin_token`, every
    route but GET /version and GET /metrics needs `Authorization: Bearer <admin_token>`."""
    auth = AdminAuth(admin_token, OPEN_PATHS)
    app = web.Application(middlewares=[refuse_browsers, auth.middleware(), _errors])
    app.add_routes(_routes(_Handlers(proxies, metrics)))
    return app
