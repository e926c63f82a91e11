"""Broker probes: evidence that a broker fault landed.

``mode_hits`` counts the orders the broker simulator's failure mode actually affected
(its ``broker_sim_mode_hits_total{mode}`` counter, read from the target's Prometheus,
which scrapes the simulator every second on the lab). An experiment that injects a
fault at a low probability pairs it with a range tolerance from 1: a fault that hit no
order proves nothing. Only where a broker simulator runs (the lab).
"""


import time
from typing import Any

from gameday.clients.prometheus import Prometheus
from gameday.contract import ConfigError, MeasurementError
from gameday.engine.activity import activity
from gameday.faults.record import fault_time
from gameday.measurements.evidence import counter_increase, sample_step_s
from gameday.targets import Target, get_target
from gameday.targets.lab import broker_fault_modes

__all__ = ["mode_hits"]

HITS_METRIC = "broker_sim_mode_hits_total"
FAULT_KIND = "broker"
FRESH_WAIT_S = 3.0
POLL_S = 0.2
SAMPLE_SLACK_S = 0.01  # past the sample's millisecond time and the step's rounding


def _mode(mode: str) -> str:
    valid = broker_fault_modes()
    if mode not in valid:
        raise ConfigError(f"unknown broker simulator mode {mode!r}: valid are "
                          f"{', '.join(valid)}")
    return mode


def _since(target: Target, since: float | None) -> float:
    return fault_time(since, target.state_dir, (FAULT_KIND,))


@activity
def mode_hits(mode: str, since: float | None = None,
              configuration: dict[str, Any] | None = None) -> int:
    """How many orders the broker simulator's failure mode affected since the fault.

    Args:
        mode: a failure mode of the broker simulator (``error``, ``reply_lost``,
            ``error_after_fill``, ...; ``actions.broker.fail`` sets it).
        since: unix seconds; none = when the last broker fault was injected by
            gameday's actions.

    Reads the counter itself every second from ``since`` to the first scrape after the
    call (waiting up to 3 s for it), not ``increase()``, which extrapolates: the exact
    count, across a restart of the simulator. Orders the mode's ``probability`` left
    alone are not counted, nor orders still in the simulator when it is called (after
    ``actions.broker.recover``, wait a second for those). Raises, never returns 0, when
    it cannot measure: Prometheus unreachable, or no such counter (no broker simulator
    on the target, or not scraped).

    Returns a count of orders. Pair it with a range tolerance from 1, e.g.
    ``[1, 1000000000]``: a fault that hit nothing proves nothing.
    """
    name = _mode(mode)
    target = get_target()
    start, called = _since(target, since), time.time()
    if start > called:
        raise ConfigError(f"since={start} is in the future (now {called:.3f})")
    prometheus, counter = target.prometheus(), f'{HITS_METRIC}{{mode="{name}"}}'
    end = _scraped_after(prometheus, counter, called)
    series = prometheus.query_range(f"sum({counter})", start, end, sample_step_s(end - start))
    if not series or not series[0].points:
        raise MeasurementError(
            f"no {HITS_METRIC} in the target's Prometheus ({target.prometheus_url()}) from "
            f"{start:.3f}: is a broker simulator running, and scraped?")
    return counter_increase(series[0].points, start)


def _scraped_after(prometheus: Prometheus, counter: str, moment: float) -> float:
    """Just after the counter's newest sample, once one is no older than ``moment``
    (waiting up to FRESH_WAIT_S for the next scrape), so that every hit until then counts."""
    deadline = moment + FRESH_WAIT_S
    while True:
        try:
            newest = max(s.value for s in prometheus.vector(f"timestamp({counter})"))
        except MeasurementError as exc:
            raise MeasurementError(f"{exc} (is a broker simulator running, and scraped?)"
                                   ) from exc
        if newest >= moment or time.time() >= deadline:
            return max(newest, moment) + SAMPLE_SLACK_S
        time.sleep(POLL_S)
