"""Pure helpers of the kubernetes target: link names, NetworkPolicy bodies, pod states.

A partition is a NetworkPolicy that gameday creates and deletes by name, labelled
``app.kubernetes.io/managed-by=gameday`` so that leftovers can be found by label:

- ``service-broker``: the service's pods may send nothing but DNS (egress denied), so
  no replica reaches the broker (through the Toxiproxy service or not).
- ``lb-replica-N``: the N-th pod by name (of those not being deleted) gets the label
  ``gameday.io/partition=lb-replica-N`` and a policy selecting that label denies all of
  its ingress: the load balancer (the Service) can no longer reach it.
"""

from __future__ import annotations

import re
from typing import Any

from kubernetes.client import V1Pod
from kubernetes.utils.quantity import parse_quantity

from gameday.contract import LB_LINK_PREFIX, SERVICE_BROKER_LINK, ConfigError

__all__ = [
    "MANAGED_BY",
    "MANAGED_BY_SELECTOR",
    "PARTITION_LABEL",
    "SERVICE_BROKER_LINK",
    "cpu_limit_cores",
    "egress_policy",
    "ingress_policy",
    "is_current",
    "is_live",
    "is_ready",
    "link_names",
    "match_labels",
    "pod_name",
    "policy_name",
    "replica_number",
]

PARTITION_LABEL = "gameday.io/partition"
MANAGED_BY = {"app.kubernetes.io/managed-by": "gameday"}
MANAGED_BY_SELECTOR = "app.kubernetes.io/managed-by=gameday"
DNS_PORTS = [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]

_LABEL_NAME = r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?"
_LABEL_KEY = re.compile(rf"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?{_LABEL_NAME}$")
_LABEL_VALUE = re.compile(rf"^({_LABEL_NAME})?$")


def match_labels(selector: str) -> dict[str, str]:
    """The ``matchLabels`` of an equality-based selector (``app=x,tier=y``).

    Raises ConfigError for an empty or set-based selector: a NetworkPolicy built from it
    must select exactly the service's pods.
    """
    labels: dict[str, str] = {}
    for term in selector.split(","):
        key, sep, value = term.replace("==", "=").partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not _LABEL_KEY.match(key) or not _LABEL_VALUE.match(value):
            raise ConfigError(f"selector {selector!r} is not an equality-based label selector "
                              "like app=broker-integration (key=value, comma-separated)")
        labels[key] = value
    return labels


def link_names(replicas: int) -> list[str]:
    """``service-broker`` then ``lb-replica-1`` .. ``lb-replica-<replicas>``."""
    return [SERVICE_BROKER_LINK] + [f"{LB_LINK_PREFIX}{n}" for n in range(1, replicas + 1)]


def replica_number(link: str) -> int | None:
    """N of ``lb-replica-N``; None for ``service-broker``; ConfigError for anything else."""
    if link == SERVICE_BROKER_LINK:
        return None
    number = link.removeprefix(LB_LINK_PREFIX)
    if link.startswith(LB_LINK_PREFIX) and number.isdigit() and int(number) >= 1:
        return int(number)
    raise ConfigError(f"unknown link {link!r}: valid links are {SERVICE_BROKER_LINK} "
                      f"and {LB_LINK_PREFIX}N (N = 1 .. number of replicas)")


def replica_selector_number(selector: str) -> int | None:
    """N of the lab's replica selector ``name=replica-N`` (N >= 1), else None."""
    key, sep, value = selector.replace(" ", "").partition("=")
    number = value.removeprefix("replica-")
    if key == "name" and sep and value.startswith("replica-") and number.isdigit() \
            and int(number) >= 1:
        return int(number)
    return None


def policy_name(link: str) -> str:
    """Name of the NetworkPolicy that cuts ``link``."""
    return f"gameday-partition-{link}"


def _policy(link: str, pod_labels: dict[str, str], spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": policy_name(link),
                     "labels": {**MANAGED_BY, PARTITION_LABEL: link}},
        "spec": {"podSelector": {"matchLabels": pod_labels}, **spec},
    }


def egress_policy(link: str, service_labels: dict[str, str]) -> dict[str, Any]:
    """NetworkPolicy letting the service's pods send DNS queries and nothing else."""
    return _policy(link, service_labels,
                   {"policyTypes": ["Egress"], "egress": [{"ports": DNS_PORTS}]})


def ingress_policy(link: str, service_labels: dict[str, str]) -> dict[str, Any]:
    """NetworkPolicy denying all ingress to the service's pod labelled for ``link``."""
    labels = {**service_labels, PARTITION_LABEL: link}
    return _policy(link, labels, {"policyTypes": ["Ingress"], "ingress": []})


def pod_name(pod: V1Pod) -> str:
    """The pod's name ("" if the API server sent none)."""
    return (pod.metadata.name if pod.metadata else None) or ""


def is_current(pod: V1Pod) -> bool:
    """A pod that is not being deleted (it may still be starting)."""
    return pod.metadata is None or pod.metadata.deletion_timestamp is None


def pod_instance(pod: V1Pod) -> str:
    """What a pod runs as now (pure): ``UID/RESTARTS``, its uid and the sum of its
    containers' restart counts; a replacement pod has a new uid, a restarted container a
    higher count."""
    uid = (pod.metadata.uid if pod.metadata else None) or ""
    statuses = (pod.status.container_statuses if pod.status else None) or []
    return f"{uid}/{sum(int(s.restart_count or 0) for s in statuses)}"


def is_live(pod: V1Pod) -> bool:
    """A current pod whose containers run (phase ``Running``)."""
    return is_current(pod) and pod.status is not None and pod.status.phase == "Running"


def is_ready(pod: V1Pod) -> bool:
    """A live pod whose ``Ready`` condition is ``True`` (it receives Service traffic)."""
    conditions = (pod.status.conditions or []) if is_live(pod) and pod.status else []
    return any(c.type == "Ready" and c.status == "True" for c in conditions)


def _first_container_limit(pod: V1Pod) -> float | None:
    containers = pod.spec.containers if pod.spec else []
    limits = (containers[0].resources.limits or {}) if containers and containers[0].resources \
        else {}
    return float(parse_quantity(limits["cpu"])) if "cpu" in limits else None  # type: ignore[no-untyped-call]


def cpu_limit_cores(pods: list[V1Pod]) -> float:
    """The largest CPU limit of the pods' first containers, in cores (pure); ConfigError
    naming a pod whose first container has none (it cannot be starved within a limit)."""
    limits = []
    for pod in pods:
        limit = _first_container_limit(pod)
        if limit is None:
            raise ConfigError(f"pod {pod_name(pod)} has no CPU limit on its first container: "
                              "CPU stressors starve a container only within its limit")
        limits.append(limit)
    return max(limits)
