"""A proxy: a listener that carries each client to the upstream through its toxics."""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import Any

from lab.faultproxy.endpoint import Endpoint
from lab.faultproxy.errors import ApiError, listen_failed, toxic_exists, toxic_not_found
from lab.faultproxy.link import Link
from lab.faultproxy.metrics import Metrics, ProxyState
from lab.faultproxy.settings import Address, LinkSettings, ProxySpec
from lab.faultproxy.toxics import STREAMS, Toxic, ToxicSet

__all__ = ["Proxy"]

log = logging.getLogger(__name__)


async def _bind(address: Address, backlog: int) -> socket.socket:
    """One listening socket on `address` (port 0 picks a free port)."""
    host = address.host or "0.0.0.0"
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(
            host, address.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
        family, _, _, _, sockaddr = infos[0]
        return socket.create_server((sockaddr[0], address.port), family=family, backlog=backlog)
    except OSError as error:
        raise listen_failed(str(address), error) from error


class Proxy:
    """Toxiproxy's proxy: name, listen, upstream, enabled, and toxics."""

    def __init__(self, spec: ProxySpec, metrics: Metrics, settings: LinkSettings) -> None:
        self.name = spec.name
        self.listen = spec.listen
        self.upstream = spec.upstream
        self.toxics = ToxicSet()
        self._metrics = metrics
        self._settings = settings
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        self._links: set[Link] = set()

    @property
    def enabled(self) -> bool:
        """True while the proxy listens."""
        return self._server is not None

    def to_json(self) -> dict[str, Any]:
        """Toxiproxy's proxy JSON object, toxics included."""
        return {
            "name": self.name,
            "listen": str(self.listen),
            "upstream": str(self.upstream),
            "enabled": self.enabled,
            "toxics": [toxic.to_json() for toxic in self.toxics.ordered()],
        }

    def spec(self) -> ProxySpec:
        """The proxy's current settings."""
        return ProxySpec(self.name, self.listen, self.upstream, self.enabled)

    def state(self) -> ProxyState:
        """What the metrics report about this proxy."""
        return ProxyState(self.name, self.enabled, len(self.toxics), len(self._handlers))

    async def start(self) -> None:
        """Listen (again) on `listen`; a port 0 becomes the port actually bound."""
        if self._server is not None:
            return
        sock = await _bind(self.listen, self._settings.backlog)
        self.listen = Address(sock.getsockname()[0], sock.getsockname()[1])
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: Endpoint(self._accept), sock=sock)
        log.info("proxy %s listening on %s -> %s", self.name, self.listen, self.upstream)

    async def stop(self) -> None:
        """Stop listening (new clients are refused) and close every open connection."""
        if self._server is None:
            return
        server, self._server = self._server, None
        server.close()
        handlers = list(self._handlers)
        for task in handlers:
            task.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)
        await server.wait_closed()
        log.info("proxy %s stopped, %d connections closed", self.name, len(handlers))

    async def update(self, listen: Address, upstream: Address, enabled: bool) -> None:
        """Toxiproxy's update: new addresses restart it; `enabled` starts or stops it.

        If it cannot listen on the new address, the error is raised and the proxy goes
        back to its previous addresses and state (Toxiproxy leaves it disabled).
        """
        before = self.spec()
        if listen != self.listen or upstream != self.upstream:
            await self.stop()
            self.listen, self.upstream = listen, upstream
        try:
            await (self.start() if enabled else self.stop())
        except ApiError:
            await self._restore(before)
            raise

    async def _restore(self, spec: ProxySpec) -> None:
        """Back to `spec` after a failed update (logged if even that fails)."""
        self.listen, self.upstream = spec.listen, spec.upstream
        if spec.enabled:
            try:
                await self.start()
            except ApiError as error:
                log.warning("proxy %s could not listen again: %s", self.name, error.message)

    def add_toxic(self, toxic: Toxic) -> None:
        """Add a toxic; it applies to open connections too (409 if the name is taken)."""
        if toxic.name in self.toxics:
            raise toxic_exists()
        self.toxics.put(toxic)
        for link in self._links:
            link.add_toxic(toxic)

    def update_toxic(self, toxic: Toxic) -> None:
        """Replace the settings of the toxic with the same name, on open connections too."""
        self.get_toxic(toxic.name)
        self.toxics.put(toxic)
        for link in self._links:
            link.update_toxic(toxic)

    def remove_toxic(self, name: str) -> None:
        """Remove a toxic; open connections continue without it, losing no bytes."""
        toxic = self.get_toxic(name)
        self.toxics.pop(name)
        for link in self._links:
            link.remove_toxic(toxic)

    def get_toxic(self, name: str) -> Toxic:
        """The toxic called `name` (404 if none)."""
        toxic = self.toxics.get(name)
        if toxic is None:
            raise toxic_not_found()
        return toxic

    def reset_toxics(self) -> None:
        """Remove every toxic."""
        for toxic in self.toxics.ordered():
            self.remove_toxic(toxic.name)

    def _accept(self, client: Endpoint) -> None:
        """A client connected: serve it in its own task (tracked, so stop() can end it)."""
        if not self.enabled:
            client.close()
            return
        task = asyncio.create_task(self._handle(client), name=f"proxy {self.name} link")
        self._handlers.add(task)
        task.add_done_callback(self._handlers.discard)

    async def _handle(self, client: Endpoint) -> None:
        try:
            upstream = await self._connect()
            if upstream is not None:
                await self._serve(client, upstream)
        finally:
            client.close()

    async def _serve(self, client: Endpoint, upstream: Endpoint) -> None:
        meters = self._metrics.link_meters(self.name, str(self.listen), str(self.upstream))
        chains = {stream: self.toxics.chain(stream) for stream in STREAMS}
        link = Link(client, upstream, chains, meters, self._settings)
        self._links.add(link)
        try:
            await link.run()
        finally:
            self._links.discard(link)
            upstream.close()

    async def _connect(self) -> Endpoint | None:
        """A connection to the upstream, or None (logged) when it cannot be reached."""
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self._settings.connect_timeout_s):
                _, upstream = await loop.create_connection(
                    Endpoint, self.upstream.host, self.upstream.port
                )
        except (OSError, TimeoutError) as error:
            log.warning("proxy %s: cannot reach upstream %s: %s", self.name, self.upstream, error)
            return None
        return upstream
