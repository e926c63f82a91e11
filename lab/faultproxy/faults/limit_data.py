"""`limit_data`: close the connection once `bytes` bytes have passed in the direction.

Counting starts when the toxic is added to a connection and goes on across updates
(so raising the limit lets more through). Data passes untouched up to the limit; a
chunk that crosses it is cut there and the rest dropped; the connection is then
closed, after exactly `bytes` bytes. With `bytes` 0 it closes when data first
arrives. The peer's own close is passed on as usual. Drops what is past the limit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lab.faultproxy.faults.base import int_attribute
from lab.faultproxy.stream import Stub

__all__ = ["LimitData"]


@dataclass(frozen=True)
class LimitData:
    """Settings of a limit_data fault."""

    limit_bytes: int = 0

    @classmethod
    def from_attributes(cls, attributes: Mapping[str, Any]) -> LimitData:
        """Build from the Toxiproxy attribute `bytes` (an integer; a negative one
        acts as 0, as in Toxiproxy)."""
        return cls(limit_bytes=int_attribute(attributes, "bytes"))

    def attributes(self) -> dict[str, Any]:
        """Toxiproxy's attribute names and units."""
        return {"bytes": self.limit_bytes}

    async def pipe(self, stub: Stub) -> None:
        """Pass chunks on up to the limit, then close."""
        while (chunk := await stub.receive()) is not None:
            room_bytes = max(0, self.limit_bytes - stub.sent_bytes)
            if len(chunk.data) > room_bytes:
                chunk, rest = chunk.split(room_bytes)
                stub.drop(rest)
                stub.hold(chunk)
            if chunk.data:
                stub.send(chunk)
            if stub.sent_bytes >= self.limit_bytes:
                stub.close()
                return
