"""Toxics: a named fault applied to one stream of a proxy, as Toxiproxy models them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lab.faultproxy.faults import Fault

__all__ = ["STREAMS", "Toxic", "ToxicSet"]

STREAMS = ("upstream", "downstream")
"""upstream: client -> upstream server; downstream: upstream server -> client."""


@dataclass(frozen=True)
class Toxic:
    """A fault with Toxiproxy's wrapper fields.

    stream: ``upstream`` or ``downstream``, in the case the client wrote it.
    toxicity: probability that the fault applies to a given connection (Toxiproxy
        takes any number: 1 or more is always, 0 or less never).
    """

    name: str
    type: str
    stream: str
    toxicity: float
    fault: Fault

    @property
    def direction(self) -> str:
        """The stream in lower case: ``upstream`` or ``downstream``."""
        return self.stream.lower()

    def to_json(self) -> dict[str, Any]:
        """Toxiproxy's toxic JSON object."""
        return {
            "name": self.name,
            "type": self.type,
            "stream": self.stream,
            "toxicity": self.toxicity,
            "attributes": self.fault.attributes(),
        }


class ToxicSet:
    """A proxy's toxics, in the order they were added, upstream stream first."""

    def __init__(self) -> None:
        self._toxics: dict[str, Toxic] = {}

    def __contains__(self, name: str) -> bool:
        return name in self._toxics

    def __len__(self) -> int:
        return len(self._toxics)

    def get(self, name: str) -> Toxic | None:
        """The toxic called `name`, if any."""
        return self._toxics.get(name)

    def put(self, toxic: Toxic) -> None:
        """Add a toxic, or replace the one with the same name in place."""
        self._toxics[toxic.name] = toxic

    def pop(self, name: str) -> Toxic:
        """Remove and return a toxic (KeyError when absent)."""
        return self._toxics.pop(name)

    def ordered(self) -> list[Toxic]:
        """All toxics as Toxiproxy lists them: upstream chain, then downstream chain."""
        return [t for stream in STREAMS for t in self._toxics.values() if t.direction == stream]

    def chain(self, stream: str) -> list[Toxic]:
        """The toxics of one stream, in chain order."""
        return [t for t in self._toxics.values() if t.direction == stream]
