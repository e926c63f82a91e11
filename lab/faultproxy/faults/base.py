"""The interface every fault implements (the contract is in `lab.faultproxy`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from lab.faultproxy.stream import Stub

__all__ = ["MAX_INT", "MIN_INT", "Fault", "FaultError", "FaultFactory", "int_attribute"]

MAX_INT = 2**63 - 1
"""Largest attribute value (Toxiproxy's attributes are Go int64)."""
MIN_INT = -(2**63)
"""Smallest attribute value: Toxiproxy accepts negative ones (each fault says what it
does with them; none is refused)."""


class FaultError(ValueError):
    """Invalid fault attributes; the message names the attribute."""


class Fault(Protocol):
    """One kind of damage applied to one direction of every connection of a proxy."""

    def attributes(self) -> dict[str, Any]:
        """The settings as Toxiproxy's `attributes` JSON object."""
        ...

    async def pipe(self, stub: Stub) -> None:
        """Move chunks from `stub.receive()` to `stub.send()` until end of stream."""
        ...


FaultFactory = Callable[[Mapping[str, Any]], Fault]
"""Builds a fault from Toxiproxy `attributes`; raises FaultError when invalid."""


def int_attribute(
    attributes: Mapping[str, Any], name: str, minimum: int = MIN_INT, maximum: int = MAX_INT
) -> int:
    """An integer attribute, 0 when absent or null (like Toxiproxy), from `minimum` to
    `maximum`. Attribute names a fault does not have are ignored, as Toxiproxy does."""
    value = attributes.get(name)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int):
        raise FaultError(f"attribute {name!r} must be an integer, got {value!r}")
    if not minimum <= value <= maximum:
        raise FaultError(f"attribute {name!r} must be from {minimum} to {maximum}, got {value}")
    return value
