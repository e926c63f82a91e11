"""The metrics a running game day serves for Prometheus (the lab's Prometheus scrapes
them as job ``gameday``), so that dashboards can show the fault windows:

- ``gameday_fault_active{experiment, fault, target}``: 1 for each fault injected and not
  yet undone (``fault``: partition, degrade, broker...; ``target``: the link, replica or
  broker mode it hit);
- ``gameday_faults_injected_total{fault}``: faults injected since the run started
  (also those with nothing to undo, like a killed replica);
- ``gameday_experiment_phase{experiment, phase}``: 1 for the running experiment's phase
  (warm-up, baseline, method, after, rollback, ended);
- ``gameday_experiments_total{verdict}``: experiments finished, by verdict;
- ``gameday_run_info{target, service}``: 1 while the run lasts.

Everything is read at scrape time from the run's status and the record of injected
faults. The server listens on 127.0.0.1 only; a port already in use is reported and the
game day goes on without it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from gameday.contract import GamedayError
from gameday.engine.status import RunStatus, active_faults
from gameday.faults.record import InjectionLog

__all__ = ["RunCollector", "serve"]

HOST = "127.0.0.1"


@dataclass(frozen=True, eq=False)  # hashed by identity: the registry keys on it
class RunCollector(Collector):
    """The run's metrics, read when Prometheus scrapes."""

    status: RunStatus
    log: Callable[[], InjectionLog]

    def collect(self) -> Iterator[Metric]:
        yield self._info()
        yield from self._faults()
        yield self._phase()
        yield self._verdicts()

    def _info(self) -> Metric:
        info = GaugeMetricFamily("gameday_run_info", "A game day is running (target, service)",
                                 labels=["target", "service"])
        info.add_metric([self.status.target, self.status.service], 1)
        return info

    def _faults(self) -> Iterator[Metric]:
        active = GaugeMetricFamily("gameday_fault_active", "1 while a fault is injected",
                                   labels=["experiment", "fault", "target"])
        injected = CounterMetricFamily("gameday_faults_injected",
                                       "Faults injected since the game day started",
                                       labels=["fault"])
        try:
            record = self.log()
            pending, entries = record.pending(), record.entries()
        except (GamedayError, OSError):
            pending, entries = [], []
        for fault in active_faults(pending):
            active.add_metric([self.status.experiment, fault.kind, fault.target], 1)
        counted: dict[str, int] = {}
        for entry in entries:
            if entry.get("event") == "injected" and \
                    float(entry.get("at_unix", 0)) >= self.status.run_started_unix:
                kind = str(entry.get("kind", "?"))
                counted[kind] = counted.get(kind, 0) + 1
        for kind, count in sorted(counted.items()):
            injected.add_metric([kind], count)
        yield active
        yield injected

    def _phase(self) -> Metric:
        phase = GaugeMetricFamily("gameday_experiment_phase",
                                  "1 for the running experiment's phase",
                                  labels=["experiment", "phase"])
        current = self.status.phase()
        if current:
            phase.add_metric([self.status.experiment, current], 1)
        return phase

    def _verdicts(self) -> Metric:
        verdicts = CounterMetricFamily("gameday_experiments", "Experiments finished",
                                       labels=["verdict"])
        for verdict in ("PASS", "FAIL", "INCONCLUSIVE"):
            verdicts.add_metric([verdict], self.status.verdicts.get(verdict, 0))
        return verdicts


def serve(port: int, collector: RunCollector) -> WSGIServer | None:
    """Serve ``collector`` on 127.0.0.1:``port`` in a daemon thread; None (after saying
    why on stderr) when the port cannot be had."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    try:
        server, _ = start_http_server(port, addr=HOST, registry=registry)
    except OSError as exc:
        print(f"gameday: cannot serve the game day's metrics on {HOST}:{port} ({exc}); "
              "the game day goes on without them", file=sys.stderr, flush=True)
        return None
    return server
