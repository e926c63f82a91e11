"""Broker simulator modes: how the simulated broker misbehaves, if at all.

A mode is a small frozen dataclass; the app holds exactly one and replaces it
atomically. Admin JSON (``GET``/``POST /admin/mode``)::

    {"mode": "normal"}
    {"mode": "error", "status": 500, "probability": 1.0}   # status 400..599, p in 0..1
    {"mode": "slow", "latency_ms": 1500}                    # added to every order

Modes are registered in :data:`PARSERS`; :func:`parse_mode` validates admin input
and raises :class:`InvalidMode` (message lists what is valid).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "PARSERS",
    "ErrorMode",
    "InvalidMode",
    "Mode",
    "NormalMode",
    "SlowMode",
    "Verdict",
    "decide",
    "parse_mode",
]

MAX_ADDED_LATENCY_MS = 600_000.0


class InvalidMode(ValueError):
    """Admin input that names no known mode or carries bad parameters."""


@dataclass(frozen=True)
class NormalMode:
    """Fill every order."""

    def to_json(self) -> dict[str, Any]:
        """``{"mode": "normal"}``."""
        return {"mode": "normal"}


@dataclass(frozen=True)
class ErrorMode:
    """Answer an order with HTTP ``status`` and ``{"error": "broker_error"}``, with
    ``probability`` (0..1) per order; the other orders fill normally."""

    status: int = 500
    probability: float = 1.0

    def to_json(self) -> dict[str, Any]:
        """``{"mode": "error", "status": int, "probability": float}``."""
        return {"mode": "error", "status": self.status, "probability": self.probability}


@dataclass(frozen=True)
class SlowMode:
    """Add ``latency_ms`` to every order's normal latency."""

    latency_ms: float = 1000.0

    def to_json(self) -> dict[str, Any]:
        """``{"mode": "slow", "latency_ms": float}``."""
        return {"mode": "slow", "latency_ms": self.latency_ms}


Mode = NormalMode | ErrorMode | SlowMode


@dataclass(frozen=True)
class Verdict:
    """What happens to one order: extra delay, then an error status or a fill."""

    added_latency_ms: float = 0.0
    error_status: int | None = None


def decide(mode: Mode, rng: random.Random) -> Verdict:
    """The fate of one order under ``mode``."""
    if isinstance(mode, SlowMode):
        return Verdict(added_latency_ms=mode.latency_ms)
    if isinstance(mode, ErrorMode) and rng.random() < mode.probability:
        return Verdict(error_status=mode.status)
    return Verdict()


def _number(body: Mapping[str, Any], name: str, default: float) -> float:
    value = body.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidMode(f"{name} must be a number")
    if not math.isfinite(value):
        raise InvalidMode(f"{name} must be finite")
    return float(value)


def _parse_normal(body: Mapping[str, Any]) -> Mode:
    return NormalMode()


def _parse_error(body: Mapping[str, Any]) -> Mode:
    status = body.get("status", 500)
    if isinstance(status, bool) or not isinstance(status, int) or not 400 <= status <= 599:
        raise InvalidMode("status must be an integer HTTP error status, 400..599")
    probability = _number(body, "probability", 1.0)
    if not 0.0 <= probability <= 1.0:
        raise InvalidMode("probability must be between 0 and 1")
    return ErrorMode(status=status, probability=probability)


def _parse_slow(body: Mapping[str, Any]) -> Mode:
    latency_ms = _number(body, "latency_ms", 1000.0)
    if not 0.0 <= latency_ms <= MAX_ADDED_LATENCY_MS:
        raise InvalidMode(f"latency_ms must be between 0 and {MAX_ADDED_LATENCY_MS:g}")
    return SlowMode(latency_ms=latency_ms)


PARSERS: Mapping[str, Callable[[Mapping[str, Any]], Mode]] = {
    "normal": _parse_normal,
    "error": _parse_error,
    "slow": _parse_slow,
}


def parse_mode(body: object) -> Mode:
    """Validate an admin body such as ``{"mode": "error", "status": 503}``."""
    valid = ", ".join(PARSERS)
    if not isinstance(body, dict):
        raise InvalidMode(f"body must be a JSON object with a mode: one of {valid}")
    name = body.get("mode")
    if not isinstance(name, str) or name not in PARSERS:
        raise InvalidMode(f"unknown mode {name!r}; valid modes: {valid}")
    return PARSERS[name](body)
