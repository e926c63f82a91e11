"""`slow_close`: delay the end of a direction by `delay` milliseconds.

Data passes untouched; when the stream ends (the peer closed, or a fault before
this one closed or reset the connection) the end is passed on `delay` ms later, so
the other side sees the close late. Interrupted while waiting, the end is handed
back: to the toxic's new settings on an update (which wait their own delay), or
on at once on removal. Drops nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lab.faultproxy.faults.base import int_attribute
from lab.faultproxy.stream import Stub

__all__ = ["SlowClose"]


@dataclass(frozen=True)
class SlowClose:
    """Settings of a slow_close fault."""

    delay_ms: int = 0

    @classmethod
    def from_attributes(cls, attributes: Mapping[str, Any]) -> SlowClose:
        """Build from the Toxiproxy attribute `delay` (ms, an integer; a negative one
        acts as 0, as in Toxiproxy)."""
        return cls(delay_ms=int_attribute(attributes, "delay"))

    def attributes(self) -> dict[str, Any]:
        """Toxiproxy's attribute names and units."""
        return {"delay": self.delay_ms}

    async def pipe(self, stub: Stub) -> None:
        """Pass chunks on; at the end, wait `delay` before passing the end on."""
        while (chunk := await stub.receive()) is not None:
            stub.send(chunk)
        await stub.sleep(self.delay_ms / 1000)
