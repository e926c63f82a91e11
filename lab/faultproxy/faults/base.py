"""The interface every fault implements (the contract is in `lab.faultproxy`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from lab.faultproxy.stream import Stub

__all__ = ["Fault", "FaultError", "FaultFactory", "int_attribute"]


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


def int_attribute(attributes: Mapping[str, Any], name: str, minimum: int = 0) -> int:
    """An integer attribute (0 when absent, like Toxiproxy), at least `minimum`."""
    value = attributes.get(name, 0)
    if isinstance(value, bool) or not isinstance(value, int):
        raise FaultError(f"attribute {name!r} must be an integer, got {value!r}")
    if value < minimum:
        raise FaultError(f"attribute {name!r} must be >= {minimum}, got {value}")
    return value
