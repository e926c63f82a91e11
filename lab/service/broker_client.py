"""Calling the broker API and classifying its answer.

:func:`place_order` never raises for broker trouble: it returns a
:class:`BrokerReply` whose ``kind`` is one of

- ``filled``: 200 with a fill body;
- ``rejected``: a 4xx other than 429 (the broker works, it refused the order);
- ``unavailable``: 5xx, 429, another status, an unreadable 200, or no connection;
- ``timeout``: no complete answer within the session's total timeout.

``filled`` and ``rejected`` count as breaker successes, the others as failures.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import aiohttp

from lab.broker.orders import Order

__all__ = ["BrokerReply", "classify", "place_order"]

ReplyKind = Literal["filled", "rejected", "unavailable", "timeout"]


@dataclass(frozen=True)
class BrokerReply:
    """The outcome of one broker call.

    status_label: the HTTP status code as text, or "timeout" / "connection_error".
    reached: True when an HTTP answer came back from the broker.
    fill: the broker's fill JSON (``filled`` only). detail: human-readable reason.
    """

    kind: ReplyKind
    status_label: str
    reached: bool
    elapsed_s: float = 0.0
    fill: dict[str, Any] = field(default_factory=dict)
    detail: str = ""

    @property
    def healthy(self) -> bool:
        """Whether this counts as a breaker success."""
        return self.kind in ("filled", "rejected")


def classify(status: int, body: object) -> BrokerReply:
    """Classify an HTTP answer (``body`` is the decoded JSON, or None)."""
    label = str(status)
    if status == 200:
        if isinstance(body, dict) and isinstance(body.get("fill_price"), int | float):
            return BrokerReply("filled", label, True, fill=body)
        return BrokerReply("unavailable", label, True, detail="invalid fill from broker")
    if 400 <= status < 500 and status != 429:
        reason = body.get("error") if isinstance(body, dict) else None
        return BrokerReply("rejected", label, True, detail=str(reason or f"broker {status}"))
    return BrokerReply("unavailable", label, True, detail=f"broker answered {status}")


async def _read_json(response: aiohttp.ClientResponse) -> object:
    try:
        return await response.json(content_type=None)
    except ValueError:
        return None


async def _post(session: aiohttp.ClientSession, url: str, order: Order) -> BrokerReply:
    try:
        async with session.post(url, json=order.to_json()) as response:
            return classify(response.status, await _read_json(response))
    except TimeoutError:
        return BrokerReply("timeout", "timeout", False, detail="no answer in time")
    except aiohttp.ClientError as exc:
        detail = str(exc) or type(exc).__name__
        return BrokerReply("unavailable", "connection_error", False, detail=detail)


async def place_order(session: aiohttp.ClientSession, url: str, order: Order) -> BrokerReply:
    """POST ``order`` to ``url`` (the broker's /orders) and classify the outcome."""
    started = time.perf_counter()
    reply = await _post(session, url, order)
    return replace(reply, elapsed_s=time.perf_counter() - started)
