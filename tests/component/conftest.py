"""Fixtures of the component tier: upstream servers and one fault proxy per test module.

``fp`` is a fault proxy of each implementation in turn, ``lab.faultproxy`` and
Toxiproxy's own server (built by ``make setup``, see lab/gocomponents.py): a test using
it is a differential test, both must pass it. ``own_fp`` is ``lab.faultproxy`` alone,
for what Toxiproxy does not have (the gauges, the admin token, uvloop, ...).
"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import quote

import pytest
from support.faultproxy import (
    Echo,
    FaultProxy,
    Hello,
    HttpServer,
    Server,
    serve,
    start_proxy,
    start_toxiproxy,
    stop_proxy,
)
from support.gocomponents import go_program

from lab.gocomponents import TOXIPROXY

IMPLEMENTATIONS = ("faultproxy", "toxiproxy")


@pytest.fixture(scope="module")
def echo_port() -> Iterator[int]:
    """A TCP echo server; it closes its side when the client closes its own."""
    yield from serve(Server(("127.0.0.1", 0), Echo))


@pytest.fixture(scope="module")
def http_port() -> Iterator[int]:
    """A keep-alive HTTP/1.1 server answering every GET with `hello`."""
    server = HttpServer(("127.0.0.1", 0), Hello)
    yield from serve(server)


@pytest.fixture(scope="module", params=IMPLEMENTATIONS)
def server(request: pytest.FixtureRequest,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[FaultProxy]:
    """One process of each fault proxy implementation per test module."""
    log = tmp_path_factory.mktemp(request.param) / "stderr.log"
    if request.param == "toxiproxy":
        proxy = start_toxiproxy(log, go_program(TOXIPROXY))
    else:
        proxy = start_proxy(log)
    yield proxy
    stop_proxy(proxy)


@pytest.fixture(scope="module")
def own_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FaultProxy]:
    """One lab.faultproxy process per test module, for its own features."""
    proxy = start_proxy(tmp_path_factory.mktemp("faultproxy") / "stderr.log")
    yield proxy
    stop_proxy(proxy)


def _emptied(server: FaultProxy) -> Iterator[FaultProxy]:
    yield server
    assert server.process.poll() is None, f"the fault proxy ({server.kind}) died"
    for name in server.call("GET", "/proxies").json():
        assert server.call("DELETE", f"/proxies/{quote(name, safe='')}").status_code == 204


@pytest.fixture
def fp(server: FaultProxy) -> Iterator[FaultProxy]:
    """The module's fault proxy of each implementation, emptied after each test."""
    yield from _emptied(server)


@pytest.fixture
def own_fp(own_server: FaultProxy) -> Iterator[FaultProxy]:
    """The module's lab.faultproxy, emptied after each test."""
    yield from _emptied(own_server)
