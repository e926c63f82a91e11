"""Fixtures of the component tier: upstream servers and one fault proxy per test module."""

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
    stop_proxy,
)


@pytest.fixture(scope="module")
def echo_port() -> Iterator[int]:
    """A TCP echo server; it closes its side when the client closes its own."""
    yield from serve(Server(("127.0.0.1", 0), Echo))


@pytest.fixture(scope="module")
def http_port() -> Iterator[int]:
    """A keep-alive HTTP/1.1 server answering every GET with `hello`."""
    server = HttpServer(("127.0.0.1", 0), Hello)
    yield from serve(server)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FaultProxy]:
    """One fault proxy process per test module."""
    proxy = start_proxy(tmp_path_factory.mktemp("faultproxy") / "stderr.log")
    yield proxy
    stop_proxy(proxy)


@pytest.fixture
def fp(server: FaultProxy) -> Iterator[FaultProxy]:
    """The module's fault proxy, emptied after each test."""
    yield server
    assert server.process.poll() is None, "the fault proxy died"
    for name in server.call("GET", "/proxies").json():
        assert server.call("DELETE", f"/proxies/{quote(name, safe='')}").status_code == 204
