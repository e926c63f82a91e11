"""Bearer-token protection for the lab's admin APIs (aiohttp middleware).

When ``GAMEDAY_ADMIN_TOKEN`` is set (non-empty) in the environment of the fault proxy or
the broker simulator, every request to its admin API must carry
``Authorization: Bearer <token>``; one without it, or with another token, gets
``401 {"error": ..., "status": 401}`` and ``WWW-Authenticate: Bearer realm="gameday"``.
The answer never echoes what was sent; tokens are compared in constant time
(:func:`hmac.compare_digest`). Unset or empty, the APIs stay open as before — they bind
127.0.0.1 by default either way.

Browsers are refused whatever the token (User-Agent ``Mozilla/...`` gets a 403, as
Toxiproxy does), so a web page cannot drive the lab through the user's own machine.
"""

from __future__ import annotations

import hmac
from collections.abc import Collection
from dataclasses import dataclass, field

from aiohttp import hdrs, web
from aiohttp.typedefs import Handler, Middleware

from gameday.contract import admin_token

__all__ = ["REALM", "AdminAuth", "refuse_browsers"]

REALM = "gameday"
_READ_METHODS = (hdrs.METH_GET, hdrs.METH_HEAD)


@dataclass(frozen=True)
class AdminAuth:
    """Who may use an admin API.

    token: the bearer token required, or None for no check (never shown in ``repr``).
    open_paths: paths anyone may GET (or HEAD) without the token: read-only endpoints
        that hold no secret, such as ``/metrics`` scraped by Prometheus.
    """

    token: str | None = field(default=None, repr=False)
    open_paths: frozenset[str] = frozenset()

    @classmethod
    def from_env(cls, open_paths: Collection[str] = ()) -> AdminAuth:
        """The token from ``GAMEDAY_ADMIN_TOKEN`` (ConfigError if it is unusable)."""
        return cls(admin_token(), frozenset(open_paths))

    @property
    def required(self) -> bool:
        """True when requests need the token."""
        return self.token is not None

    def allows(self, method: str, path: str, authorization: str | None) -> bool:
        """Whether a request with this ``Authorization`` header value may go on (pure)."""
        if self.token is None or (method in _READ_METHODS and path in self.open_paths):
            return True
        scheme, _, credentials = (authorization or "").strip().partition(" ")
        sent = credentials.strip().encode("utf-8", "surrogatepass")
        matches = hmac.compare_digest(sent, self.token.encode())
        return scheme.lower() == "bearer" and matches

    def middleware(self) -> Middleware:
        """The aiohttp middleware enforcing this policy."""

        @web.middleware
        async def require_token(request: web.Request, handler: Handler) -> web.StreamResponse:
            if self.allows(request.method, request.path, request.headers.get(hdrs.AUTHORIZATION)):
                return await handler(request)
            return unauthorized(hdrs.AUTHORIZATION in request.headers)

        return require_token


def unauthorized(token_sent: bool) -> web.Response:
    """The 401 answer: says what is expected, never what was sent (RFC 6750 challenge)."""
    challenge = f'Bearer realm="{REALM}"'
    if token_sent:
        challenge += ', error="invalid_token"'
    message = ("wrong admin token" if token_sent else "missing admin token") + (
        ": send Authorization: Bearer <the value of GAMEDAY_ADMIN_TOKEN>")
    return web.json_response({"error": message, "status": 401}, status=401,
                             headers={hdrs.WWW_AUTHENTICATE: challenge})


@web.middleware
async def refuse_browsers(request: web.Request, handler: Handler) -> web.StreamResponse:
    """403 for browsers (User-Agent ``Mozilla/...``), as Toxiproxy does."""
    if request.headers.get(hdrs.USER_AGENT, "").startswith("Mozilla/"):
        return web.json_response({"error": "User agent not allowed", "status": 403}, status=403)
    return await handler(request)
