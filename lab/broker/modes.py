"""Broker simulator modes: how the simulated broker misbehaves, if at all.

A mode is a small frozen dataclass; the simulator holds exactly one and replaces it
atomically (setting a mode clears the previous one). Every mode takes ``probability``
(0..1, default 1): the share of requests it affects; the others are served normally.
Admin JSON (``GET``/``POST /admin/mode``), with the defaults::

    {"mode": "normal"}
    {"mode": "error", "status": 500}                  # answer status 400..599
    {"mode": "rate_limit", "retry_after_s": 1}         # 429 + Retry-After, at once
    {"mode": "slow", "latency_ms": 1000}               # added to the normal latency
    {"mode": "reply_lost"}                             # fill, then drop the connection
    {"mode": "error_after_fill", "status": 500}        # fill, then answer status 500..599
    {"mode": "hang"}                                   # accept, never answer
    {"mode": "flap", "down_s": 5, "up_s": 5, "status": 503}  # down first, then up, ...
    {"mode": "maintenance", "retry_after_s": 60}       # 503 + Retry-After on everything
    {"mode": "duplicate"}                              # a bug: repeated ids fill again

``maintenance`` covers every route of the order API but ``/metrics``; the others affect
``POST /orders`` only. ``duplicate`` is sabotage for testing reconciliation: the broker
forgets idempotency and books a second fill for a client order id it has seen.

``reply_lost`` and ``error_after_fill`` are the ambiguous outcomes: the broker books the
fill (idempotently: a repeated client order id replays its fill, as in normal mode) and
then the client learns nothing of it — the connection is dropped unanswered (a reset /
server disconnect, no HTTP answer) or it gets an error. A client that retries with the
same client order id gets the fill back; one that does not, or a broker without
idempotency, ends with an order the client thinks failed but is filled, or filled twice.
A ``slow`` order that outlasts the client's timeout is the third such case: the broker
keeps processing it after the client has gone and books it once the delay is over.

Every order a mode other than ``normal`` actually affects (not one the ``probability``
roll left alone, nor a flap's up phase, nor a rejected order under a mode that fills
first) is one hit of ``broker_sim_mode_hits_total{mode}`` (see :mod:`lab.broker.app`).
:func:`decide` is the pure per-order decision; parsing admin input is in
:mod:`lab.broker.modeparse`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, ClassVar

__all__ = [
    "DuplicateMode",
    "ErrorAfterFillMode",
    "ErrorMode",
    "FlapMode",
    "HangMode",
    "MaintenanceMode",
    "Mode",
    "NormalMode",
    "RateLimitMode",
    "ReplyLostMode",
    "SlowMode",
    "Verdict",
    "decide",
    "maintenance_verdict",
]


@dataclass(frozen=True)
class Verdict:
    """What happens to one order.

    latency: whether the normal latency applies (errors answered "at once" skip it).
    added_latency_ms: delay on top of it. error_status / error: the answer instead of a
    fill (None = fill). retry_after_s: sent as ``Retry-After``. hang: never answer.
    duplicate: book a new fill even if the client order id has one.
    book_first: book the fill (idempotently) before answering ``error_status`` or, with
    drop_reply, before dropping the connection unanswered.
    """

    latency: bool = True
    added_latency_ms: float = 0.0
    error_status: int | None = None
    error: str = ""
    retry_after_s: float | None = None
    hang: bool = False
    duplicate: bool = False
    book_first: bool = False
    drop_reply: bool = False


class _ModeJson:
    name: ClassVar[str] = ""

    def to_json(self) -> dict[str, Any]:
        """``{"mode": name, **parameters}``: what ``GET /admin/mode`` shows."""
        return {"mode": self.name, **vars(self)}

    def verdict(self, elapsed_s: float) -> Verdict:
        """The fate of an order this mode affects, ``elapsed_s`` after it was set."""
        return Verdict()


@dataclass(frozen=True)
class NormalMode(_ModeJson):
    """Fill every order."""

    name = "normal"


@dataclass(frozen=True)
class ErrorMode(_ModeJson):
    """Answer HTTP ``status`` with ``{"error": "broker_error"}`` after the normal latency."""

    name = "error"
    status: int = 500
    probability: float = 1.0

    def verdict(self, elapsed_s: float) -> Verdict:
        """See :meth:`_ModeJson.verdict`."""
        return Verdict(error_status=self.status, error="broker_error")


@dataclass(frozen=True)
class RateLimitMode(_ModeJson):
    """Answer 429 ``{"error": "rate_limited"}`` at once, with ``Retry-After``."""

    name = "rate_limit"
    retry_after_s: float = 1.0
    probability: float = 1.0

    def verdict(self, elapsed_s: float) -> Verdict:
        """See :meth:`_ModeJson.verdict`."""
        return Verdict(latency=False, error_status=429, error="rate_limited",
                       retry_after_s=self.retry_after_s)


@dataclass(frozen=True)
class SlowMode(_ModeJson):
    """Add ``latency_ms`` to the order's normal latency.

    The order is processed apart from its request: when the client gives up first (a
    ``latency_ms`` beyond its timeout), the broker still books the fill once the delay
    is over — a fill the client was never told about.
    """

    name = "slow"
    latency_ms: float = 1000.0
    probability: float = 1.0

    def verdict(self, elapsed_s: float) -> Verdict:
        """See :meth:`_ModeJson.verdict`."""
        return Verdict(added_latency_ms=self.latency_ms)


@dataclass(frozen=True)
class HangMode(_ModeJson):
    """Accept the order and never answer (until the client goes away)."""

    name = "hang"
    probability: float = 1.0

    def verdict(self, elapsed_s: float) -> Verdict:
        """See :meth:`_ModeJson.verdict`."""
        return Verdict(latency=False, hang=True)


@dataclass(frozen=True)
class FlapMode(_ModeJson):
    """Alternate ``down_s`` seconds down (answer ``status`` at once) and ``up_s`` up,
    starting down when the mode is set."""

    name = "flap"
    down_s: float = 5.0
    up_s: float = 5.0
    status: int = 503
    probability: float = 1.0

    def verdict(self, elapsed_s: float) -> Verdict:
        """See :meth:`_ModeJson.verdict`."""
        if elapsed_s % (self.down_s + self.up_s) >= self.down_s:
            return Verdict()
        return Verdict(latency=False, error_status=self.status, error="broker_down")


@dataclass(frozen=True)
class MaintenanceMode(_ModeJson):
    """Answer 503 ``{"error": "maintenance"}`` with ``Retry-After`` on every route."""

    name = "maintenance"
    retry_after_s: float = 60.0
    probability: float = 1.0

    def verdict(self, elapsed_s: float) -> Verdict:
        """See :meth:`_ModeJson.verdict`."""
        return Verdict(latency=False, error_status=503, error="maintenance",
                       retry_after_s=self.retry_after_s)


@dataclass(frozen=True)
class DuplicateMode(_ModeJson):
    """Book a new fill even for a client order id that already has one (a broker bug)."""

    name = "duplicate"
    probability: float = 1.0

    def verdict(self, elapsed_s: float) -> Verdict:
        """See :meth:`_ModeJson.verdict`."""
        return Verdict(duplicate=True)


@dataclass(frozen=True)
class ReplyLostMode(_ModeJson):
    """Book the fill as a normal order would, then drop the connection unanswered."""

    name = "reply_lost"
    probability: float = 1.0

    def verdict(self, elapsed_s: float) -> Verdict:
        """See :meth:`_ModeJson.verdict`."""
        return Verdict(book_first=True, drop_reply=True)


@dataclass(frozen=True)
class ErrorAfterFillMode(_ModeJson):
    """Book the fill as a normal order would, then answer HTTP ``status`` (500..599) with
    ``{"error": "broker_error"}`` instead of it."""

    name = "error_after_fill"
    status: int = 500
    probability: float = 1.0

    def verdict(self, elapsed_s: float) -> Verdict:
        """See :meth:`_ModeJson.verdict`."""
        return Verdict(error_status=self.status, error="broker_error", book_first=True)


Mode = (
    NormalMode | ErrorMode | RateLimitMode | SlowMode | HangMode | FlapMode
    | MaintenanceMode | DuplicateMode | ReplyLostMode | ErrorAfterFillMode
)


def decide(mode: Mode, rng: random.Random, elapsed_s: float = 0.0) -> Verdict:
    """The fate of one order under ``mode``, set ``elapsed_s`` seconds ago.

    ``maintenance`` is not decided here (see :func:`maintenance_verdict`).
    """
    if isinstance(mode, NormalMode | MaintenanceMode) or rng.random() >= mode.probability:
        return Verdict()
    return mode.verdict(elapsed_s)


def maintenance_verdict(mode: Mode, rng: random.Random) -> Verdict | None:
    """The 503 answer for any order-API request under ``maintenance``, else None."""
    if not isinstance(mode, MaintenanceMode) or rng.random() >= mode.probability:
        return None
    return mode.verdict(0.0)
