"""The kubernetes target: the broker-integration Deployment in a real cluster.

Kill a pod = ``chaosk8s.pod.actions.terminate_pods`` (grace period 0; the ReplicaSet
replaces it); readiness = the pods' ``Ready`` condition; partition a link = a
NetworkPolicy (see ``gameday.targets.kubernetes.objects``); degrade the broker link = toxics on
the Toxiproxy service; Prometheus = the cluster's. Settings and credentials: see
``gameday.targets.kubernetes.settings``. Every API call times out after ``api_timeout_s``.

The service's spec, ``GAMEDAY_SERVICE`` (see ``gameday.targets.kubernetes.settings``),
gives the metric and label names every Prometheus query uses and the order request.
Readiness is the pods' ``Ready`` condition, which the Deployment's probes decide: the
spec's ``paths: {health, ready}`` belong in its manifest (``deploy/kubernetes/``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chaosk8s.pod.actions import terminate_pods
from chaoslib.exceptions import ActivityFailed
from kubernetes.client import ApiClient, CoreV1Api, NetworkingV1Api, V1NetworkPolicy, V1Pod

from gameday.clients.prometheus import Prometheus
from gameday.contract import (
    CGROUP_FAULTS,
    CPU_THROTTLE_FAULT,
    FREEZE_FAULT,
    MEMORY_LIMIT_FAULT,
    REPLICA_LINK_DEGRADE_FAULT,
    ConfigError,
    GamedayError,
    InjectionError,
    MeasurementError,
    MetricNaming,
)
from gameday.service_spec import OrderRequest, ServiceSpec, load_spec
from gameday.settings import Settings, resolve
from gameday.targets.kubernetes import objects as obj
from gameday.targets.kubernetes.api import API_ERRORS, api_client, call_with_deadline, raise_as
from gameday.targets.kubernetes.leftovers import leftovers
from gameday.targets.kubernetes.settings import KubernetesSettings, credentials_source

__all__ = ["KubernetesTarget"]

MERGE_PATCH = "application/merge-patch+json"
NOT_YET = ("the {kind} fault is not supported on the kubernetes target yet (planned: "
           "Chaos Mesh, issue #16); run it on the lab")


@dataclass(frozen=True)
class KubernetesTarget:
    """The service described by ``settings``, reached with chaostoolkit-kubernetes'
    credentials, and by its spec ``service`` (None: the contract's names and order)."""

    settings: KubernetesSettings
    service: ServiceSpec | None = None

    @classmethod
    def from_env(cls, settings: Settings | None = None) -> KubernetesTarget:
        """The target the ``GAMEDAY_*`` variables describe, measuring the service of the
        spec ``GAMEDAY_SERVICE`` names (``settings.service``; default: resolved from the
        environment now). ConfigError without credentials, or naming a bad setting or spec."""
        credentials_source()
        resolved = resolve() if settings is None else settings
        kubernetes = KubernetesSettings.from_env()
        return cls(kubernetes, load_spec(resolved.service) if resolved.service else None)

    def naming(self) -> MetricNaming:
        """The service's names for the contract's metrics and labels (its spec's; the
        contract's own without a spec)."""
        return self.service.naming() if self.service else MetricNaming()

    def service_name(self) -> str:
        """The spec's name (GAMEDAY_SERVICE), or the selector's app when there is none."""
        return self.service.name if self.service else "broker-integration (no GAMEDAY_SERVICE)"

    def order(self) -> OrderRequest:
        """How an order is placed with the service (its spec's; ``POST /orders`` with the
        contract's body without a spec)."""
        return self.service.order if self.service else OrderRequest()

    @property
    def _ns(self) -> str:
        return self.settings.namespace

    @property
    def _timeout_s(self) -> float:
        return self.settings.api_timeout_s

    def _pods(self, api: ApiClient, selector: str, error: type[GamedayError]) -> list[V1Pod]:
        try:
            answer = CoreV1Api(api).list_namespaced_pod(
                self._ns, label_selector=selector, _request_timeout=self._timeout_s)
        except API_ERRORS as exc:
            raise_as(error, f"cannot list pods {selector!r} in namespace {self._ns}", exc)
        return sorted(answer.items, key=obj.pod_name)

    def kill_pods(self, selector: str, qty: int) -> list[str]:
        """Delete ``qty`` running pods matching ``selector`` (the first by name) with grace
        period 0 through chaostoolkit-kubernetes; return the names it deleted."""
        if not selector.strip():
            raise ConfigError("an empty selector would kill every pod of the namespace: "
                              f"name the service's pods, e.g. {self.settings.selector}")
        with api_client() as api:
            live = [obj.pod_name(p) for p in self._pods(api, selector, InjectionError)
                    if obj.is_live(p)]
        if not 1 <= qty <= len(live):
            raise ConfigError(f"qty={qty} is invalid: {len(live)} running pods match {selector!r}")
        pattern = "^(?:" + "|".join(re.escape(name) for name in live[:qty]) + ")$"

        def terminate() -> list[str]:
            return list(terminate_pods(label_selector=selector, name_pattern=pattern, qty=qty,
                                       ns=self._ns, grace_period=0))

        try:
            deleted = call_with_deadline(terminate, self._timeout_s * (qty + 2), "terminate_pods")
        except (*API_ERRORS, ActivityFailed, TimeoutError) as exc:
            raise_as(InjectionError, f"terminate_pods {selector!r} failed", exc)
        return [str(name) for name in deleted]

    def in_rotation(self, selector: str) -> int:
        """Pods the Service sends traffic to: on Kubernetes, the Ready ones."""
        return self.ready_replicas(selector)

    def replica_instances(self, selector: str) -> dict[str, list[str]]:
        """Per live pod matching ``selector``: ``[UID/RESTARTS]`` (see
        :func:`objects.pod_instance`)."""
        with api_client() as api:
            return {obj.pod_name(p): [obj.pod_instance(p)]
                    for p in self._pods(api, selector, MeasurementError) if obj.is_live(p)}

    def instances_running(self, recorded: list[str]) -> list[str]:
        """Those of the recorded ``UID/RESTARTS`` that a current pod of the service still
        runs as (same pod, no restart since)."""
        with api_client() as api:
            now = {obj.pod_instance(p) for p in
                   self._pods(api, self.settings.selector, MeasurementError)
                   if obj.is_current(p)}
        return sorted(set(recorded) & now)

    def ready_replicas(self, selector: str) -> int:
        """Pods matching ``selector`` that run, are not being deleted and are ``Ready``."""
        if not selector.strip():
            raise ConfigError(f"empty selector: name the service's pods, e.g. "
                              f"{self.settings.selector}")
        with api_client() as api:
            return sum(obj.is_ready(p) for p in self._pods(api, selector, MeasurementError))

    def _policies(self, api: ApiClient, error: type[GamedayError]) -> list[V1NetworkPolicy]:
        try:
            answer = NetworkingV1Api(api).list_namespaced_network_policy(
                self._ns, label_selector=obj.MANAGED_BY_SELECTOR,
                _request_timeout=self._timeout_s)
        except API_ERRORS as exc:
            raise_as(error, f"cannot list network policies in namespace {self._ns}", exc)
        return list(answer.items)

    def links(self) -> list[str]:
        """``service-broker``, ``lb-replica-N`` for each current pod (by name), and every
        link a gameday NetworkPolicy still cuts (so it can always be healed)."""
        with api_client() as api:
            pods = [p for p in self._pods(api, self.settings.selector, MeasurementError)
                    if obj.is_current(p)]
            policies = self._policies(api, MeasurementError)
        cut = {(p.metadata.labels or {}).get(obj.PARTITION_LABEL) for p in policies if p.metadata}
        names = obj.link_names(len(pods))
        return names + sorted(link for link in cut if link and link not in names)

    def _create_policy(self, api: ApiClient, body: dict[str, Any]) -> None:
        policy = V1NetworkPolicy.from_dict(body)
        assert policy is not None
        try:
            NetworkingV1Api(api).create_namespaced_network_policy(
                self._ns, policy, _headers={"Content-Type": "application/json"},
                _request_timeout=self._timeout_s)
        except API_ERRORS as exc:
            if getattr(exc, "status", None) != 409:  # already there: partitioned already
                raise_as(InjectionError, f"cannot create NetworkPolicy in {self._ns}", exc)

    def _label_pod(self, api: ApiClient, pod: str, link: str | None) -> None:
        patch = {"metadata": {"labels": {obj.PARTITION_LABEL: link}}}
        try:
            CoreV1Api(api).patch_namespaced_pod(pod, self._ns, patch, _content_type=MERGE_PATCH,
                                                _request_timeout=self._timeout_s)
        except API_ERRORS as exc:
            if link is not None or getattr(exc, "status", None) != 404:
                raise_as(InjectionError, f"cannot label pod {pod} in {self._ns}", exc)

    def _replica_pod(self, api: ApiClient, link: str, number: int) -> str:
        pods = [obj.pod_name(p) for p in self._pods(api, self.settings.selector, InjectionError)
                if obj.is_current(p)]
        if number > len(pods):
            valid = ", ".join(obj.link_names(len(pods)))
            raise ConfigError(f"unknown link {link!r}: valid links are {valid}")
        return pods[number - 1]

    def partition(self, link: str) -> None:
        """Cut ``link`` with a NetworkPolicy: ``service-broker`` denies the service's egress
        (DNS excepted); ``lb-replica-N`` labels the N-th pod and denies its ingress."""
        number = obj.replica_number(link)
        labels = obj.match_labels(self.settings.selector)
        with api_client() as api:
            if number is None:
                self._create_policy(api, obj.egress_policy(link, labels))
                return
            pod = self._replica_pod(api, link, number)
            self._create_policy(api, obj.ingress_policy(link, labels))
            self._label_pod(api, pod, link)

    def heal(self, link: str) -> None:
        """Delete the link's NetworkPolicy and the partition label of its pods; idempotent."""
        obj.replica_number(link)
        with api_client() as api:
            try:
                NetworkingV1Api(api).delete_namespaced_network_policy(
                    obj.policy_name(link), self._ns, _request_timeout=self._timeout_s)
            except API_ERRORS as exc:
                if getattr(exc, "status", None) != 404:
                    raise_as(InjectionError, f"cannot delete NetworkPolicy of {link}", exc)
            selector = f"{obj.PARTITION_LABEL}={link}"
            for pod in self._pods(api, selector, InjectionError):
                self._label_pod(api, obj.pod_name(pod), None)

    def fault_proxy_url(self) -> str:
        """The Toxiproxy service on the broker link."""
        return self.settings.toxiproxy_url

    def prometheus_url(self) -> str:
        """The cluster's Prometheus."""
        return self.settings.prometheus_url

    def prometheus(self) -> Prometheus:
        """The cluster's Prometheus, queried in the service's names (:meth:`naming`)."""
        return Prometheus(self.prometheus_url(), naming=self.naming())

    def broker_url(self) -> str:
        """The broker API."""
        return self.settings.broker_url

    def broker_admin_url(self) -> str:
        """The broker simulator's admin API; ConfigError when none is deployed."""
        if self.settings.broker_admin_url is None:
            raise ConfigError("HTTP-level broker faults need the broker simulator and "
                              "GAMEDAY_BROKER_ADMIN_URL is not set: on this cluster, use "
                              "network faults on the service-broker link instead")
        return self.settings.broker_admin_url

    def entry_url(self) -> str:
        """Where clients reach the service."""
        return self.settings.entry_url

    def state_dir(self) -> Path:
        """Local state directory (holds ``injected.jsonl``)."""
        return self.settings.state_dir

    def unsupported_faults(self) -> dict[str, str]:
        """Every cgroup fault: freezing or throttling a pod is not supported on this
        target yet (Chaos Mesh PodChaos/StressChaos, issue #16); nor a toxic between the
        Service and one pod (Toxiproxy sits on the service -> broker link only)."""
        return {**{kind: NOT_YET.format(kind=kind) for kind in CGROUP_FAULTS},
                REPLICA_LINK_DEGRADE_FAULT: "Toxiproxy sits on the service -> broker link only "
                                            "(deploy/kubernetes/20-toxiproxy.yaml)"}

    def freeze(self, selector: str) -> list[str]:
        """Not supported on this target yet: ConfigError."""
        raise ConfigError(NOT_YET.format(kind=FREEZE_FAULT))

    def thaw(self, selector: str) -> list[str]:
        """Nothing can be frozen on this target: nothing to thaw (idempotent undo)."""
        return []

    def throttle_cpu(self, selector: str, cores: float) -> list[str]:
        """Not supported on this target yet: ConfigError."""
        raise ConfigError(NOT_YET.format(kind=CPU_THROTTLE_FAULT))

    def unthrottle_cpu(self, selector: str) -> list[str]:
        """Nothing can be throttled on this target: nothing to undo (idempotent undo)."""
        return []

    def limit_memory(self, selector: str, headroom_mib: int, leak_mib_per_s: int) -> list[str]:
        """Not supported on this target yet: ConfigError."""
        raise ConfigError(NOT_YET.format(kind=MEMORY_LIMIT_FAULT))

    def unlimit_memory(self, selector: str) -> list[str]:
        """Nothing can be memory-limited on this target: nothing to lift (idempotent)."""
        return []

    def cgroup_figures(self, selector: str) -> dict[str, dict[str, Any]]:
        """Not measurable on this target yet: MeasurementError."""
        raise MeasurementError("the replicas' cgroups cannot be read on the kubernetes "
                               "target yet")

    def leftovers(self) -> list[str]:
        """Gameday NetworkPolicies, partition labels, toxics and disabled proxies still in
        place (and a broker simulator not in normal mode); raises if it cannot look."""
        with api_client() as api:
            return leftovers(self.settings, self._policies(api, MeasurementError),
                             self._pods(api, obj.PARTITION_LABEL, MeasurementError))
