"""Circuit-breaker state of every replica, read from Prometheus (the metric contract),
and whether an open breaker protects anything, judged from evidence the service does
not report itself.

``broker_circuit_breaker_state`` is a prometheus_client Enum: one series per state, the
current one at 1. ``broker_circuit_breaker_last_transition_timestamp_seconds`` gives the
exact time of each change; its history (one value per transition) tells when a breaker
first changed after a fault.

:func:`open_spans` finds when every replica's breaker was open: each replica's history
is cut at its transition times, and a piece counts as open when every state sample in
it says ``open``. :func:`protection` then judges those seconds from the load
generator's live file (client-side latency, orders sent) and from the broker's own
count of orders received (``broker_sim_orders_received_total`` in the lab): an open
breaker must answer fast and keep orders away from the broker.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from gameday.clients.prometheus import Prometheus
from gameday.contract import (
    METRIC_BREAKER_LAST_TRANSITION,
    METRIC_BREAKER_STATE,
    METRIC_BREAKER_TRANSITIONS,
    MeasurementError,
)
from gameday.load.stats import merged_histogram
from gameday.measurements.client_sla import seconds_between

STATES = ("closed", "open", "half_open")
POLL_S = 0.25
SCRAPE_SLACK_S = 3.0
FRESH_AFTER_S = 2.0
"""A breaker state read from Prometheus is trusted as "after" a moment only from this
long after it: one scrape (1 s in the lab) and the query's lag. An earlier reading may
predate a breaker that opened just as the fault was removed."""
TRANSITION_METRIC = METRIC_BREAKER_LAST_TRANSITION
BROKER_SELECTOR = 'job="broker-sim"'
BROKER_RECEIVED_METRIC = "broker_sim_orders_received_total"
"""The broker simulator's count of order requests, taken as each arrives."""

Span = tuple[float, float]
"""A stretch of time, unix seconds: (start, end)."""
Samples = Sequence[tuple[float, float]]
"""One series' samples: (unix time, value)."""


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

    def open_samples(self, since: float, now: float) -> dict[str, list[tuple[float, float]]]:
        """Each replica's ``open`` state series since ``since``: 1 while open, else 0."""
        window_s = max(2, math.ceil(now - since + SCRAPE_SLACK_S))
        matrix = self.prometheus.matrix(f"{METRIC_BREAKER_STATE}{{{self.selector}}}[{window_s}s]")
        samples: dict[str, list[tuple[float, float]]] = {}
        for key, values in matrix.items():
            labels = json.loads(key)
            if labels.get(METRIC_BREAKER_STATE) == "open":
                samples[replica_name(labels)] = list(values)
        return samples

    def open_spans(self, since: float, now: float) -> list[Span]:
        """When every replica's breaker was open, between ``since`` and ``now``."""
        return open_spans(self.transition_history(since, now), self.open_samples(since, now),
                          since, now)

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


def broker_received(prometheus: Prometheus, selector: str, metric: str, since: float,
                    now: float) -> list[Samples]:
    """Every series of the broker's own counter of orders received, since ``since``;
    raises MeasurementError when the broker exports none."""
    window_s = max(2, math.ceil(now - since + SCRAPE_SLACK_S))
    return list(prometheus.matrix(f"{metric}{{{selector}}}[{window_s}s]").values())


def replica_open_spans(transitions: Iterable[float], open_samples: Samples, start: float,
                       end: float) -> list[Span]:
    """When one replica's breaker was open between ``start`` and ``end`` (pure).

    The time is cut at the replica's transitions; a piece is open when it holds a state
    sample and every sample in it says open (a piece no scrape saw counts as not open).
    """
    cuts = sorted({start, end, *(t for t in transitions if start < t < end)})
    spans = []
    for piece_start, piece_end in pairwise(cuts):
        seen = [v for t, v in open_samples if piece_start <= t < piece_end]
        if seen and all(v == 1 for v in seen):
            spans.append((piece_start, piece_end))
    return _merged(spans)


def _merged(spans: Sequence[Span]) -> list[Span]:
    merged: list[Span] = []
    for span in sorted(spans):
        if merged and span[0] <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], span[1]))
        else:
            merged.append(span)
    return merged


def _intersection(a: Sequence[Span], b: Sequence[Span]) -> list[Span]:
    both = [(max(x[0], y[0]), min(x[1], y[1])) for x in a for y in b]
    return [span for span in both if span[0] < span[1]]


def open_spans(history: Mapping[str, list[float]], open_samples: Mapping[str, Samples],
               start: float, end: float) -> list[Span]:
    """When every replica's breaker was open between ``start`` and ``end`` (pure);
    a replica without state samples was never seen open."""
    replicas = set(history) | set(open_samples)
    if not replicas:
        raise MeasurementError("no replica reports its breaker state")
    spans = [(start, end)]
    for replica in sorted(replicas):
        mine = replica_open_spans(history.get(replica, []), open_samples.get(replica, []),
                                  start, end)
        spans = _intersection(spans, mine)
    return spans


def counted_in(series: Samples, span: Span) -> float | None:
    """A counter's increase over ``span`` (pure), from its samples inside the span only
    (so nothing counted before the span leaks in), scaled to the span's length; None
    when fewer than two samples lie inside."""
    inside = [(t, v) for t, v in series if span[0] <= t <= span[1]]
    if len(inside) < 2 or inside[-1][0] <= inside[0][0]:
        return None
    (t_first, v_first), (t_last, v_last) = inside[0], inside[-1]
    increase = max(0.0, v_last - v_first)  # a restarted broker's counter starts over
    return increase / (t_last - t_first) * (span[1] - span[0])


def protection(live: Mapping[str, Any], spans: Sequence[Span],
               broker_counters: Sequence[Samples], p95_max_ms: float,
               broker_call_share_max: float) -> dict[str, Any]:
    """Whether every breaker, while open, answered fast and kept orders from the broker
    (pure).

    Args:
        live: the load generator's live file (see ``gameday.measurements.client_sla``).
        spans: when every breaker was open (:func:`open_spans`).
        broker_counters: the broker's own counters of orders received (each series).
        p95_max_ms: the most the clients' p95 latency may be while open, ms.
        broker_call_share_max: the most orders received by the broker per order sent by
            the clients while open (half-open trial calls are few).

    Returns a plain dict: ``open_s`` (finished seconds measured), ``orders`` (sent by the
    clients then), ``p95_ms``, ``broker_calls``, ``broker_call_share``, each with its
    bound and ``*_ok``, and ``ok``.

    Raises:
        MeasurementError: no finished second lies wholly in a span with every breaker
            open, or none of them holds two samples of the broker's counter.
    """
    t0 = float(live["t0_unix"])
    measured = [(span, seconds_between(live, *span)) for span in spans]
    seconds = [entry for _, inside in measured for entry in inside]
    orders = sum(int(e["sent"]) for e in seconds)
    if not seconds or not orders:
        raise MeasurementError(
            "no finished second of traffic while every breaker was open "
            f"({_spans_text(spans)}): nothing to judge the open breaker by")
    p95_ms = merged_histogram(e.get("hist") for e in seconds).get_value_at_percentile(95) / 1e3
    calls, sent = _broker_calls(measured, broker_counters, t0)
    share = round(calls / sent, 6)
    return {
        "open_s": len(seconds), "orders": orders,
        "p95_ms": round(p95_ms, 3), "p95_max_ms": p95_max_ms, "p95_ms_ok": p95_ms <= p95_max_ms,
        "broker_calls": round(calls, 1), "broker_call_share": share,
        "broker_call_share_max": broker_call_share_max,
        "broker_call_share_ok": share <= broker_call_share_max,
        "ok": p95_ms <= p95_max_ms and share <= broker_call_share_max,
    }


def _broker_calls(measured: Sequence[tuple[Span, Sequence[Mapping[str, Any]]]],
                  counters: Sequence[Samples], t0: float) -> tuple[float, int]:
    """(orders the broker received, orders the clients sent) over the finished seconds
    whose span holds two samples of every broker counter."""
    calls, sent = 0.0, 0
    for _, inside in measured:
        if not inside:
            continue
        covered = (t0 + int(inside[0]["t"]), t0 + int(inside[-1]["t"]) + 1)
        counts = [counted_in(series, covered) for series in counters]
        if counters and all(c is not None for c in counts):
            calls += sum(c for c in counts if c is not None)
            sent += sum(int(e["sent"]) for e in inside)
    if not sent:
        raise MeasurementError(
            "the broker's count of orders received has too few samples in the seconds with "
            "every breaker open (two are needed in one stretch): is Prometheus scraping it?")
    return calls, sent


def _spans_text(spans: Sequence[Span]) -> str:
    if not spans:
        return "never all open"
    return ", ".join(f"{b - a:.1f} s from {a:.1f}" for a, b in spans)
