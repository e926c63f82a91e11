"""`reset_peer`: reset the connection (TCP RST) `timeout` ms after data first arrives.

The first chunk (or end of stream) to arrive in the direction starts the wait; it
and everything after it are held back, and when the wait is over both sockets are
aborted with an RST: the client and the upstream see "connection reset by peer".
With `timeout` 0 the reset is immediate. Removed before the wait is over, nothing
happens: the held data is passed on. Drops the held data when it resets.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lab.faultproxy.faults.base import int_attribute
from lab.faultproxy.stream import Stub

__all__ = ["ResetPeer"]


@dataclass(frozen=True)
class ResetPeer:
    """Settings of a reset_peer fault."""

    timeout_ms: int = 0
    """Delay between the first data and the reset."""

    @classmethod
    def from_attributes(cls, attributes: Mapping[str, Any]) -> ResetPeer:
        """Build from the Toxiproxy attribute `timeout` (ms, an integer; a negative one
        acts as 0, as in Toxiproxy)."""
        return cls(timeout_ms=int_attribute(attributes, "timeout"))

    def attributes(self) -> dict[str, Any]:
        """Toxiproxy's attribute names and units."""
        return {"timeout": self.timeout_ms}

    async def pipe(self, stub: Stub) -> None:
        """Wait for data, hold it for `timeout`, then reset."""
        await stub.receive()
        await stub.sleep(self.timeout_ms / 1000)
        stub.reset()
