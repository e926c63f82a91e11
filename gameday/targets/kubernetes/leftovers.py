"""What the kubernetes target still has injected, in words (the final cleanup check)."""

from __future__ import annotations

from typing import Any

from kubernetes.client import V1NetworkPolicy, V1Pod

from gameday.clients.http import admin_call
from gameday.clients.toxiproxy import Toxiproxy, proxy_problems
from gameday.contract import InjectionError, MeasurementError
from gameday.targets.kubernetes import chaosmesh as cm
from gameday.targets.kubernetes import objects as obj
from gameday.targets.kubernetes.settings import KubernetesSettings

__all__ = ["leftovers", "policy_problems"]


def policy_problems(policies: list[V1NetworkPolicy], labelled: list[V1Pod]) -> list[str]:
    """Gameday NetworkPolicies still in place and pods still labelled for a partition."""
    problems = []
    for policy in policies:
        name = policy.metadata.name if policy.metadata else "?"
        link = (policy.metadata.labels or {}).get(obj.PARTITION_LABEL) if policy.metadata else None
        problems.append(f"network policy {name} (partition of link {link}) is in place")
    for pod in labelled:
        link = (pod.metadata.labels or {}).get(obj.PARTITION_LABEL) if pod.metadata else None
        problems.append(f"pod {obj.pod_name(pod)} is labelled {obj.PARTITION_LABEL}={link}")
    return problems


def _broker_problems(admin_url: str, timeout_s: float) -> list[str]:
    try:
        mode = admin_call("broker simulator (admin API)", "GET", f"{admin_url}/admin/mode",
                          timeout_s=timeout_s, error=MeasurementError).body
    except MeasurementError as exc:
        raise MeasurementError(f"cannot read the broker simulator's mode: {exc}") from None
    if isinstance(mode, dict) and mode.get("mode") == "normal":
        return []
    return [f"broker simulator is in mode {mode!r}, not normal"]


def leftovers(settings: KubernetesSettings, policies: list[V1NetworkPolicy],
              labelled: list[V1Pod], chaos: list[dict[str, Any]]) -> list[str]:
    """Everything still injected: the cluster objects given (NetworkPolicies, labelled
    pods, Chaos Mesh objects), then the Toxiproxy service's proxies and, if configured,
    the broker simulator's mode; MeasurementError if unreadable."""
    try:
        proxies = Toxiproxy(settings.toxiproxy_url, settings.api_timeout_s).proxies()
    except InjectionError as exc:
        raise MeasurementError(f"cannot check the Toxiproxy service for leftovers: {exc}") from exc
    problems = policy_problems(policies, labelled) + cm.leftover_problems(chaos)
    problems += proxy_problems(proxies)
    if settings.broker_admin_url is not None:
        problems += _broker_problems(settings.broker_admin_url, settings.api_timeout_s)
    return problems
