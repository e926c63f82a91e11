"""`latency`: delay every chunk by `latency` ± `jitter` milliseconds.

Each chunk is released at the time it became available plus its own delay, so chunks
in flight are delayed concurrently (a 100 ms latency adds ~100 ms however many chunks
a response has) and order is kept. A negative latency is none, a jitter <= 0 none
(as in Toxiproxy). Interrupted, it passes the held chunk on at once. Drops nothing.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from lab.faultproxy.faults.base import int_attribute
from lab.faultproxy.stream import Stub

__all__ = ["Latency"]


@dataclass(frozen=True)
class Latency:
    """Settings of a latency fault; times in milliseconds."""

    latency_ms: int = 0
    jitter_ms: int = 0

    @classmethod
    def from_attributes(cls, attributes: Mapping[str, Any]) -> Latency:
        """Build from Toxiproxy attributes `latency` and `jitter` (ms, integers)."""
        return cls(
            latency_ms=int_attribute(attributes, "latency"),
            jitter_ms=int_attribute(attributes, "jitter"),
        )

    def attributes(self) -> dict[str, Any]:
        """Toxiproxy's attribute names and units."""
        return {"latency": self.latency_ms, "jitter": self.jitter_ms}

    def delay_s(self, rng: random.Random) -> float:
        """One delay draw: latency ± jitter, never negative."""
        jitter_ms = rng.uniform(-self.jitter_ms, self.jitter_ms) if self.jitter_ms > 0 else 0.0
        return max(0.0, self.latency_ms + jitter_ms) / 1000.0

    async def pipe(self, stub: Stub) -> None:
        """Release each chunk at its arrival time plus one delay draw."""
        while (chunk := await stub.receive()) is not None:
            due_s = chunk.time_s + self.delay_s(stub.rng)
            await stub.sleep_until(due_s)
            stub.send(replace(chunk, time_s=due_s))
