"""`slicer`: slice data into small pieces, optionally `delay` microseconds apart.

Each chunk is cut in about half, again and again, until every piece is at most
`average_size + size_variation` bytes; each cut is moved by a random amount in
[-size_variation, size_variation), so pieces vary evenly around `average_size`
(the scheme Toxiproxy uses). Pieces are passed on one by one, with `delay` µs
after each. Interrupted, it passes on the rest of the chunk at once. Drops nothing.

Like Toxiproxy it accepts any integers. Where Toxiproxy's server would crash on
traffic (an `average_size` below 1 recurses without end; a `size_variation` of half a
chunk or more can move a cut outside it), pieces here are at least 1 byte: a cut
never leaves the chunk, and an `average_size` below 1 acts as 1. A negative
`size_variation` or `delay` acts as 0.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from lab.faultproxy.faults.base import int_attribute
from lab.faultproxy.stream import Chunk, Stub

__all__ = ["Slicer"]


@dataclass(frozen=True)
class Slicer:
    """Settings of a slicer fault; sizes in bytes, delay in microseconds."""

    average_size_bytes: int = 1
    size_variation_bytes: int = 0
    delay_us: int = 0

    @classmethod
    def from_attributes(cls, attributes: Mapping[str, Any]) -> Slicer:
        """Build from Toxiproxy attributes `average_size` and `size_variation` (bytes)
        and `delay` (µs), integers (see the module for what odd ones do)."""
        return cls(int_attribute(attributes, "average_size"),
                   int_attribute(attributes, "size_variation"),
                   int_attribute(attributes, "delay"))

    def attributes(self) -> dict[str, Any]:
        """Toxiproxy's attribute names and units."""
        return {
            "average_size": self.average_size_bytes,
            "size_variation": self.size_variation_bytes,
            "delay": self.delay_us,
        }

    def sizes(self, total_bytes: int, rng: random.Random) -> list[int]:
        """Piece sizes for a chunk of `total_bytes`, in order; each at least 1 byte,
        they add up to it."""
        average = max(1, self.average_size_bytes)
        variation = max(0, self.size_variation_bytes)
        if total_bytes - average <= variation:
            return [total_bytes]
        half = total_bytes // 2
        if variation:
            half += rng.randrange(-variation, variation)
        half = min(max(half, 1), total_bytes - 1)
        return self.sizes(half, rng) + self.sizes(total_bytes - half, rng)

    async def pipe(self, stub: Stub) -> None:
        """Pass each chunk on as pieces, waiting `delay` after each."""
        while (chunk := await stub.receive()) is not None:
            for size in self.sizes(len(chunk.data), stub.rng):
                chunk = await self._send_piece(stub, chunk, size)

    async def _send_piece(self, stub: Stub, chunk: Chunk, size_bytes: int) -> Chunk:
        """Send the first `size_bytes` of `chunk`, hold the rest, wait; the rest."""
        piece, rest = chunk.split(size_bytes)
        stub.send(replace(piece, time_s=stub.now_s()))
        if rest.data:
            stub.hold(rest)
        await stub.sleep(self.delay_us / 1_000_000)
        return rest
