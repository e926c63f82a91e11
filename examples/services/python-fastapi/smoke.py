"""Self-check: start the broker simulator and ONE instance of this service (both on
port 0), send a handful of orders through the answers of the contract, check /metrics
carries every contract metric, stop the service with SIGTERM (drain, exit 0) and the
broker, both by PID.

Run it with this folder's venv: ``sh smoke.sh`` (or ``.venv/bin/python smoke.py``).
The broker simulator runs with the gameday repository's interpreter,
``<repo>/.venv/bin/python -m lab.broker``; set BROKER_PYTHON to use another one.
Exit status 0 when every check passed.
"""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
BROKER_PYTHON = os.environ.get("BROKER_PYTHON", str(REPO / ".venv" / "bin" / "python"))
START_TIMEOUT_S = 20.0

CONTRACT_SERIES = [
    'broker_orders_total{status="filled"}',
    'broker_orders_total{status="rejected"}',
    'broker_orders_total{status="failed"}',
    'broker_orders_total{status="circuit_open"}',
    'broker_order_execution_seconds_bucket{le="1.0"}',
    "broker_order_execution_seconds_count",
    "broker_order_execution_seconds_sum",
    'broker_slippage_pips_bucket{le="0.0"}',
    "broker_slippage_pips_count",
    'broker_api_request_seconds_bucket{endpoint="/orders",le="0.8",status="200"}',
    'broker_api_request_seconds_count{endpoint="/orders",status="200"}',
    "broker_connection_status",
    'broker_circuit_breaker_state{broker_circuit_breaker_state="closed"}',
    'broker_circuit_breaker_state{broker_circuit_breaker_state="open"}',
    'broker_circuit_breaker_state{broker_circuit_breaker_state="half_open"}',
    'broker_circuit_breaker_transitions_total{from_state="closed",to_state="open"}',
    'broker_circuit_breaker_transitions_total{from_state="open",to_state="half_open"}',
    'broker_circuit_breaker_transitions_total{from_state="half_open",to_state="closed"}',
    'broker_circuit_breaker_transitions_total{from_state="half_open",to_state="open"}',
    "broker_circuit_breaker_last_transition_timestamp_seconds",
]
CONTRACT_TYPES = {
    "broker_orders_total": "counter",
    "broker_order_execution_seconds": "histogram",
    "broker_slippage_pips": "histogram",
    "broker_api_request_seconds": "histogram",
    "broker_connection_status": "gauge",
    "broker_circuit_breaker_state": "gauge",
    "broker_circuit_breaker_transitions_total": "counter",
    "broker_circuit_breaker_last_transition_timestamp_seconds": "gauge",
}


class Failed(AssertionError):
    pass


class Process:
    """A child process whose first stdout line is read with a timeout; the rest of its
    stdout and all its stderr go to a log file."""

    def __init__(self, label: str, argv: list[str], cwd: Path, env: dict[str, str]) -> None:
        self.label = label
        self.log_path = Path(tempfile.gettempdir()) / f"smoke-{label}-{os.getpid()}.log"
        self._log = self.log_path.open("w")
        self.proc = subprocess.Popen(
            argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=self._log, text=True
        )
        self._lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(line)
        self._lines.put("")

    def first_line(self) -> str:
        try:
            line = self._lines.get(timeout=START_TIMEOUT_S)
        except queue.Empty:
            raise Failed(f"{self.label}: no listening line in {START_TIMEOUT_S} s") from None
        if not line:
            raise Failed(f"{self.label} exited ({self.proc.poll()}); log: {self.log_path}")
        return line.strip()

    def stop(self, timeout_s: float = 10.0) -> int | None:
        """SIGTERM by PID, wait; SIGKILL by PID if it outlives ``timeout_s``."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode


class Smoke:
    def __init__(self) -> None:
        self.passed = 0
        self.http = httpx.Client(timeout=5.0)

    def check(self, what: str, condition: bool, detail: Any = "") -> None:
        if not condition:
            raise Failed(f"FAILED: {what} {detail}")
        self.passed += 1
        print(f"ok   {what}", flush=True)

    def order(self, url: str, **fields: Any) -> httpx.Response:
        body = {"client_order_id": f"smoke-{uuid.uuid4()}", "instrument": "EUR_USD",
                "units": 1000, "price": 1.1}  # fmt: skip
        body.update(fields)
        return self.http.post(f"{url}/orders", json=body)

    def mode(self, admin: str, **mode: Any) -> None:
        path = "/admin/reset" if not mode else "/admin/mode"
        response = self.http.post(f"{admin}{path}", json=mode or None)
        response.raise_for_status()

    def metrics(self, url: str) -> str:
        response = self.http.get(f"{url}/metrics")
        response.raise_for_status()
        return response.text


def value(text: str, series: str) -> float:
    """The value of one exact series line in Prometheus text, or raise Failed."""
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line.rsplit(" ", 1)[1])
    raise Failed(f"FAILED: /metrics has no series {series}")


def until(predicate: Callable[[], bool], timeout_s: float, step_s: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step_s)
    return predicate()


def state_is(text: str, state: str) -> bool:
    """Whether the breaker Enum has ``state`` at 1 and the two others at 0."""
    series = 'broker_circuit_breaker_state{{broker_circuit_breaker_state="{}"}}'
    return all(
        value(text, series.format(other)) == (1 if other == state else 0)
        for other in ("closed", "open", "half_open")
    )


def run(s: Smoke, url: str, admin: str, service: Process) -> None:
    check_answers(s, url)
    check_broker_faults(s, url, admin)
    check_breaker(s, url, admin)
    check_metrics(s, url)
    check_sigterm(s, url, admin, service)


def check_answers(s: Smoke, url: str) -> None:
    """Endpoints, fills, idempotency, rejection, malformed requests."""
    health = s.http.get(f"{url}/health")
    s.check("/health 200 with name and breaker",
            health.status_code == 200
            and health.json() == {"status": "ok", "name": "smoke-1", "breaker": "closed"},
            health.text)  # fmt: skip
    ready = s.http.get(f"{url}/ready")
    s.check(
        "/ready 200 ready",
        ready.status_code == 200 and ready.json() == {"status": "ready", "name": "smoke-1"},
        ready.text,
    )

    fills = [s.order(url, units=1000 * (i + 1)) for i in range(5)]
    s.check(
        "5 orders filled (200)",
        all(r.status_code == 200 for r in fills),
        [r.status_code for r in fills],
    )
    keys = {"status", "fill_id", "client_order_id", "instrument", "units", "fill_price",
            "filled_at"}  # fmt: skip
    s.check(
        "fill body has the contract fields",
        set(fills[0].json()) == keys and fills[0].json()["status"] == "filled",
        fills[0].text,
    )
    repeat_id = fills[0].json()["client_order_id"]
    again = s.order(url, client_order_id=repeat_id, units=1000)
    s.check(
        "a repeated client_order_id gets the original fill back",
        again.status_code == 200 and again.json()["fill_id"] == fills[0].json()["fill_id"],
        again.text,
    )
    rejected = s.order(url, instrument="EURUSD")
    s.check(
        "unknown instrument rejected (422)",
        rejected.status_code == 422
        and rejected.json() == {"status": "rejected", "reason": "unknown_instrument"},
        rejected.text,
    )
    bad = s.order(url, units=0)
    s.check(
        "units 0 is a 400 naming the field",
        bad.status_code == 400 and bad.json().get("field") == "units",
        bad.text,
    )
    not_json = s.http.post(
        f"{url}/orders", content=b"{nope", headers={"content-type": "application/json"}
    )
    s.check("a body that is not JSON is a 400", not_json.status_code == 400, not_json.text)


def check_broker_faults(s: Smoke, url: str, admin: str) -> None:
    """A hanging broker is a 504 within 1 s; a rate limit a 502 with Retry-After and
    no retry (Retry-After exceeds the budget)."""
    s.mode(admin, mode="hang")
    started = time.monotonic()
    hung = s.order(url)
    took = time.monotonic() - started
    s.check(
        f"hanging broker: 504 broker_timeout in {took:.2f} s (< 1 s)",
        hung.status_code == 504 and hung.json()["error"] == "broker_timeout" and took < 1.0,
        hung.text,
    )
    s.mode(admin)
    s.check("broker back: filled again", s.order(url).status_code == 200)

    s.mode(admin, mode="rate_limit", retry_after_s=2)
    limited = s.order(url)
    text = s.metrics(url)
    calls_429 = value(text, 'broker_api_request_seconds_count{endpoint="/orders",status="429"}')
    s.check(
        "rate limited: 502 with the broker's Retry-After, 1 broker call",
        limited.status_code == 502 and limited.headers.get("retry-after") == "2" and calls_429 == 1,
        (limited.status_code, limited.headers, calls_429),
    )
    s.mode(admin)
    s.check("broker back: filled again", s.order(url).status_code == 200)


def check_breaker(s: Smoke, url: str, admin: str) -> None:
    """Broker 503s open the breaker (then 503 circuit_open); recovery closes it."""
    s.mode(admin, mode="error", status=503)
    answers = []
    for _ in range(10):
        answer = s.order(url)
        answers.append(answer.status_code)
        if answer.status_code == 503:
            break
    s.check(
        f"broker 503s: 502s, then the breaker opens (answers {answers})",
        answers[-1] == 503 and set(answers[:-1]) == {502},
        answers,
    )
    open_answer = answer
    s.check(
        "circuit_open body and Retry-After >= 1",
        open_answer.json() == {"error": "circuit_open"}
        and int(open_answer.headers["retry-after"]) >= 1,
        open_answer.headers,
    )
    text = s.metrics(url)
    s.check("metrics: breaker state open = 1, the others 0", state_is(text, "open"))
    opened_at = value(text, "broker_circuit_breaker_last_transition_timestamp_seconds")
    s.check(
        "metrics: last transition is the wall-clock time of opening",
        abs(time.time() - opened_at) < 5,
        opened_at,
    )
    health = s.http.get(f"{url}/health").json()
    s.check("/health stays 200 and shows the open breaker", health["breaker"] == "open", health)

    s.mode(admin)
    time.sleep(int(open_answer.headers["retry-after"]))
    closed = until(lambda: s.order(url).status_code == 200, timeout_s=8, step_s=0.2)
    s.check("broker back: the breaker lets a trial call through and closes", closed)
    text = s.metrics(url)
    for from_state, to_state in (("closed", "open"), ("open", "half_open"),
                                 ("half_open", "closed")):  # fmt: skip
        series = ("broker_circuit_breaker_transitions_total"
                  f'{{from_state="{from_state}",to_state="{to_state}"}}')  # fmt: skip
        s.check(
            f"metrics: transition {from_state} -> {to_state} counted once",
            value(text, series) == 1,
            value(text, series),
        )
    s.check("metrics: breaker state closed = 1, the others 0", state_is(text, "closed"))


def check_metrics(s: Smoke, url: str) -> None:
    """Every contract series, with its type, and the order counts so far."""
    text = s.metrics(url)
    missing = [series for series in CONTRACT_SERIES if series + " " not in text]
    s.check(f"/metrics has all {len(CONTRACT_SERIES)} contract series", not missing, missing)
    types = dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, re.MULTILINE))
    wrong = {name: types.get(name.removesuffix("_total"), types.get(name))
             for name, kind in CONTRACT_TYPES.items()
             if types.get(name.removesuffix("_total"), types.get(name)) != kind}  # fmt: skip
    s.check("contract metric types (counter, histogram, gauge, enum as gauge)", not wrong, wrong)
    counts = {st: value(text, f'broker_orders_total{{status="{st}"}}')
              for st in ("filled", "rejected", "failed", "circuit_open")}  # fmt: skip
    s.check(
        f"order counts by status {counts}",
        counts["filled"] >= 9
        and counts["rejected"] == 1
        and counts["failed"] >= 3
        and counts["circuit_open"] >= 1,
        counts,
    )


def check_sigterm(s: Smoke, url: str, admin: str, service: Process) -> None:
    """SIGTERM: /ready draining at once, the order in flight is answered, exit 0."""
    s.mode(admin, mode="slow", latency_ms=500)
    in_flight: dict[str, Any] = {}

    def slow_order() -> None:
        in_flight["response"] = httpx.post(
            f"{url}/orders", timeout=5.0,
            json={"client_order_id": f"smoke-{uuid.uuid4()}", "instrument": "EUR_USD",
                  "units": 1, "price": 1.1})  # fmt: skip

    thread = threading.Thread(target=slow_order)
    thread.start()
    time.sleep(0.15)
    stopped_at = time.monotonic()
    service.proc.send_signal(signal.SIGTERM)
    draining = s.http.get(f"{url}/ready")
    s.check(
        "after SIGTERM /ready is 503 draining at once",
        draining.status_code == 503 and draining.json()["status"] == "draining",
        draining.text,
    )
    thread.join(10)
    response = in_flight.get("response")
    s.check(
        "the order in flight at SIGTERM is answered (200)",
        response is not None and response.status_code == 200,
        getattr(response, "text", None),
    )
    try:
        code = service.proc.wait(10)
    except subprocess.TimeoutExpired:
        code = None
    took = time.monotonic() - stopped_at
    s.check(
        f"the service exits 0 within 10 s of SIGTERM (exit {code} after {took:.1f} s)", code == 0
    )
    s.mode(admin)


def main() -> int:
    env = {k: v for k, v in os.environ.items() if k != "GAMEDAY_ADMIN_TOKEN"}
    broker = Process("broker", [BROKER_PYTHON, "-m", "lab.broker", "--port", "0",
                                "--admin-port", "0", "--seed", "1"], REPO, env)  # fmt: skip
    service: Process | None = None
    s = Smoke()
    try:
        line = broker.first_line()
        match = re.fullmatch(r"listening (http://\S+) admin (http://\S+)", line)
        if not match:
            raise Failed(f"broker: unexpected first line {line!r}")
        broker_url, admin = match.groups()
        print(f"broker    {broker_url} (admin {admin}), pid {broker.proc.pid}", flush=True)
        service = Process("service", [sys.executable, "-m", "app", "--host", "127.0.0.1",
                                      "--port", "0", "--broker-url", broker_url,
                                      "--name", "smoke-1"], HERE,
                          {"BREAKER_TTL_S": "5", **env})  # the fixed spec's 5 s; fmt: skip
        line = service.first_line()
        listening = re.fullmatch(r"listening (http://127\.0\.0\.1:(\d+))", line)
        if listening is None:
            raise Failed(f"service: unexpected first line {line!r}")
        s.check(f"first stdout line {line!r}", listening.group(2) != "0", line)
        print(f"service   {listening.group(1)}, pid {service.proc.pid}", flush=True)
        run(s, listening.group(1), admin, service)
    except (Failed, httpx.HTTPError) as exc:
        print(exc, flush=True)
        if service is not None:
            print(f"service log: {service.log_path}", flush=True)
        print(f"broker log: {broker.log_path}", flush=True)
        print(f"smoke: {s.passed} checks passed, 1 failed", flush=True)
        return 1
    finally:
        if service is not None:
            service.stop()
        broker.stop()
        s.http.close()
    print(f"smoke: {s.passed} checks passed, 0 failed", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
