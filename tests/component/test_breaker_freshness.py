"""closed_within reads the breaker only from samples taken after the fault's removal: a
breaker that opens just as the fault goes is open, not "closed" from a stale scrape.

A tiny exporter on 127.0.0.1 (port 0) serves a breaker whose state the test changes; a
real Prometheus scrapes it every second.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest
from support.promserver import ExpositionHandler, needs_prometheus, running_prometheus

import probes.breaker
from gameday.clients.prometheus import Prometheus

pytestmark = needs_prometheus


class _Breaker(ThreadingHTTPServer):
    state = "closed"
    changed_at = 1700000000.0

    def become(self, state: str) -> None:
        self.state, self.changed_at = state, time.time()


class _Metrics(ExpositionHandler):
    server: _Breaker

    def exposition(self) -> str:
        lines = ["# TYPE broker_circuit_breaker_state gauge"]
        lines += [f'broker_circuit_breaker_state{{broker_circuit_breaker_state="{s}"}} '
                  f"{int(s == self.server.state)}" for s in ("closed", "open", "half_open")]
        lines += ["# TYPE broker_circuit_breaker_last_transition_timestamp_seconds gauge",
                  f"broker_circuit_breaker_last_transition_timestamp_seconds "
                  f"{self.server.changed_at}"]
        return "\n".join(lines) + "\n"


class _Target:
    def __init__(self, url: str) -> None:
        self.url = url

    def prometheus(self) -> Prometheus:
        return Prometheus(self.url)


@pytest.fixture
def breaker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[_Breaker]:
    server = _Breaker(("127.0.0.1", 0), _Metrics)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        target = f"127.0.0.1:{server.server_address[1]}"
        with running_prometheus(tmp_path, "broker-integration", [target]) as url:
            monkeypatch.setattr(probes.breaker, "get_target", lambda: _Target(url))
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                try:
                    if probes.breaker.states() == {target: "closed"}:
                        break
                except Exception:  # not scraped yet
                    pass
                time.sleep(0.2)
            yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _open_soon(server: _Breaker, after_s: float, close_after_s: float | None = None) -> None:
    threading.Timer(after_s, server.become, ("open",)).start()
    if close_after_s is not None:
        threading.Timer(close_after_s, server.become, ("closed",)).start()


def test_a_breaker_opening_as_the_fault_goes_is_not_closed(breaker: _Breaker) -> None:
    removed = time.time()
    _open_soon(breaker, 0.3)
    assert probes.breaker.closed_within(seconds=2, since=removed) is False
    assert breaker.state == "open"


def test_it_waits_for_that_breaker_to_close_again(breaker: _Breaker) -> None:
    removed = time.time()
    _open_soon(breaker, 0.3, close_after_s=3.0)
    assert probes.breaker.closed_within(seconds=8, since=removed) is True
    assert time.time() - removed >= 3.0
