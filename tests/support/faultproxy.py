"""Helpers of the fault proxy tests: the process, its API, upstream servers, sockets.

The fault proxy runs as a real process on 127.0.0.1, driven through its Toxiproxy
API. Upstreams (a TCP echo server and a keep-alive HTTP server) run in threads of
the test process; every port is picked by the kernel (port 0). The fixtures built on
these are in ``tests/component/conftest.py``.
"""

from __future__ import annotations

import http.client
import http.server
import os
import select
import socket
import socketserver
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

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_S = 5.0


# --- upstream servers ----------------------------------------------------------------


class Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        try:
            while data := self.request.recv(65536):
                self.request.sendall(data)
        except OSError:
            pass  # the proxy reset the connection (reset_peer)


class Hello(http.server.BaseHTTPRequestHandler):
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


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024  # the default 5 overflows when tests connect many at once


class HttpServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024


def serve(server: socketserver.TCPServer) -> Iterator[int]:
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


# --- the fault proxy process ---------------------------------------------------------


@dataclass
class FaultProxy:
    """A running fault proxy process and an HTTP session to its API.

    ``kind``: ``faultproxy`` (``lab.faultproxy``) or ``toxiproxy`` (Toxiproxy's own
    server, the oracle the differential tests compare it with).
    """

    url: str
    port: int
    process: subprocess.Popen[str]
    http: requests.Session
    kind: str = "faultproxy"

    def call(self, method: str, path: str, body: Any = None) -> requests.Response:
        return self.http.request(method, self.url + path, json=body, timeout=TIMEOUT_S)

    def create(self, name: str, upstream_port: int, **fields: Any) -> dict[str, Any]:
        body = {"name": name, "listen": "127.0.0.1:0", "upstream": f"127.0.0.1:{upstream_port}"}
        response = self.call("POST", "/proxies", {**body, **fields})
        assert response.status_code == 201, response.text
        result: dict[str, Any] = response.json()
        return result

    def toxic(self, proxy: str, kind: str, **fields: Any) -> dict[str, Any]:
        """Add a toxic (attributes as `attributes=`); it must be accepted."""
        response = self.call("POST", f"/proxies/{proxy}/toxics", {"type": kind, **fields})
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    def remove(self, proxy: str, toxic: str) -> None:
        assert self.call("DELETE", f"/proxies/{proxy}/toxics/{toxic}").status_code == 204

    def update(self, proxy: str, toxic: str, **fields: Any) -> None:
        assert self.call("POST", f"/proxies/{proxy}/toxics/{toxic}", fields).status_code == 200


def proxy_env(token: str | None = None) -> dict[str, str]:
    """This process' environment with GAMEDAY_ADMIN_TOKEN set to `token` (None: unset)."""
    env = {key: value for key, value in os.environ.items() if key != "GAMEDAY_ADMIN_TOKEN"}
    return env if token is None else {**env, "GAMEDAY_ADMIN_TOKEN": token}


def start_proxy(log_path: Path, *args: str, token: str | None = None) -> FaultProxy:
    """Start `python -m lab.faultproxy` on a free port (requiring the admin `token` if
    given, which the session then sends); wait for its first line."""
    command = [sys.executable, "-m", "lab.faultproxy", "--host", "127.0.0.1", "--port", "0",
               *args]
    process = subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.PIPE, text=True, stderr=log_path.open("w"),
        env=proxy_env(token),
    )
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], 10.0)
    line = process.stdout.readline() if ready else ""
    if not line.startswith("listening http://127.0.0.1:"):
        process.kill()
        pytest.fail(f"fault proxy did not start: {line!r} {log_path.read_text()}")
    url = line.split()[1]
    session = requests.Session()
    if token is not None:
        session.headers["Authorization"] = f"Bearer {token}"
    return FaultProxy(url, int(url.rsplit(":", 1)[1]), process, session)


def free_port() -> int:
    """A port the kernel has just handed out and taken back (for a program that cannot
    listen on port 0 and say which port it got)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_toxiproxy(log_path: Path, server: Path, *args: str) -> FaultProxy:
    """Start Toxiproxy's server (``server``, see lab/gocomponents.py) on a free port of
    127.0.0.1 with its proxy metrics on; wait until its API answers."""
    port = free_port()
    command = [str(server), "-host", "127.0.0.1", "-port", str(port), "-proxy-metrics", *args]
    process = subprocess.Popen(
        command, stdout=log_path.open("w"), stderr=subprocess.STDOUT, text=True,
        env=proxy_env(None),
    )
    url = f"http://127.0.0.1:{port}"
    session = requests.Session()
    deadline = time.monotonic() + 10.0
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if session.get(url + "/version", timeout=1.0).ok:
                return FaultProxy(url, port, process, session, kind="toxiproxy")
        except requests.ConnectionError:
            time.sleep(0.05)
    process.kill()
    process.wait()
    pytest.fail(f"toxiproxy did not start on port {port}: {log_path.read_text()}")


def stop_proxy(proxy: FaultProxy) -> None:
    """SIGTERM the process (by its own handle) and expect a clean exit."""
    proxy.http.close()
    proxy.process.terminate()
    assert proxy.process.wait(timeout=TIMEOUT_S) == 0


# --- sockets -------------------------------------------------------------------------


def listen_port(proxy: dict[str, Any]) -> int:
    """The port a proxy (as the API returned it) listens on."""
    return int(proxy["listen"].rsplit(":", 1)[1])


def connect(port: int, timeout_s: float = TIMEOUT_S) -> socket.socket:
    """A TCP connection to 127.0.0.1:port, Nagle off."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout_s)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def recv_exactly(sock: socket.socket, size: int) -> bytes:
    """Exactly `size` bytes (fails if the peer closes first)."""
    data = bytearray()
    while len(data) < size:
        part = sock.recv(size - len(data))
        assert part, f"connection closed early after {len(data)} bytes"
        data += part
    return bytes(data)


def recv_until_closed(sock: socket.socket) -> bytes:
    """Everything until the peer closes (EOF); a reset fails the test."""
    data = bytearray()
    while part := sock.recv(65536):
        data += part
    return bytes(data)


def echo(sock: socket.socket, payload: bytes = b"ping") -> float:
    """Send `payload`, expect it back; the round trip in seconds."""
    started = time.perf_counter()
    sock.sendall(payload)
    assert recv_exactly(sock, len(payload)) == payload
    return time.perf_counter() - started


def closed_by_peer(sock: socket.socket) -> bool:
    """True when the next read finds the connection closed (EOF or reset)."""
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def get_times_ms(port: int, count: int) -> list[float]:
    """`count` GETs on one keep-alive connection; each one's time in ms."""
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
