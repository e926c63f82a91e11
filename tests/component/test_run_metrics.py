"""The metrics ``gameday run`` serves: on 127.0.0.1 for Prometheus, and a port already
taken never stops the game day."""

from __future__ import annotations

import socket
import urllib.request
from pathlib import Path

import pytest

from gameday.engine.exporter import RunCollector, serve
from gameday.engine.status import RunStatus
from gameday.faults.record import InjectionLog


def _collector(tmp_path: Path) -> RunCollector:
    log = InjectionLog(tmp_path)
    log.record("partition", {"link": "lb-replica-1"})
    return RunCollector(RunStatus("lab", "reference", tmp_path), lambda: log)


def test_prometheus_can_scrape_them(tmp_path: Path) -> None:
    server = serve(0, _collector(tmp_path))
    assert server is not None
    try:
        assert server.server_address[0] == "127.0.0.1"
        url = f"http://127.0.0.1:{server.server_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            text = response.read().decode()
    finally:
        server.shutdown()
        server.server_close()
    assert 'gameday_fault_active{experiment="",fault="partition",target="lb-replica-1"} 1.0' \
        in text


def test_a_taken_port_is_reported_and_the_run_goes_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        assert serve(taken.getsockname()[1], _collector(tmp_path)) is None
    assert "the game day goes on without them" in capsys.readouterr().err
