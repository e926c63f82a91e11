"""Each toxic's effect measured over real TCP through the fault proxy process, and
through Toxiproxy's own server (``fp``: both must pass).

Margins (2 shared cores, other suites running): a fault is never early, so lower
bounds are tight; upper bounds leave room for a busy machine. latency 100 ms -> the
median of 15 round trips adds [99, 106] ms; bandwidth within 10 % of the rate over
0.8 s; limit_data exactly N bytes then EOF; timeout 0 holds (no byte, no close for
0.4 s) and drops; timeout/reset_peer/slow_close act within [t, t + 80 ms]; slicer ->
most reads are single pieces of at most average_size + size_variation bytes.
"""

from __future__ import annotations

import os
import socket
import statistics
import threading
import time

import pytest
from support.faultproxy import (
    FaultProxy,
    closed_by_peer,
    connect,
    echo,
    get_times_ms,
    listen_port,
    recv_exactly,
    recv_until_closed,
)


def _proxy(fp: FaultProxy, echo_port: int) -> int:
    return listen_port(fp.create("p", echo_port))


def _expect_reset(sock: socket.socket) -> float:
    """Seconds until the connection is reset (fails on EOF or data)."""
    started = time.perf_counter()
    with pytest.raises(ConnectionResetError):
        data = sock.recv(65536)
        pytest.fail(f"expected a reset, got {data!r}")
    return time.perf_counter() - started


def _silent_for(sock: socket.socket, seconds: float) -> bool:
    """True when nothing (no byte, no EOF, no reset) arrives for `seconds`."""
    sock.settimeout(seconds)
    try:
        sock.recv(1)
    except TimeoutError:
        return True
    finally:
        sock.settimeout(5.0)
    return False


# --- latency -------------------------------------------------------------------------


def test_latency_100_ms_adds_100_ms_at_the_median(fp: FaultProxy, http_port: int) -> None:
    port = listen_port(fp.create("web", http_port))
    direct_ms = statistics.median(get_times_ms(port, 15))
    fp.toxic("web", "latency", attributes={"latency": 100})
    added_ms = statistics.median(get_times_ms(port, 15)) - direct_ms
    assert 99 <= added_ms <= 106, added_ms


def test_latency_on_both_streams_adds_up(fp: FaultProxy, echo_port: int) -> None:
    port = _proxy(fp, echo_port)
    fp.toxic("p", "latency", stream="upstream", attributes={"latency": 30})
    fp.toxic("p", "latency", stream="downstream", attributes={"latency": 40})
    with connect(port) as sock:
        assert 0.069 <= statistics.median(echo(sock) for _ in range(5)) <= 0.08


def test_jitter_spreads_the_delay(fp: FaultProxy, echo_port: int) -> None:
    port = _proxy(fp, echo_port)
    fp.toxic("p", "latency", attributes={"latency": 50, "jitter": 30})
    with connect(port) as sock:
        times_s = [echo(sock) for _ in range(40)]
    # 40 uniform draws from [20, 80] ms: a median outside [35, 70] has P < 0.2 %
    assert min(times_s) >= 0.019 and 0.035 <= statistics.median(times_s) <= 0.07
    assert max(times_s) - min(times_s) >= 0.02


# --- bandwidth -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stream", "rate_kbps", "size"), [("downstream", 2000, 1_600_000), ("upstream", 100, 80_000)]
)
def test_bandwidth_holds_the_rate_within_10_percent(
    fp: FaultProxy, echo_port: int, stream: str, rate_kbps: int, size: int
) -> None:
    port = _proxy(fp, echo_port)
    fp.toxic("p", "bandwidth", stream=stream, attributes={"rate": rate_kbps})
    payload = os.urandom(size)
    with connect(port) as sock:
        elapsed_s = echo(sock, payload)
    rate = size / elapsed_s / 1000
    assert rate_kbps * 0.9 <= rate <= rate_kbps * 1.1, rate


def test_bandwidth_added_and_removed_mid_stream_loses_nothing(
    fp: FaultProxy, echo_port: int
) -> None:
    port = _proxy(fp, echo_port)
    payload = os.urandom(600_000)
    with connect(port) as sock:
        received = bytearray()
        reader = threading.Thread(target=lambda: received.extend(recv_exactly(sock, len(payload))))
        reader.start()
        sock.sendall(payload[:200_000])
        fp.toxic("p", "bandwidth", name="bw", attributes={"rate": 500})
        sock.sendall(payload[200_000:400_000])
        time.sleep(0.2)
        fp.update("p", "bw", attributes={"rate": 0})
        sock.sendall(payload[400_000:])
        time.sleep(0.1)
        fp.remove("p", "bw")
        reader.join(5.0)
    assert bytes(received) == payload


# --- limit_data ----------------------------------------------------------------------


@pytest.mark.parametrize("limit", [0, 1, 1000, 4096, 100_000])
def test_limit_data_closes_after_exactly_n_bytes(
    fp: FaultProxy, echo_port: int, limit: int
) -> None:
    port = _proxy(fp, echo_port)
    fp.toxic("p", "limit_data", attributes={"bytes": limit})
    payload = os.urandom(limit + 5000)
    with connect(port) as sock:
        sock.sendall(payload)
        assert recv_until_closed(sock) == payload[:limit]


def test_limit_data_upstream_lets_the_server_see_n_bytes(fp: FaultProxy) -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listen_port(fp.create("p", listener.getsockname()[1]))
        fp.toxic("p", "limit_data", stream="upstream", attributes={"bytes": 10})
        with connect(port) as sock:
            sock.sendall(b"0123456789abcdef")
            upstream, _ = listener.accept()
            with upstream:
                upstream.settimeout(5.0)
                assert recv_until_closed(upstream) == b"0123456789"
            assert closed_by_peer(sock)


# --- timeout -------------------------------------------------------------------------


def test_timeout_zero_holds_and_drops_until_removed(fp: FaultProxy, echo_port: int) -> None:
    port = _proxy(fp, echo_port)
    fp.toxic("p", "timeout", attributes={"timeout": 0})
    with connect(port) as sock:
        sock.sendall(b"dropped")
        assert _silent_for(sock, 0.4)
        sock.sendall(b"dropped too")
        assert _silent_for(sock, 0.2)
        fp.remove("p", "timeout_downstream")
        assert closed_by_peer(sock)
    with connect(port) as sock:
        echo(sock)


def test_timeout_closes_after_the_timeout(fp: FaultProxy, echo_port: int) -> None:
    port = _proxy(fp, echo_port)
    fp.toxic("p", "timeout", stream="upstream", attributes={"timeout": 300})
    with connect(port) as sock:
        started = time.perf_counter()
        sock.sendall(b"dropped")
        assert recv_until_closed(sock) == b""
        assert 0.29 <= time.perf_counter() - started <= 0.38


# --- reset_peer ----------------------------------------------------------------------


def test_reset_peer_resets_after_its_timeout(fp: FaultProxy, echo_port: int) -> None:
    port = _proxy(fp, echo_port)
    fp.toxic("p", "reset_peer", attributes={"timeout": 200})
    with connect(port) as sock:
        sock.sendall(b"hello")
        assert 0.19 <= _expect_reset(sock) <= 0.28


def test_reset_peer_zero_resets_at_once(fp: FaultProxy, echo_port: int) -> None:
    port = _proxy(fp, echo_port)
    fp.toxic("p", "reset_peer", stream="upstream")
    with connect(port) as sock:
        sock.sendall(b"hello")
        assert _expect_reset(sock) <= 0.08


def test_reset_peer_added_to_an_open_connection_ends_it(fp: FaultProxy, echo_port: int) -> None:
    """Toxiproxy closes such a connection (its reset needs the toxic there when the
    connection opens); the fault proxy resets it (test below). Either way it ends."""
    port = _proxy(fp, echo_port)
    with connect(port) as sock:
        echo(sock)
        fp.toxic("p", "reset_peer", attributes={"timeout": 50})
        started = time.perf_counter()
        sock.sendall(b"hello")
        assert closed_by_peer(sock)
        assert 0.049 <= time.perf_counter() - started <= 0.13


def test_reset_peer_added_to_an_open_connection_resets_it(
    own_fp: FaultProxy, echo_port: int
) -> None:
    port = _proxy(own_fp, echo_port)
    with connect(port) as sock:
        echo(sock)
        own_fp.toxic("p", "reset_peer", attributes={"timeout": 50})
        sock.sendall(b"hello")
        assert 0.049 <= _expect_reset(sock) <= 0.13


# --- slicer --------------------------------------------------------------------------


def test_slicer_slices_into_small_delayed_pieces(fp: FaultProxy, echo_port: int) -> None:
    port = _proxy(fp, echo_port)
    attributes = {"average_size": 100, "size_variation": 20, "delay": 10_000}
    fp.toxic("p", "slicer", attributes=attributes)
    payload = os.urandom(1600)  # 1600 -> 800 -> 400 -> 200 -> 16 pieces of 80..120 bytes
    with connect(port) as sock:
        started = time.perf_counter()
        sock.sendall(payload)
        sizes, received = [], bytearray()
        while len(received) < len(payload):
            part = sock.recv(65536)
            sizes.append(len(part))
            received += part
        elapsed_s = time.perf_counter() - started
    assert bytes(received) == payload
    single_pieces = [size for size in sizes if size <= 120]  # a busy reader may get two
    assert len(single_pieces) >= 0.75 * len(sizes) and len(sizes) >= 10, sizes
    assert elapsed_s >= 15 * 0.01  # 10 ms after each piece


# --- slow_close ----------------------------------------------------------------------


def test_slow_close_delays_the_close(fp: FaultProxy, echo_port: int) -> None:
    port = _proxy(fp, echo_port)
    fp.toxic("p", "slow_close", attributes={"delay": 300})
    with connect(port) as sock:
        echo(sock, b"data is not delayed")
        started = time.perf_counter()
        sock.shutdown(socket.SHUT_WR)  # the echo server then closes its side
        assert recv_until_closed(sock) == b""
        assert 0.3 <= time.perf_counter() - started <= 0.38


# --- chains and toxicity ------------------------------------------------------------------------


def test_toxics_on_one_stream_apply_in_order(fp: FaultProxy, echo_port: int) -> None:
    port = _proxy(fp, echo_port)
    fp.toxic("p", "limit_data", name="first", attributes={"bytes": 1000})
    fp.toxic("p", "latency", name="then", attributes={"latency": 100})
    assert [t["name"] for t in fp.call("GET", "/proxies/p/toxics").json()] == ["first", "then"]
    with connect(port) as sock:
        started = time.perf_counter()
        sock.sendall(os.urandom(5000))
        assert len(recv_until_closed(sock)) == 1000  # cut, delayed, then closed
        assert 0.1 <= time.perf_counter() - started <= 0.18


def test_toxicity_is_a_probability_per_connection(fp: FaultProxy, echo_port: int) -> None:
    port = _proxy(fp, echo_port)
    fp.toxic("p", "latency", toxicity=0.5, attributes={"latency": 60})
    slow = 0
    for _ in range(30):
        with connect(port) as sock:
            first, second = echo(sock), echo(sock)
        if max(first, second) >= 0.06:  # delays are never short: this one was rolled in
            assert min(first, second) >= 0.06, "rolled once per connection, not per chunk"
            slow += 1
    assert 5 <= slow <= 25, slow  # P(outside) < 0.1 %


# --- input Toxiproxy 2.5 takes and then crashes on (its server exits) ------------------


@pytest.mark.parametrize(
    "attributes",
    [{"average_size": 0}, {"average_size": 1, "size_variation": 10}, {"average_size": -4}],
)
def test_a_slicer_toxiproxy_would_crash_on_still_carries_every_byte(
    own_fp: FaultProxy, echo_port: int, attributes: dict[str, int]
) -> None:
    """Toxiproxy 2.5: a stack overflow (average_size < 1) or a slice out of range."""
    port = _proxy(own_fp, echo_port)
    own_fp.toxic("p", "slicer", attributes=attributes)
    with connect(port) as sock:
        echo(sock, os.urandom(3000))


def test_a_negative_bandwidth_stalls_like_zero(own_fp: FaultProxy, echo_port: int) -> None:
    """Toxiproxy 2.5 panics on the first chunk (a slice out of range)."""
    port = _proxy(own_fp, echo_port)
    own_fp.toxic("p", "bandwidth", name="bw", attributes={"rate": -1})
    with connect(port) as sock:
        sock.sendall(b"held")
        assert _silent_for(sock, 0.3)
        own_fp.remove("p", "bw")
        assert recv_exactly(sock, 4) == b"held"


def test_negative_timeout_holds_and_negative_limit_closes_at_once(
    fp: FaultProxy, echo_port: int
) -> None:
    """As Toxiproxy: a timeout below 0 acts as 0 (hold, never close), limit_data below
    0 as 0 (close on the first data, passing nothing)."""
    port = _proxy(fp, echo_port)
    fp.toxic("p", "timeout", name="t", attributes={"timeout": -5})
    with connect(port) as sock:
        sock.sendall(b"dropped")
        assert _silent_for(sock, 0.3)
    fp.remove("p", "t")
    fp.toxic("p", "limit_data", attributes={"bytes": -3})
    with connect(port) as sock:
        sock.sendall(b"cut")
        assert recv_until_closed(sock) == b""
