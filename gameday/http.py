"""Tiny JSON-over-HTTP helper for admin APIs (standard library, always with a timeout)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

DEFAULT_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class Response:
    """Status code and decoded JSON body (None when the body is empty or not JSON)."""

    status: int
    body: Any


class HttpUnreachable(OSError):
    """Nothing answered at the URL."""


def request_json(
    method: str, url: str, body: Any = None, timeout_s: float = DEFAULT_TIMEOUT_S
) -> Response:
    """Send ``body`` as JSON and return the status and decoded answer; 4xx/5xx do not raise."""
    data = None if body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json"} if data is not None else {}
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return Response(int(response.status), _decode(response.read()))
    except urllib.error.HTTPError as exc:
        return Response(exc.code, _decode(exc.read()))
    except (urllib.error.URLError, OSError) as exc:
        raise HttpUnreachable(f"{method} {url} failed: {exc}") from exc


def _decode(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None
