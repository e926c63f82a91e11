"""Targets: where experiments act and measure. One interface, one module per target.

``GAMEDAY_TARGET`` (default ``lab``) chooses the target; experiments never name one.
"""

from __future__ import annotations

import os
from typing import Protocol

from gameday.errors import ConfigError
from gameday.targets.lab import LabTarget

__all__ = ["TARGET_NAMES", "Target", "get_target"]

TARGET_NAMES = ("lab", "kubernetes")


class Target(Protocol):
    """What probes and actions need from the system under test."""

    def kill_pods(self, selector: str, qty: int) -> list[str]:
        """Kill ``qty`` replicas matching ``selector``; return their names."""

    def ready_replicas(self, selector: str) -> int:
        """Number of replicas matching ``selector`` that are running and healthy."""

    def partition(self, link: str) -> None:
        """Cut a named link (e.g. ``service-broker``)."""

    def heal(self, link: str) -> None:
        """Restore a named link; idempotent."""

    def fault_proxy_url(self) -> str:
        """Base URL of the Toxiproxy-compatible API on the broker link."""

    def prometheus_url(self) -> str:
        """Base URL of the Prometheus that scrapes the service."""

    def broker_admin_url(self) -> str:
        """Base URL of the broker simulator's admin API."""

    def entry_url(self) -> str:
        """Base URL clients (and the load generator) call."""

    def leftovers(self) -> list[str]:
        """Every fault still injected, in words; empty when the target is clean."""


def get_target(name: str | None = None) -> Target:
    """The target called ``name``, or the one ``GAMEDAY_TARGET`` names (default ``lab``)."""
    chosen = name or os.environ.get("GAMEDAY_TARGET", "lab")
    if chosen == "lab":
        return LabTarget.from_env()
    if chosen == "kubernetes":
        raise ConfigError(
            "the kubernetes target is not available in this version of gameday; "
            "use GAMEDAY_TARGET=lab"
        )
    raise ConfigError(f"unknown target {chosen!r}: valid targets are {', '.join(TARGET_NAMES)}")
