"""`bandwidth`: limit a direction to `rate` kilobytes (1000 bytes) per second.

The direction behaves like a wire of that rate: each chunk is released once its last
byte would have crossed it, and a chunk longer than 100 ms of wire time is released
in 100 ms pieces as it crosses (as Toxiproxy does). Idle time earns no credit. A rate
of 0 passes nothing: the stream stalls, and data waits, until the toxic is changed or
removed; so does a negative rate (Toxiproxy accepts one, and its server then panics
on the first chunk). Interrupted, it passes on the rest of the chunk at once. Drops
nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from lab.faultproxy.faults.base import int_attribute
from lab.faultproxy.stream import Chunk, Stub

__all__ = ["Bandwidth"]

_PIECE_S = 0.1
"""Wire time of the largest piece released at once."""


@dataclass(frozen=True)
class Bandwidth:
    """Settings of a bandwidth fault."""

    rate_kbps: int = 0
    """Kilobytes (1000 bytes) per second; 0 stalls the stream."""

    @classmethod
    def from_attributes(cls, attributes: Mapping[str, Any]) -> Bandwidth:
        """Build from the Toxiproxy attribute `rate` (KB/s, an integer)."""
        return cls(rate_kbps=int_attribute(attributes, "rate"))

    def attributes(self) -> dict[str, Any]:
        """Toxiproxy's attribute names and units."""
        return {"rate": self.rate_kbps}

    async def pipe(self, stub: Stub) -> None:
        """Release chunks at the rate; hold the first one forever at a rate <= 0."""
        if self.rate_kbps <= 0:
            if await stub.receive() is not None:
                await stub.stall()
            return
        wire_free_s = stub.now_s()
        while (chunk := await stub.receive()) is not None:
            wire_free_s = await self._transmit(stub, chunk, max(chunk.time_s, wire_free_s))

    async def _transmit(self, stub: Stub, chunk: Chunk, start_s: float) -> float:
        """Send `chunk` as it crosses a wire free from `start_s`; when the wire is free again."""
        bytes_per_s = self.rate_kbps * 1000
        piece_bytes = max(1, int(bytes_per_s * _PIECE_S))
        while len(chunk.data) > piece_bytes:
            start_s += piece_bytes / bytes_per_s
            await stub.sleep_until(start_s)
            head, chunk = chunk.split(piece_bytes)
            stub.send(replace(head, time_s=start_s))
            stub.hold(chunk)
        done_s = start_s + len(chunk.data) / bytes_per_s
        await stub.sleep_until(done_s)
        stub.send(replace(chunk, time_s=done_s))
        return done_s
