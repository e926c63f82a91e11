"""Circuit-breaker state of every replica, read from Prometheus (the metric contract).

``broker_circuit_breaker_state`` is a prometheus_client Enum: one series per state, the
current one at 1. ``broker_circuit_breaker_last_transition_timestamp_seconds`` gives the
exact time of each change; its history (one value per transition) tells when a breaker
first changed after a fault.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from gameday.clients.prometheus import Prometheus
from gameday.contract import (
    METRIC_BREAKER_LAST_TRANSITION,
    METRIC_BREAKER_STATE,
    METRIC_BREAKER_TRANSITIONS,
    MeasurementError,
)

STATES = ("closed", "open", "half_open")
POLL_S = 0.25
SCRAPE_SLACK_S = 3.0
FRESH_AFTER_S = 2.0
"""A breaker state read from Prometheus is trusted as "after" a moment only from this
long after it: one scrape (1 s in the lab) and the query's lag. An earlier reading may
predate a breaker that opened just as the fault was removed."""
TRANSITION_METRIC = METRIC_BREAKER_LAST_TRANSITION


def replica_name(labels: Mapping[str, str]) -> str:
    """A replica's name from its series' labels: ``replica``, ``pod`` or ``instance``."""
    return labels.get("replica") or labels.get("pod") or labels.get("instance", "?")


@dataclass(frozen=True)
class BreakerView:
    """Breaker states of the replicas that Prometheus scrapes with ``selector``."""

    prometheus: Prometheus
    selector: str

    def states(self) -> dict[str, str]:
        """State of every scraped replica; ``down`` for a replica whose scrape fails."""
        up = self.prometheus.vector(f"up{{{self.selector}}}")
        states = {replica_name(s.labels): "down" for s in up if s.value != 1}
        current = self.prometheus.vector(f"{METRIC_BREAKER_STATE}{{{self.selector}}} == 1")
        for sample in current:
            name = replica_name(sample.labels)
            if name not in states:
                states[name] = sample.labels.get(METRIC_BREAKER_STATE, "?")
        if len(states) < len(up):
            raise MeasurementError(f"breaker state missing for some of {len(up)} replicas")
        return states

    def last_transitions(self) -> dict[str, float]:
        """Unix time of each replica's last breaker transition."""
        vector = self.prometheus.vector(f"{TRANSITION_METRIC}{{{self.selector}}}")
        return {replica_name(s.labels): s.value for s in vector}

    def transition_history(self, since: float, now: float) -> dict[str, list[float]]:
        """Every distinct transition time each replica reported since ``since``."""
        window_s = max(2, math.ceil(now - since + SCRAPE_SLACK_S))
        matrix = self.prometheus.matrix(f"{TRANSITION_METRIC}{{{self.selector}}}[{window_s}s]")
        return {replica_name(json.loads(key)): sorted({v for _, v in samples})
                for key, samples in matrix.items()}

    def transitions(self, window_s: int) -> dict[str, float]:
        """Breaker transitions each replica made over the trailing window."""
        metric = f"{METRIC_BREAKER_TRANSITIONS}{{{self.selector}}}"
        vector = self.prometheus.vector(
            f"sum by (instance, replica, pod) (increase({metric}[{window_s}s]))")
        return {replica_name(s.labels): s.value for s in vector}

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


def time_to_first_change(history: Mapping[str, list[float]], since: float) -> float:
    """Seconds from ``since`` until the slowest replica's first transition after it (pure);
    raises MeasurementError naming a replica that did not change at all."""
    delays = {}
    for replica, times in history.items():
        after = [t for t in times if t >= since]
        if not after:
            raise MeasurementError(
                f"the breaker of {replica} has not changed state since {since:.3f}")
        delays[replica] = after[0] - since
    if not delays:
        raise MeasurementError("no replica reports breaker transitions")
    return max(delays.values())


def time_since(transitions: Mapping[str, float], since: float) -> float:
    """Seconds from ``since`` to the latest of the replicas' last transitions (pure),
    at least 0 (a replica already in the state changed before ``since``)."""
    if not transitions:
        raise MeasurementError("no replica reports breaker transitions")
    return max(0.0, max(transitions.values()) - since)
