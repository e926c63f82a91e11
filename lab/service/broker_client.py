"""Calling the broker API once and classifying its answer.

:func:`place_order` never raises for broker trouble: it returns a
:class:`BrokerReply` whose ``kind`` is one of

- ``filled``: 200 with a fill body;
- ``rejected``: a 4xx other than 429 (the broker works, it refused the order);
- ``unavailable``: the broker answered 5xx, 429 or another status, or no connection
  could be made (the order never left). Only a 429 or no connection is a definite
  failure: a 5xx says the broker failed, not that it did nothing (it may have filled
  the order before failing), so a 5xx is :attr:`BrokerReply.ambiguous` too;
- ``lost``: the outcome is unknown: the connection broke after the order was sent
  (reset, closed without an answer) or the 200 could not be read — it may be filled;
- ``timeout``: the outcome is unknown: no complete answer within the call's timeout.

``filled`` and ``rejected`` count as breaker successes, the others as failures;
``lost``, ``timeout`` and a 5xx answer are :attr:`BrokerReply.ambiguous`. A ``Retry-After`` header
given in seconds is kept in ``retry_after_s``.

The calls go through :class:`gameday.http1.AnswerPool` (keep-alive connections, answers
parsed by llhttp): measured, a third of a replica's CPU went to aiohttp's client before.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from gameday.http1 import Answer, AnswerPool, Broken, NotSent, RequestHead
from lab.broker.orders import Order

__all__ = ["BrokerReply", "classify", "parse_retry_after", "place_order"]

ReplyKind = Literal["filled", "rejected", "unavailable", "lost", "timeout"]
MAX_RETRY_AFTER_S = 3600.0


@dataclass(frozen=True)
class BrokerReply:
    """The outcome of one broker call.

    status_label: the HTTP status code as text, or "timeout" / "connection_error".
    reached: True when an HTTP answer came back from the broker.
    fill: the broker's fill JSON (``filled`` only). detail: human-readable reason.
    retry_after_s: the broker's ``Retry-After`` (seconds), if it sent one.
    """

    kind: ReplyKind
    status_label: str
    reached: bool
    elapsed_s: float = 0.0
    fill: dict[str, Any] = field(default_factory=dict)
    detail: str = ""
    retry_after_s: float | None = None

    @property
    def healthy(self) -> bool:
        """Whether this counts as a breaker success (and needs no retry)."""
        return self.kind in ("filled", "rejected")

    @property
    def ambiguous(self) -> bool:
        """Whether the order may have been filled although no fill came back."""
        if self.kind in ("lost", "timeout"):
            return True
        return self.kind == "unavailable" and self.status_label.startswith("5")


def parse_retry_after(value: str | None) -> float | None:
    """``Retry-After`` in seconds (0..3600), or None when absent or not delta-seconds."""
    if value is None or not value.strip().isdigit():
        return None
    return min(float(value.strip()), MAX_RETRY_AFTER_S)


def _reason(body: object, status: int) -> str:
    if isinstance(body, dict):
        reason = body.get("reason") or body.get("error")
        if reason:
            return str(reason)
    return f"broker {status}"


def classify(status: int, body: object, retry_after_s: float | None = None) -> BrokerReply:
    """Classify an HTTP answer (``body`` is the decoded JSON, or None)."""
    label = str(status)
    if status == 200:
        if isinstance(body, dict) and isinstance(body.get("fill_price"), int | float):
            return BrokerReply("filled", label, True, fill=body)
        return BrokerReply("lost", label, True, detail="invalid fill from broker")
    if 400 <= status < 500 and status != 429:
        return BrokerReply("rejected", label, True, detail=_reason(body, status))
    detail = f"broker answered {status}" + (f" ({_reason(body, status)})" if body else "")
    return BrokerReply("unavailable", label, True, detail=detail, retry_after_s=retry_after_s)


def _json(answer: Answer) -> object:
    try:
        return json.loads(answer.body)
    except ValueError:
        return None


async def _post(pool: AnswerPool, head: RequestHead, order: Order, timeout_s: float) -> BrokerReply:
    request = head.encode(json.dumps(order.to_json()).encode())
    try:
        answer = await pool.request(request, timeout_s)
    except TimeoutError:
        return BrokerReply("timeout", "timeout", False, detail="no answer in time")
    except NotSent as exc:  # not connected: the order never left
        return BrokerReply("unavailable", "connection_error", False, detail=str(exc))
    except Broken as exc:  # the connection broke once the order was sent
        return BrokerReply("lost", "connection_error", False, detail=str(exc))
    retry_after_s = parse_retry_after(answer.headers.get("retry-after"))
    return classify(answer.status, _json(answer), retry_after_s)


async def place_order(
    pool: AnswerPool, head: RequestHead, order: Order, timeout_s: float
) -> BrokerReply:
    """POST ``order`` through ``pool`` with ``head`` (the broker's /orders) within
    ``timeout_s``, connection included; classify."""
    started = time.perf_counter()
    reply = await _post(pool, head, order, timeout_s)
    return replace(reply, elapsed_s=time.perf_counter() - started)
