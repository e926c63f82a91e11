"""The reference service as a real process, in front of a real broker simulator."""

from __future__ import annotations

import json
import re
import select
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[1]
BROKER_LINE = re.compile(r"^listening (http://127\.0\.0\.1:\d+) admin (http://127\.0\.0\.1:\d+)$")
SERVICE_LINE = re.compile(r"^listening (http://127\.0\.0\.1:\d+)$")
ORDER = {"client_order_id": "c-1", "instrument": "EUR_USD", "units": 100, "price": 1.1}
CONTRACT = {  # name -> type in the text exposition (an Enum shows as a gauge)
    "broker_orders_total": "counter",
    "broker_order_execution_seconds": "histogram",
    "broker_slippage_pips": "histogram",
    "broker_api_request_seconds": "histogram",
    "broker_connection_status": "gauge",
    "broker_circuit_breaker_state": "gauge",
    "broker_circuit_breaker_transitions_total": "counter",
    "broker_circuit_breaker_last_transition_timestamp_seconds": "gauge",
}


# --- helpers: process, HTTP, metrics (same as in test_broker.py) ---------------------


def spawn(module: str, *args: str, stderr_path: Path) -> tuple[subprocess.Popen[str], str]:
    """Start ``python -m module args`` and return it with its first stdout line."""
    with stderr_path.open("w") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", module, *args],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=stderr, text=True,
        )  # fmt: skip
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], 10.0)
    line = proc.stdout.readline().strip() if ready else ""
    if not line:
        stop(proc)
        pytest.fail(f"{module} did not start: {stderr_path.read_text()}")
    return proc, line


def stop(proc: subprocess.Popen[str]) -> int:
    """SIGTERM the process (SIGKILL if it lingers) and return its exit code."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if proc.stdout:
        proc.stdout.close()
    return proc.returncode


def http(method: str, url: str, body: object = None) -> Any:
    """(status, headers, decoded JSON or text) for one request."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            status, headers, payload = response.status, response.headers, response.read()
    except urllib.error.HTTPError as exc:
        status, headers, payload = exc.code, exc.headers, exc.read()
    text = payload.decode()
    is_json = headers.get_content_type() == "application/json"
    return status, headers, json.loads(text) if is_json else text


def metric(base_url: str, name: str, **labels: str) -> float:
    """The value of one sample on ``base_url``/metrics (0.0 when absent)."""
    _, _, text = http("GET", base_url + "/metrics")
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and labels.items() <= sample.labels.items():
                return float(sample.value)
    return 0.0


# --- fixtures ------------------------------------------------------------------------


@dataclass(frozen=True)
class Proc:
    url: str
    proc: subprocess.Popen[str]
    stderr_path: Path
    admin_url: str = ""


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proc]:
    stderr = tmp_path_factory.mktemp("broker") / "stderr.log"
    proc, line = spawn("lab.broker", "--latency-ms", "1", stderr_path=stderr)
    match = BROKER_LINE.match(line)
    assert match, line
    yield Proc(match[1], proc, stderr, admin_url=match[2])
    assert stop(proc) == 0


@pytest.fixture(autouse=True)
def normal_mode(broker: Proc) -> Iterator[None]:
    yield
    http("POST", broker.admin_url + "/admin/reset")


StartService = Callable[..., Proc]


@pytest.fixture
def start_service(tmp_path: Path) -> Iterator[StartService]:
    """``start_service(broker_url, "--failure-threshold", "3", ...)`` -> running Proc."""
    started: list[Proc] = []

    def start(broker_url: str, *args: str) -> Proc:
        stderr = tmp_path / f"service-{len(started)}.log"
        all_args = ("--port", "0", "--broker-url", broker_url, "--name", "svc-a", *args)
        proc, line = spawn("lab.service", *all_args, stderr_path=stderr)
        match = SERVICE_LINE.match(line)
        assert match, line
        started.append(Proc(match[1], proc, stderr))
        return started[-1]

    yield start
    for service in started:
        assert stop(service.proc) == 0


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def set_mode(broker: Proc, **mode: object) -> None:
    assert http("POST", broker.admin_url + "/admin/mode", mode)[0] == 200


def place(service: Proc, client_order_id: str) -> Any:
    return http("POST", service.url + "/orders", {**ORDER, "client_order_id": client_order_id})


def broker_calls(broker: Proc) -> float:
    results = ("filled", "failed", "rejected")
    return sum(metric(broker.url, "broker_sim_orders_total", result=r) for r in results)


def orders(service: Proc, status: str) -> float:
    return metric(service.url, "broker_orders_total", status=status)


def transitions(service: Proc, from_state: str, to_state: str) -> float:
    name = "broker_circuit_breaker_transitions_total"
    return metric(service.url, name, from_state=from_state, to_state=to_state)


# --- tests ---------------------------------------------------------------------------


def test_health_does_not_depend_on_the_broker(start_service: StartService) -> None:
    service = start_service(closed_port_url())
    status, _, body = http("GET", service.url + "/health")
    assert (status, body) == (200, {"status": "ok", "name": "svc-a", "breaker": "closed"})


def test_metrics_carry_the_whole_contract_from_start(start_service: StartService) -> None:
    before = time.time()
    service = start_service(closed_port_url())
    status, headers, text = http("GET", service.url + "/metrics")
    assert status == 200
    assert headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    for name, kind in CONTRACT.items():
        assert f"# TYPE {name} {kind}\n" in text
    for status_label in ("filled", "rejected", "failed", "circuit_open"):
        assert f'broker_orders_total{{status="{status_label}"}} 0.0' in text
    for state, value in (("closed", 1.0), ("open", 0.0), ("half_open", 0.0)):
        assert metric(service.url, "broker_circuit_breaker_state",
                      broker_circuit_breaker_state=state) == value  # fmt: skip
    started_at = metric(service.url, "broker_circuit_breaker_last_transition_timestamp_seconds")
    assert before - 1 <= started_at <= time.time()


def test_order_is_filled_through_the_broker(broker: Proc, start_service: StartService) -> None:
    service = start_service(broker.url)
    calls = broker_calls(broker)
    status, _, body = place(service, "fill-1")
    assert status == 200
    assert body["status"] == "filled"
    assert body["client_order_id"] == "fill-1"
    assert {"fill_id", "fill_price", "filled_at", "instrument", "units"} <= set(body)
    assert broker_calls(broker) == calls + 1
    assert orders(service, "filled") == 1
    assert metric(service.url, "broker_order_execution_seconds_count") == 1
    assert metric(service.url, "broker_slippage_pips_count") == 1
    api_count = "broker_api_request_seconds_count"
    assert metric(service.url, api_count, endpoint="/orders", status="200") == 1
    assert metric(service.url, "broker_connection_status") == 1


def test_invalid_order_is_400_and_never_sent(broker: Proc, start_service: StartService) -> None:
    service = start_service(broker.url)
    calls = broker_calls(broker)
    status, _, body = http("POST", service.url + "/orders", {**ORDER, "price": "x"})
    assert (status, body["field"]) == (400, "price")
    assert broker_calls(broker) == calls


def test_broker_4xx_is_rejected_and_keeps_the_breaker_closed(
    broker: Proc, start_service: StartService
) -> None:
    service = start_service(broker.url, "--failure-threshold", "2")
    set_mode(broker, mode="error", status=400)
    for i in range(3):
        assert place(service, f"rej-{i}")[::2] == (
            422, {"status": "rejected", "reason": "broker_error"}
        )  # fmt: skip
    assert orders(service, "rejected") == 3
    assert http("GET", service.url + "/health")[2]["breaker"] == "closed"


def test_breaker_opens_after_failure_threshold_and_stops_calling(
    broker: Proc, start_service: StartService
) -> None:
    service = start_service(broker.url, "--failure-threshold", "3", "--reset-timeout-s", "30")
    set_mode(broker, mode="error", status=503)
    for i in range(3):
        status, _, body = place(service, f"down-{i}")
        assert (status, body["error"]) == (502, "broker_unavailable")
    calls = broker_calls(broker)
    for i in range(5):
        status, headers, body = place(service, f"open-{i}")
        assert (status, body) == (503, {"error": "circuit_open"})
        assert 1 <= int(headers["Retry-After"]) <= 30
    assert broker_calls(broker) == calls
    assert (orders(service, "failed"), orders(service, "circuit_open")) == (3, 5)
    assert transitions(service, "closed", "open") == 1
    assert metric(service.url, "broker_circuit_breaker_state",
                  broker_circuit_breaker_state="open") == 1  # fmt: skip
    assert http("GET", service.url + "/health")[::2] == (
        200, {"status": "ok", "name": "svc-a", "breaker": "open"}
    )  # fmt: skip
    assert "circuit breaker closed -> open" in service.stderr_path.read_text()


def test_429_counts_as_a_breaker_failure(broker: Proc, start_service: StartService) -> None:
    service = start_service(broker.url, "--failure-threshold", "1")
    set_mode(broker, mode="error", status=429)
    assert place(service, "busy-1")[0] == 502
    assert place(service, "busy-2")[0] == 503


def test_breaker_closes_again_after_reset_timeout(
    broker: Proc, start_service: StartService
) -> None:
    args = ("--failure-threshold", "2", "--reset-timeout-s", "0.5", "--success-threshold", "2")
    service = start_service(broker.url, *args)
    set_mode(broker, mode="error", status=500)
    assert [place(service, f"r-{i}")[0] for i in range(3)] == [502, 502, 503]
    http("POST", broker.admin_url + "/admin/reset")
    time.sleep(0.6)
    assert [place(service, f"ok-{i}")[0] for i in range(2)] == [200, 200]
    assert http("GET", service.url + "/health")[2]["breaker"] == "closed"
    for from_state, to_state in (("closed", "open"), ("open", "half_open"),
                                 ("half_open", "closed")):  # fmt: skip
        assert transitions(service, from_state, to_state) == 1
    log = service.stderr_path.read_text()
    assert log.count("circuit breaker") == 3


def test_a_failed_trial_reopens_the_breaker(broker: Proc, start_service: StartService) -> None:
    service = start_service(broker.url, "--failure-threshold", "1", "--reset-timeout-s", "0.3")
    set_mode(broker, mode="error", status=503)
    assert place(service, "t-0")[0] == 502
    time.sleep(0.35)
    assert [place(service, f"t-{i}")[0] for i in (1, 2)] == [502, 503]
    assert transitions(service, "half_open", "open") == 1


def test_unreachable_broker_is_502_and_a_failure(start_service: StartService) -> None:
    service = start_service(closed_port_url())
    status, _, body = place(service, "gone-1")
    assert (status, body["error"]) == (502, "broker_unavailable")
    assert body["detail"]
    assert orders(service, "failed") == 1
    assert metric(service.url, "broker_connection_status") == 0
    api_count = "broker_api_request_seconds_count"
    assert metric(service.url, api_count, endpoint="/orders", status="connection_error") == 1


def test_slow_broker_is_504_within_the_timeout(broker: Proc, start_service: StartService) -> None:
    service = start_service(broker.url, "--timeout-s", "0.3")
    set_mode(broker, mode="slow", latency_ms=1000)
    started = time.monotonic()
    status, _, body = place(service, "slow-1")
    assert time.monotonic() - started < 0.9
    assert (status, body["error"]) == (504, "broker_timeout")
    assert orders(service, "failed") == 1
    api_count = "broker_api_request_seconds_count"
    assert metric(service.url, api_count, endpoint="/orders", status="timeout") == 1
    assert metric(service.url, "broker_connection_status") == 0
