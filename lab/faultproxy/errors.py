"""The API's errors: a closed set, each with Toxiproxy's message and status code.

Rendered as `{"error": "<message>", "status": <code>}`.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Iterable

__all__ = [
    "ApiError",
    "bad_request",
    "invalid_stream",
    "invalid_toxic_type",
    "listen_failed",
    "missing_field",
    "proxy_exists",
    "proxy_not_found",
    "toxic_exists",
    "toxic_not_found",
]

_BAD_ADDRESS = frozenset({errno.EADDRNOTAVAIL, errno.EACCES, errno.EAFNOSUPPORT, errno.EINVAL})


class ApiError(Exception):
    """An error the API reports to its client."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.message = message
        self.status = status

    def to_json(self) -> dict[str, object]:
        """Toxiproxy's error body."""
        return {"error": self.message, "status": self.status}


def bad_request(detail: str) -> ApiError:
    """The body is not valid JSON or a field has a wrong type or value."""
    return ApiError(f"bad request body: {detail}", 400)


def missing_field(field: str) -> ApiError:
    """A required field is absent or empty."""
    return ApiError(f"missing required field: {field}", 400)


def invalid_stream() -> ApiError:
    """A toxic's stream is neither upstream nor downstream."""
    return ApiError("stream was invalid, can be either upstream or downstream", 400)


def invalid_toxic_type(given: object, valid: Iterable[str]) -> ApiError:
    """A toxic type this proxy does not implement."""
    names = ", ".join(sorted(valid))
    return ApiError(f"invalid toxic type: {given!r} (valid types: {names})", 400)


def proxy_not_found() -> ApiError:
    """No proxy with that name."""
    return ApiError("proxy not found", 404)


def proxy_exists() -> ApiError:
    """A proxy with that name exists already."""
    return ApiError("proxy already exists", 409)


def toxic_not_found() -> ApiError:
    """No toxic with that name on the proxy."""
    return ApiError("toxic not found", 404)


def toxic_exists() -> ApiError:
    """A toxic with that name exists already on the proxy."""
    return ApiError("toxic already exists", 409)


def listen_failed(address: str, error: OSError) -> ApiError:
    """The listener could not be opened: 409 when the address is in use, 400 when it
    cannot be used here (not local, no such host, not allowed), else 500 (Toxiproxy
    reports them all as 500; a client's bad address is not a server fault)."""
    if error.errno == errno.EADDRINUSE:
        status = 409
    elif isinstance(error, socket.gaierror) or error.errno in _BAD_ADDRESS:
        status = 400
    else:
        status = 500
    return ApiError(f"listen tcp {address}: {error.strerror or error}", status)
