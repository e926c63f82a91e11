"""Where the lab lives: its state directory and every port, derived from one base.

All ports sit at fixed offsets from ``GAMEDAY_LAB_PORT_BASE`` (default 18000), so two
labs with different bases never collide. Everything binds to 127.0.0.1.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_PORT_BASE = 18000
REPLICA_COUNT = 3
HOST = "127.0.0.1"
SERVICE_BROKER_LINK = "service-broker"
MAX_REPLICAS = 9

_OFFSETS = {
    "entry": 0,
    "haproxy_stats": 1,
    "prometheus": 2,
    "fault_proxy": 3,
    "broker": 4,
    "broker_admin": 5,
    "service_broker_link": 10,
}
_REPLICA_OFFSET = 21
_LB_LINK_OFFSET = 11
_PORT_MAX = 65535


class LayoutError(ValueError):
    """The lab's location settings are invalid."""


@dataclass(frozen=True)
class LabLayout:
    """The lab's state directory and port plan.

    Attributes:
        state_dir: directory holding configs, logs, TSDB and the supervisord socket.
        port_base: first port; every other port is a fixed offset from it.
        replica_count: number of service replicas behind HAProxy.
    """

    state_dir: Path
    port_base: int = DEFAULT_PORT_BASE
    replica_count: int = REPLICA_COUNT

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

    def replica_url(self, name: str) -> str:
        """HTTP base URL of one replica, by name."""
        return f"http://{HOST}:{self.replica_port(name)}"

    def lb_link_name(self, replica: str) -> str:
        """Name of the load balancer → replica link: ``lb-replica-N``."""
        return f"lb-{replica}"

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


def layout_from_env(environ: dict[str, str] | None = None) -> LabLayout:
    """The lab layout from ``GAMEDAY_LAB_DIR`` (default ./.lab) and ``GAMEDAY_LAB_PORT_BASE``."""
    env = dict(os.environ) if environ is None else environ
    raw_base = env.get("GAMEDAY_LAB_PORT_BASE", str(DEFAULT_PORT_BASE))
    try:
        base = int(raw_base)
    except ValueError:
        raise LayoutError(
            f"GAMEDAY_LAB_PORT_BASE={raw_base!r} is not an integer port number"
        ) from None
    state_dir = Path(env.get("GAMEDAY_LAB_DIR", ".lab")).resolve()
    return LabLayout(state_dir=state_dir, port_base=base)
