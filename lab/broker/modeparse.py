"""Validating admin input into a broker simulator mode (pure).

:func:`parse_mode` takes the decoded body of ``POST /admin/mode`` and returns the mode,
or raises :class:`InvalidMode` with a message naming what is valid. Parameters not
given take the mode's defaults (see :mod:`lab.broker.modes`); a parameter the mode does
not have is refused, so a typo cannot silently run a different experiment.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import fields
from typing import Any

from lab.broker.modes import (
    DuplicateMode,
    ErrorAfterFillMode,
    ErrorMode,
    FlapMode,
    HangMode,
    MaintenanceMode,
    Mode,
    NormalMode,
    RateLimitMode,
    ReplyLostMode,
    SlowMode,
)

__all__ = ["MODES", "InvalidMode", "parse_mode"]

MODES: Mapping[str, type[Mode]] = {
    cls.name: cls
    for cls in (NormalMode, ErrorMode, RateLimitMode, SlowMode, HangMode, FlapMode,
                MaintenanceMode, DuplicateMode, ReplyLostMode, ErrorAfterFillMode)
}
# parameter -> (lowest, highest, must be an integer)
_BOUNDS: Mapping[str, tuple[float, float, bool]] = {
    "status": (400, 599, True),
    "probability": (0.0, 1.0, False),
    "retry_after_s": (0.0, 3600.0, False),
    "latency_ms": (0.0, 600_000.0, False),
    "down_s": (0.01, 86_400.0, False),
    "up_s": (0.01, 86_400.0, False),
}
# (mode, parameter) -> bounds, where a mode narrows the common ones
_MODE_BOUNDS: Mapping[tuple[str, str], tuple[float, float, bool]] = {
    ("error_after_fill", "status"): (500, 599, True),
}


class InvalidMode(ValueError):
    """Admin input that names no known mode or carries bad parameters."""


def _integer(name: str, value: object, low: float, high: float) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidMode(f"{name} must be an integer HTTP error status, {low:g}..{high:g}")
    return value


def _number(name: str, value: object, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidMode(f"{name} must be a number between {low:g} and {high:g}")
    if not math.isfinite(value) or not low <= value <= high:
        raise InvalidMode(f"{name} must be a number between {low:g} and {high:g}")
    return float(value)


def _parameter(mode: str, name: str, value: object) -> int | float:
    low, high, integer = _MODE_BOUNDS.get((mode, name), _BOUNDS[name])
    return _integer(name, value, low, high) if integer else _number(name, value, low, high)


def _parameters(cls: type[Mode], body: Mapping[str, Any]) -> dict[str, Any]:
    known = [field.name for field in fields(cls)]
    values: dict[str, Any] = {}
    for name, value in body.items():
        if name == "mode":
            continue
        if name not in known:
            valid = ", ".join(known) or "none"
            raise InvalidMode(f"{_shown(name)} is not a parameter of mode {cls.name}; "
                              f"valid: {valid}")
        values[name] = _parameter(cls.name, name, value)
    return values


def parse_mode(body: object) -> Mode:
    """Validate an admin body such as ``{"mode": "error", "status": 503}``.

    ``probability`` is accepted (checked, then ignored) by ``normal`` too, so a client
    may send it with every mode.
    """
    valid = ", ".join(MODES)
    if not isinstance(body, dict):
        raise InvalidMode(f"body must be a JSON object with a mode: one of {valid}")
    name = body.get("mode")
    if not isinstance(name, str) or name not in MODES:
        raise InvalidMode(f"unknown mode {_shown(name)}; valid modes: {valid}")
    cls = MODES[name]
    if cls is NormalMode and "probability" in body:
        _parameter(name, "probability", body["probability"])
        body = {key: value for key, value in body.items() if key != "probability"}
    return cls(**_parameters(cls, body))


def _shown(value: object, limit: int = 60) -> str:
    """``repr(value)``, cut to ``limit`` characters so an error stays readable."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
