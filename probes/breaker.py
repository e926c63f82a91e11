"""Circuit-breaker probes: state of every replica, and whether it tripped or recovered in time.

States are read from the target's Prometheus (``broker_circuit_breaker_state``), so they
lag the service by up to one scrape interval; times come from the exact transition
timestamps the service exports.
"""

from __future__ import annotations

import time
from typing import Any

from gameday.breaker import SCRAPE_SLACK_S, BreakerView, all_in, changed_within
from gameday.errors import ConfigError
from gameday.prometheus import Prometheus
from gameday.sla import DEFAULT_SELECTOR
from gameday.targets import get_target

__all__ = ["all_closed", "closed_within", "opened_within", "states"]


def _view(configuration: dict[str, Any] | None) -> BreakerView:
    config = configuration or {}
    selector = str(config.get("prometheus_service_selector", DEFAULT_SELECTOR))
    return BreakerView(Prometheus(get_target().prometheus_url()), selector)


def _check_seconds(seconds: float) -> float:
    if not 0 < float(seconds) <= 3600:
        raise ConfigError(f"seconds={seconds} is out of range: valid is 0 < seconds <= 3600")
    return float(seconds)


def states(configuration: dict[str, Any] | None = None) -> dict[str, str]:
    """Breaker state of every replica: ``closed``, ``open``, ``half_open`` (``down`` if
    its scrape fails). Returns a flat dict replica → state."""
    return _view(configuration).states()


def all_closed(configuration: dict[str, Any] | None = None) -> bool:
    """True when every replica's breaker is closed. Pair with tolerance ``true``."""
    return all_in(_view(configuration).states(), "closed")


def opened_within(seconds: float = 5, configuration: dict[str, Any] | None = None) -> bool:
    """True when every replica's breaker is open and opened at most ``seconds`` after this
    probe started. Call it right after the fault action. Pair with tolerance ``true``."""
    bound = _check_seconds(seconds)
    since = time.time()
    view = _view(configuration)
    seen = view.wait_for("open", bound + SCRAPE_SLACK_S)
    return all_in(seen, "open") and changed_within(view.last_transitions(), since, bound)


def closed_within(seconds: float = 30, configuration: dict[str, Any] | None = None) -> bool:
    """True when every replica's breaker is closed within ``seconds`` of this probe's start
    (it polls). Call it right after the fault is removed. Pair with tolerance ``true``."""
    bound = _check_seconds(seconds)
    since = time.time()
    view = _view(configuration)
    seen = view.wait_for("closed", bound + SCRAPE_SLACK_S)
    return all_in(seen, "closed") and changed_within(view.last_transitions(), since, bound)
