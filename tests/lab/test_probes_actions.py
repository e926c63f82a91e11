"""Probes and actions on the lab's real processes, and their failure paths."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from support.labs import RunningLab

from actions import broker, network, pods
from gameday.clients.http import request_json
from gameday.contract import ConfigError, MeasurementError
from gameday.engine.traffic import current_files
from gameday.faults import inject
from gameday.faults.record import InjectionLog
from gameday.load.generator import LoadSettings, run_load
from gameday.measurements.client_sla import STALE_S
from gameday.settings import resolve
from gameday.targets import get_target
from gameday.targets.lab import LabTarget
from probes import breaker, replicas, sla


@pytest.fixture
def on_lab(lab: RunningLab, monkeypatch: pytest.MonkeyPatch) -> Iterator[RunningLab]:
    """Point probes and actions at the test lab; undo anything a test left injected."""
    for key in ("GAMEDAY_LAB_DIR", "GAMEDAY_LAB_PORT_BASE", "GAMEDAY_TARGET"):
        monkeypatch.setenv(key, lab.env[key])
    yield lab
    inject.cleanup(get_target())
    for link in get_target().links():
        network.heal(link)
    broker.recover()
    assert get_target().leftovers() == []


def _background_load(url: str, rate_rps: float, duration_s: float) -> threading.Thread:
    settings = LoadSettings(url=url, rate_rps=rate_rps, duration_s=duration_s)
    thread = threading.Thread(target=lambda: asyncio.run(run_load(settings)), daemon=True)
    thread.start()
    return thread


def test_sla_probes_measure_real_traffic(on_lab: RunningLab) -> None:
    load = _background_load(get_target().entry_url() + "/orders", 150, 13)
    time.sleep(11.5)
    report = sla.report(window_s=10)
    load.join(timeout=10)
    assert report["ok"] is True, report
    assert 120 <= report["throughput_rps"] <= 180
    assert report["availability"] == 1.0 and report["error_rate"] == 0.0
    assert 0 < report["p95_latency_s"] < 0.5
    assert report["throughput_min_rps"] == 100.0


def test_sla_probe_with_no_series_raises_naming_the_query(on_lab: RunningLab) -> None:
    config = {"prometheus_service_selector": 'job="renamed-service"'}
    with pytest.raises(MeasurementError, match=r"no data for .*renamed-service"):
        sla.availability(window_s=10, configuration=config)
    with pytest.raises(MeasurementError, match="no data"):
        breaker.states(configuration=config)


def test_sla_probe_with_prometheus_down_raises(monkeypatch: pytest.MonkeyPatch,
                                               tmp_path: Any) -> None:
    monkeypatch.setenv("GAMEDAY_LAB_DIR", str(tmp_path))
    monkeypatch.setenv("GAMEDAY_LAB_PORT_BASE", "47000")
    expected = r"Prometheus at http://127\.0\.0\.1:47002 could not"
    with pytest.raises(MeasurementError, match=expected):
        sla.p95_latency_s(window_s=10)


def test_bad_window_is_refused(on_lab: RunningLab) -> None:
    with pytest.raises(ConfigError, match=r"valid is 2\.\.3600"):
        sla.error_rate(window_s=0)


def test_breaker_states_of_every_replica(on_lab: RunningLab) -> None:
    assert breaker.states() == {"replica-1": "closed", "replica-2": "closed",
                                "replica-3": "closed"}
    assert breaker.state() == "closed"
    assert breaker.state(replica="replica-2") == "closed"
    assert breaker.all_closed() is True
    with pytest.raises(ConfigError, match="valid are replica-1"):
        breaker.state(replica="replica-9")


def test_partition_records_before_injecting_and_heal_is_idempotent(on_lab: RunningLab) -> None:
    log = InjectionLog(get_target().state_dir())
    assert network.partition("lb-replica-2") == {"link": "lb-replica-2", "state": "down"}
    assert [i.params for i in log.pending()] == [{"link": "lb-replica-2"}]
    assert get_target().leftovers() == ["link lb-replica-2 is down"]
    assert network.heal("lb-replica-2")["state"] == "up"
    assert network.heal("lb-replica-2")["state"] == "up"
    assert log.pending() == [] and get_target().leftovers() == []


def test_partitioned_replica_leaves_rotation(on_lab: RunningLab) -> None:
    network.partition("lb-replica-1")
    time.sleep(2.0)
    answers = [request_json("GET", get_target().entry_url() + "/health").body["name"]
               for _ in range(12)]
    network.heal("lb-replica-1")
    assert "replica-1" not in answers and {"replica-2", "replica-3"} <= set(answers)


def test_unknown_link_lists_the_valid_ones(on_lab: RunningLab) -> None:
    with pytest.raises(ConfigError, match=r"valid links are service-broker, lb-replica-1"):
        network.partition("broker")


def test_degrade_adds_a_latency_toxic_that_heal_removes(on_lab: RunningLab) -> None:
    order = {"client_order_id": "t-degrade-1", "instrument": "EUR_USD", "units": 10,
             "price": 1.1}
    toxic = network.degrade("service-broker", "latency", attributes={"latency": 300})
    assert toxic["type"] == "latency" and toxic["attributes"]["latency"] == 300
    replica = get_target().entry_url()
    started = time.monotonic()
    assert request_json("POST", replica + "/orders", order).status == 200
    assert time.monotonic() - started >= 0.3
    assert get_target().leftovers() == ["toxic gameday-latency-downstream on link service-broker"]
    healed = network.heal("service-broker")
    assert healed["toxics_removed"] == ["gameday-latency-downstream"]
    with pytest.raises(ConfigError, match="valid are latency, bandwidth"):
        network.degrade("service-broker", "lag")


def test_broker_fail_and_recover(on_lab: RunningLab) -> None:
    mode = broker.fail("error", status=503)
    assert mode["mode"] == "error" and mode["status"] == 503
    assert get_target().leftovers() == [f"broker simulator is in mode {mode!r}, not normal"]
    assert broker.recover() == {"mode": "normal"}
    with pytest.raises(ConfigError, match="valid modes"):
        broker.fail("explode")


def test_kill_a_pod_and_it_comes_back(on_lab: RunningLab) -> None:
    before = {r.name: r.pid for r in _replicas()}
    assert pods.kill("name=replica-3") == ["replica-3"]
    deadline = time.monotonic() + 15
    while replicas.ready_count() < 3 and time.monotonic() < deadline:
        time.sleep(0.2)
    after = {r.name: r.pid for r in _replicas()}
    assert replicas.ready_count() == 3
    assert after["replica-3"] != before["replica-3"]
    assert after["replica-1"] == before["replica-1"]


def _replicas() -> list[Any]:
    return LabTarget.from_settings(resolve()).status().replicas


@pytest.mark.parametrize("selector", ["", "*"])
def test_kill_refuses_a_match_everything_selector(on_lab: RunningLab, selector: str) -> None:
    with pytest.raises(ConfigError, match="would match everything"):
        pods.kill(selector)


def test_kill_refuses_unknown_selector_and_bad_qty(on_lab: RunningLab) -> None:
    with pytest.raises(ConfigError, match=r"valid are app=broker-integration"):
        pods.kill("app=payments")
    with pytest.raises(ConfigError, match=r"1\.\.3"):
        pods.kill("app=broker-integration", qty=5)


def test_cleanup_undoes_everything_pending(on_lab: RunningLab) -> None:
    target = get_target()
    inject.partition(target, "service-broker")
    inject.broker_fail(target, {"mode": "error", "status": 500})
    assert len(target.leftovers()) == 2
    undone = inject.cleanup(target)
    assert len(undone) == 2 and target.leftovers() == []
    assert InjectionLog(target.state_dir()).pending() == []


def test_client_side_sla_from_the_load_generators_live_file(on_lab: RunningLab) -> None:
    live = current_files().live
    live.unlink(missing_ok=True)
    with pytest.raises(MeasurementError, match="no live load figures"):
        sla.report(window_s=5, source="client")
    load = subprocess.Popen(
        [sys.executable, "-m", "gameday", "load", "--url", get_target().entry_url() + "/orders",
         "--rate", "120", "--duration", "10", "--live", str(live)],
        env=on_lab.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(8)
        report = sla.report(window_s=5, source="client")
        p95 = sla.p95_latency_s(window_s=5, source="client")
    finally:
        load.wait(timeout=30)
    assert report["source"] == "client" and report["ok"] is True, report
    assert 100 <= report["throughput_rps"] <= 140
    assert report["availability"] == 1.0 and report["error_rate"] == 0.0
    assert 0 < p95 < 0.5
    time.sleep(STALE_S + 1)
    with pytest.raises(MeasurementError, match="stopped or died"):
        sla.availability(window_s=5, source="client")
    with pytest.raises(ConfigError, match="valid are prometheus, client"):
        sla.error_rate(window_s=5, source="clients")
