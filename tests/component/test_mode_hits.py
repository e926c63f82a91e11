"""probes.broker.mode_hits against a real broker simulator scraped by a real Prometheus:
it counts exactly the orders the mode affected, and raises when it cannot measure."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from chaoslib.exceptions import ActivityFailed
from support.procs import Proc, closed_port_url, http, metric, order, start_broker, stop
from support.promserver import needs_prometheus, running_prometheus

import probes.broker
from gameday.clients.prometheus import Prometheus
from gameday.contract import ConfigError, MeasurementError
from gameday.faults.record import InjectionLog

pytestmark = needs_prometheus


class _Target:
    def __init__(self, url: str, state_dir: Path) -> None:
        self.url, self.state = url, state_dir

    def prometheus(self) -> Prometheus:
        return Prometheus(self.url)

    def prometheus_url(self) -> str:
        return self.url

    def state_dir(self) -> Path:
        return self.state


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proc]:
    folder = tmp_path_factory.mktemp("broker")
    started = start_broker(folder / "stderr.log", "--latency-ms", "1")
    yield started
    assert stop(started.proc) == 0


@pytest.fixture(scope="module")
def prometheus(broker: Proc, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("prometheus")
    with running_prometheus(folder, "broker-sim", [broker.url.removeprefix("http://")]) as url:
        _wait_scraped(url)
        yield url


def _wait_scraped(url: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            Prometheus(url).vector('broker_sim_mode_hits_total{mode="reply_lost"}')
            return
        except MeasurementError:
            time.sleep(0.2)
    pytest.fail("Prometheus never scraped the broker simulator")


def _aim(monkeypatch: pytest.MonkeyPatch, url: str, state_dir: Path) -> None:
    monkeypatch.setattr(probes.broker, "get_target", lambda: _Target(url, state_dir))


def test_it_counts_the_orders_the_mode_affected_since_the_fault(
        broker: Proc, prometheus: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    _aim(monkeypatch, prometheus, tmp_path)
    http("POST", broker.admin_url + "/admin/mode", {"mode": "error_after_fill", "status": 503})
    for i in range(3):  # before the fault recorded below: not counted
        http("POST", broker.url + "/orders", order(f"mh-before-{i}"))
    time.sleep(1.5)
    InjectionLog(tmp_path).record("broker", {"mode": "error_after_fill"})
    http("POST", broker.admin_url + "/admin/mode", {"mode": "error_after_fill",
                                                    "probability": 0.5})
    statuses = [http("POST", broker.url + "/orders", order(f"mh-{i}"))[0] for i in range(30)]
    http("POST", broker.admin_url + "/admin/reset")
    total = metric(broker.url, "broker_sim_mode_hits_total", mode="error_after_fill")
    assert 0 < statuses.count(500) < 30
    # read at once: the probe waits for the scrape after its call, so the last hits count
    assert probes.broker.mode_hits("error_after_fill") == statuses.count(500)
    assert probes.broker.mode_hits("reply_lost") == 0, "a mode that was not set hit nothing"
    assert probes.broker.mode_hits("error_after_fill", since=time.time() - 3600) == total


def test_it_raises_when_there_is_no_counter_to_read(
        prometheus: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _aim(monkeypatch, closed_port_url(), tmp_path)
    with pytest.raises(MeasurementError, match="could not answer"):
        probes.broker.mode_hits("reply_lost", since=time.time() - 10)
    monkeypatch.setattr(probes.broker, "HITS_METRIC", "broker_sim_no_such_total")
    _aim(monkeypatch, prometheus, tmp_path)
    with pytest.raises(ActivityFailed, match="is a broker simulator running") as caught:
        probes.broker.mode_hits("reply_lost", since=time.time() - 10)
    assert isinstance(caught.value, MeasurementError)


def test_it_needs_a_fault_or_since_and_a_known_mode(
        prometheus: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _aim(monkeypatch, prometheus, tmp_path)
    with pytest.raises(MeasurementError, match="pass `since`"):
        probes.broker.mode_hits("reply_lost")
    with pytest.raises(ConfigError, match=r"valid are error, rate_limit, .*reply_lost, "
                                          r"error_after_fill"):
        probes.broker.mode_hits("reply-lost", since=time.time())
    with pytest.raises(ConfigError, match="unknown broker simulator mode 'normal'"):
        probes.broker.mode_hits("normal", since=time.time())
    with pytest.raises(ConfigError, match="in the future"):
        probes.broker.mode_hits("reply_lost", since=time.time() + 60)

