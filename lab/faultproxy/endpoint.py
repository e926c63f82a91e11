"""One socket of a link, as an asyncio protocol: reads are pushed, writes never block.

An endpoint starts with reading held ("wiring"): whatever is read before the link has
set its callbacks (some loops, uvloop among them, start reading after
`connection_made`) is kept and replayed by `wired()`. Reading is paused while any
reason to hold it stands (the other socket cannot take more, too many bytes are
inside the fault stages), which is how back-pressure reaches the sending peer.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import Callable
from typing import cast

__all__ = ["Endpoint"]


def _ignore_lost(error: Exception | None) -> None:
    """What an endpoint does with its connection lost before it is wired."""


def _ignore_writable(writable: bool) -> None:
    """What an endpoint does with write flow control before it is wired."""


class Endpoint(asyncio.Protocol):
    """A TCP socket of a link (Nagle off); `on_*` callbacks are set by the link."""

    transport: asyncio.Transport

    def __init__(self, on_connected: Callable[[Endpoint], None] | None = None) -> None:
        self.on_data: Callable[[bytes], None] = self._keep_early
        self.on_eof: Callable[[], None] = self._keep_early_eof
        self.on_lost: Callable[[Exception | None], None] = _ignore_lost
        self.on_writable: Callable[[bool], None] = _ignore_writable
        self.writable = asyncio.Event()
        self.writable.set()
        self._on_connected = on_connected
        self._holds: set[str] = {"wiring"}
        self._early: list[bytes] = []
        self._early_eof = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        sock = self.transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.transport.pause_reading()
        if self._on_connected is not None:
            self._on_connected(self)

    def data_received(self, data: bytes) -> None:
        self.on_data(data)

    def eof_received(self) -> bool:
        self.on_eof()
        return True  # keep the socket open for writing: a half-close

    def connection_lost(self, exc: Exception | None) -> None:
        self.writable.set()
        self.on_lost(exc)

    def pause_writing(self) -> None:
        self.writable.clear()
        self.on_writable(False)

    def resume_writing(self) -> None:
        self.writable.set()
        self.on_writable(True)

    def _keep_early(self, data: bytes) -> None:
        """Bytes read before the link is wired (uvloop starts reading after
        `connection_made`, undoing its pause): kept, and reading paused again."""
        self._early.append(data)
        self.transport.pause_reading()

    def _keep_early_eof(self) -> None:
        self._early_eof = True

    def wired(self) -> None:
        """The link has set the callbacks: replay what came early, start reading."""
        early, self._early = self._early, []
        for data in early:
            self.on_data(data)
        if self._early_eof:
            self.on_eof()
        self.hold_reading("wiring", False)

    def hold_reading(self, reason: str, hold: bool) -> None:
        """Pause reading while any reason holds it; resume when none is left."""
        before = bool(self._holds)
        if hold:
            self._holds.add(reason)
        else:
            self._holds.discard(reason)
        if before != bool(self._holds) and not self.transport.is_closing():
            if self._holds:
                self.transport.pause_reading()
            else:
                self.transport.resume_reading()

    def write(self, data: bytes) -> None:
        """Queue bytes for the socket (dropped if it is already closing)."""
        if not self.transport.is_closing():
            self.transport.write(data)

    def write_eof(self) -> None:
        """Half-close: the peer reads EOF once the queued bytes are sent."""
        if not self.transport.is_closing() and self.transport.can_write_eof():
            self.transport.write_eof()

    def close(self) -> None:
        """Close after the queued bytes are sent (FIN)."""
        self.transport.close()

    def reset(self) -> None:
        """Close at once with a TCP RST (SO_LINGER 0), discarding queued bytes."""
        sock = self.transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.transport.abort()
