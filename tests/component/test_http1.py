"""The HTTP/1.1 client of the load generator and the reference service (gameday.http1)
against real servers on 127.0.0.1 (port 0): what it sends, how it reuses connections,
and how every kind of answer (or none) ends."""

from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from aiohttp import web

from gameday.http1 import Answer, AnswerPool, Broken, ConnectionPool, Endpoint, NotSent, RequestHead

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@asynccontextmanager
async def raw_server(handler: Handler) -> AsyncIterator[Endpoint]:
    """A TCP server answering with whatever ``handler`` writes."""
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield Endpoint.from_url(f"http://127.0.0.1:{port}/orders")
    finally:
        server.close()


async def _read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                   if line.lower().startswith(b"content-length:")), 0)
    return head + await reader.readexactly(length)


def answering(*answers: bytes, requests: list[bytes] | None = None) -> Handler:
    """A handler writing ``answers`` in turn, one per request, on each connection."""
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for answer in answers:
            try:
                request = await _read_request(reader)
            except asyncio.IncompleteReadError:
                break  # the client closed the connection
            if requests is not None:
                requests.append(request)
            writer.write(answer)
            await writer.drain()
            if b"Connection: close" in answer:
                break  # the body ends where the connection does
        writer.close()
    return handle


OK = b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\n{}"


def test_a_request_is_sent_as_built_and_its_status_returned() -> None:
    async def scenario() -> tuple[list[int], list[bytes]]:
        requests: list[bytes] = []
        async with raw_server(answering(OK, OK, requests=requests)) as endpoint, \
                ConnectionPool(endpoint, 4) as pool:
            head = RequestHead("POST", endpoint)
            statuses = [await pool.request(head.encode(b'{"a":1}'), 5) for _ in range(2)]
            return statuses, requests

    statuses, requests = asyncio.run(scenario())
    assert statuses == [201, 201]
    port = requests[0].split(b"Host: 127.0.0.1:")[1].split(b"\r\n")[0]
    assert requests[0] == (b"POST /orders HTTP/1.1\r\nHost: 127.0.0.1:" + port + b"\r\n"
                           b"Content-Type: application/json\r\nContent-Length: 7\r\n\r\n"
                           b'{"a":1}')
    assert len(requests) == 2  # both on the one connection the handler served


def test_connections_are_kept_alive_and_bounded_by_the_limit() -> None:
    connections: list[int] = []

    async def count(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        while not reader.at_eof():
            try:
                await _read_request(reader)
            except asyncio.IncompleteReadError:
                break
            await asyncio.sleep(0.05)
            writer.write(OK)
        writer.close()

    async def scenario() -> list[int]:
        async with raw_server(count) as endpoint, ConnectionPool(endpoint, 3) as pool:
            request = RequestHead("GET", endpoint).encode(None)
            return list(await asyncio.gather(*(pool.request(request, 5) for _ in range(12))))

    assert asyncio.run(scenario()) == [201] * 12
    assert len(connections) == 3


def test_without_keep_alive_every_request_opens_its_own_connection() -> None:
    connections: list[int] = []
    inner = answering(OK, OK)

    async def count(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        await inner(reader, writer)

    async def scenario() -> list[int]:
        async with raw_server(count) as endpoint, \
                ConnectionPool(endpoint, 3, keep_alive=False) as pool:
            request = RequestHead("GET", endpoint).encode(None)
            return [await pool.request(request, 5) for _ in range(4)]

    assert asyncio.run(scenario()) == [201] * 4
    assert len(connections) == 4


def test_an_answer_pool_gives_status_headers_and_body_of_each_answer() -> None:
    limited = (b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 7\r\nX-Twice: a\r\n"
               b"X-Twice: b\r\nContent-Length: 9\r\n\r\n{\"e\":429}")
    chunked = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"3\r\n{\"a\r\n4\r\n\":1}\r\n0\r\n\r\n")

    async def scenario() -> list[Answer]:
        async with raw_server(answering(limited, chunked)) as endpoint, \
                AnswerPool(endpoint, 1) as pool:
            request = RequestHead("POST", endpoint).encode(b"{}")
            return [await pool.request(request, 5) for _ in range(2)]

    first, second = asyncio.run(scenario())
    assert (first.status, first.body) == (429, b'{"e":429}')
    assert first.headers["retry-after"] == "7"
    assert first.headers["x-twice"] == "b"
    assert (second.status, second.body) == (200, b'{"a":1}')
    assert "retry-after" not in second.headers  # nothing carried over on the connection


@pytest.mark.parametrize("answer", [
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nbody until the end",
    b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n",
])
def test_chunked_closing_and_old_answers_are_answers(answer: bytes) -> None:
    async def scenario() -> list[int]:
        async with raw_server(answering(answer, OK)) as endpoint, \
                ConnectionPool(endpoint, 1) as pool:
            request = RequestHead("GET", endpoint).encode(None)
            return [await pool.request(request, 5) for _ in range(2)]

    first, second = asyncio.run(scenario())
    assert first == 200
    assert second in (200, 201)  # a closing answer makes the next request use a new connection


@pytest.mark.parametrize("answer", [b"SSH-2.0-OpenSSH\r\n\r\n", b"HTTP/1.1 20", b""])
def test_no_http_answer_after_sending_is_broken(answer: bytes) -> None:
    async def scenario() -> None:
        async with raw_server(answering(answer)) as endpoint, ConnectionPool(endpoint, 1) as pool:
            await pool.request(RequestHead("POST", endpoint).encode(b"{}"), 5)

    with pytest.raises(Broken):
        asyncio.run(scenario())


def test_a_refused_connection_is_not_sent() -> None:
    async def scenario() -> None:
        async with raw_server(answering(OK)) as endpoint:
            pass  # closed: its port refuses now
        async with ConnectionPool(endpoint, 1) as pool:
            await pool.request(RequestHead("POST", endpoint).encode(b"{}"), 5)

    with pytest.raises(NotSent, match="cannot connect"):
        asyncio.run(scenario())


def test_a_timeout_closes_the_connection_and_the_next_request_opens_another() -> None:
    connections: list[int] = []

    async def slow_then_fast(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        await _read_request(reader)
        if len(connections) == 1:
            await asyncio.sleep(1.0)  # the client gave up: this answer must not be read
        writer.write(OK)
        await writer.drain()

    async def scenario() -> int:
        async with raw_server(slow_then_fast) as endpoint, ConnectionPool(endpoint, 1) as pool:
            request = RequestHead("GET", endpoint).encode(None)
            with pytest.raises(TimeoutError):
                await pool.request(request, 0.2)
            return await pool.request(request, 5)

    assert asyncio.run(scenario()) == 201
    assert len(connections) == 2


def test_the_timeout_covers_the_wait_for_a_free_connection() -> None:
    async def slow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        await asyncio.sleep(1.5)
        writer.close()

    async def scenario() -> tuple[list[object], float]:
        async with raw_server(slow) as endpoint, ConnectionPool(endpoint, 1) as pool:
            request = RequestHead("GET", endpoint).encode(None)
            loop = asyncio.get_running_loop()
            started = loop.time()
            holder = asyncio.ensure_future(pool.request(request, 1.0))  # takes the one slot
            await asyncio.sleep(0)
            ends: list[object] = []
            try:
                await pool.request(request, 0.2)
            except TimeoutError as exc:
                ends.append(exc)
            waited_s = loop.time() - started
            ends.extend(await asyncio.gather(holder, return_exceptions=True))
            return ends, waited_s

    ends, waited_s = asyncio.run(scenario())
    assert [type(end) for end in ends] == [TimeoutError, TimeoutError]
    # It gave up waiting for the slot after its own 0.2 s, not when the holder's 1 s ended.
    assert waited_s < 0.7


def test_an_aiohttp_server_answers_through_it() -> None:
    async def created(request: web.Request) -> web.Response:
        assert request.headers["Content-Type"] == "application/json"
        return web.json_response(await request.json(), status=201)

    async def scenario() -> list[int]:
        app = web.Application()
        app.router.add_post("/orders", created)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        try:
            endpoint = Endpoint.from_url(f"http://127.0.0.1:{port}/orders")
            async with ConnectionPool(endpoint, 2) as pool:
                request = RequestHead("POST", endpoint).encode(b'{"id":"x"}')
                return [await pool.request(request, 5) for _ in range(3)]
        finally:
            await runner.cleanup()

    assert asyncio.run(scenario()) == [201, 201, 201]


@pytest.mark.parametrize(("url", "problem"), [
    ("ftp://127.0.0.1/", "scheme must be http or https"), ("http:///orders", "names no host"),
    ("http://127.0.0.1:99999/", "out of range"), ("127.0.0.1:8080/orders", "scheme"),
])
def test_bad_urls_are_refused_naming_the_problem(url: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        Endpoint.from_url(url)


def test_endpoints_keep_query_and_default_ports() -> None:
    assert Endpoint.from_url("https://svc.example/orders?x=1") == Endpoint(
        True, "svc.example", 443, "/orders?x=1", "svc.example")
    assert Endpoint.from_url("http://[::1]:8080").target == "/"


def test_https_requests_are_verified_and_answered(tmp_path: Path) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is not installed: no certificate for the TLS server")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost",
                    "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)

    async def scenario() -> tuple[int, str]:
        server = await asyncio.start_server(answering(OK), "127.0.0.1", 0, ssl=server_tls)
        port = server.sockets[0].getsockname()[1]
        endpoint = Endpoint.from_url(f"https://localhost:{port}/orders")
        try:
            async with ConnectionPool(endpoint, 1, ssl.create_default_context(
                    cafile=str(cert))) as trusting:
                status = await trusting.request(RequestHead("POST", endpoint).encode(b"{}"), 5)
            async with ConnectionPool(endpoint, 1) as default:  # the system's CAs only
                try:
                    await default.request(RequestHead("POST", endpoint).encode(b"{}"), 5)
                except NotSent as exc:
                    return status, str(exc)
            return status, "an unknown certificate was accepted"
        finally:
            server.close()

    status, refused = asyncio.run(scenario())
    assert status == 201
    assert "CERTIFICATE_VERIFY_FAILED" in refused
