"""`timeout`: stop all data, and close the connection after `timeout` milliseconds.

Every chunk is dropped. The connection is closed once `timeout` ms pass with no
data arriving in the direction (each dropped chunk starts the wait again, as in
Toxiproxy), or as soon as the stream ends. With `timeout` 0 (or negative, as in
Toxiproxy) the connection is never closed by the toxic: it hangs, dropping data,
until the toxic is removed.

The dropped data leaves the stream damaged, so removing the toxic closes every
connection it applied to (Toxiproxy does the same); an update keeps them open and
starts the wait again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lab.faultproxy.faults.base import int_attribute
from lab.faultproxy.stream import Stub

__all__ = ["Timeout"]


@dataclass(frozen=True)
class Timeout:
    """Settings of a timeout fault."""

    timeout_ms: int = 0
    """Idle time before the connection is closed; 0 never closes it."""

    @classmethod
    def from_attributes(cls, attributes: Mapping[str, Any]) -> Timeout:
        """Build from the Toxiproxy attribute `timeout` (ms, an integer)."""
        return cls(timeout_ms=int_attribute(attributes, "timeout"))

    def attributes(self) -> dict[str, Any]:
        """Toxiproxy's attribute names and units."""
        return {"timeout": self.timeout_ms}

    async def pipe(self, stub: Stub) -> None:
        """Drop chunks; close on the end of the stream or after `timeout` idle."""
        stub.close_when_removed = True
        wait_s = self.timeout_ms / 1000 if self.timeout_ms > 0 else None
        while True:
            try:
                async with asyncio.timeout(wait_s):
                    chunk = await stub.receive()
            except TimeoutError:
                break
            if chunk is None:
                break
            stub.drop()
        stub.close()
