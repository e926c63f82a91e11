"""Targets: where experiments act and measure. One interface, one module per target.

``GAMEDAY_TARGET`` (default ``lab``) chooses the target; experiments never name one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from gameday.clients.prometheus import Prometheus
from gameday.contract import ConfigError, MetricNaming
from gameday.service_spec import OrderRequest
from gameday.settings import TARGET_NAMES, Settings, resolve
from gameday.targets.lab import LabTarget

__all__ = ["Target", "get_target"]


class Target(Protocol):
    """What probes and actions need from the system under test.

    Selectors are Kubernetes label selectors (``app=broker-integration``); both targets
    also accept ``name=replica-N`` (on Kubernetes: the N-th current pod by name). Links
    are named after what they join: ``service-broker`` (every replica to the broker),
    ``lb-replica-N`` (load balancer to one replica).
    """

    def kill_pods(self, selector: str, qty: int) -> list[str]:
        """Kill ``qty`` running replicas matching ``selector``; return their names."""

    def replica_instances(self, selector: str) -> dict[str, list[str]]:
        """Per running replica matching ``selector``: what it runs as now (lab: each of
        its processes as ``PID@START``; Kubernetes: ``UID/RESTARTS`` of the pod). A kill
        that landed leaves none of them running."""

    def instances_running(self, recorded: list[str]) -> list[str]:
        """Those of ``recorded`` (from :meth:`replica_instances`) that still run now."""

    def ready_replicas(self, selector: str) -> int:
        """Number of replicas matching ``selector`` that are running and ready."""

    def in_rotation(self, selector: str) -> int:
        """Number of replicas matching ``selector`` the load balancer sends traffic to."""

    def links(self) -> list[str]:
        """Names of the links that can be partitioned or degraded."""

    def partition(self, link: str) -> None:
        """Cut a named link; raises ConfigError naming the valid links if unknown."""

    def heal(self, link: str) -> None:
        """Restore a named link (and remove its degradations); idempotent."""

    def degrade(self, link: str, toxic: dict[str, Any]) -> dict[str, Any]:
        """Add a Toxiproxy toxic (``gameday.faults.inject.toxic_body``) to a named link, or
        what stands for it on this target; return it as created. Undo with :meth:`heal`."""

    def drop_packets(self, link: str, probability: float) -> None:
        """Drop each packet of a named link, either way, with ``probability`` (0 < p <= 1);
        InjectionError where :meth:`unsupported_faults` says so. Undo with :meth:`heal`."""

    def dropped_packets(self, link: str) -> int:
        """How many packets the loss on a named link has dropped since it was put in
        place; MeasurementError when no loss is in place there or it cannot be read."""

    def unsupported_faults(self) -> dict[str, str]:
        """The fault kinds of ``gameday.contract.CGROUP_FAULTS`` (and
        ``REPLICA_LINK_DEGRADE_FAULT``, ``PACKET_LOSS_FAULT``) this target cannot inject
        here, each with why (empty: it can inject them all)."""

    def no_traffic_reason(self) -> str | None:
        """Why no request can flow through the service on this target (a cluster of fake
        nodes), or None when it can: then only an experiment's control-plane cut runs
        (``gameday.engine.controlplane``) and no load is started."""

    def freeze(self, selector: str) -> list[str]:
        """Freeze the replicas matching ``selector`` (alive, sockets open, nothing answered);
        return their names. InjectionError where :meth:`unsupported_faults` says so."""

    def thaw(self, selector: str) -> list[str]:
        """Let the replicas matching ``selector`` run again; idempotent."""

    def throttle_cpu(self, selector: str, cores: float) -> list[str]:
        """Limit the replicas matching ``selector`` to ``cores`` of CPU (e.g. 0.1)."""

    def unthrottle_cpu(self, selector: str) -> list[str]:
        """Lift the CPU limit of the replicas matching ``selector``; idempotent."""

    def limit_memory(self, selector: str, headroom_mib: int, leak_mib_per_s: int) -> list[str]:
        """Limit the memory of the replicas matching ``selector`` to what they use plus
        ``headroom_mib``, and leak ``leak_mib_per_s`` into it until the kernel OOM-kills
        each one; return their names."""

    def unlimit_memory(self, selector: str) -> list[str]:
        """End the leak and lift the memory limit of the replicas matching ``selector``;
        idempotent."""

    def cgroup_figures(self, selector: str) -> dict[str, dict[str, Any]]:
        """Per replica matching ``selector``: ``freezer_state`` (THAWED, FREEZING, FROZEN),
        ``quota_cores`` (-1: no limit) and the kernel's ``nr_periods``, ``nr_throttled``,
        ``throttled_time`` (ns); ``memory_usage_bytes``, ``memory_limit_bytes`` (-1: no
        limit) and ``oom_kills``; MeasurementError when they cannot be read."""

    def fault_proxy_url(self) -> str:
        """Base URL of the Toxiproxy-compatible API on the links."""

    def prometheus_url(self) -> str:
        """Base URL of the Prometheus that scrapes the service."""

    def prometheus(self) -> Prometheus:
        """A client of that Prometheus speaking the service's metric and label names
        (:meth:`naming`): every query is written with the contract's names."""

    def broker_url(self) -> str:
        """Base URL of the broker API (``GET /fills`` reads the broker's ledger)."""

    def broker_admin_url(self) -> str:
        """Base URL of the broker simulator's admin API; ConfigError where there is none."""

    def entry_url(self) -> str:
        """Base URL clients (and the load generator) call."""

    def state_dir(self) -> Path:
        """Directory for this target's local state (the record of injected faults)."""

    def leftovers(self) -> list[str]:
        """Every fault still injected, in words; empty when the target is clean."""

    def release_gray(self) -> list[str]:
        """Undo every gray fault this target can find, recorded or not (lab: thaw,
        unthrottle and lift the memory limit of every replica cgroup, ending its leak;
        Kubernetes: delete every gameday Chaos Mesh object); idempotent. Returns what it
        found and undid, in words."""

    def own_processes(self) -> tuple[list[int], list[str]] | None:
        """How to tell the target's processes on this machine from other work: the PIDs
        whose process trees are the target's, and the names of cgroups whose members
        are; None when the target's processes do not run on this machine (a cluster)."""

    def naming(self) -> MetricNaming:
        """The service's names for the contract's metrics and labels (its spec's)."""

    def service_name(self) -> str:
        """The name of the service under test (its spec's; shown in reports)."""

    def order(self) -> OrderRequest:
        """How an order is placed with the service (its spec's order request)."""


def get_target(name: str | None = None, settings: Settings | None = None) -> Target:
    """The target called ``name``, or the one ``GAMEDAY_TARGET`` names (default ``lab``),
    located by ``settings`` (default: resolved from the environment now)."""
    resolved = resolve() if settings is None else settings
    chosen = name or resolved.target
    if chosen == "lab":
        return LabTarget.from_settings(resolved)
    if chosen == "kubernetes":
        # Imported here: the Kubernetes client is slow to import and the lab needs none of it.
        from gameday.targets.kubernetes.target import KubernetesTarget  # noqa: PLC0415

        return KubernetesTarget.from_env(resolved)
    raise ConfigError(f"unknown target {chosen!r}: valid targets are {', '.join(TARGET_NAMES)}")
