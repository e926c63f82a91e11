"""The fault proxy as a real process on 127.0.0.1, driven through its Toxiproxy API.

Upstreams (a TCP echo server and a keep-alive HTTP server) run in threads of the test
process; every port is picked by the kernel (port 0).
"""

from __future__ import annotations

import http.client
import http.server
import json
import os
import select
import socket
import socketserver
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from chaostoxi.proxy import actions as proxy_actions
from chaostoxi.toxic import actions as toxic_actions

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT_S = 5.0


# --- upstream servers ----------------------------------------------------------------


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        while data := self.request.recv(65536):
            self.request.sendall(data)


class _Hello(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are separate writes

    def do_GET(self) -> None:
        body = b"hello"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


def _serve(server: socketserver.TCPServer) -> Iterator[int]:
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def echo_port() -> Iterator[int]:
    yield from _serve(_Server(("127.0.0.1", 0), _Echo))


@pytest.fixture(scope="module")
def http_port() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hello)
    server.daemon_threads = True
    yield from _serve(server)


# --- the fault proxy process ---------------------------------------------------------


@dataclass
class FaultProxy:
    url: str
    port: int
    process: subprocess.Popen[str]
    http: requests.Session

    def call(self, method: str, path: str, body: Any = None) -> requests.Response:
        return self.http.request(method, self.url + path, json=body, timeout=TIMEOUT_S)

    def create(self, name: str, upstream_port: int, **fields: Any) -> dict[str, Any]:
        body = {"name": name, "listen": "127.0.0.1:0", "upstream": f"127.0.0.1:{upstream_port}"}
        response = self.call("POST", "/proxies", {**body, **fields})
        assert response.status_code == 201, response.text
        result: dict[str, Any] = response.json()
        return result


def _start(log_path: Path, *args: str) -> FaultProxy:
    command = [sys.executable, "-m", "lab.faultproxy", "--host", "127.0.0.1", "--port", "0"]
    process = subprocess.Popen(
        [*command, *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        stderr=log_path.open("w"),
    )
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], 10.0)
    line = process.stdout.readline() if ready else ""
    if not line.startswith("listening http://127.0.0.1:"):
        process.kill()
        pytest.fail(f"fault proxy did not start: {line!r} {log_path.read_text()}")
    url = line.split()[1]
    return FaultProxy(url, int(url.rsplit(":", 1)[1]), process, requests.Session())


def _stop(proxy: FaultProxy) -> None:
    proxy.http.close()
    proxy.process.terminate()
    assert proxy.process.wait(timeout=TIMEOUT_S) == 0


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FaultProxy]:
    proxy = _start(tmp_path_factory.mktemp("faultproxy") / "stderr.log")
    yield proxy
    _stop(proxy)


@pytest.fixture
def fp(server: FaultProxy) -> Iterator[FaultProxy]:
    """The shared fault proxy, emptied after each test."""
    yield server
    for name in server.call("GET", "/proxies").json():
        assert server.call("DELETE", f"/proxies/{name}").status_code == 204


# --- helpers -------------------------------------------------------------------------


def _port(proxy: dict[str, Any]) -> int:
    return int(proxy["listen"].rsplit(":", 1)[1])


def _connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT_S)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _recv_exactly(sock: socket.socket, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        part = sock.recv(size - len(data))
        assert part, "connection closed early"
        data += part
    return bytes(data)


def _echo(sock: socket.socket, payload: bytes = b"ping") -> float:
    started = time.perf_counter()
    sock.sendall(payload)
    assert _recv_exactly(sock, len(payload)) == payload
    return time.perf_counter() - started


def _closed_by_peer(sock: socket.socket) -> bool:
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def _get_times_ms(port: int, count: int) -> list[float]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT_S)
    times = []
    for _ in range(count):
        started = time.perf_counter()
        connection.request("GET", "/")
        response = connection.getresponse()
        assert response.read() == b"hello"
        times.append((time.perf_counter() - started) * 1000)
    connection.close()
    return times


def _latency(fp: FaultProxy, proxy: str, latency_ms: int, **fields: Any) -> requests.Response:
    body = {"type": "latency", "attributes": {"latency": latency_ms}, **fields}
    return fp.call("POST", f"/proxies/{proxy}/toxics", body)


# --- proxies -------------------------------------------------------------------------


def test_traffic_flows_through_a_new_proxy(fp: FaultProxy, echo_port: int) -> None:
    proxy = fp.create("echo", echo_port)
    assert proxy["enabled"] is True and proxy["toxics"] == []
    assert proxy["upstream"] == f"127.0.0.1:{echo_port}" and _port(proxy) > 0
    assert fp.call("GET", "/proxies").json() == {"echo": proxy}
    assert fp.call("GET", "/proxies/echo").json() == proxy
    with _connect(_port(proxy)) as sock:
        _echo(sock, os.urandom(300_000))


def test_disable_refuses_and_closes_then_enable_restores(fp: FaultProxy, echo_port: int) -> None:
    proxy = fp.create("echo", echo_port)
    port = _port(proxy)
    with _connect(port) as open_sock:
        _echo(open_sock)
        down = fp.call("POST", "/proxies/echo", {"enabled": False})
        assert down.status_code == 200 and down.json()["enabled"] is False
        assert _closed_by_peer(open_sock)
    with pytest.raises(ConnectionRefusedError):
        _connect(port)
    up = fp.call("POST", "/proxies/echo", {"enabled": True}).json()
    assert up["enabled"] is True and up["listen"] == proxy["listen"]
    with _connect(port) as sock:
        _echo(sock)


def test_update_upstream_and_delete(fp: FaultProxy, echo_port: int, http_port: int) -> None:
    proxy = fp.create("p", echo_port)
    moved = fp.call("PATCH", "/proxies/p", {"upstream": f"127.0.0.1:{http_port}"}).json()
    assert moved["upstream"] == f"127.0.0.1:{http_port}" and moved["enabled"] is True
    assert _get_times_ms(_port(proxy), 1)
    assert fp.call("DELETE", "/proxies/p").status_code == 204
    assert fp.call("GET", "/proxies/p").status_code == 404
    with pytest.raises(ConnectionRefusedError):
        _connect(_port(proxy))


def test_created_disabled_does_not_listen(fp: FaultProxy, echo_port: int) -> None:
    proxy = fp.create("off", echo_port, enabled=False)
    assert proxy["enabled"] is False
    on = fp.call("POST", "/proxies/off", {"enabled": True}).json()
    with _connect(_port(on)) as sock:
        _echo(sock)


# --- latency -------------------------------------------------------------------------


def test_latency_adds_its_delay_once_and_removal_restores(fp: FaultProxy, http_port: int) -> None:
    port = _port(fp.create("web", http_port))
    assert statistics.median(_get_times_ms(port, 10)) < 20
    toxic = _latency(fp, "web", 100)
    assert toxic.status_code == 200
    assert toxic.json() == {
        "name": "latency_downstream",
        "type": "latency",
        "stream": "downstream",
        "toxicity": 1.0,
        "attributes": {"latency": 100, "jitter": 0},
    }
    assert 95 <= statistics.median(_get_times_ms(port, 10)) <= 130
    assert fp.call("DELETE", "/proxies/web/toxics/latency_downstream").status_code == 204
    assert statistics.median(_get_times_ms(port, 10)) < 20


def test_latency_is_pipelined_not_per_chunk(fp: FaultProxy, echo_port: int) -> None:
    port = _port(fp.create("echo", echo_port))
    _latency(fp, "echo", 100, stream="upstream")
    with _connect(port) as sock:
        elapsed_s = _echo(sock, os.urandom(2_000_000))
    assert 0.1 <= elapsed_s < 0.6, elapsed_s


def test_toxics_change_on_an_open_connection_without_losing_bytes(
    fp: FaultProxy, echo_port: int
) -> None:
    port = _port(fp.create("echo", echo_port))
    payload = os.urandom(1_500_000)
    received = bytearray()
    with _connect(port) as sock:
        reader = threading.Thread(target=lambda: received.extend(_recv_exactly(sock, len(payload))))
        reader.start()
        writer = threading.Thread(target=_send_slowly, args=(sock, payload))
        writer.start()
        for stream in ("upstream", "downstream", "upstream"):
            _latency(fp, "echo", 30, stream=stream, name=f"slow_{stream}")
            time.sleep(0.05)
            body = {"attributes": {"latency": 60, "jitter": 20}}
            assert fp.call("POST", f"/proxies/echo/toxics/slow_{stream}", body).ok
            time.sleep(0.05)
            fp.call("DELETE", f"/proxies/echo/toxics/slow_{stream}")
        writer.join(TIMEOUT_S)
        reader.join(TIMEOUT_S)
    assert bytes(received) == payload


def _send_slowly(sock: socket.socket, payload: bytes) -> None:
    for start in range(0, len(payload), 10_000):
        sock.sendall(payload[start : start + 10_000])
        time.sleep(0.002)


def test_toxic_show_update_list(fp: FaultProxy, echo_port: int) -> None:
    fp.create("p", echo_port)
    _latency(fp, "p", 10, stream="upstream", name="a", toxicity=0.5)
    _latency(fp, "p", 20, name="b")
    names = [t["name"] for t in fp.call("GET", "/proxies/p/toxics").json()]
    assert names == ["a", "b"]
    updated = fp.call("POST", "/proxies/p/toxics/a", {"attributes": {"jitter": 5}}).json()
    assert updated["attributes"] == {"latency": 10, "jitter": 5} and updated["toxicity"] == 0.5
    assert fp.call("GET", "/proxies/p/toxics/a").json() == updated
    assert fp.call("GET", "/proxies/p").json()["toxics"][0] == updated


# --- errors, reset, version, metrics -------------------------------------------------


@pytest.mark.parametrize(
    "case",
    [
        ("GET", "/proxies/nope", None, 404, "proxy not found"),
        ("POST", "/proxies/nope", {"enabled": False}, 404, "proxy not found"),
        ("DELETE", "/proxies/nope", None, 404, "proxy not found"),
        ("GET", "/proxies/p/toxics/nope", None, 404, "toxic not found"),
        ("DELETE", "/proxies/p/toxics/nope", None, 404, "toxic not found"),
        ("POST", "/proxies", {"name": "p", "upstream": "127.0.0.1:1"}, 409, "already exists"),
        ("POST", "/proxies/p/toxics", {"type": "latency", "name": "t"}, 409, "already exists"),
        ("POST", "/proxies", {"name": "q"}, 400, "upstream"),
        ("POST", "/proxies", {"upstream": "127.0.0.1:1"}, 400, "name"),
        ("POST", "/proxies", {"name": "q", "upstream": "nowhere"}, 400, "upstream"),
        ("POST", "/proxies", {"name": "q", "upstream": "h:1", "listen": "x"}, 400, "listen"),
        ("POST", "/proxies", {"name": "q", "upstream": "h:1", "enabled": 1}, 400, "enabled"),
        ("POST", "/proxies/p/toxics", {"type": "bogus"}, 400, "latency"),
        ("POST", "/proxies/p/toxics", {"type": "latency", "stream": "sideways"}, 400, "stream"),
        ("POST", "/proxies/p/toxics", {"type": "latency", "toxicity": 2}, 400, "toxicity"),
        (
            "POST",
            "/proxies/p/toxics",
            {"type": "latency", "attributes": {"latency": -1}},
            400,
            "latency",
        ),
    ],
)
def test_errors(fp: FaultProxy, echo_port: int, case: tuple[str, str, Any, int, str]) -> None:
    method, path, body, status, mentions = case
    fp.create("p", echo_port)
    assert _latency(fp, "p", 0, name="t").ok
    response = fp.call(method, path, body)
    assert response.status_code == status
    assert response.json()["status"] == status and mentions in response.json()["error"]


def test_bad_json_is_a_400(fp: FaultProxy) -> None:
    response = fp.http.post(fp.url + "/proxies", data=b"{nope", timeout=TIMEOUT_S)
    assert response.status_code == 400 and "bad request body" in response.json()["error"]


def test_reset_enables_all_and_removes_toxics(fp: FaultProxy, echo_port: int) -> None:
    fp.create("a", echo_port, enabled=False)
    fp.create("b", echo_port)
    _latency(fp, "b", 100)
    assert fp.call("POST", "/reset").status_code == 204
    proxies = fp.call("GET", "/proxies").json()
    assert all(p["enabled"] and p["toxics"] == [] for p in proxies.values())
    with _connect(_port(proxies["a"])) as sock:
        _echo(sock)


def test_version_and_metrics(fp: FaultProxy, echo_port: int) -> None:
    assert "version" in fp.call("GET", "/version").json()
    with _connect(_port(fp.create("m", echo_port))) as sock:
        _echo(sock, b"x" * 1000)
    _latency(fp, "m", 10)
    text = fp.call("GET", "/metrics").text
    assert 'faultproxy_active_toxics{proxy="m"} 1.0' in text
    assert 'faultproxy_proxy_enabled{proxy="m"} 1.0' in text
    for metric in ("received", "sent"):
        for direction in ("upstream", "downstream"):
            line = next(
                x
                for x in text.splitlines()
                if x.startswith(f"toxiproxy_proxy_{metric}_bytes_total{{")
                and f'direction="{direction}"' in x
                and 'proxy="m"' in x
            )
            assert line.endswith(" 1000.0")


def test_browsers_are_refused(fp: FaultProxy) -> None:
    response = fp.http.get(fp.url + "/proxies", headers={"User-Agent": "Mozilla/5.0"})
    assert response.status_code == 403


# --- throughput ----------------------------------------------------------------------


def test_keep_alive_http_is_not_slowed_down(fp: FaultProxy, http_port: int) -> None:
    port = _port(fp.create("web", http_port))
    direct = statistics.median(_get_times_ms(http_port, 300))
    started = time.perf_counter()
    proxied = statistics.median(_get_times_ms(port, 600))
    rate_rps = 600 / (time.perf_counter() - started)
    assert proxied - direct < 2.0, (direct, proxied)
    assert rate_rps > 300, rate_rps


# --- start-up config -----------------------------------------------------------------


def test_config_file_creates_proxies(tmp_path: Path, echo_port: int) -> None:
    config = [
        {"name": "on", "listen": "127.0.0.1:0", "upstream": f"127.0.0.1:{echo_port}"},
        {
            "name": "off",
            "listen": "127.0.0.1:0",
            "upstream": f"127.0.0.1:{echo_port}",
            "enabled": False,
        },
    ]
    path = tmp_path / "proxies.json"
    path.write_text(json.dumps(config))
    other = _start(tmp_path / "stderr.log", "--config", str(path))
    try:
        proxies = other.call("GET", "/proxies").json()
        assert proxies["on"]["enabled"] is True and proxies["off"]["enabled"] is False
        with _connect(_port(proxies["on"])) as sock:
            _echo(sock)
    finally:
        _stop(other)


def test_populate_creates_and_keeps_matching_proxies(fp: FaultProxy, echo_port: int) -> None:
    existing = fp.create("keep", echo_port)
    body = [
        {"name": "keep", "listen": existing["listen"], "upstream": existing["upstream"]},
        {"name": "new", "upstream": f"127.0.0.1:{echo_port}"},
    ]
    response = fp.call("POST", "/populate", body)
    assert response.status_code == 201
    proxies = {p["name"]: p for p in response.json()["proxies"]}
    assert proxies["keep"] == existing and proxies["new"]["enabled"] is True
    with _connect(_port(proxies["new"])) as sock:
        _echo(sock)
    assert fp.call("POST", "/populate", [{"name": "x"}]).status_code == 400


# --- chaostoolkit-toxiproxy, unchanged -----------------------------------------------


def test_chaostoolkit_toxiproxy_actions(
    fp: FaultProxy, echo_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ctk_PORT", "")  # create_proxy writes it; restored after the test
    cfg: dict[str, Any] = {"toxiproxy_host": "127.0.0.1", "toxiproxy_port": fp.port}
    assert proxy_actions.create_proxy(
        proxy_name="ctk",
        upstream_host="127.0.0.1",
        upstream_port=echo_port,
        listen_host="127.0.0.1",
        listen_port=0,
        configuration=cfg,
    )
    port = int(cfg["ctk_PORT"])
    with _connect(port) as sock:
        assert _echo(sock) < 0.05
        assert toxic_actions.create_latency_toxic(
            for_proxy="ctk", toxic_name="slow", latency=100, configuration=cfg
        )
        assert 0.095 < _echo(sock) < 0.2
        assert toxic_actions.delete_toxic(for_proxy="ctk", toxic_name="slow", configuration=cfg)
        assert _echo(sock) < 0.05
    assert proxy_actions.disable_proxy(proxy_name="ctk", configuration=cfg)
    with pytest.raises(ConnectionRefusedError):
        _connect(port)
    assert proxy_actions.enable_proxy(proxy_name="ctk", configuration=cfg)
    with _connect(port) as sock:
        _echo(sock)
    assert proxy_actions.reset(configuration=cfg)
    proxy_actions.delete_proxy(proxy_name="ctk", configuration=cfg)
    assert fp.call("GET", "/proxies/ctk").status_code == 404
