"""Test helpers: lab processes started on port 0, plain HTTP, Prometheus samples.

Used by the broker and service tests; every helper talks to real processes on
127.0.0.1 (nothing of ours is mocked).
"""

from __future__ import annotations

import json
import re
import select
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[2]
BROKER_LINE = re.compile(r"^listening (http://127\.0\.0\.1:\d+) admin (http://127\.0\.0\.1:\d+)$")
SERVICE_LINE = re.compile(r"^listening (http://127\.0\.0\.1:\d+)$")
ORDER = {"client_order_id": "c-1", "instrument": "EUR_USD", "units": 100, "price": 1.1}


@dataclass(frozen=True)
class Proc:
    """A started lab process: its URL (admin URL for the broker), process, stderr file."""

    url: str
    proc: subprocess.Popen[str]
    stderr_path: Path
    admin_url: str = ""


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


def stop(proc: subprocess.Popen[str], timeout_s: float = 5.0) -> int:
    """SIGTERM the process (SIGKILL if it lingers) and return its exit code."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if proc.stdout:
        proc.stdout.close()
    return proc.returncode


def start_broker(stderr_path: Path, *args: str) -> Proc:
    """A broker simulator on port 0 (admin on port 0) with extra ``args``."""
    proc, line = spawn("lab.broker", *args, stderr_path=stderr_path)
    match = BROKER_LINE.match(line)
    assert match, line
    return Proc(match[1], proc, stderr_path, admin_url=match[2])


def start_service(stderr_path: Path, broker_url: str, *args: str) -> Proc:
    """A service replica ``svc-a`` on port 0 in front of ``broker_url``, with ``args``."""
    all_args = ("--port", "0", "--broker-url", broker_url, "--name", "svc-a", *args)
    proc, line = spawn("lab.service", *all_args, stderr_path=stderr_path)
    match = SERVICE_LINE.match(line)
    assert match, line
    return Proc(match[1], proc, stderr_path)


def http(
    method: str, url: str, body: object = None, raw: bytes | None = None, timeout_s: float = 10
) -> Any:
    """(status, headers, decoded JSON or text) for one request."""
    data = raw if raw is not None else None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
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


def closed_port_url() -> str:
    """The URL of a port nothing listens on (it was free a moment ago)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def order(client_order_id: str, **changes: object) -> dict[str, object]:
    """A valid order body with this client order id and ``changes``."""
    return {**ORDER, "client_order_id": client_order_id, **changes}


def json_lines(path: Path) -> list[dict[str, Any]]:
    """The JSON objects logged in ``path``, one per line (other lines are skipped)."""
    lines = []
    for line in path.read_text().splitlines():
        if line.startswith("{"):
            lines.append(json.loads(line))
    return lines
