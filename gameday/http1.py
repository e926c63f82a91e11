"""An HTTP/1.1 client for many small requests: keep-alive connections, one request at a
time on each, answers parsed by llhttp. The load generator sends its orders with it
(:class:`ConnectionPool`: the answer's status and nothing else) and the lab's reference
service calls its broker with it (:class:`AnswerPool`: status, headers and body); it
imports nothing of this project, so the service's image holds it beside the contract.

Sending an order is the generator's whole per-request cost, and calling the broker a
large part of a replica's, so this client does only what an order needs: the request's
bytes are built by joining a head made once with the body (:class:`RequestHead`), the
answer is parsed by llhttp (``httptools``, the parser uvicorn uses) straight from the
socket's protocol callbacks. There are no redirects, cookies, proxies or retries: a
load test must see what the service answers, and an order is never sent twice.
Measured against aiohttp's client, which both used before: 60-75 µs of CPU per request
in the generator instead of 330-450.

How a request can end:

- an answer (any HTTP status, whatever its body);
- :class:`NotSent`: no connection could be opened (refused, unreachable, TLS failed):
  nothing was sent, the order was not placed;
- :class:`Broken`: the connection failed or the answer was not HTTP after the request
  was written: the order may have reached the server;
- ``TimeoutError``: no whole answer within the request's ``timeout_s`` (waiting for a
  free connection and connecting included); or the caller cancelled it. The connection
  is closed, never reused.

The timeout is the pool's own timer, not ``asyncio.timeout``: on Python 3.11 every
``asyncio.get_running_loop()`` is a ``getpid()`` system call, and ``asyncio.timeout``,
``asyncio.create_task`` and a future per request made several of them; on this
project's virtual machines they took a quarter of the load generator's CPU. So each
connection keeps its loop, and the common path (a free slot, an idle connection)
asks for it nowhere.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections import deque
from dataclasses import dataclass, field
from types import TracebackType
from typing import Generic, Self, TypeVar
from urllib.parse import urlsplit

import httptools

__all__ = [
    "Answer", "AnswerPool", "Broken", "ClientError", "ConnectionPool", "Endpoint", "NotSent",
    "RequestHead",
]

T = TypeVar("T")  # what a request gives: a status, or a whole Answer

IDLE_TIMEOUT_S = 15.0  # an idle connection older than this is closed, not reused


class ClientError(Exception):
    """A request that got no HTTP answer."""


class NotSent(ClientError):
    """No connection could be opened: the request was not sent."""


class Broken(ClientError):
    """The connection failed, or the answer was not HTTP, after the request was sent."""


@dataclass(frozen=True)
class Endpoint:
    """Where requests go, from a URL: ``http://`` or ``https://``, a host, and a path."""

    tls: bool
    host: str
    port: int
    target: str  # path and query, as sent in the request line
    authority: str  # the Host header

    @classmethod
    def from_url(cls, url: str) -> Endpoint:
        """Parse ``url``; ValueError names what is wrong with it."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https"):
            raise ValueError(f"URL {url!r}: the scheme must be http or https")
        if not parts.hostname:
            raise ValueError(f"URL {url!r} names no host")
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError as exc:
            raise ValueError(f"URL {url!r}: {exc}") from None
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        return cls(parts.scheme == "https", parts.hostname, port, target, parts.netloc)


@dataclass(frozen=True)
class RequestHead:
    """A request's line and headers, encoded once; :meth:`encode` adds a body (pure)."""

    method: str
    endpoint: Endpoint
    content_type: str = "application/json"
    _bare: bytes = field(init=False, repr=False)  # the whole request without a body
    _with_body: bytes = field(init=False, repr=False)  # up to Content-Length's value

    def __post_init__(self) -> None:
        head = (f"{self.method} {self.endpoint.target} HTTP/1.1\r\n"
                f"Host: {self.endpoint.authority}\r\n")
        object.__setattr__(self, "_bare", f"{head}\r\n".encode())
        object.__setattr__(self, "_with_body", (
            f"{head}Content-Type: {self.content_type}\r\nContent-Length: ").encode())

    def encode(self, body: bytes | None) -> bytes:
        """The whole request: head, ``Content-Length`` and body (none for ``None``)."""
        if body is None:
            return self._bare
        return b"%s%d\r\n\r\n%s" % (self._with_body, len(body), body)


@dataclass(frozen=True)
class Answer:
    """A whole HTTP answer: its status, its headers (names in lower case, the last of a
    repeated one) and its body."""

    status: int
    headers: dict[str, str]
    body: bytes


class _Connection(asyncio.Protocol, Generic[T]):
    """One keep-alive connection: writes a request, parses the answer as it arrives, and
    gives what :meth:`_result` makes of it."""

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()  # once per connection (see the module doc)
        self._parser = httptools.HttpResponseParser(self)
        self._transport: asyncio.Transport | None = None
        self._answer: asyncio.Future[T] | None = None
        self._status: int | None = None
        self.reusable = True
        self.idle_since = time.monotonic()

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]  # uvloop's is no subclass

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(Broken(f"the answer is not HTTP: {exc}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.reusable = False
        if self._status is not None and exc is None:
            self._finish(self._status)  # headers came, then a clean close: an answer
        else:
            self._fail(Broken(f"connection lost: {exc or 'closed by the server'}"))

    # httptools callbacks
    def on_headers_complete(self) -> None:
        self._status = self._parser.get_status_code()

    def on_message_complete(self) -> None:
        if not self._parser.should_keep_alive():
            self.reusable = False
        self._finish(self._parser.get_status_code())

    # for the pool
    def exchange(self, request: bytes) -> asyncio.Future[T]:
        """Write ``request``; the future gets the answer (or Broken)."""
        assert self._transport is not None
        self._status = None
        self._answer = self._loop.create_future()
        self._transport.write(request)
        return self._answer

    def expire(self) -> None:
        """The request's time is up: its answer fails with TimeoutError, the socket closes."""
        self._fail(TimeoutError("no whole answer in time"))

    def open(self) -> bool:
        """Still connected and fit for another request."""
        return (self.reusable and self._transport is not None
                and not self._transport.is_closing())

    def close(self) -> None:
        """Close the socket (an answer still awaited fails as Broken)."""
        self.reusable = False
        if self._transport is not None:
            self._transport.close()

    def _result(self, status: int) -> T:
        """What the pool returns for a whole answer with ``status``."""
        raise NotImplementedError

    def _finish(self, status: int) -> None:
        if self._answer is not None and not self._answer.done():
            self._answer.set_result(self._result(status))
        self.idle_since = time.monotonic()

    def _fail(self, error: Exception) -> None:
        self.close()
        if self._answer is not None and not self._answer.done():
            self._answer.set_exception(error)


class _StatusConnection(_Connection[int]):
    """A connection that gives the answer's status (its body is discarded as it comes)."""

    def _result(self, status: int) -> int:
        return status


class _AnswerConnection(_Connection[Answer]):
    """A connection that keeps the answer's headers and body."""

    def __init__(self) -> None:
        super().__init__()
        self._headers: dict[str, str] = {}
        self._body: list[bytes] = []

    # httptools callbacks (llhttp calls these only when the protocol has them)
    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def _result(self, status: int) -> Answer:
        answer = Answer(status, self._headers, b"".join(self._body))
        self._headers, self._body = {}, []  # the next answer on this connection starts anew
        return answer


class _Pool(Generic[T]):
    """At most ``limit`` connections to one endpoint, each carrying one request at a time;
    an idle connection is reused, newest first (with ``keep_alive=False`` none is: each
    request opens its own, closed after the answer). Use as ``async with``: leaving
    closes every connection."""

    _connection_type: type[_Connection[T]]

    def __init__(self, endpoint: Endpoint, limit: int,
                 tls_context: ssl.SSLContext | None = None, *, keep_alive: bool = True) -> None:
        self._endpoint = endpoint
        self._keep_alive = keep_alive
        self._loop: asyncio.AbstractEventLoop | None = None
        self._slots = asyncio.Semaphore(limit)
        self._idle: deque[_Connection[T]] = deque()
        self._all: set[_Connection[T]] = set()
        self._tls = tls_context or (ssl.create_default_context() if endpoint.tls else None)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        for connection in self._all:
            connection.close()
        self._all.clear()
        self._idle.clear()

    async def request(self, request: bytes, timeout_s: float) -> T:
        """Send one whole request (see :meth:`RequestHead.encode`); the answer (a status
        or an :class:`Answer`, by pool).

        Raises NotSent, Broken or TimeoutError (after ``timeout_s``); a timeout or the
        caller's cancellation closes the connection.
        """
        loop = self._loop or self._bind_loop()
        deadline_s = loop.time() + timeout_s
        if self._slots.locked():
            async with asyncio.timeout_at(deadline_s):
                await self._slots.acquire()
        else:
            await self._slots.acquire()  # at once, without asking for the loop
        try:
            connection = self._take_idle()
            if connection is None:
                async with asyncio.timeout_at(deadline_s):
                    connection = await self._connect()
            timer = loop.call_at(deadline_s, connection.expire)
            try:
                answer = await connection.exchange(request)
            except BaseException:
                self._drop(connection)
                raise
            finally:
                timer.cancel()
            if self._keep_alive and connection.open():
                self._idle.append(connection)
            else:
                self._drop(connection)
            return answer
        finally:
            self._slots.release()

    def _bind_loop(self) -> asyncio.AbstractEventLoop:
        self._loop = asyncio.get_running_loop()
        return self._loop

    def _take_idle(self) -> _Connection[T] | None:
        oldest_fit = time.monotonic() - IDLE_TIMEOUT_S
        while self._idle:
            connection = self._idle.pop()
            if connection.open() and connection.idle_since >= oldest_fit:
                return connection
            self._drop(connection)
        return None

    async def _connect(self) -> _Connection[T]:
        endpoint = self._endpoint
        try:
            _, connection = await asyncio.get_running_loop().create_connection(
                self._connection_type, endpoint.host, endpoint.port, ssl=self._tls)
        except (OSError, ssl.SSLError) as exc:
            raise NotSent(f"cannot connect to {endpoint.authority}: {exc}") from exc
        self._all.add(connection)
        return connection

    def _drop(self, connection: _Connection[T]) -> None:
        connection.close()
        self._all.discard(connection)


class ConnectionPool(_Pool[int]):
    """A pool whose requests give the answer's status only (the load generator's)."""

    _connection_type = _StatusConnection


class AnswerPool(_Pool[Answer]):
    """A pool whose requests give the whole :class:`Answer` (the reference service's)."""

    _connection_type = _AnswerConnection
