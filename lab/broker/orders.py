"""The order wire format, shared by the broker API and the service API, and fills.

An order is the JSON object ``{"client_order_id": str, "instrument": str,
"units": int, "price": float}``; units are non-zero (negative = sell), price is
positive. :func:`parse_order` validates the wire format (a bad order is a ``400``);
:func:`rejection_reason` is the broker's business check (a rejected order is a ``422``);
:func:`fill_price` simulates slippage. Pure functions only: randomness comes in as a
``random.Random``.
"""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

__all__ = [
    "Fill",
    "InvalidOrder",
    "Order",
    "fill_price",
    "is_unicode_text",
    "iso_time",
    "parse_order",
    "pip_size",
    "rejection_reason",
    "sample_latency_ms",
    "slippage_pips",
]

MAX_TEXT_CHARS = 128
MAX_SLIPPAGE_PIPS = 2.0
MAX_UNITS = 10_000_000
LATENCY_SIGMA = 0.6
LATENCY_CAP_FACTOR = 10.0
INSTRUMENT = re.compile(r"^[A-Z]{3}_[A-Z]{3}$")


class InvalidOrder(ValueError):
    """An order body that breaks the wire format; ``field`` names the culprit."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field

    def to_json(self) -> dict[str, Any]:
        """The 400 answer body: ``{"error": message, "field": name-or-null}``."""
        return {"error": str(self), "field": self.field}


@dataclass(frozen=True)
class Order:
    """A validated order."""

    client_order_id: str
    instrument: str
    units: int
    price: float

    def to_json(self) -> dict[str, Any]:
        """The order as its wire JSON object."""
        return {
            "client_order_id": self.client_order_id,
            "instrument": self.instrument,
            "units": self.units,
            "price": self.price,
        }


@dataclass(frozen=True)
class Fill:
    """A filled order, as the broker reports it; ``filled_at_s`` is unix seconds."""

    fill_id: str
    order: Order
    fill_price: float
    filled_at_s: float

    def to_json(self) -> dict[str, Any]:
        """``{"fill_id", "client_order_id", "instrument", "units", "fill_price", "filled_at"}``."""
        return {
            "fill_id": self.fill_id,
            "client_order_id": self.order.client_order_id,
            "instrument": self.order.instrument,
            "units": self.order.units,
            "fill_price": self.fill_price,
            "filled_at": iso_time(self.filled_at_s),
        }


def parse_order(body: object) -> Order:
    """Validate a decoded JSON body; raise :class:`InvalidOrder` naming the bad field."""
    if not isinstance(body, dict):
        raise InvalidOrder("body must be a JSON object")
    return Order(
        client_order_id=_text(body, "client_order_id"),
        instrument=_text(body, "instrument"),
        units=_units(body),
        price=_price(body),
    )


def _field(body: dict[str, Any], name: str) -> object:
    if name not in body:
        raise InvalidOrder(f"missing field: {name}", name)
    return body[name]


def _text(body: dict[str, Any], name: str) -> str:
    value = _field(body, name)
    if not isinstance(value, str) or not 0 < len(value) <= MAX_TEXT_CHARS:
        raise InvalidOrder(f"{name} must be a string of 1..{MAX_TEXT_CHARS} chars", name)
    if not is_unicode_text(value):
        raise InvalidOrder(f"{name} must be valid Unicode (no lone surrogates)", name)
    return value


def is_unicode_text(value: str) -> bool:
    """False for a string that cannot be stored or sent as UTF-8: JSON's ``"\\ud800"``
    escapes decode to such lone surrogates."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _units(body: dict[str, Any]) -> int:
    value = _field(body, "units")
    if isinstance(value, bool) or not isinstance(value, int) or value == 0:
        raise InvalidOrder("units must be a non-zero integer (negative = sell)", "units")
    return value


def _price(body: dict[str, Any]) -> float:
    value = _field(body, "price")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidOrder("price must be a positive number", "price")
    price = float(value)
    if not math.isfinite(price) or price <= 0:
        raise InvalidOrder("price must be a positive number", "price")
    return price


def pip_size(instrument: str) -> float:
    """Price step of one pip: 0.01 for JPY-quoted pairs, else 0.0001."""
    return 0.01 if instrument.upper().endswith("JPY") else 0.0001


def slippage_pips(instrument: str, price: float, fill_price: float) -> float:
    """Fill price minus requested price, in pips (signed)."""
    return (fill_price - price) / pip_size(instrument)


def rejection_reason(order: Order) -> str | None:
    """Why the broker refuses a well-formed ``order``, or None when it takes it.

    ``unknown_instrument``: the instrument is not a pair like ``EUR_USD``;
    ``units_limit_exceeded``: more than 10,000,000 units either way.
    """
    if not INSTRUMENT.match(order.instrument):
        return "unknown_instrument"
    if abs(order.units) > MAX_UNITS:
        return "units_limit_exceeded"
    return None


def fill_price(order: Order, rng: random.Random) -> float:
    """The price ``order`` fills at: its price plus up to ±2 pips of random slippage."""
    pips = max(-MAX_SLIPPAGE_PIPS, min(MAX_SLIPPAGE_PIPS, rng.gauss(0.0, 0.5)))
    step = pip_size(order.instrument)
    decimals = round(-math.log10(step)) + 1
    return round(order.price + round(pips, 1) * step, decimals)


def iso_time(unix_s: float) -> str:
    """Unix seconds as ISO 8601 UTC with milliseconds, e.g. ``2024-05-01T12:00:00.123+00:00``."""
    return datetime.fromtimestamp(unix_s, UTC).isoformat(timespec="milliseconds")


def sample_latency_ms(
    rng: random.Random, median_ms: float, sigma: float = LATENCY_SIGMA
) -> float:
    """A log-normal latency with the given median and ``sigma`` (the tail's weight), kept
    within [median/5, 10 x median]: for a 20 ms median and the default sigma 0.6,
    p95 ~54 ms, p99 ~81 ms, max 200 ms."""
    if median_ms <= 0:
        return 0.0
    sample = median_ms * math.exp(rng.gauss(0.0, sigma))
    return max(median_ms / 5, min(median_ms * LATENCY_CAP_FACTOR, sample))
