"""Broker probes: evidence that a broker fault landed.

``mode_hits`` counts the orders the broker simulator's failure mode actually affected
(its ``broker_sim_mode_hits_total{mode}`` counter, read from the target's Prometheus,
which scrapes the simulator every second on the lab). An experiment that injects a
fault at a low probability pairs it with a range tolerance from 1: a fault that hit no
order proves nothing. Only where a broker simulator runs (the lab).
"""


import time
from typing import Any

from gameday.contract import ConfigError, MeasurementError
from gameday.engine.activity import activity
from gameday.faults.record import InjectionLog
from gameday.measurements.evidence import counter_increase, sample_step_s
from gameday.targets import Target, get_target
from gameday.targets.lab import broker_fault_modes

__all__ = ["mode_hits"]

HITS_METRIC = "broker_sim_mode_hits_total"
FAULT_KIND = "broker"


def _mode(mode: str) -> str:
    valid = broker_fault_modes()
    if mode not in valid:
        raise ConfigError(f"unknown broker simulator mode {mode!r}: valid are "
                          f"{', '.join(valid)}")
    return mode


def _since(target: Target, since: float | None) -> float:
    if since is not None:
        try:
            return float(since)
        except (TypeError, ValueError):
            raise ConfigError(f"since={since!r} is not a number (unix seconds)") from None
    recorded = InjectionLog(target.state_dir()).last((FAULT_KIND,), event="injected")
    if recorded is None:
        raise MeasurementError("no broker fault was injected by gameday's actions: pass "
                               "`since` (unix seconds) to say when the fault started")
    return recorded


@activity
def mode_hits(mode: str, since: float | None = None,
              configuration: dict[str, Any] | None = None) -> int:
    """How many orders the broker simulator's failure mode affected since the fault.

    Args:
        mode: a failure mode of the broker simulator (``error``, ``reply_lost``,
            ``error_after_fill``, ...; ``actions.broker.fail`` sets it).
        since: unix seconds; none = when the last broker fault was injected by
            gameday's actions.

    Reads the counter itself every second from ``since`` to now (not ``increase()``,
    which extrapolates): the exact count, a restart of the simulator included, up to
    its last scrape (at most a second or two old on the lab). Orders the mode's
    ``probability`` left alone are not counted. Raises, never returns 0, when it cannot
    measure: Prometheus unreachable, or no such counter (no broker simulator on the
    target, or not scraped).

    Returns a count of orders. Pair it with a range tolerance from 1, e.g.
    ``[1, 1000000000]``: a fault that hit nothing proves nothing.
    """
    name = _mode(mode)
    target = get_target()
    start, end = _since(target, since), time.time()
    if start > end:
        raise ConfigError(f"since={start} is in the future (now {end:.3f})")
    query = f'sum({HITS_METRIC}{{mode="{name}"}})'
    series = target.prometheus().query_range(query, start, end, sample_step_s(end - start))
    if not series or not series[0].points:
        raise MeasurementError(
            f"no {HITS_METRIC} in the target's Prometheus ({target.prometheus_url()}) from "
            f"{start:.3f}: is a broker simulator running, and scraped?")
    return counter_increase(series[0].points, start)
