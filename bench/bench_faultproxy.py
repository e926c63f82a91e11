"""Fault proxy overhead: is it fast enough not to be the bottleneck it simulates?

In one run, against the same TCP echo upstream: a direct connection, the fault proxy
with a proxy and no toxics, Toxiproxy's own server (the one it stands in for, built by
`make setup`; see lab/gocomponents.py) likewise, and HAProxy 2.6 in TCP mode (one
thread) as the compiled baseline, and a bare relay: uvloop, as the fault proxy, with
nothing else (no counters, no fault pipeline), the floor of a relay in Python here.
For each path, median of 3 rounds:

- latency at 500 req/s, open loop on one connection per path, 64-byte messages,
  measured from the intended send time, all paths at once (their sends staggered in
  each 2 ms period, so a stall of the machine hits every path alike): p50 and p99,
  and what the path adds to the direct ones;
- request throughput: closed loop, 32 connections, 64-byte messages (req/s);
- byte throughput: 4 connections streaming 64 KiB blocks (MB/s);
  each throughput also as a share of direct;
- and the fault proxy beside each of its peers, HAProxy and Toxiproxy: its
  throughputs, latencies and CPU per request as a ratio to the peer's, and its added
  latency minus the peer's (each from the same round).

Everything shares the machine's cores: client, path and upstream; so a path's
throughput is what the whole machine manages through it. Per request a proxy makes
twice the socket calls of the echo upstream; with 2 cores shared by client, proxy
and upstream, small-request throughput through any proxy stays near half of direct
(HAProxy included), so the CPU each path's process spends per request (from /proc,
unaffected by other load) is printed too, next to the echo upstream's own, split
into user time (the program's own work) and kernel time (its socket calls).

Targets (issue 4): added p50 <= 0.3 ms, added p99 <= 1.5 ms, throughput >= 60 % of
direct. Goal (issue #20), the one that sets the exit status: the fault proxy's request
throughput / direct at least HAProxy's from the same run, compared round by round (the
fault proxy's requests / HAProxy's, median of the rounds >= 1); the last line says met
or MISSED, and a miss exits 1 (so does `make bench`); a miss is followed by the
floor from the same run: the bare relay's requests / HAProxy's, and the fault
proxy's / the bare relay's.

Measured on a 2-core machine shared with another lab (the shares swing by a tenth
from round to round there, the CPU per request much less): before issue #20, on
asyncio's loop (2 runs), CPU of the fault proxy per request 25.0 and 24.9 µs,
requests / direct 0.41 and 0.46 beside HAProxy's 0.49 and 0.57 (17.5 and 17.0 µs);
on uvloop with the fast path written out (4 runs), 21.8, 19.3, 19.8 and 19.4 µs,
0.36, 0.46, 0.40 and 0.46 beside HAProxy's 0.49, 0.41, 0.54 and 0.49 (16.4, 18.8,
18.7 and 18.6 µs): the goal met in 1 run of 4, the fault proxy's requests / HAProxy's
round by round 0.77, 1.12, 1.06 and 0.97 (medians; 0.84 and 0.90 before). Toxiproxy:
25 to 33 µs. What is left between the fault proxy and HAProxy is user time (about
4.5 µs per request against 1.5; the kernel's share is the same), the interpreter's
and uvloop's work on each read. Bare relays measured beside them (Dec 3, 3 rounds of
this closed loop, not kept in the repository): a uvloop `add_reader` + `recv`/`send`
loop with no counters and no faults 16.1-19.1 µs per request, one forwarding with
`os.splice` through a pipe (no copy into Python) 18.1-19.1, HAProxy 16.1-18.3 and the
fault proxy 17.2-21.5: splicing saves nothing on small requests (two splice calls
per chunk instead of one recv and one send), and no Python relay gets clearly below
HAProxy. Handing each read straight to the link (one Python call per read instead of
two) measured no better either (CPU / HAProxy's 1.13 and 1.13 against 1.07 and 1.01
without it).
With the bare relay in the bench (Dec 3, evening, fresh clone): the fault proxy /
HAProxy 0.951 (rounds 0.908, 0.951, 1.216), the bare relay / HAProxy 0.957, the fault
proxy / the bare relay 1.062; CPU per request: fault proxy 21.8 µs (user 3.9, kernel
18.6), bare relay 22.0 (3.3, 18.7), HAProxy 22.5 (2.2, 19.7). Under `strace -c` both
the fault proxy and HAProxy make one read and one write per message and direction
(4 socket calls per request, plus a shared epoll wait): the kernel's part, ~85 % of
a relay's cost here, is the same for any relay in user space, and what the fault
proxy adds to a bare uvloop relay is below the noise; the difference left is the
interpreter's 1-2 µs per request of user time.

Run: `.venv/bin/python -m bench.bench_faultproxy` (or `make bench`).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from bench.common import figure, median
from gameday.clients.http import admin_headers
from lab.gocomponents import TOXIPROXY, binary_path, missing_reason, recorded_error

ROOT = Path(__file__).resolve().parents[1]
ROUNDS = 3
LATENCY_RATE_RPS = 500
LATENCY_DURATION_S = 3.0
THROUGHPUT_DURATION_S = 2.0
REQUEST_CONNECTIONS = 32
STREAM_CONNECTIONS = 4
MESSAGE = b"m" * 64
BLOCK = b"b" * 65536
STREAM_WINDOW_BYTES = 4 * len(BLOCK)

ECHO_SERVER = """
import asyncio, sys

class Echo(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport
        transport.get_extra_info("socket").setsockopt(6, 1, 1)  # TCP_NODELAY
    def data_received(self, data):
        self.transport.write(data)

async def main():
    server = await asyncio.get_running_loop().create_server(Echo, "127.0.0.1", 0, backlog=1024)
    print(server.sockets[0].getsockname()[1], flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""

BARE_RELAY = """
import asyncio, sys, uvloop

class Half(asyncio.Protocol):
    # One side of a relayed connection: what it reads, the other side's transport writes.
    def __init__(self, other=None):
        self.other = other
        self.early = []  # read before the upstream connection was made
    def connection_made(self, transport):
        self.transport = transport
        transport.get_extra_info("socket").setsockopt(6, 1, 1)  # TCP_NODELAY
    def data_received(self, data):
        if self.other is None:
            self.early.append(data)
        else:
            self.other.transport.write(data)
    def connection_lost(self, exc):
        if self.other is not None:
            self.other.transport.close()

class Client(Half):
    def connection_made(self, transport):
        super().connection_made(transport)
        asyncio.get_running_loop().create_task(self.connect())
    async def connect(self):
        loop = asyncio.get_running_loop()
        _, self.other = await loop.create_connection(lambda: Half(self), "127.0.0.1", UPSTREAM)
        self.other.transport.writelines(self.early)

async def main():
    server = await asyncio.get_running_loop().create_server(Client, "127.0.0.1", 0, backlog=1024)
    print(server.sockets[0].getsockname()[1], flush=True)
    await asyncio.Event().wait()

UPSTREAM = int(sys.argv[1])
uvloop.run(main())
"""

HAPROXY_CONFIG = """
global
    nbthread 1
    maxconn 4096
defaults
    mode tcp
    timeout connect 5s
    timeout client 60s
    timeout server 60s
listen bench
    bind 127.0.0.1:{port}
    server echo 127.0.0.1:{upstream}
"""


@dataclass(frozen=True)
class Route:
    """Where a path is entered, and the process whose CPU time it costs (for the
    direct path: the echo upstream's own)."""

    port: int
    pid: int


@dataclass(frozen=True)
class Figures:
    """One round through one path."""

    p50_ms: float
    p99_ms: float
    requests_per_s: float
    cpu_us_per_request: float
    user_us_per_request: float
    megabytes_per_s: float

    @property
    def kernel_us_per_request(self) -> float:
        """The path's process's system time per request (its socket calls)."""
        return self.cpu_us_per_request - self.user_us_per_request


# --- processes -----------------------------------------------------------------------


@contextmanager
def _process(command: list[str], **options: object) -> Iterator[subprocess.Popen[str]]:
    """A child process, terminated (by its own handle) when the block ends."""
    process = subprocess.Popen(command, cwd=ROOT, text=True, **options)  # type: ignore[call-overload]
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _first_line(process: subprocess.Popen[str]) -> str:
    assert process.stdout is not None
    return process.stdout.readline().strip()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for_port(port: int, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _cpu_s(pid: int) -> tuple[float, float]:
    """CPU time a process has used so far: user + system, and user alone."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    user, system = int(fields[11]), int(fields[12])
    tick = os.sysconf("SC_CLK_TCK")
    return (user + system) / tick, user / tick


def _echo_upstream(stack: ExitStack) -> Route:
    process = stack.enter_context(
        _process([sys.executable, "-c", ECHO_SERVER], stdout=subprocess.PIPE)
    )
    return Route(int(_first_line(process)), process.pid)


def _fault_proxy(stack: ExitStack, upstream: int) -> Route:
    command = [sys.executable, "-m", "lab.faultproxy", "--port", "0", "--log-level", "warning"]
    process = stack.enter_context(_process(command, stdout=subprocess.PIPE))
    api = _first_line(process).split()[1]
    body = {"name": "bench", "listen": "127.0.0.1:0", "upstream": f"127.0.0.1:{upstream}"}
    request = urllib.request.Request(api + "/proxies", data=json.dumps(body).encode(),
                                     headers=admin_headers())
    with urllib.request.urlopen(request, timeout=5) as response:
        return Route(int(json.load(response)["listen"].rsplit(":", 1)[1]), process.pid)


def _bare_relay(stack: ExitStack, upstream: int) -> Route:
    """The floor of a relay in Python on this machine: uvloop, as the fault proxy, and
    nothing else (no counters, no fault pipeline, no back-pressure)."""
    command = [sys.executable, "-c", BARE_RELAY, str(upstream)]
    process = stack.enter_context(_process(command, stdout=subprocess.PIPE))
    return Route(int(_first_line(process)), process.pid)


def _toxiproxy(stack: ExitStack, upstream: int) -> Route | None:
    """Toxiproxy's server with one proxy to the upstream; None (saying why) if unbuilt."""
    server = binary_path(TOXIPROXY, os.environ)
    if not server.is_file():
        reason = missing_reason(TOXIPROXY, os.environ, recorded_error(TOXIPROXY, os.environ))
        print(f"toxiproxy skipped: {reason}", flush=True)
        return None
    api_port = _free_port()
    command = [str(server), "-host", "127.0.0.1", "-port", str(api_port)]
    process = stack.enter_context(_process(command, stdout=subprocess.DEVNULL,
                                           env={**os.environ, "LOG_LEVEL": "error"}))
    _wait_for_port(api_port)
    body = {"name": "bench", "listen": "127.0.0.1:0", "upstream": f"127.0.0.1:{upstream}"}
    request = urllib.request.Request(f"http://127.0.0.1:{api_port}/proxies",
                                     data=json.dumps(body).encode())
    with urllib.request.urlopen(request, timeout=5) as response:
        return Route(int(json.load(response)["listen"].rsplit(":", 1)[1]), process.pid)


def _haproxy(stack: ExitStack, upstream: int) -> Route | None:
    binary = shutil.which("haproxy")
    if binary is None:
        return None
    port = _free_port()
    config = Path(stack.enter_context(tempfile.TemporaryDirectory())) / "haproxy.cfg"
    config.write_text(HAPROXY_CONFIG.format(port=port, upstream=upstream))
    command = [binary, "-db", "-f", str(config)]
    process = stack.enter_context(_process(command, stderr=subprocess.DEVNULL))
    _wait_for_port(port)
    return Route(port, process.pid)


# --- latency at a fixed rate ---------------------------------------------------------


def _wait_until(deadline: float) -> None:
    """Sleep, then spin the last 0.1 ms (sleep overshoots by ~0.06 ms), so sends leave
    on time."""
    if (ahead_s := deadline - time.perf_counter() - 0.0001) > 0:
        time.sleep(ahead_s)
    while time.perf_counter() < deadline:
        pass


def _latencies_ms(ports: dict[str, int]) -> dict[str, list[float]]:
    """Open loop at LATENCY_RATE_RPS per path, one connection each, the paths' sends
    staggered within each period (so a stall of the machine hits every path alike);
    latency from the intended send time."""
    interval_s = 1 / LATENCY_RATE_RPS
    offset_s = interval_s / len(ports)
    times_ms: dict[str, list[float]] = {path: [] for path in ports}
    with ExitStack() as stack:
        socks = {path: stack.enter_context(_connect(port)) for path, port in ports.items()}
        start = time.perf_counter() + 0.05
        for i in range(int(LATENCY_RATE_RPS * LATENCY_DURATION_S)):
            for k, (path, sock) in enumerate(socks.items()):
                intended = start + i * interval_s + k * offset_s
                _wait_until(intended)
                _round_trip(sock)
                times_ms[path].append((time.perf_counter() - intended) * 1000)
    return times_ms


def _connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _round_trip(sock: socket.socket) -> None:
    sock.sendall(MESSAGE)
    received = 0
    while received < len(MESSAGE):
        received += len(sock.recv(65536))


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


# --- throughput ----------------------------------------------------------------------


class _Requests(asyncio.Protocol):
    """Closed loop: send a message, wait for all of it back, send the next."""

    def __init__(self, counts: list[int]) -> None:
        self.counts = counts
        self.pending = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.transport.get_extra_info("socket").setsockopt(
            socket.IPPROTO_TCP, socket.TCP_NODELAY, 1
        )
        self._send()

    def _send(self) -> None:
        self.pending = len(MESSAGE)
        self.transport.write(MESSAGE)

    def data_received(self, data: bytes) -> None:
        self.pending -= len(data)
        if self.pending <= 0:
            self.counts[0] += 1
            self._send()


class _Stream(asyncio.Protocol):
    """Keep STREAM_WINDOW_BYTES in flight; count the bytes echoed back."""

    def __init__(self, counts: list[int]) -> None:
        self.counts = counts
        self.in_flight = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self._fill()

    def _fill(self) -> None:
        while self.in_flight < STREAM_WINDOW_BYTES:
            self.transport.write(BLOCK)
            self.in_flight += len(BLOCK)

    def data_received(self, data: bytes) -> None:
        self.in_flight -= len(data)
        self.counts[0] += len(data)
        self._fill()


async def _count(
    path: Route, protocol: Callable[[list[int]], asyncio.Protocol], conns: int
) -> tuple[float, float, float]:
    """Units (requests or bytes) per second over THROUGHPUT_DURATION_S, after a
    warm-up, and the CPU seconds the path's process spent per unit meanwhile (all,
    and user time alone)."""
    loop = asyncio.get_running_loop()
    counts = [0]
    transports = [
        (await loop.create_connection(lambda: protocol(counts), "127.0.0.1", path.port))[0]
        for _ in range(conns)
    ]
    await asyncio.sleep(0.2)
    before, started, cpu_before_s = counts[0], loop.time(), _cpu_s(path.pid)
    await asyncio.sleep(THROUGHPUT_DURATION_S)
    units = counts[0] - before
    rate = units / (loop.time() - started)
    cpu_after_s = _cpu_s(path.pid)
    cpu_per_unit_s = (cpu_after_s[0] - cpu_before_s[0]) / max(units, 1)
    user_per_unit_s = (cpu_after_s[1] - cpu_before_s[1]) / max(units, 1)
    for transport in transports:
        transport.abort()
    return rate, cpu_per_unit_s, user_per_unit_s


def _round(paths: dict[str, Route]) -> dict[str, Figures]:
    """One round: latency on all paths at once, then each path's throughputs in turn."""
    latencies = _latencies_ms({name: path.port for name, path in paths.items()})
    figures = {}
    for name, path in paths.items():
        requests_per_s, cpu_s, user_s = asyncio.run(
            _count(path, _Requests, REQUEST_CONNECTIONS)
        )
        bytes_per_s, _, _ = asyncio.run(_count(path, _Stream, STREAM_CONNECTIONS))
        figures[name] = Figures(
            _percentile(latencies[name], 0.5),
            _percentile(latencies[name], 0.99),
            requests_per_s,
            cpu_s * 1e6,
            user_s * 1e6,
            bytes_per_s / 1e6,
        )
    return figures


# --- report --------------------------------------------------------------------------


def _report(path: str, runs: list[Figures], direct: list[Figures] | None) -> None:
    p50 = [r.p50_ms for r in runs]
    p99 = [r.p99_ms for r in runs]
    rps = [r.requests_per_s for r in runs]
    mbps = [r.megabytes_per_s for r in runs]
    figure(f"{path}: latency p50 at {LATENCY_RATE_RPS} req/s", median(p50), "ms", p50)
    figure(f"{path}: latency p99 at {LATENCY_RATE_RPS} req/s", median(p99), "ms", p99)
    cpu = [r.cpu_us_per_request for r in runs]
    figure(f"{path}: requests, {REQUEST_CONNECTIONS} connections", median(rps), "req/s", rps)
    who = "echo upstream" if direct is None else "its process"
    figure(f"{path}: CPU of {who} per request", median(cpu), "µs", cpu)
    user = [r.user_us_per_request for r in runs]
    kernel = [r.kernel_us_per_request for r in runs]
    figure(f"{path}: of which user time (the program)", median(user), "µs", user)
    figure(f"{path}: of which kernel time (its socket calls)", median(kernel), "µs", kernel)
    figure(f"{path}: bytes, {STREAM_CONNECTIONS} connections", median(mbps), "MB/s", mbps)
    if direct is None:
        return
    added50 = [r.p50_ms - d.p50_ms for r, d in zip(runs, direct, strict=True)]
    added99 = [r.p99_ms - d.p99_ms for r, d in zip(runs, direct, strict=True)]
    rps_share = [r.requests_per_s / d.requests_per_s for r, d in zip(runs, direct, strict=True)]
    mb_share = [r.megabytes_per_s / d.megabytes_per_s for r, d in zip(runs, direct, strict=True)]
    figure(f"{path}: added latency p50 (target <= 0.3)", median(added50), "ms", added50)
    figure(f"{path}: added latency p99 (target <= 1.5)", median(added99), "ms", added99)
    figure(f"{path}: requests / direct (target >= 0.6)", median(rps_share), "", rps_share)
    figure(f"{path}: bytes / direct (target >= 0.6)", median(mb_share), "", mb_share)


def _beside(runs: dict[str, list[Figures]], mine: str, peer: str) -> None:
    """Path `mine` against `peer`, round by round: each figure as a ratio, and the
    added latencies as a difference too."""
    pairs = list(zip(runs[mine], runs[peer], runs["direct"], strict=True))
    rps = _requests_ratios(runs, mine, peer)
    mbps = [f.megabytes_per_s / p.megabytes_per_s for f, p, _ in pairs]
    p50 = [f.p50_ms / p.p50_ms for f, p, _ in pairs]
    p99 = [f.p99_ms / p.p99_ms for f, p, _ in pairs]
    added50 = [(f.p50_ms - d.p50_ms) - (p.p50_ms - d.p50_ms) for f, p, d in pairs]
    added99 = [(f.p99_ms - d.p99_ms) - (p.p99_ms - d.p99_ms) for f, p, d in pairs]
    cpu = [f.cpu_us_per_request / p.cpu_us_per_request for f, p, _ in pairs]
    user = [f.user_us_per_request - p.user_us_per_request for f, p, _ in pairs]
    kernel = [f.kernel_us_per_request - p.kernel_us_per_request for f, p, _ in pairs]
    figure(f"{mine} / {peer}: requests", median(rps), "", rps)
    figure(f"{mine} / {peer}: bytes", median(mbps), "", mbps)
    figure(f"{mine} / {peer}: latency p50", median(p50), "", p50)
    figure(f"{mine} / {peer}: latency p99", median(p99), "", p99)
    figure(f"{mine} - {peer}: added latency p50", median(added50), "ms", added50)
    figure(f"{mine} - {peer}: added latency p99", median(added99), "ms", added99)
    figure(f"{mine} / {peer}: CPU per request", median(cpu), "", cpu)
    figure(f"{mine} - {peer}: user time per request", median(user), "µs", user)
    figure(f"{mine} - {peer}: kernel time per request", median(kernel), "µs", kernel)


def _requests_ratios(runs: dict[str, list[Figures]], mine: str, peer: str) -> list[float]:
    """`mine`'s request throughput / `peer`'s, round by round."""
    pairs = zip(runs[mine], runs[peer], strict=True)
    return [m.requests_per_s / p.requests_per_s for m, p in pairs]


def _rounds(ratios: list[float]) -> str:
    return f"{median(ratios):.3f} (rounds {', '.join(f'{r:.3f}' for r in ratios)})"


def _goal_met(runs: dict[str, list[Figures]]) -> bool:
    """Issue #20: the fault proxy's request throughput / direct at least HAProxy's in the
    same run. Compared round by round (the two proxies' request throughputs, each round's
    direct figure cancelling out), median of the rounds: the machine's drift between
    rounds then moves both alike. Not checked (so missed) when HAProxy is not installed.
    A miss is followed by the floor measured in the same run: the bare relay beside
    HAProxy (what no relay in Python gets past here) and the fault proxy beside the bare
    relay (what the fault proxy's own work costs)."""
    if "haproxy" not in runs:
        print("goal (#20) MISSED: not checked, no haproxy to measure against", flush=True)
        return False
    ratios = _requests_ratios(runs, "faultproxy", "haproxy")
    met = median(ratios) >= 1.0
    print(f"goal (#20): faultproxy requests / haproxy's, round by round, >= 1: "
          f"{_rounds(ratios)}, {'met' if met else 'MISSED'}", flush=True)
    if not met:
        print(f"  the floor in this run: bare relay requests / haproxy's "
              f"{_rounds(_requests_ratios(runs, 'bare relay', 'haproxy'))}; "
              f"faultproxy requests / the bare relay's "
              f"{_rounds(_requests_ratios(runs, 'faultproxy', 'bare relay'))}", flush=True)
    return met


def main() -> int:
    """Measure and print the figures (takes about a minute); 0 when the fault proxy
    meets the goal of issue #20 (see the module's doc), 1 when it misses it."""
    with ExitStack() as stack:
        upstream = _echo_upstream(stack)
        paths = {
            "direct": upstream,
            "faultproxy": _fault_proxy(stack, upstream.port),
            "bare relay": _bare_relay(stack, upstream.port),
        }
        if (toxiproxy := _toxiproxy(stack, upstream.port)) is not None:
            paths["toxiproxy"] = toxiproxy
        haproxy = _haproxy(stack, upstream.port)
        if haproxy is None:
            print("haproxy not installed: compiled baseline skipped", flush=True)
        else:
            paths["haproxy"] = haproxy
        rounds = [_round(paths) for _ in range(ROUNDS)]
    runs = {path: [figures[path] for figures in rounds] for path in paths}
    for path in paths:
        _report(path, runs[path], None if path == "direct" else runs["direct"])
    for peer in ("haproxy", "toxiproxy", "bare relay"):
        if peer in runs:
            _beside(runs, "faultproxy", peer)
    if "haproxy" in runs:
        _beside(runs, "bare relay", "haproxy")
    return 0 if _goal_met(runs) else 1


if __name__ == "__main__":
    sys.exit(main())
