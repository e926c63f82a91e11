"""Tiny JSON-over-HTTP helper for admin APIs (standard library, always with a timeout).

Admin token: when the environment variable ``GAMEDAY_ADMIN_TOKEN`` is set (non-empty),
the lab's admin APIs (the fault proxy's Toxiproxy API, the broker simulator's admin API)
require ``Authorization: Bearer <token>``, and :func:`request_json` sends that header
when called with ``admin=True`` (only for those APIs: the token goes nowhere else). The token is
read from the environment at each call and never written anywhere: it is not in any
message, error or ``repr`` this module makes.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gameday.contract import ADMIN_TOKEN_ENV, GamedayError, InjectionError, admin_token

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "HttpUnreachable",
    "Response",
    "admin_headers",
    "request_json",
]

DEFAULT_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class Response:
    """Status code and decoded JSON body (None when the body is empty or not JSON)."""

    status: int
    body: Any


class HttpUnreachable(OSError):
    """Nothing answered at the URL."""


def admin_headers(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """``{"Authorization": "Bearer <token>"}`` when an admin token is set, else ``{}``."""
    token = admin_token(environ)
    return {} if token is None else {"Authorization": f"Bearer {token}"}


def request_json(
    method: str, url: str, body: Any = None, timeout_s: float = DEFAULT_TIMEOUT_S,
    *, admin: bool = False,
) -> Response:
    """Send ``body`` as JSON and return the status and decoded answer; 4xx/5xx do not raise.

    ``admin``: send the admin token (see the module doc) when one is set: only for the
    lab's admin APIs (fault proxy, broker simulator admin), never to anything else. A
    401 answer means the API wants another token than this process has.
    """
    data = None if body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json"} if data is not None else {}
    if admin:
        headers.update(admin_headers())
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return Response(int(response.status), _decode(response.read()))
    except urllib.error.HTTPError as exc:
        return Response(exc.code, _decode(exc.read()))
    except (urllib.error.URLError, OSError) as exc:
        raise HttpUnreachable(f"{method} {url} failed: {exc}") from exc


def admin_call(what: str, method: str, url: str, body: Any = None, *,
               timeout_s: float = DEFAULT_TIMEOUT_S,
               error: type[GamedayError] = InjectionError) -> Response:
    """One call to an admin API (``what``: "fault proxy", "broker simulator"...) with the
    admin token: the one error path for both ways it can go wrong. ``error`` (naming
    ``what`` and the URL) when nothing answers, or when the API answers 401 (then the
    message says to set GAMEDAY_ADMIN_TOKEN to the token it was started with); any other
    answer is returned."""
    try:
        response = request_json(method, url, body, timeout_s, admin=True)
    except HttpUnreachable as exc:
        raise error(f"{what} unreachable: {exc}") from exc
    if response.status == 401:
        detail = response.body.get("error") if isinstance(response.body, dict) else None
        raise error(f"{what} refused {method} {url} (401{': ' + str(detail) if detail else ''})"
                    f": set {ADMIN_TOKEN_ENV} to the token the {what} was started with")
    return response


def _decode(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None
