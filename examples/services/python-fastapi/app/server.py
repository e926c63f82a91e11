"""uvicorn's Server with the contract's stop sequence and a "listening" line.

On the first SIGTERM (or SIGINT) the replica turns ``/ready`` to 503 ``draining`` at
once and keeps serving for ``DRAIN_DELAY_S``, so that the load balancer takes it out
of rotation first; then uvicorn's own graceful shutdown runs: it closes the listener
and idle keep-alive connections, and waits up to ``timeout_graceful_shutdown`` for the
requests in flight. A second signal starts that shutdown at once.

After startup the first stdout line is ``listening http://HOST:PORT``, with the port
actually bound (``--port 0`` picks a free one).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import sys
from collections.abc import Callable
from types import FrameType

import uvicorn

__all__ = ["DrainingServer"]

log = logging.getLogger(__name__)


class DrainingServer(uvicorn.Server):
    """uvicorn.Server that delays its shutdown by a readiness drain; see the module doc."""

    def __init__(
        self, config: uvicorn.Config, *, drain_delay_s: float, on_drain: Callable[[], None]
    ) -> None:
        super().__init__(config)
        self._drain_delay_s = drain_delay_s
        self._on_drain = on_drain
        self._draining = False

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self._draining:
            super().handle_exit(sig, frame)
            return
        self._draining = True
        self._on_drain()
        log.info("signal %d: draining for %.1f s, then shutting down", sig, self._drain_delay_s)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # not serving yet: stop at once
            super().handle_exit(sig, frame)
            return
        loop.call_soon_threadsafe(
            loop.call_later, self._drain_delay_s, super().handle_exit, sig, frame
        )

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.should_exit:  # startup failed; uvicorn has logged why
            return
        for server in self.servers:
            for sock in server.sockets:
                address = sock.getsockname()
                host, port = address[0], address[1]
                if sock.family == socket.AF_INET6:
                    host = f"[{host}]"
                print(f"listening http://{host}:{port}", flush=True)
                return
        sys.stdout.flush()
