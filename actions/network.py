"""Network faults on named links: cut a link, and heal it (the idempotent undo).

Links are named after what they join; the broker link is ``service-broker``. On the
lab a link is a proxy of the fault proxy (Toxiproxy API): ``partition`` disables it —
new connections are refused and open ones closed.
"""

from __future__ import annotations

from typing import Any

from gameday.targets import get_target

__all__ = ["heal", "partition"]


def partition(link: str = "service-broker") -> dict[str, Any]:
    """Take ``link`` down. Undo with ``heal(link)``. Returns what was injected."""
    get_target().partition(link)
    return {"link": link, "state": "down"}


def heal(link: str = "service-broker") -> dict[str, Any]:
    """Bring ``link`` back up; safe to call when it is already up (rollback)."""
    get_target().heal(link)
    return {"link": link, "state": "up"}
