"""Circuit-breaker state of every replica, read from Prometheus (the metric contract).

``broker_circuit_breaker_state`` is a prometheus_client Enum: one series per state, the
current one at 1. ``broker_circuit_breaker_last_transition_timestamp_seconds`` gives the
exact time of the last change.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from gameday.errors import MeasurementError
from gameday.prometheus import Prometheus

STATES = ("closed", "open", "half_open")
POLL_S = 0.25
SCRAPE_SLACK_S = 3.0


def _replica(labels: Mapping[str, str]) -> str:
    return labels.get("replica") or labels.get("pod") or labels.get("instance", "?")


@dataclass(frozen=True)
class BreakerView:
    """Breaker states of the replicas that Prometheus scrapes with ``selector``."""

    prometheus: Prometheus
    selector: str

    def states(self) -> dict[str, str]:
        """State of every scraped replica; ``down`` for a replica whose scrape fails."""
        up = self.prometheus.vector(f"up{{{self.selector}}}")
        states = {_replica(s.labels): "down" for s in up if s.value != 1}
        current = self.prometheus.vector(f"broker_circuit_breaker_state{{{self.selector}}} == 1")
        for sample in current:
            name = _replica(sample.labels)
            if name not in states:
                states[name] = sample.labels.get("broker_circuit_breaker_state", "?")
        if len(states) < len(up):
            raise MeasurementError(f"breaker state missing for some of {len(up)} replicas")
        return states

    def last_transitions(self) -> dict[str, float]:
        """Unix time of each replica's last breaker transition."""
        metric = f"broker_circuit_breaker_last_transition_timestamp_seconds{{{self.selector}}}"
        return {_replica(s.labels): s.value for s in self.prometheus.vector(metric)}

    def wait_for(self, state: str, timeout_s: float,
                 clock: Callable[[], float] = time.time) -> dict[str, str]:
        """Poll until every replica is in ``state`` or ``timeout_s`` passes; last states seen."""
        deadline = clock() + timeout_s
        states = self.states()
        while not all_in(states, state) and clock() < deadline:
            time.sleep(POLL_S)
            states = self.states()
        return states


def all_in(states: Mapping[str, str], state: str) -> bool:
    """True when there is at least one replica and every one is in ``state`` (pure)."""
    return bool(states) and all(s == state for s in states.values())


def changed_within(transitions: Mapping[str, float], since: float, seconds: float) -> bool:
    """True when every replica's last transition happened at most ``seconds`` after
    ``since`` (pure); a transition before ``since`` means the state was already reached."""
    return bool(transitions) and all(t - since <= seconds for t in transitions.values())
