"""All proxies of one fault proxy server, by name; changes are serialised."""

from __future__ import annotations

import asyncio

from lab.faultproxy.errors import ApiError, bad_request, proxy_exists, proxy_not_found
from lab.faultproxy.metrics import Metrics, ProxyState
from lab.faultproxy.proxy import Proxy
from lab.faultproxy.settings import Address, LinkSettings, ProxySpec

__all__ = ["ProxyCollection"]


class ProxyCollection:
    """Create, find, change and delete proxies (Toxiproxy's ProxyCollection)."""

    def __init__(self, metrics: Metrics, settings: LinkSettings) -> None:
        self._metrics = metrics
        self._settings = settings
        self._proxies: dict[str, Proxy] = {}
        self._lock = asyncio.Lock()

    def all(self) -> list[Proxy]:
        """Every proxy, in creation order."""
        return list(self._proxies.values())

    def get(self, name: str) -> Proxy:
        """The proxy called `name` (404 if none)."""
        proxy = self._proxies.get(name)
        if proxy is None:
            raise proxy_not_found()
        return proxy

    def states(self) -> list[ProxyState]:
        """What the metrics report, one entry per proxy."""
        return [proxy.state() for proxy in self._proxies.values()]

    async def create(self, spec: ProxySpec) -> Proxy:
        """Create a proxy, listening unless disabled (409 if the name is taken)."""
        async with self._lock:
            if spec.name in self._proxies:
                raise proxy_exists()
            return await self._add(spec)

    async def update(self, name: str, listen: Address, upstream: Address, enabled: bool) -> Proxy:
        """Change a proxy's addresses or enable/disable it."""
        async with self._lock:
            proxy = self.get(name)
            await proxy.update(listen, upstream, enabled)
            return proxy

    async def delete(self, name: str) -> None:
        """Stop and forget a proxy."""
        async with self._lock:
            proxy = self.get(name)
            await proxy.stop()
            del self._proxies[name]

    async def reset(self) -> None:
        """Enable every proxy and remove every toxic."""
        async with self._lock:
            for proxy in self._proxies.values():
                proxy.reset_toxics()
                await proxy.start()

    async def populate(self, specs: list[ProxySpec]) -> list[Proxy]:
        """Create or replace many proxies; one already matching its spec is kept as is,
        and one whose replacement cannot listen is kept too (the error is raised)."""
        names = [spec.name for spec in specs]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise bad_request(f"duplicate proxy names: {', '.join(duplicates)}")
        async with self._lock:
            return [await self._add_or_replace(spec) for spec in specs]

    async def close(self) -> None:
        """Stop every proxy (at shutdown)."""
        async with self._lock:
            for proxy in self._proxies.values():
                await proxy.stop()

    async def _add_or_replace(self, spec: ProxySpec) -> Proxy:
        existing = self._proxies.get(spec.name)
        if existing is None:
            return await self._add(spec)
        if _same_addresses(existing, spec):
            await existing.update(existing.listen, existing.upstream, spec.enabled)
            return existing
        was_enabled = existing.enabled
        await existing.stop()
        del self._proxies[spec.name]
        try:
            return await self._add(spec)
        except ApiError:  # cannot listen there: keep the proxy it was to replace
            self._proxies[spec.name] = existing
            if was_enabled:
                await existing.start()
            raise

    async def _add(self, spec: ProxySpec) -> Proxy:
        proxy = Proxy(spec, self._metrics, self._settings)
        if spec.enabled:
            await proxy.start()
        self._proxies[spec.name] = proxy
        return proxy


def _same_addresses(proxy: Proxy, spec: ProxySpec) -> bool:
    listen_matches = spec.listen == proxy.listen or (
        spec.listen.port == 0 and spec.listen.host == proxy.listen.host
    )
    return listen_matches and spec.upstream == proxy.upstream
