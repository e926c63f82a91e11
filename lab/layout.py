"""Where the lab lives: its state directory and every port, derived from one base.

All ports sit at fixed offsets from ``GAMEDAY_LAB_PORT_BASE`` (default 18000), so two
labs with different bases never collide. Everything binds to 127.0.0.1.

With ``GAMEDAY_LAB_NETNS=1`` (root on Linux only, see :mod:`lab.netns`) each replica
runs in a network namespace of its own instead, on addresses of a /26 of 10.231.0.0/16
chosen by the port base: the lab's gateway (``.1``, a bridge on the host where the
service → broker link listens), and per replica N a service address (``.10+N``, what
HAProxy calls and what a partition cuts) and an admin address (``.20+N``, what
Prometheus, probes and readiness checks call, never cut).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path

from gameday.contract import ConfigError, lb_link_name

DEFAULT_PORT_BASE = 18000
REPLICA_COUNT = 3
HOST = "127.0.0.1"

MAX_REPLICAS = 9

_OFFSETS = {
    "entry": 0,
    "haproxy_stats": 1,
    "prometheus": 2,
    "fault_proxy": 3,
    "broker": 4,
    "broker_admin": 5,
    "runner_metrics": 8,  # served by `gameday run` while it runs, scraped as job gameday
    "service_broker_link": 10,
}
_REPLICA_OFFSET = 21
_LB_LINK_OFFSET = 11
_PORT_MAX = 65535
NETNS_NETWORK = ipaddress.IPv4Network("10.231.0.0/16")
NETNS_PREFIX = 26
_NETNS_BLOCKS = 2 ** (NETNS_PREFIX - NETNS_NETWORK.prefixlen)
_GATEWAY_OFFSET = 1
_SERVICE_OFFSET = 10
_ADMIN_OFFSET = 20


class LayoutError(ConfigError):
    """The lab's location settings are invalid."""


@dataclass(frozen=True)
class LabLayout:
    """The lab's state directory and port plan.

    Attributes:
        state_dir: directory holding configs, logs, TSDB and the supervisord socket.
        port_base: first port; every other port is a fixed offset from it.
        replica_count: number of service replicas behind HAProxy.
        netns: run each replica in a network namespace of its own (partitions are then
            iptables rules in it); off = everything on 127.0.0.1 (the default).
    """

    state_dir: Path
    port_base: int = DEFAULT_PORT_BASE
    replica_count: int = REPLICA_COUNT
    netns: bool = False

    def __post_init__(self) -> None:
        if not 1 <= self.replica_count <= MAX_REPLICAS:
            raise LayoutError(f"replica_count={self.replica_count}: valid is 1..{MAX_REPLICAS}")
        top = self.port_base + _REPLICA_OFFSET + self.replica_count
        if self.port_base < 1024 or top > _PORT_MAX:
            raise LayoutError(
                f"GAMEDAY_LAB_PORT_BASE={self.port_base} is out of range: "
                f"valid is 1024..{_PORT_MAX - _REPLICA_OFFSET - self.replica_count}"
            )

    def port(self, name: str) -> int:
        """Port of a named lab component (entry, prometheus, fault_proxy, ...)."""
        return self.port_base + _OFFSETS[name]

    def url(self, name: str) -> str:
        """HTTP base URL of a named lab component."""
        return f"http://{HOST}:{self.port(name)}"

    def replica_names(self) -> list[str]:
        """Names of the service replicas: replica-1, replica-2, ..."""
        return [f"replica-{i}" for i in range(1, self.replica_count + 1)]

    def replica_port(self, name: str) -> int:
        """Port of one replica, by name."""
        index = self.replica_names().index(name)
        return self.port_base + _REPLICA_OFFSET + index

    def replica_host(self, name: str) -> str:
        """Where probes, Prometheus and readiness checks reach a replica: 127.0.0.1, or
        its admin address in its namespace (never partitioned)."""
        return self._netns_address(name, _ADMIN_OFFSET) if self.netns else HOST

    def replica_service_host(self, name: str) -> str:
        """Where HAProxy reaches a replica: 127.0.0.1 (through the fault proxy), or its
        service address in its namespace (the one a partition cuts)."""
        return self._netns_address(name, _SERVICE_OFFSET) if self.netns else HOST

    def replica_url(self, name: str) -> str:
        """HTTP base URL of one replica, by name (on :meth:`replica_host`)."""
        return f"http://{self.replica_host(name)}:{self.replica_port(name)}"

    def broker_link_host(self) -> str:
        """Where the fault proxy's service → broker link listens: 127.0.0.1, or the
        gateway address on the host's bridge that the namespaces reach."""
        return self.netns_gateway() if self.netns else HOST

    def broker_link_url(self) -> str:
        """The broker URL the replicas call: the fault proxy's ``service-broker`` link."""
        return f"http://{self.broker_link_host()}:{self.port('service_broker_link')}"

    def netns_subnet(self) -> ipaddress.IPv4Network:
        """This lab's /26 of 10.231.0.0/16 (chosen by the port base, modulo 1024)."""
        block = self.port_base % _NETNS_BLOCKS
        first = int(NETNS_NETWORK.network_address) + block * 2 ** (32 - NETNS_PREFIX)
        return ipaddress.IPv4Network((first, NETNS_PREFIX))

    def netns_gateway(self) -> str:
        """The host's address on the lab's bridge, reachable from every namespace."""
        return str(self.netns_subnet()[_GATEWAY_OFFSET])

    def _netns_address(self, name: str, offset: int) -> str:
        index = self.replica_names().index(name) + 1
        return str(self.netns_subnet()[offset + index])

    def netns_name(self, name: str) -> str:
        """Name of a replica's network namespace, and of its veth's host end: gd<base>-rN."""
        return f"gd{self.port_base}-r{self.replica_names().index(name) + 1}"

    def netns_bridge(self) -> str:
        """Name of the lab's bridge on the host: gd<base>-br."""
        return f"gd{self.port_base}-br"

    def lb_link_name(self, replica: str) -> str:
        """Name of the load balancer → replica link: ``lb-replica-N``."""
        return lb_link_name(self.replica_names().index(replica) + 1)

    def lb_link_port(self, replica: str) -> int:
        """Port where the fault proxy carries the load balancer → replica link."""
        return self.port_base + _LB_LINK_OFFSET + self.replica_names().index(replica)

    def all_ports(self) -> list[int]:
        """Every port the lab listens on."""
        return ([self.port_base + offset for offset in _OFFSETS.values()]
                + [self.replica_port(n) for n in self.replica_names()]
                + [self.lb_link_port(n) for n in self.replica_names()])

    @property
    def socket_path(self) -> Path:
        """supervisord's control socket."""
        return self.state_dir / "supervisor.sock"

    @property
    def log_dir(self) -> Path:
        """Directory of every process' log."""
        return self.state_dir / "logs"
