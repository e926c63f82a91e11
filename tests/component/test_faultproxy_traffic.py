"""Traffic through the fault proxy process: latency end to end, toxics changed on open
connections without losing a byte, keep-alive speed, and back-pressure; the same
through Toxiproxy's own server where a test takes ``fp``.
"""

from __future__ import annotations

import os
import socket
import statistics
import threading
import time
from pathlib import Path

import pytest
from support.faultproxy import (
    TIMEOUT_S,
    FaultProxy,
    connect,
    echo,
    get_times_ms,
    listen_port,
    recv_exactly,
    recv_until_closed,
    start_proxy,
    stop_proxy,
)

from lab.faultproxy.__main__ import EVENT_LOOPS

# --- latency -------------------------------------------------------------------------


def test_latency_adds_its_delay_once_and_removal_restores(fp: FaultProxy, http_port: int) -> None:
    port = listen_port(fp.create("web", http_port))
    assert statistics.median(get_times_ms(port, 10)) < 20
    toxic = fp.toxic("web", "latency", attributes={"latency": 100})
    assert toxic == {
        "name": "latency_downstream",
        "type": "latency",
        "stream": "downstream",
        "toxicity": 1.0,
        "attributes": {"latency": 100, "jitter": 0},
    }
    assert 95 <= statistics.median(get_times_ms(port, 10)) <= 130
    assert fp.call("DELETE", "/proxies/web/toxics/latency_downstream").status_code == 204
    assert statistics.median(get_times_ms(port, 10)) < 20


def test_latency_is_pipelined_not_per_chunk(fp: FaultProxy, echo_port: int) -> None:
    port = listen_port(fp.create("echo", echo_port))
    fp.toxic("echo", "latency", stream="upstream", attributes={"latency": 100})
    with connect(port) as sock:
        elapsed_s = echo(sock, os.urandom(2_000_000))
    assert 0.1 <= elapsed_s < 0.6, elapsed_s


# Toxics that drop nothing, with settings before and after an update.
_LOSSLESS = [
    ("latency", {"latency": 30}, {"latency": 60, "jitter": 20}),
    ("bandwidth", {"rate": 3000}, {"rate": 0}),
    (
        "slicer",
        {"average_size": 3000, "size_variation": 1000},
        {"average_size": 500, "size_variation": 100},
    ),
    ("slow_close", {"delay": 50}, {"delay": 10}),
]


@pytest.mark.parametrize(("kind", "attributes", "update"), _LOSSLESS)
def test_toxics_change_on_an_open_connection_without_losing_bytes(
    fp: FaultProxy, echo_port: int, kind: str, attributes: dict[str, int], update: dict[str, int]
) -> None:
    port = listen_port(fp.create("echo", echo_port))
    payload = os.urandom(1_000_000)
    received = bytearray()
    with connect(port) as sock:
        reader = threading.Thread(target=lambda: received.extend(recv_exactly(sock, len(payload))))
        reader.start()
        writer = threading.Thread(target=_send_slowly, args=(sock, payload))
        writer.start()
        for stream in ("upstream", "downstream", "upstream"):
            body = {"type": kind, "stream": stream, "name": "t", "attributes": attributes}
            assert fp.call("POST", "/proxies/echo/toxics", body).ok
            time.sleep(0.04)
            assert fp.call("POST", "/proxies/echo/toxics/t", {"attributes": update}).ok
            time.sleep(0.04)
            assert fp.call("DELETE", "/proxies/echo/toxics/t").status_code == 204
        writer.join(TIMEOUT_S)
        reader.join(TIMEOUT_S)
    assert bytes(received) == payload


def _send_slowly(sock: socket.socket, payload: bytes) -> None:
    for start in range(0, len(payload), 10_000):
        sock.sendall(payload[start : start + 10_000])
        time.sleep(0.002)


# --- throughput ----------------------------------------------------------------------


def test_keep_alive_http_is_not_slowed_down(fp: FaultProxy, http_port: int) -> None:
    port = listen_port(fp.create("web", http_port))
    direct = statistics.median(get_times_ms(http_port, 300))
    started = time.perf_counter()
    proxied = statistics.median(get_times_ms(port, 600))
    rate_rps = 600 / (time.perf_counter() - started)
    assert proxied - direct < 2.0, (direct, proxied)
    assert rate_rps > 300, rate_rps


def _rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return (
        int(next(line for line in status.splitlines() if line.startswith("VmRSS:")).split()[1])
        / 1024
    )


@pytest.mark.parametrize("toxic", [False, True])
def test_a_client_that_does_not_read_is_held_back(
    own_fp: FaultProxy, echo_port: int, toxic: bool
) -> None:
    """Back-pressure: the proxy stops reading instead of buffering without bound.
    (Toxiproxy buffers up to 1024 chunks in a latency toxic: all 48 MB go through.)"""
    fp = own_fp
    port = listen_port(fp.create("echo", echo_port))
    if toxic:  # the pipeline path (chunks inside fault stages) rather than the fast path
        fp.toxic("echo", "latency", attributes={"latency": 1})
    payload = os.urandom(1 << 20) * 48
    before_mb = _rss_mb(fp.process.pid)
    with connect(port) as sock:
        sender = threading.Thread(target=sock.sendall, args=(payload,), daemon=True)
        sender.start()
        sender.join(0.5)
        assert sender.is_alive(), "48 MB went through a client that reads nothing"
        assert _rss_mb(fp.process.pid) - before_mb < 40
        assert recv_exactly(sock, len(payload)) == payload
        sender.join(TIMEOUT_S)


@pytest.mark.parametrize("loop", EVENT_LOOPS)
def test_bytes_and_eof_sent_at_once_on_connect_are_kept(
    tmp_path: Path, echo_port: int, loop: str
) -> None:
    """A client may send (and half-close) before the proxy has reached the upstream."""
    other = start_proxy(tmp_path / "stderr.log", "--event-loop", loop)
    try:
        port = listen_port(other.create("echo", echo_port))
        socks = [connect(port) for _ in range(20)]
        for sock in socks:
            sock.sendall(b"early" * 200)
            sock.shutdown(socket.SHUT_WR)
        for sock in socks:
            with sock:
                assert recv_until_closed(sock) == b"early" * 200
    finally:
        stop_proxy(other)
