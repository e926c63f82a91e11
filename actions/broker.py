"""Broker failures at the HTTP level, through the broker simulator's admin API.

``fail`` switches a failure mode on; ``recover`` (the idempotent undo) switches the
simulator back to normal.
"""

from __future__ import annotations

from typing import Any

from gameday.errors import ConfigError, InjectionError
from gameday.http import HttpUnreachable, request_json
from gameday.targets import get_target

__all__ = ["fail", "recover"]


def _admin(path: str, body: dict[str, Any]) -> Any:
    url = get_target().broker_admin_url() + path
    try:
        response = request_json("POST", url, body)
    except HttpUnreachable as exc:
        raise InjectionError(f"broker admin API unreachable: {exc}") from exc
    if response.status == 400:
        raise ConfigError(f"broker simulator refused {body}: {response.body}")
    if response.status >= 300:
        raise InjectionError(f"broker simulator answered {response.status}: {response.body}")
    return response.body


def fail(mode: str = "error", status: int = 500, probability: float = 1.0,
         latency_ms: float = 0) -> Any:
    """Make the broker fail: ``mode`` ``error`` answers ``status`` with ``probability``
    (0..1); ``slow`` adds ``latency_ms``. Undo with ``recover()``. Returns the new mode."""
    body: dict[str, Any] = {"mode": mode, "probability": probability}
    if mode == "error":
        body["status"] = status
    if mode == "slow":
        body["latency_ms"] = latency_ms
    return _admin("/admin/mode", body)


def recover() -> Any:
    """Put the broker back to normal; safe to call when it already is (rollback)."""
    return _admin("/admin/reset", {})
