"""The lab target: the local processes started by ``gameday lab up``.

Kill a pod = SIGKILL a replica process (supervisord restarts it, like a ReplicaSet);
partition a link = disable its proxy in the fault proxy; fail the broker = the broker
simulator's admin API.
"""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gameday.errors import ConfigError, MeasurementError
from gameday.http import HttpUnreachable, request_json
from gameday.toxiproxy import Toxiproxy
from lab import stack
from lab.layout import SERVICE_BROKER_LINK, LabLayout, layout_from_env

SERVICE_SELECTOR = "app=broker-integration"


@dataclass(frozen=True)
class LabTarget:
    """The lab described by ``layout``."""

    layout: LabLayout

    @classmethod
    def from_env(cls) -> LabTarget:
        """The lab that ``GAMEDAY_LAB_DIR`` and ``GAMEDAY_LAB_PORT_BASE`` point at."""
        return cls(layout_from_env())

    def _replicas(self, selector: str) -> list[stack.ReplicaStatus]:
        replicas = stack.status(self.layout).replicas
        if selector == SERVICE_SELECTOR:
            return replicas
        if selector.startswith("name="):
            chosen = [r for r in replicas if r.name == selector.removeprefix("name=")]
            if chosen:
                return chosen
        names = ", ".join(f"name={r.name}" for r in replicas)
        raise ConfigError(f"selector {selector!r} matches no replica: valid are "
                          f"{SERVICE_SELECTOR} or one of {names}")

    def kill_pods(self, selector: str, qty: int) -> list[str]:
        """SIGKILL ``qty`` running replicas matching ``selector``; return their names."""
        running = [r for r in self._replicas(selector) if r.running]
        if qty < 1 or qty > len(running):
            raise ConfigError(f"qty={qty} is invalid: {len(running)} matching replicas run")
        for replica in running[:qty]:
            os.kill(replica.pid, signal.SIGKILL)
        return [r.name for r in running[:qty]]

    def ready_replicas(self, selector: str = SERVICE_SELECTOR) -> int:
        """Replicas matching ``selector`` that run and answer /health."""
        ready = 0
        for replica in self._replicas(selector):
            try:
                ok = request_json("GET", replica.url + "/health", timeout_s=1.0).status == 200
            except HttpUnreachable:
                ok = False
            ready += int(replica.running and ok)
        return ready

    def links(self) -> list[str]:
        """``service-broker`` and ``lb-replica-N`` for each replica."""
        return [SERVICE_BROKER_LINK] + [self.layout.lb_link_name(n)
                                        for n in self.layout.replica_names()]

    def partition(self, link: str) -> None:
        """Take the link down: new connections are refused and open ones closed."""
        Toxiproxy(self.fault_proxy_url()).set_enabled(link, False)

    def heal(self, link: str) -> None:
        """Bring the link back up; idempotent."""
        Toxiproxy(self.fault_proxy_url()).set_enabled(link, True)

    def broker_url(self) -> str:
        """The broker simulator's API."""
        return self.layout.url("broker")

    def state_dir(self) -> Path:
        """The lab's state directory (holds ``injected.jsonl``)."""
        return self.layout.state_dir

    def fault_proxy_url(self) -> str:
        """The fault proxy's Toxiproxy-compatible API."""
        return self.layout.url("fault_proxy")

    def prometheus_url(self) -> str:
        """The lab's Prometheus."""
        return self.layout.url("prometheus")

    def broker_admin_url(self) -> str:
        """The broker simulator's admin API."""
        return self.layout.url("broker_admin")

    def entry_url(self) -> str:
        """HAProxy's entry point in front of the replicas."""
        return self.layout.url("entry")

    def leftovers(self) -> list[str]:
        """Faults still injected and parts not running; raises if the lab cannot be read."""
        try:
            proxies = request_json("GET", f"{self.fault_proxy_url()}/proxies").body
            mode = request_json("GET", f"{self.broker_admin_url()}/admin/mode").body
        except HttpUnreachable as exc:
            raise MeasurementError(f"cannot check the lab for leftovers: {exc}") from exc
        problems = _proxy_problems(proxies) + _mode_problems(mode)
        status = stack.status(self.layout)
        problems += [f"process {n} is {s}" for n, s in status.processes.items() if s != "RUNNING"]
        return problems


def _proxy_problems(proxies: Any) -> list[str]:
    if not isinstance(proxies, dict):
        return [f"fault proxy answered {proxies!r} instead of its proxies"]
    problems = []
    for name, proxy in sorted(proxies.items()):
        if not proxy.get("enabled", False):
            problems.append(f"link {name} is down")
        problems += [f"toxic {t.get('name')} on link {name}" for t in proxy.get("toxics") or []]
    return problems


def _mode_problems(mode: Any) -> list[str]:
    if isinstance(mode, dict) and mode.get("mode") == "normal":
        return []
    return [f"broker simulator is in mode {mode!r}, not normal"]
