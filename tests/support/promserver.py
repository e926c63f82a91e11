"""A real Prometheus (the Debian package the lab uses) for component tests: it scrapes
given targets every second and listens on a port of the kernel's choosing."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

PROMETHEUS = shutil.which("prometheus")
LISTENING = re.compile(r'Listening on"? address=(127\.0\.0\.1:\d+)')
needs_prometheus = pytest.mark.skipif(
    PROMETHEUS is None, reason="prometheus is not installed (apt-get install -y prometheus; "
    "the lab needs it too)")


def _listening(log: Path, proc: subprocess.Popen[bytes], deadline_s: float = 20) -> str:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline and proc.poll() is None:
        found = LISTENING.search(log.read_text(errors="replace"))
        if found:
            return f"http://{found[1]}"
        time.sleep(0.1)
    pytest.fail(f"prometheus did not start: {log.read_text(errors='replace')[-2000:]}")


class ExpositionHandler(BaseHTTPRequestHandler):
    """Serves ``exposition()`` (the Prometheus text format) on ``GET /metrics``, quietly."""

    def exposition(self) -> str:
        """The body of ``/metrics``; subclasses say what."""
        raise NotImplementedError

    def do_GET(self) -> None:
        body = self.exposition().encode()
        self.send_response(200 if self.path == "/metrics" else 404)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        return


@contextmanager
def running_prometheus(folder: Path, job: str, targets: list[str]) -> Iterator[str]:
    """Prometheus scraping ``targets`` as job ``job`` every second; its base URL."""
    assert PROMETHEUS is not None
    config = folder / "prometheus.yml"
    config.write_text(json.dumps({
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [{"job_name": job, "static_configs": [{"targets": targets}]}]}))
    log = folder / "prometheus.log"
    with log.open("wb") as stderr:
        proc = subprocess.Popen(
            [PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={folder / 'data'}",
             "--web.listen-address=127.0.0.1:0"],
            stdout=stderr, stderr=stderr)  # fmt: skip
    try:
        yield _listening(log, proc)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
