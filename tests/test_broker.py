"""The broker simulator: pure parts directly, HTTP against a real process on port 0."""

from __future__ import annotations

import json
import random
import re
import select
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from lab.broker.modes import ErrorMode, InvalidMode, NormalMode, SlowMode, decide, parse_mode
from lab.broker.orders import Fill, Order, make_fill, parse_order, pip_size, sample_latency_ms
from lab.broker.state import FillBook

ROOT = Path(__file__).resolve().parents[1]
LISTENING = re.compile(r"^listening (http://127\.0\.0\.1:\d+) admin (http://127\.0\.0\.1:\d+)$")
ORDER = {"client_order_id": "c-1", "instrument": "EUR_USD", "units": 100, "price": 1.1}


# --- helpers: process, HTTP, metrics --------------------------------------------------


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


def http(method: str, url: str, body: object = None, raw: bytes | None = None) -> Any:
    """(status, headers, decoded JSON or text) for one request."""
    data = raw if raw is not None else None if body is None else json.dumps(body).encode()
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


@dataclass(frozen=True)
class Broker:
    url: str
    admin_url: str
    proc: subprocess.Popen[str]


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    stderr = tmp_path_factory.mktemp("broker") / "stderr.log"
    args = ("--host", "127.0.0.1", "--port", "0", "--admin-port", "0", "--latency-ms", "2")
    proc, line = spawn("lab.broker", *args, stderr_path=stderr)
    match = LISTENING.match(line)
    assert match, line
    yield Broker(match[1], match[2], proc)
    assert stop(proc) == 0


@pytest.fixture(autouse=True)
def normal_mode(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "broker" in request.fixturenames:
        http("POST", request.getfixturevalue("broker").admin_url + "/admin/reset")


def order(client_order_id: str, **changes: object) -> dict[str, object]:
    return {**ORDER, "client_order_id": client_order_id, **changes}


# --- pure parts ----------------------------------------------------------------------


def test_parse_order_accepts_a_valid_order() -> None:
    assert parse_order(ORDER) == Order("c-1", "EUR_USD", 100, 1.1)
    assert parse_order({**ORDER, "units": -5, "price": 150}).price == 150.0


def test_fill_slippage_stays_within_two_pips() -> None:
    rng = random.Random(7)
    for instrument, price in (("EUR_USD", 1.1), ("USD_JPY", 150.25)):
        for _ in range(500):
            fill = make_fill(Order("x", instrument, 1, price), rng)
            assert abs(fill.fill_price - price) <= 2 * pip_size(instrument) + 1e-9


def test_latency_samples_stay_in_range_around_the_median() -> None:
    rng = random.Random(3)
    samples = sorted(sample_latency_ms(rng, 10.0) for _ in range(2001))
    assert samples[0] >= 2.0
    assert samples[-1] <= 40.0
    assert 8.0 <= samples[1000] <= 12.0
    assert sample_latency_ms(rng, 0.0) == 0.0


def test_decide_follows_the_mode() -> None:
    rng = random.Random(1)
    assert decide(NormalMode(), rng).error_status is None
    assert decide(ErrorMode(503, 1.0), rng).error_status == 503
    assert all(decide(ErrorMode(503, 0.0), rng).error_status is None for _ in range(100))
    errors = sum(decide(ErrorMode(500, 0.3), rng).error_status == 500 for _ in range(2000))
    assert 450 < errors < 750
    assert decide(SlowMode(250.0), rng).added_latency_ms == 250.0


def test_parse_mode_defaults_and_values() -> None:
    assert parse_mode({"mode": "normal"}) == NormalMode()
    assert parse_mode({"mode": "error"}) == ErrorMode(500, 1.0)
    assert parse_mode({"mode": "error", "status": 429, "probability": 0.5}) == ErrorMode(429, 0.5)
    assert parse_mode({"mode": "slow", "latency_ms": 5}) == SlowMode(5.0)
    with pytest.raises(InvalidMode, match="normal, error, slow"):
        parse_mode({"mode": ["error"]})


def always(fill: Fill) -> Callable[[], Fill]:
    return lambda: fill


def test_fill_book_forgets_the_oldest_fills_first() -> None:
    book = FillBook(max_fills=2)
    rng = random.Random(0)
    fills = {i: make_fill(Order(i, "EUR_USD", 1, 1.0), rng) for i in ("a", "b", "c")}
    for client_order_id, fill in fills.items():
        assert book.get_or_add(client_order_id, always(fill)) is fill
    assert len(book) == 2
    assert book.get_or_add("c", lambda: fills["a"]) is fills["c"]
    assert book.get_or_add("a", lambda: fills["b"]) is fills["b"]


# --- the real process ----------------------------------------------------------------


def test_health(broker: Broker) -> None:
    assert http("GET", broker.url + "/health")[::2] == (200, {"status": "ok"})


def test_order_is_filled_with_the_documented_shape(broker: Broker) -> None:
    status, _, fill = http("POST", broker.url + "/orders", order("shape-1"))
    assert status == 200
    assert set(fill) == {
        "fill_id", "client_order_id", "instrument", "units", "fill_price", "filled_at"
    }  # fmt: skip
    assert fill["client_order_id"] == "shape-1"
    assert (fill["instrument"], fill["units"]) == ("EUR_USD", 100)
    assert abs(fill["fill_price"] - 1.1) <= 0.00021
    assert datetime.fromisoformat(fill["filled_at"]).tzinfo is not None


def test_same_client_order_id_gets_the_same_fill(broker: Broker) -> None:
    first = http("POST", broker.url + "/orders", order("idem-1"))[2]
    again = http("POST", broker.url + "/orders", order("idem-1"))[2]
    other = http("POST", broker.url + "/orders", order("idem-2"))[2]
    assert again == first
    assert other["fill_id"] != first["fill_id"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({k: v for k, v in ORDER.items() if k != "units"}, "units"),
        ({k: v for k, v in ORDER.items() if k != "client_order_id"}, "client_order_id"),
        ({**ORDER, "client_order_id": ""}, "client_order_id"),
        ({**ORDER, "instrument": 7}, "instrument"),
        ({**ORDER, "units": 1.5}, "units"),
        ({**ORDER, "units": 0}, "units"),
        ({**ORDER, "units": True}, "units"),
        ({**ORDER, "price": "1.1"}, "price"),
        ({**ORDER, "price": -1}, "price"),
    ],
)
def test_invalid_orders_get_400_naming_the_field(
    broker: Broker, body: dict[str, object], field: str
) -> None:
    status, _, answer = http("POST", broker.url + "/orders", body)
    assert status == 400
    assert answer["field"] == field
    assert field in answer["error"]


@pytest.mark.parametrize("raw", [b"{not json", b"[1, 2]", b""])
def test_non_object_bodies_get_400(broker: Broker, raw: bytes) -> None:
    status, _, answer = http("POST", broker.url + "/orders", raw=raw)
    assert status == 400
    assert "JSON" in answer["error"]


def test_error_mode_fails_orders_until_reset(broker: Broker) -> None:
    admin = broker.admin_url + "/admin"
    assert http("GET", admin + "/mode")[2] == {"mode": "normal"}
    mode = {"mode": "error", "status": 503, "probability": 1.0}
    assert http("POST", admin + "/mode", mode)[::2] == (200, mode)
    assert http("GET", admin + "/mode")[2] == mode
    failed_before = metric(broker.url, "broker_sim_orders_total", result="failed")
    for i in range(3):
        assert http("POST", broker.url + "/orders", order(f"err-{i}"))[::2] == (
            503, {"error": "broker_error"}
        )  # fmt: skip
    assert metric(broker.url, "broker_sim_orders_total", result="failed") == failed_before + 3
    assert metric(broker.url, "broker_sim_mode_info", mode="error") == 1.0
    assert http("POST", admin + "/reset")[::2] == (200, {"mode": "normal"})
    assert http("POST", broker.url + "/orders", order("err-0"))[0] == 200
    assert metric(broker.url, "broker_sim_mode_info", mode="normal") == 1.0


def test_error_mode_with_probability_zero_fills_everything(broker: Broker) -> None:
    http("POST", broker.admin_url + "/admin/mode", {"mode": "error", "probability": 0})
    statuses = {http("POST", broker.url + "/orders", order(f"p0-{i}"))[0] for i in range(5)}
    assert statuses == {200}


def test_slow_mode_adds_latency(broker: Broker) -> None:
    http("POST", broker.admin_url + "/admin/mode", {"mode": "slow", "latency_ms": 300})
    started = time.monotonic()
    assert http("POST", broker.url + "/orders", order("slow-1"))[0] == 200
    assert time.monotonic() - started >= 0.3


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"mode": "bogus"}, "normal, error, slow"),
        ({}, "normal, error, slow"),
        ({"mode": "error", "status": 200}, "400..599"),
        ({"mode": "error", "status": "500"}, "400..599"),
        ({"mode": "error", "probability": 1.5}, "between 0 and 1"),
        ({"mode": "error", "probability": "all"}, "probability"),
        ({"mode": "slow", "latency_ms": -1}, "latency_ms"),
    ],
)
def test_admin_rejects_invalid_modes(broker: Broker, body: dict[str, object], says: str) -> None:
    status, _, answer = http("POST", broker.admin_url + "/admin/mode", body)
    assert status == 400
    assert says in answer["error"]
    assert http("GET", broker.admin_url + "/admin/mode")[2] == {"mode": "normal"}


def test_admin_api_is_only_on_the_admin_port(broker: Broker) -> None:
    assert http("GET", broker.url + "/admin/mode")[0] == 404
    assert http("POST", broker.admin_url + "/orders", ORDER)[0] == 404


def test_metrics_expose_counts_and_mode(broker: Broker) -> None:
    status, headers, text = http("GET", broker.url + "/metrics")
    assert status == 200
    assert headers["Content-Type"].startswith("text/plain; version=0.0.4")
    for result in ("filled", "failed", "rejected"):
        assert f'broker_sim_orders_total{{result="{result}"}}' in text
    assert 'broker_sim_mode_info{mode="normal"} 1.0' in text
    assert "_created" not in text


def test_sigterm_stops_the_process_cleanly(tmp_path: Path) -> None:
    proc, line = spawn("lab.broker", "--latency-ms", "0", stderr_path=tmp_path / "err")
    assert LISTENING.match(line)
    assert stop(proc) == 0
