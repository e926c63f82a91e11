"""Settings of the fault proxy: frozen dataclasses, units in the names."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Address", "LinkSettings", "ProxySpec", "ServerSettings"]


@dataclass(frozen=True)
class Address:
    """A TCP address; `host` may be an IP literal or a name ("" = all interfaces)."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True)
class ProxySpec:
    """What a proxy is asked to be: Toxiproxy's `name`, `listen`, `upstream`, `enabled`."""

    name: str
    listen: Address
    upstream: Address
    enabled: bool = True


@dataclass(frozen=True)
class LinkSettings:
    """How connections are carried.

    max_in_flight_bytes: per direction, bytes inside the fault stages (read, not yet
        written) at which reading stops (back-pressure while faults hold data).
    connect_timeout_s: limit on connecting to the upstream for each new client.
    backlog: listen backlog of each proxy listener.
    """

    max_in_flight_bytes: int = 8 * 1024 * 1024
    connect_timeout_s: float = 5.0
    backlog: int = 1024


@dataclass(frozen=True)
class ServerSettings:
    """The fault proxy process.

    api: where the HTTP API listens (port 0 picks a free port); the command line's
        default is 127.0.0.1, so only this machine can reach it.
    config_path: JSON list of proxies created at start (Toxiproxy's -config), if any.
    link: how connections are carried.
    admin_token: the bearer token every API call but GET /version and GET /metrics
        must carry (see `lab.admin_auth`), or None for an open API; never shown in repr.
    """

    api: Address
    config_path: str | None = None
    link: LinkSettings = LinkSettings()
    admin_token: str | None = field(default=None, repr=False)
