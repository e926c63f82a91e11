"""The kubernetes target: the broker-integration Deployment in a real cluster.

Kill a pod = ``chaosk8s.pod.actions.terminate_pods`` (grace period 0; the ReplicaSet
replaces it); readiness = the pods' ``Ready`` condition; partition a link = a
NetworkPolicy (see ``gameday.targets.kubernetes.objects``); degrade the broker link = toxics on
the Toxiproxy service; freeze, CPU throttle and latency on one replica's link = Chaos
Mesh objects, when Chaos Mesh is installed (see ``gameday.targets.kubernetes.chaosmesh``);
Prometheus = the cluster's. Settings and credentials: see
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
from gameday.clients.toxiproxy import Toxiproxy
from gameday.contract import (
    CPU_THROTTLE_FAULT,
    FREEZE_FAULT,
    MEMORY_LIMIT_FAULT,
    PACKET_LOSS_FAULT,
    ConfigError,
    GamedayError,
    InjectionError,
    MeasurementError,
    MetricNaming,
)
from gameday.service_spec import OrderRequest, ServiceSpec, load_spec
from gameday.settings import Settings, resolve
from gameday.targets.kubernetes import chaosmesh as cm
from gameday.targets.kubernetes import objects as obj
from gameday.targets.kubernetes.api import API_ERRORS, api_client, call_with_deadline, raise_as
from gameday.targets.kubernetes.chaosapi import ChaosObjects
from gameday.targets.kubernetes.leftovers import leftovers
from gameday.targets.kubernetes.settings import KubernetesSettings, credentials_source

__all__ = ["MEMORY_NOT_YET", "PACKET_LOSS_NOT_YET", "KubernetesTarget"]

MERGE_PATCH = "application/merge-patch+json"
# cAdvisor's counter of a container's CFS periods throttled, as the kubelet exports it.
THROTTLED_PERIODS = "container_cpu_cfs_throttled_periods_total"
NO_TRAFFIC = ("GAMEDAY_K8S_TRAFFIC=none: no request flows through this cluster's pods (kwok's "
              "fake nodes run no container), so only what the control plane shows is judged")
MEMORY_NOT_YET = ("the memory-limit fault is not supported on the kubernetes target yet (a "
                  "Chaos Mesh memory stressor would be what the kernel kills, not the "
                  "service); run replica-oom on the lab")
PACKET_LOSS_NOT_YET = ("the packet-loss fault is not supported on the kubernetes target yet "
                       "(a Chaos Mesh NetworkChaos loss towards the broker would inject it, "
                       "but its evidence, the drops counted by the lab's iptables rules, has "
                       "no counterpart there); run broker-packet-loss on a lab with "
                       "GAMEDAY_LAB_NETNS=1")


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

    def _selected(self, api: ApiClient, selector: str,
                  error: type[GamedayError]) -> list[V1Pod]:
        """The pods ``selector`` matches, by name; ``name=replica-N`` (the lab's replica N)
        is the N-th current pod of the service by name at this moment (none when there
        are fewer): pods have no stable ordinal, a replacement gets a new name."""
        number = obj.replica_selector_number(selector)
        if number is None:
            return self._pods(api, selector, error)
        current = [p for p in self._pods(api, self.settings.selector, error)
                   if obj.is_current(p)]
        return current[number - 1:number]

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
            live = [obj.pod_name(p) for p in self._selected(api, selector, InjectionError)
                    if obj.is_live(p)]
        if not 1 <= qty <= len(live):
            raise ConfigError(f"qty={qty} is invalid: {len(live)} running pods match {selector!r}")
        pattern = "^(?:" + "|".join(re.escape(name) for name in live[:qty]) + ")$"
        labels = self.settings.selector if obj.replica_selector_number(selector) else selector

        def terminate() -> list[str]:
            return list(terminate_pods(label_selector=labels, name_pattern=pattern, qty=qty,
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
                    for p in self._selected(api, selector, MeasurementError) if obj.is_live(p)}

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
            return sum(obj.is_ready(p) for p in self._selected(api, selector, MeasurementError))

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
        link a gameday NetworkPolicy still cuts or a gameday NetworkChaos still delays
        (so it can always be healed)."""
        with api_client() as api:
            pods = [p for p in self._pods(api, self.settings.selector, MeasurementError)
                    if obj.is_current(p)]
            policies = self._policies(api, MeasurementError)
            delayed = self._chaos(api).listed(cm.NETWORK_CHAOS, MeasurementError)
        cut = {(p.metadata.labels or {}).get(obj.PARTITION_LABEL) for p in policies if p.metadata}
        cut |= {(d.get("metadata") or {}).get("labels", {}).get(cm.LINK_LABEL) for d in delayed}
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
        """Delete the link's NetworkPolicy, the partition label of its pods and, for a
        replica link, its Chaos Mesh delay; idempotent."""
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
            if link != obj.SERVICE_BROKER_LINK:
                self._chaos(api).delete(cm.NETWORK_CHAOS, cm.degrade_name(link))

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

    def _chaos(self, api: ApiClient) -> ChaosObjects:
        return ChaosObjects(api, self._ns, self._timeout_s)

    def no_traffic_reason(self) -> str | None:
        """Why no traffic flows through the pods (``GAMEDAY_K8S_TRAFFIC=none``), or None."""
        return None if self.settings.traffic_flows else NO_TRAFFIC

    def unsupported_faults(self) -> dict[str, str]:
        """``memory-limit`` and ``packet-loss`` always; the other gray faults when Chaos
        Mesh is not installed (its ``chaos-mesh.org`` resources are not served), each
        naming what to install."""
        with api_client() as api:
            return {MEMORY_LIMIT_FAULT: MEMORY_NOT_YET, PACKET_LOSS_FAULT: PACKET_LOSS_NOT_YET,
                    **self._chaos(api).unsupported()}

    def drop_packets(self, link: str, probability: float) -> None:
        """Not supported here yet: InjectionError saying so."""
        raise InjectionError(f"not runnable here: {PACKET_LOSS_NOT_YET}")

    def dropped_packets(self, link: str) -> int:
        """Not supported here yet: MeasurementError saying so."""
        raise MeasurementError(f"cannot count dropped packets: {PACKET_LOSS_NOT_YET}")

    def _matching(self, api: ApiClient, selector: str) -> list[V1Pod]:
        pods = [p for p in self._selected(api, selector, InjectionError) if obj.is_current(p)]
        if not pods:
            raise ConfigError(f"selector {selector!r} matches no pod in namespace {self._ns}")
        return pods

    def freeze(self, selector: str) -> list[str]:
        """Drop every packet the pods of ``selector`` send (a Chaos Mesh NetworkChaos
        ``loss`` of 100 %, see :mod:`gameday.targets.kubernetes.chaosmesh`): they run on
        with their sockets open and answer nothing. Returns the pods' names."""
        with api_client() as api:
            pods = self._matching(api, selector)
            body = cm.freeze_chaos(self._ns, selector, [obj.pod_name(p) for p in pods])
            self._chaos(api).create(body, exists_ok=True)
        return [obj.pod_name(p) for p in pods]

    def _release(self, selector: str, plural: str, fault: str) -> list[str]:
        with api_client() as api:
            self._chaos(api).delete(plural, cm.object_name(fault, selector))
            return [obj.pod_name(p) for p in self._selected(api, selector, InjectionError)
                    if obj.is_current(p)]

    def thaw(self, selector: str) -> list[str]:
        """Delete the freeze's NetworkChaos of ``selector``; idempotent. Returns the names
        of the pods ``selector`` matches."""
        return self._release(selector, cm.NETWORK_CHAOS, FREEZE_FAULT)

    def throttle_cpu(self, selector: str, cores: float) -> list[str]:
        """Leave the pods of ``selector`` about ``cores`` of CPU by busy CPU stressors in
        their container, within its CPU limit (a Chaos Mesh StressChaos: competition for
        the limit, not a lower CFS quota; see :mod:`gameday.targets.kubernetes.chaosmesh`).
        ConfigError when a pod has no CPU limit. Returns the pods' names."""
        with api_client() as api:
            pods = self._matching(api, selector)
            workers = cm.stress_workers(obj.cpu_limit_cores(pods), cores)
            body = cm.stress_chaos(self._ns, selector, [obj.pod_name(p) for p in pods], workers)
            self._chaos(api).create(body, exists_ok=False)
        return [obj.pod_name(p) for p in pods]

    def unthrottle_cpu(self, selector: str) -> list[str]:
        """Delete the StressChaos of ``selector``; idempotent. Returns the names of the pods
        ``selector`` matches."""
        return self._release(selector, cm.STRESS_CHAOS, CPU_THROTTLE_FAULT)

    def degrade(self, link: str, toxic: dict[str, Any]) -> dict[str, Any]:
        """``service-broker``: add the toxic on the Toxiproxy service. ``lb-replica-N``: a
        latency toxic becomes a Chaos Mesh NetworkChaos ``delay`` on the N-th pod (what
        it sends is delayed); other toxics are a ConfigError. Undo with :meth:`heal`."""
        number = obj.replica_number(link)
        if number is None:
            return Toxiproxy(self.fault_proxy_url()).add_toxic(link, toxic)
        with api_client() as api:
            pod = self._replica_pod(api, link, number)
            body = cm.delay_chaos(self._ns, link, pod, toxic)
            self._chaos(api).create(body, exists_ok=False)
        return {**toxic, "network_chaos": body["metadata"]["name"], "pod": pod}

    def limit_memory(self, selector: str, headroom_mib: int, leak_mib_per_s: int) -> list[str]:
        """Not supported on this target yet: ConfigError."""
        raise ConfigError(MEMORY_NOT_YET)

    def unlimit_memory(self, selector: str) -> list[str]:
        """Nothing can be memory-limited on this target: nothing to lift (idempotent)."""
        return []

    def cgroup_figures(self, selector: str) -> dict[str, dict[str, Any]]:
        """Per pod ``selector`` matches: ``freezer_state`` FROZEN when the freeze's
        NetworkChaos records that Chaos Mesh injected into the pod; ``quota_cores``, the
        pod's CPU limit while the CPU throttle's StressChaos is injected into it (else
        -1); ``nr_throttled``, the CFS periods the kubelet's cAdvisor counts throttled for
        the pod's containers (``container_cpu_cfs_throttled_periods_total`` in the
        target's Prometheus; None when Prometheus holds none: it does not scrape the
        kubelets' cAdvisor)."""
        with api_client() as api:
            pods = [p for p in self._selected(api, selector, MeasurementError)
                    if obj.is_current(p)]
            if not pods:
                raise MeasurementError(f"selector {selector!r} matches no pod in namespace "
                                       f"{self._ns}")
            chaos = self._chaos(api)
            frozen = cm.injected_pods(chaos.named(
                cm.NETWORK_CHAOS, cm.object_name(FREEZE_FAULT, selector), MeasurementError))
            stressed = cm.injected_pods(chaos.named(
                cm.STRESS_CHAOS, cm.object_name(CPU_THROTTLE_FAULT, selector),
                MeasurementError))
        names = [obj.pod_name(p) for p in pods]
        throttled = self._throttled_periods(names)
        return {pod: {"freezer_state": "FROZEN" if pod in frozen else "THAWED",
                      "quota_cores": obj.cpu_limit_cores([p]) if pod in stressed else -1.0,
                      "nr_throttled": throttled.get(pod)}
                for pod, p in zip(names, pods, strict=True)}

    def _throttled_periods(self, pods: list[str]) -> dict[str, float]:
        """cAdvisor's throttled CFS periods of each pod's containers, from Prometheus (none
        for a pod it holds nothing of)."""
        promql = (f'sum by (pod) ({THROTTLED_PERIODS}{{namespace="{self._ns}",'
                  f'pod=~"{"|".join(pods)}",container!=""}})')
        try:
            samples = self.prometheus().vector(promql)
        except MeasurementError:
            return {}
        return {s.labels.get("pod", ""): s.value for s in samples}

    def own_processes(self) -> tuple[list[int], list[str]] | None:
        """None: the service runs on the cluster's nodes, not on this machine."""
        return None

    def release_gray(self) -> list[str]:
        """Delete every gameday Chaos Mesh object in the namespace (by its fault label),
        recorded or not; the objects deleted, in words."""
        with api_client() as api:
            chaos = self._chaos(api)
            found = chaos.everything(InjectionError)
            for item in found:
                chaos.delete(cm.plural(item), item["metadata"]["name"])
        return cm.leftover_problems(found)

    def leftovers(self) -> list[str]:
        """Gameday NetworkPolicies, partition labels, Chaos Mesh objects, toxics and
        disabled proxies still in place (and a broker simulator not in normal mode);
        raises if it cannot look."""
        with api_client() as api:
            return leftovers(self.settings, self._policies(api, MeasurementError),
                             self._pods(api, obj.PARTITION_LABEL, MeasurementError),
                             self._chaos(api).everything(MeasurementError))
