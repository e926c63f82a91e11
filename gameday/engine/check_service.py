"""``gameday lab check-service SPEC``: does a service meet the contract (docs/contract.md)?

Runs one replica of the service the spec describes against a broker simulator of its
own (both on 127.0.0.1, ports picked by the kernel) and checks, each with its evidence:
it starts and answers its health path; it is ready; an order is filled through *this*
broker (so the broker URL given is the one used) with the client order id the load
generator sent; the same order sent again is not filled twice; every contract metric is
there with its type and labels; the breaker opens when the broker fails and closes when
it is back; told to stop, it turns unready before it stops serving, then exits within
its grace time. Every process it starts is stopped by its PID.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from gameday.clients.http import HttpUnreachable, request_json
from gameday.contract import GamedayError
from gameday.measurements.conformance import Check, breaker_state, metric_checks
from gameday.service_spec import ServiceSpec

__all__ = ["check_service", "table"]

START_TIMEOUT_S = 30.0
BREAKER_TIMEOUT_S = 15.0
CLOSE_TIMEOUT_S = 40.0
ORDER = {"instrument": "EUR_USD", "units": 100, "price": 1.1}


@dataclass(frozen=True)
class Running:
    """The broker simulator and the replica under check."""

    broker_url: str
    broker_admin_url: str
    url: str
    process: subprocess.Popen[bytes]
    log: Path


def check_service(spec: ServiceSpec, work_dir: Path) -> list[Check]:
    """Every conformance check of the service ``spec`` describes (logs in ``work_dir``)."""
    work_dir.mkdir(parents=True, exist_ok=True)
    with _broker(work_dir) as (broker_url, admin_url), \
            _replica(spec, broker_url, work_dir) as process:
        running = Running(broker_url, admin_url, process[0], process[1], work_dir / "replica.log")
        return _run_checks(spec, running)


def _run_checks(spec: ServiceSpec, running: Running) -> list[Check]:
    checks = [_started(spec, running)]
    if not checks[0].passed:
        return checks
    checks.append(_ready(spec, running))
    checks += _orders(spec, running)
    checks += metric_checks(_metrics(spec, running), spec)
    checks.append(_breaker(spec, running))
    checks.append(_drains(spec, running))
    return checks


def table(checks: list[Check]) -> str:
    """The checks as a table for people: verdict, name, evidence."""
    width = max(len(c.name) for c in checks)
    return "\n".join(f"{'PASS' if c.passed else 'FAIL'}  {c.name:<{width}}  {c.evidence}"
                     for c in checks)


# --- processes ------------------------------------------------------------------------


@contextmanager
def _broker(work_dir: Path) -> Iterator[tuple[str, str]]:
    log = (work_dir / "broker.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "lab.broker", "--port", "0", "--admin-port", "0",
         "--latency-ms", "5"], stdout=subprocess.PIPE, stderr=log, env=_env_without_token())
    try:
        line = _first_line(process, 10.0)
        words = line.split()
        if len(words) != 4 or words[0] != "listening":
            raise GamedayError(f"the broker simulator did not start: {line!r} (see {log.name})")
        yield words[1], words[3]
    finally:
        _stop(process, signal.SIGTERM, 5.0)
        log.close()


def _env_without_token() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "GAMEDAY_ADMIN_TOKEN"}


def _first_line(process: subprocess.Popen[bytes], timeout_s: float) -> str:
    assert process.stdout is not None
    deadline = time.monotonic() + timeout_s
    os.set_blocking(process.stdout.fileno(), False)
    buffer = b""
    while time.monotonic() < deadline and b"\n" not in buffer:
        buffer += process.stdout.read() or b""
        time.sleep(0.05)
    return buffer.split(b"\n", 1)[0].decode(errors="replace").strip()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def _replica(spec: ServiceSpec, broker_url: str,
             work_dir: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    port = _free_port()
    values = {"host": "127.0.0.1", "port": str(port), "broker_url": broker_url,
              "name": "check-1", "python": sys.executable, "log_dir": str(work_dir)}
    log = (work_dir / "replica.log").open("wb")
    try:
        process = subprocess.Popen(spec.command_for(values), cwd=spec.workdir,
                                   env={**_env_without_token(), **spec.env_for(values)},
                                   stdout=log, stderr=subprocess.STDOUT)
    except OSError as exc:
        log.close()
        raise GamedayError(f"cannot start the service ({' '.join(spec.command)}): "
                           f"{exc.strerror}") from None
    try:
        yield f"http://127.0.0.1:{port}", process
    finally:
        _stop(process, getattr(signal, spec.stop_signal), spec.stop_grace_s)
        log.close()


def _stop(process: subprocess.Popen[bytes], signum: int, grace_s: float) -> None:
    if process.poll() is None:
        process.send_signal(signum)
        try:
            process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5.0)


# --- the checks -------------------------------------------------------------------------


def _status(url: str) -> int | None:
    try:
        return request_json("GET", url, timeout_s=2.0).status
    except HttpUnreachable:
        return None


def _wait(condition: Callable[[], bool], timeout_s: float, every_s: float = 0.1) -> float | None:
    """Seconds until ``condition`` held, or None if it did not within ``timeout_s``."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if condition():
            return time.monotonic() - started
        time.sleep(every_s)
    return None


def _started(spec: ServiceSpec, running: Running) -> Check:
    health = running.url + spec.health_path
    took = _wait(lambda: running.process.poll() is None and _status(health) == 200,
                 START_TIMEOUT_S, 0.2)
    if took is None:
        code = running.process.poll()
        why = f"exited with {code}" if code is not None else f"{health} never answered 200"
        return Check("starts and answers health", False,
                     f"{why} within {START_TIMEOUT_S:.0f} s; see {running.log}")
    return Check("starts and answers health", True, f"{health} 200 after {took:.1f} s")


def _ready(spec: ServiceSpec, running: Running) -> Check:
    status = _status(running.url + spec.ready_path)
    return Check("ready", status == 200, f"GET {spec.ready_path} answered {status}")


def _order(spec: ServiceSpec, running: Running, order_id: str) -> int | None:
    body = spec.order.render({"client_order_id": order_id, **ORDER})
    try:
        return request_json(spec.order.method, running.url + spec.order.path, body,
                            timeout_s=3.0).status
    except HttpUnreachable:
        return None


def _fills(running: Running, order_id: str) -> int:
    """Fills the broker's ledger holds for ``order_id``; GamedayError if it cannot answer."""
    try:
        answer = request_json("GET", f"{running.broker_url}/fills?client_order_id={order_id}")
    except HttpUnreachable as exc:
        raise GamedayError(f"the broker simulator stopped answering: {exc}") from None
    fills = answer.body.get("fills") if isinstance(answer.body, dict) else None
    return len(fills) if isinstance(fills, list) else -1


def _orders(spec: ServiceSpec, running: Running) -> list[Check]:
    order_id = f"check-{uuid.uuid4().hex[:12]}"
    status = _order(spec, running, order_id)
    filled = status in spec.order.statuses.get("filled", ())
    first = _fills(running, order_id)
    checks = [
        Check("an order is filled", filled, f"{spec.order.method} {spec.order.path} answered "
              f"{status} (filled means {list(spec.order.statuses.get('filled', ()))})"),
        Check("the order reaches this broker with its client order id", first == 1,
              f"the broker's ledger holds {first} fill(s) for client_order_id {order_id}"),
    ]
    again = _order(spec, running, order_id)
    second = _fills(running, order_id)
    checks.append(Check("the same order sent again is not filled twice", second == 1,
                        f"second answer {again}; the ledger holds {second} fill(s)"))
    return checks


def _metrics(spec: ServiceSpec, running: Running) -> str:
    with urllib.request.urlopen(running.url + spec.metrics_path, timeout=3.0) as answer:
        return str(answer.read().decode("utf-8", errors="replace"))


def _state(spec: ServiceSpec, running: Running) -> str | None:
    try:
        return breaker_state(_metrics(spec, running), spec)
    except OSError:
        return None


def _breaker(spec: ServiceSpec, running: Running) -> Check:
    mode = {"mode": "error", "status": 503, "probability": 1.0}
    request_json("POST", running.broker_admin_url + "/admin/mode", mode)
    try:
        opened = _wait(lambda: _order(spec, running, f"trip-{uuid.uuid4().hex[:8]}") is not None
                       and _state(spec, running) == "open", BREAKER_TIMEOUT_S, 0.05)
    finally:
        request_json("DELETE", running.broker_admin_url + "/admin/mode")
    if opened is None:
        return Check("breaker opens and closes", False,
                     f"the broker failed every call for {BREAKER_TIMEOUT_S:.0f} s and the "
                     f"breaker state stayed {_state(spec, running)!r}, never 'open'")
    closed = _wait(lambda: _order(spec, running, f"heal-{uuid.uuid4().hex[:8]}") is not None
                   and _state(spec, running) == "closed", CLOSE_TIMEOUT_S, 0.2)
    if closed is None:
        return Check("breaker opens and closes", False, f"opened after {opened:.1f} s but not "
                     f"closed {CLOSE_TIMEOUT_S:.0f} s after the broker came back")
    return Check("breaker opens and closes", True,
                 f"open {opened:.1f} s after the broker failed, closed {closed:.1f} s after "
                 "it came back")


def _drains(spec: ServiceSpec, running: Running) -> Check:
    """Told to stop, the replica turns unready while it still serves, then exits."""
    running.process.send_signal(getattr(signal, spec.stop_signal))
    ready, health = running.url + spec.ready_path, running.url + spec.health_path
    unready_while_serving = _wait(lambda: _status(ready) not in (200, None)
                                  and _status(health) == 200, 2.0, 0.01)
    exited = _wait(lambda: running.process.poll() is not None, spec.stop_grace_s, 0.1)
    if unready_while_serving is None:
        return Check("unready on stop, then exits", False,
                     f"after {spec.stop_signal}, {spec.ready_path} never answered non-200 "
                     f"while {spec.health_path} still answered 200")
    if exited is None:
        return Check("unready on stop, then exits", False, f"unready, but still running "
                     f"{spec.stop_grace_s:g} s after {spec.stop_signal}")
    return Check("unready on stop, then exits", True,
                 f"unready {unready_while_serving:.2f} s after {spec.stop_signal}, exited "
                 f"({running.process.returncode}) after {exited:.1f} s")
