"""Report pages in headless Chromium (Debian's ``chromium``): they draw their charts,
log no console error, fetch nothing from the network; and the server-side series come
from a Prometheus ``query_range`` API (a stand-in on 127.0.0.1, port 0)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from support.reports import DATA

from gameday.report.write import ReportSettings, results_from_journals, write_reports

JOURNALS = ["broker-down-20261127T143108.journal.json",
            "broker-down-20261127T153108.journal.json",
            "pod-kill-majority-20261127T143433.journal.json"]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run",
         "--enable-logging=stderr", "--v=0"]


def _state(second: int) -> str:
    """Closed for 10 s, open for 10 s, and so on."""
    return "open" if second % 20 >= 10 else "closed"


def _answer(query: dict[str, list[str]]) -> dict[str, Any]:
    promql = query["query"][0]
    start, end = float(query["start"][0]), float(query["end"][0])
    times = [start + i for i in range(int(end - start) + 1)]
    if "broker_circuit_breaker_state" in promql:
        result = [{"metric": {"broker_circuit_breaker_state": state},
                   "values": [[t, str(3 if _state(i) == state else 0)]
                              for i, t in enumerate(times)]}
                  for state in ("closed", "half_open", "open")]
    else:
        value = "3" if promql.startswith("sum(up") else "0.05"
        result = [{"metric": {}, "values": [[t, value] for t in times]}]
    return {"status": "success", "data": {"resultType": "matrix", "result": result}}


class _Prometheus(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        url = urllib.parse.urlsplit(self.path)
        body = json.dumps(_answer(urllib.parse.parse_qs(url.query))).encode()
        self.send_response(200 if url.path == "/api/v1/query_range" else 404)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        return


@pytest.fixture
def prometheus() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Prometheus)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def reports(tmp_path: Path, prometheus: str) -> Path:
    for name in JOURNALS:
        shutil.copy(DATA / name, tmp_path / name)
    results = results_from_journals([tmp_path / name for name in JOURNALS])
    write_reports(results, tmp_path / "out", ReportSettings(prometheus_url=prometheus))
    return tmp_path / "out"


def test_server_side_series_are_drawn_next_to_the_client_side(reports: Path) -> None:
    html = (reports / "broker-down-20261127T143108.html").read_text()
    assert 'data-problem="prometheus"' not in html
    assert html.count('data-series="Prometheus (10 s window)"') == 3
    assert 'data-state="open"' in html and 'data-state="closed"' in html
    assert 'data-chart="ready"' in html


def test_pages_need_nothing_from_the_network(reports: Path) -> None:
    for page in reports.glob("*.html"):
        html = page.read_text()
        assert not re.search(r"""(src|href)=["']?(https?:)?//""", html), page.name
        assert "<script" not in html and "@import" not in html


def _chromium(page: Path, tmp_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    command = [CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", *extra,
               page.as_uri()]
    return subprocess.run(command, capture_output=True, text=True, timeout=90, check=False)


def _console_errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines()
            if re.search(r"CONSOLE|Uncaught|net::ERR_|Failed to load resource", line)]


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed "
                    "(apt-get install -y chromium; `make test` installs it)")
@pytest.mark.parametrize("page", ["broker-down-20261127T153108.html",
                                  "pod-kill-majority-20261127T143433.html", "index.html"])
def test_page_renders_in_chromium(reports: Path, tmp_path: Path, page: str) -> None:
    shot = tmp_path / f"{page}.png"
    done = _chromium(reports / page, tmp_path, f"--screenshot={shot}", "--window-size=1280,2000")
    assert done.returncode == 0, done.stderr[-2000:]
    assert shot.stat().st_size > 10_000
    assert _console_errors(done.stderr) == []
    dom = _chromium(reports / page, tmp_path, "--dump-dom").stdout
    assert "<svg" in dom
    if page != "index.html":
        assert dom.count('class="chart"') == 5
        assert len(re.findall(r'<polyline class="series"[^>]* points="[\d.]+,', dom)) >= 7
        assert dom.count('class="band"') > 10


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")
def test_failed_report_is_red_on_its_first_screen(reports: Path, tmp_path: Path) -> None:
    dom = _chromium(reports / "broker-down-20261127T153108.html", tmp_path,
                    "--window-size=1280,800", "--dump-dom").stdout
    body = dom[dom.index("<body>"):]
    assert body.startswith('<body><header class="verdict fail"')
    assert "time-to-recover returned 27.5" in body[: body.index("</header>")]
