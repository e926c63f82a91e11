"""Circuit-breaker probes: the state of the replicas, how fast they tripped and recovered,
and whether an open breaker actually protects (``fails_fast``).

States are read from the target's Prometheus (``broker_circuit_breaker_state``), so they
lag the service by up to one scrape interval; times come from the exact transition
timestamps the service exports. ``since`` defaults to the moment the last fault was
injected (for tripping) or removed (for recovering), as recorded by ``actions``.

A breaker's metric is the service's own word. ``fails_fast`` checks it against evidence
the service does not write: the clients' latency (the load generator's live file) and
the broker's own count of orders received.
"""


import math
import time
from typing import Any

from gameday.contract import DEFAULT_SELECTOR, ConfigError, MeasurementError
from gameday.engine.activity import activity
from gameday.engine.traffic import current_files
from gameday.faults.record import fault_time
from gameday.measurements.breaker import (
    BROKER_RECEIVED_METRIC,
    BROKER_SELECTOR,
    FRESH_AFTER_S,
    SCRAPE_SLACK_S,
    BreakerView,
    all_in,
    broker_received,
    protection,
    time_since,
    time_to_first_change,
)
from gameday.measurements.client_sla import read_live
from gameday.targets import get_target

__all__ = ["all_closed", "closed_within", "fails_fast", "max_transitions", "opened_within",
           "state", "states", "time_to_recover_s", "time_to_trip_s"]

FAULT_KINDS = ("partition", "degrade", "broker")
OPEN_P95_MAX_MS = 50.0
OPEN_BROKER_CALL_SHARE_MAX = 0.05


def _view(configuration: dict[str, Any] | None) -> BreakerView:
    config = configuration or {}
    selector = str(config.get("prometheus_service_selector", DEFAULT_SELECTOR))
    return BreakerView(get_target().prometheus(), selector)


def _seconds(seconds: float) -> float:
    try:
        value = float(seconds)
    except (TypeError, ValueError):
        raise ConfigError(f"seconds={seconds!r} is not a number") from None
    if not 0 < value <= 3600:
        raise ConfigError(f"seconds={seconds} is out of range: valid is 0 < seconds <= 3600")
    return value


def _since(since: float | None, event: str) -> float:
    return fault_time(since, lambda: get_target().state_dir(), FAULT_KINDS, event)


@activity
def states(configuration: dict[str, Any] | None = None) -> dict[str, str]:
    """Breaker state of every replica.

    Returns a flat dict replica → ``closed``, ``open`` or ``half_open`` (``down`` when its
    scrape fails). Pair it with a jsonpath tolerance on one replica's state.
    """
    return _view(configuration).states()


@activity
def state(replica: str | None = None, configuration: dict[str, Any] | None = None) -> str:
    """Breaker state of one replica, or the common state of all.

    Args:
        replica: a replica's name (e.g. ``replica-2``); none = all replicas.

    Returns ``closed``, ``open``, ``half_open`` — or ``mixed`` when the replicas differ.
    Pair it with a string tolerance such as ``closed``.
    """
    current = _view(configuration).states()
    if replica is not None:
        if replica not in current:
            raise ConfigError(f"unknown replica {replica!r}: valid are {', '.join(current)}")
        return current[replica]
    values = set(current.values())
    return values.pop() if len(values) == 1 else "mixed"


@activity
def all_closed(configuration: dict[str, Any] | None = None) -> bool:
    """Whether every replica's breaker is closed.

    Returns true when every replica's breaker is closed. Pair it with tolerance ``true``.
    """
    return all_in(_view(configuration).states(), "closed")


@activity
def time_to_trip_s(since: float | None = None,
                   configuration: dict[str, Any] | None = None) -> float:
    """Time from the fault until the slowest replica's breaker tripped.

    Args:
        since: when the fault started, unix seconds; none = the last fault recorded by
            gameday's actions.

    Returns seconds until every breaker first changed state; raises if one never did.
    Pair it with a range tolerance, e.g. ``[0, 5]``.
    """
    start = _since(since, "injected")
    return time_to_first_change(_view(configuration).transition_history(start, time.time()),
                                start)


@activity
def time_to_recover_s(since: float | None = None,
                      configuration: dict[str, Any] | None = None) -> float:
    """Time from the fault's removal until every breaker was closed again.

    Args:
        since: when the fault was removed, unix seconds; none = the last undo recorded
            by gameday's actions.

    Returns seconds; raises if a breaker is still not closed. Pair it with a range
    tolerance, e.g. ``[0, 20]``.
    """
    start = _since(since, "undone")
    view = _view(configuration)
    current = view.states()
    if not all_in(current, "closed"):
        raise MeasurementError(f"not every breaker is closed yet: {current}")
    return time_since(view.last_transitions(), start)


@activity
def opened_within(seconds: float = 5, since: float | None = None,
                  configuration: dict[str, Any] | None = None) -> bool:
    """Whether every replica's breaker opened within a bound after the fault.

    Args:
        seconds: the bound, in seconds.
        since: when the fault started, unix seconds; none = the last fault recorded by
            gameday's actions.

    Waits up to the bound (plus one scrape); call it right after the fault action.
    Returns true when every breaker opened in time. Pair it with tolerance ``true``.
    """
    bound, start = _seconds(seconds), _since(since, "injected")
    view = _view(configuration)
    seen = view.wait_for("open", start + bound + SCRAPE_SLACK_S - time.time())
    if not all_in(seen, "open"):
        return False
    history = view.transition_history(start, time.time())
    return time_to_first_change(history, start) <= bound


@activity
def closed_within(seconds: float = 30, since: float | None = None,
                  configuration: dict[str, Any] | None = None) -> bool:
    """Whether every replica's breaker closed within a bound after the fault's removal.

    Args:
        seconds: the bound, in seconds.
        since: when the fault was removed, unix seconds; none = the last undo recorded
            by gameday's actions.

    Waits up to the bound (plus one scrape); call it right after the undo action. A state
    is read no earlier than 2 s after the removal (one scrape and Prometheus' lag), so a
    breaker that opens just as the fault goes counts as open, not closed. Returns true
    when every breaker is closed in time. Pair it with tolerance ``true``.
    """
    bound, start = _seconds(seconds), _since(since, "undone")
    view = _view(configuration)
    time.sleep(max(0.0, start + FRESH_AFTER_S - time.time()))
    seen = view.wait_for("closed", start + bound + SCRAPE_SLACK_S - time.time())
    return all_in(seen, "closed") and time_since(view.last_transitions(), start) <= bound


def _bound(config: dict[str, Any], key: str, default: float) -> float:
    try:
        value = float(config.get(key, default))
    except (TypeError, ValueError):
        raise ConfigError(f"{key}={config.get(key)!r} is not a number") from None
    if not 0 <= value < math.inf:
        raise ConfigError(f"{key}={value} is out of range: valid is a number >= 0")
    return value


@activity
def fails_fast(since: float | None = None,
               configuration: dict[str, Any] | None = None) -> dict[str, Any]:
    """Whether the open breakers really protect: fast answers, no orders to the broker.

    Args:
        since: when the fault started, unix seconds; none = the last fault recorded by
            gameday's actions.

    Over the finished seconds since the fault during which every replica's breaker was
    open, from evidence the service does not write itself: the clients' p95 latency (the
    experiment's traffic) must be at most ``open_p95_max_ms`` (configuration key,
    default 50), and the orders the broker received (its own counter,
    ``broker_sim_orders_received_total{job="broker-sim"}``; keys
    ``broker_received_metric`` and ``prometheus_broker_selector``) per order the clients
    sent at most ``open_broker_call_share_max`` (default 0.05: half-open trial calls
    are few). Call it after the breaker has tripped, while it is still open.

    Returns ``{"open_s", "orders", "p95_ms", "p95_max_ms", "p95_ms_ok", "broker_calls",
    "broker_call_share", "broker_call_share_max", "broker_call_share_ok", "ok"}``.
    Raises when it cannot tell: no second with every breaker open, no traffic, no
    broker counter. Pair it with a jsonpath tolerance on ``$.ok``.
    """
    config = configuration or {}
    p95_max_ms = _bound(config, "open_p95_max_ms", OPEN_P95_MAX_MS)
    share_max = _bound(config, "open_broker_call_share_max", OPEN_BROKER_CALL_SHARE_MAX)
    start, now = _since(since, "injected"), time.time()
    view = _view(configuration)
    spans = view.open_spans(start, now)
    live = read_live(current_files().live)
    counters = broker_received(
        view.prometheus, str(config.get("prometheus_broker_selector", BROKER_SELECTOR)),
        str(config.get("broker_received_metric", BROKER_RECEIVED_METRIC)), start, now)
    return protection(live, spans, counters, p95_max_ms, share_max)


@activity
def max_transitions(window_s: float = 30, configuration: dict[str, Any] | None = None) -> float:
    """Most breaker transitions any one replica made over a trailing window.

    Args:
        window_s: the window, in seconds (2..3600).

    Returns a count (a float: Prometheus extrapolates ``increase``); a breaker that
    thrashes shows a high count. Pair it with a range tolerance, e.g. ``[0, 12]``.
    """
    window = _seconds(window_s)
    if window < 2:
        raise ConfigError(f"window_s={window_s} is out of range: valid is 2..3600")
    counts = _view(configuration).transitions(int(window))
    return max(counts.values())
