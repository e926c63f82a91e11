"""The kubernetes target against a local stand-in for the Kubernetes API server.

No API server can run here, so a small HTTP server on 127.0.0.1 answers the way
Kubernetes does (PodList, Pod, NetworkPolicy, Status objects) and records every request;
the tests assert the exact requests: method, path, query, body, content type, token.
Leftovers are read from a real fault proxy (``python -m lab.faultproxy``).
"""

from __future__ import annotations

import contextlib
import json
import re
import select
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from support.promserver import ExpositionHandler, needs_prometheus, running_prometheus

from gameday.clients.http import request_json
from gameday.clients.prometheus import Prometheus
from gameday.contract import ConfigError, InjectionError, MeasurementError, MetricNaming
from gameday.faults import inject
from gameday.service_spec import OrderRequest
from gameday.settings import resolve
from gameday.targets import get_target
from gameday.targets.kubernetes import chaosmesh as cm
from gameday.targets.kubernetes.objects import match_labels, replica_number
from gameday.targets.kubernetes.settings import KubernetesSettings
from gameday.targets.kubernetes.target import (
    MEMORY_NOT_YET,
    PACKET_LOSS_NOT_YET,
    KubernetesTarget,
)

ROOT = Path(__file__).resolve().parents[2]
NS = "broker-integration"
PODS = f"/api/v1/namespaces/{NS}/pods"
POLICIES = f"/apis/networking.k8s.io/v1/namespaces/{NS}/networkpolicies"
CHAOS = f"/apis/chaos-mesh.org/v1alpha1/namespaces/{NS}"
FAULT_QUERY = "labelSelector=gameday.io/fault"
SERVICE_QUERY = "labelSelector=app%3Dbroker-integration"
MANAGED_QUERY = "labelSelector=app.kubernetes.io/managed-by%3Dgameday"
TOKEN = "test-token"


@dataclass(frozen=True)
class Request:
    """One request the fake API server received."""

    method: str
    path: str
    query: str
    content_type: str
    authorization: str
    body: Any


@dataclass(frozen=True)
class Answer:
    """A canned answer: status, JSON body, and how long to wait before sending it."""

    status: int
    body: Any
    delay_s: float = 0.0


class FakeApiServer(ThreadingHTTPServer):
    """Answers ``(method, path, query)`` from ``answers`` (else a 404 Status); records all."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.answers: dict[tuple[str, str, str], Answer] = {}
        self.requests: list[Request] = []
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def answer(self, method: str, path: str, body: Any, status: int = 200, *, query: str = "",
               delay_s: float = 0.0) -> None:
        self.answers[(method, path, query)] = Answer(status, body, delay_s)

    def calls(self) -> list[tuple[str, str, str]]:
        with self.lock:
            return [(r.method, r.path, r.query) for r in self.requests]


class _Handler(BaseHTTPRequestHandler):
    server: FakeApiServer
    protocol_version = "HTTP/1.1"

    def _serve(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        path, _, query = self.path.partition("?")
        with self.server.lock:
            self.server.requests.append(Request(
                self.command, path, query, self.headers.get("Content-Type", ""),
                self.headers.get("Authorization", ""), json.loads(raw) if raw else None))
        answer = self.server.answers.get((self.command, path, query),
                                         Answer(404, not_found(path.rsplit("/", 1)[-1])))
        time.sleep(answer.delay_s)
        data = json.dumps(answer.body).encode()
        try:
            self.send_response(answer.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except OSError:  # the client gave up (timeout tests)
            pass

    do_GET = do_POST = do_PATCH = do_DELETE = _serve

    def log_message(self, format: str, *args: Any) -> None:
        pass


# --- Kubernetes objects as the API server sends them ------------------------------------


def status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {},
            "status": "Failure" if code >= 400 else "Success", "message": message,
            "reason": reason, "code": code}


def not_found(name: str) -> dict[str, Any]:
    return status(404, "NotFound", f'"{name}" not found')


def pod(name: str, *, phase: str = "Running", ready: bool = True, deleting: bool = False,
        partition: str | None = None, restarts: tuple[int, ...] = ()) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "name": name, "namespace": NS, "uid": f"uid-{name}", "resourceVersion": "7",
        "creationTimestamp": "2024-05-01T10:00:00Z",
        "labels": {"app": "broker-integration", "pod-template-hash": "6d4cf56db6"}}
    if partition:
        metadata["labels"]["gameday.io/partition"] = partition
    if deleting:
        metadata["deletionTimestamp"] = "2024-05-01T11:00:00Z"
    flag = "True" if ready else "False"
    conditions = [{"type": kind, "status": flag, "lastTransitionTime": "2024-05-01T10:00:05Z"}
                  for kind in ("Initialized", "Ready", "ContainersReady", "PodScheduled")]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata,
            "spec": {"containers": [{"name": "service", "image": "broker-integration:1.4"}]},
            "status": {"phase": phase, "conditions": conditions, "podIP": "10.0.0.7",
                       "containerStatuses": [
                           {"name": f"c{i}", "restartCount": count, "ready": ready,
                            "image": "broker-integration:1.4", "imageID": ""}
                           for i, count in enumerate(restarts)]}}


def pod_list(*pods: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "PodList", "metadata": {"resourceVersion": "9"},
            "items": list(pods)}


def policy_list(*links: str) -> dict[str, Any]:
    items = [{"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
              "metadata": {"name": f"gameday-partition-{link}", "namespace": NS,
                           "labels": {"app.kubernetes.io/managed-by": "gameday",
                                      "gameday.io/partition": link}},
              "spec": {"podSelector": {}}} for link in links]
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicyList",
            "metadata": {"resourceVersion": "9"}, "items": items}


def delay_chaos(link: str) -> dict[str, Any]:
    return {"apiVersion": "chaos-mesh.org/v1alpha1", "kind": "NetworkChaos",
            "metadata": {"name": f"gameday-degrade-{link}", "namespace": NS,
                         "labels": {"app.kubernetes.io/managed-by": "gameday",
                                    "gameday.io/fault": "replica-link-degrade",
                                    "gameday.io/link": link}},
            "spec": {"action": "delay", "mode": "all"}}


def chaos_list(*items: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "chaos-mesh.org/v1alpha1", "kind": "NetworkChaosList",
            "metadata": {"resourceVersion": "9"}, "items": list(items)}


A, B, C, D = (f"broker-integration-6d4cf56db6-{s}" for s in ("a1b2c", "d3e4f", "g5h6i", "j7k8l"))
THREE = pod_list(pod(B), pod(A), pod(C))


# --- fixtures ----------------------------------------------------------------------------


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[FakeApiServer]:
    """The fake API server, with credentials pointing chaostoolkit-kubernetes at it."""
    server = FakeApiServer()
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "no-kubeconfig"))
    for name in ("CHAOSTOOLKIT_IN_POD", "KUBERNETES_CONTEXT", "HTTP_PROXY", "NO_PROXY",
                 "KUBERNETES_CERT_FILE", "KUBERNETES_USERNAME", "KUBERNETES_VERIFY_SSL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("KUBERNETES_HOST", server.url)
    monkeypatch.setenv("KUBERNETES_API_KEY", TOKEN)
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def settings(tmp_path: Path, toxiproxy_url: str = "http://127.0.0.1:9") -> KubernetesSettings:
    return KubernetesSettings(prometheus_url="http://127.0.0.1:9090",
                              toxiproxy_url=toxiproxy_url, entry_url="http://127.0.0.1:8080",
                              broker_url="http://127.0.0.1:8081", state_dir=tmp_path,
                              api_timeout_s=2.0)


@pytest.fixture
def target(api: FakeApiServer, tmp_path: Path) -> KubernetesTarget:
    return KubernetesTarget(settings(tmp_path))


# --- kill and readiness ------------------------------------------------------------------


def test_kill_lists_pods_then_deletes_the_first_running_ones_by_name(
        api: FakeApiServer, target: KubernetesTarget) -> None:
    api.answer("GET", PODS, pod_list(pod(C, deleting=True), pod(B), pod(D, phase="Pending"),
                                     pod(A)), query=SERVICE_QUERY)
    api.answer("DELETE", f"{PODS}/{A}", pod(A, deleting=True))
    api.answer("DELETE", f"{PODS}/{B}", pod(B, deleting=True))

    assert target.kill_pods("app=broker-integration", 2) == [B, A]

    assert api.calls() == [("GET", PODS, SERVICE_QUERY), ("GET", PODS, SERVICE_QUERY),
                           ("DELETE", f"{PODS}/{B}", ""), ("DELETE", f"{PODS}/{A}", "")]
    deletes = [r for r in api.requests if r.method == "DELETE"]
    assert [r.body for r in deletes] == [{"gracePeriodSeconds": 0}] * 2
    assert {r.authorization for r in api.requests} == {f"Bearer {TOKEN}"}


def test_kill_one_takes_the_first_running_pod_by_name(
        api: FakeApiServer, target: KubernetesTarget) -> None:
    api.answer("GET", PODS, THREE, query=SERVICE_QUERY)
    api.answer("DELETE", f"{PODS}/{A}", pod(A, deleting=True))

    assert target.kill_pods("app=broker-integration", 1) == [A]

    assert api.calls()[-1] == ("DELETE", f"{PODS}/{A}", "")
    assert len(api.calls()) == 3


def test_the_labs_replica_selector_is_the_nth_current_pod_by_name(
        api: FakeApiServer, target: KubernetesTarget) -> None:
    api.answer("GET", PODS, THREE, query=SERVICE_QUERY)
    api.answer("DELETE", f"{PODS}/{B}", pod(B, deleting=True))

    assert target.ready_replicas("name=replica-2") == 1
    assert list(target.replica_instances("name=replica-2")) == [B]
    assert target.replica_instances("name=replica-4") == {}
    assert target.kill_pods("name=replica-2", 1) == [B]

    lists = [query for method, _, query in api.calls() if method == "GET"]
    assert set(lists) == {SERVICE_QUERY}  # the service's pods, never name=replica-2
    assert api.calls()[-1] == ("DELETE", f"{PODS}/{B}", "")


def test_kill_more_than_run_or_with_an_empty_selector_is_refused(
        api: FakeApiServer, target: KubernetesTarget) -> None:
    api.answer("GET", PODS, pod_list(pod(A), pod(B, deleting=True)), query=SERVICE_QUERY)

    with pytest.raises(ConfigError, match="qty=2 is invalid: 1 running pods"):
        target.kill_pods("app=broker-integration", 2)
    with pytest.raises(ConfigError, match="empty selector"):
        target.kill_pods("  ", 1)

    assert api.calls() == [("GET", PODS, SERVICE_QUERY)]


def test_kill_reports_a_refused_delete(api: FakeApiServer, target: KubernetesTarget) -> None:
    api.answer("GET", PODS, THREE, query=SERVICE_QUERY)
    api.answer("DELETE", f"{PODS}/{A}", status(403, "Forbidden", "pods is forbidden"), 403)

    with pytest.raises(InjectionError, match=r"HTTP 403 Forbidden.*pods is forbidden"):
        target.kill_pods("app=broker-integration", 1)


def test_kill_gives_up_on_a_hanging_api_server(api: FakeApiServer, tmp_path: Path) -> None:
    target = KubernetesTarget(replace(settings(tmp_path), api_timeout_s=0.3))
    api.answer("GET", PODS, THREE, query=SERVICE_QUERY)
    api.answer("DELETE", f"{PODS}/{A}", pod(A, deleting=True), delay_s=2.0)

    started = time.monotonic()
    with pytest.raises(InjectionError, match=r"terminate_pods did not finish within 0.9 s"):
        target.kill_pods("app=broker-integration", 1)
    assert time.monotonic() - started < 1.5


def test_instances_are_the_pod_uid_and_its_restarts_and_a_replaced_pod_does_not_run(
        api: FakeApiServer, target: KubernetesTarget) -> None:
    api.answer("GET", PODS, pod_list(pod(A, restarts=(1, 2)), pod(B), pod(C, deleting=True),
                                     pod(D, phase="Pending")), query=SERVICE_QUERY)

    before = target.replica_instances("app=broker-integration")

    assert before == {A: [f"uid-{A}/3"], B: [f"uid-{B}/0"]}
    # A restarted its container once more, B was replaced by D, C is on its way out
    api.answer("GET", PODS, pod_list(pod(A, restarts=(2, 2)), pod(C, deleting=True),
                                     pod(D)), query=SERVICE_QUERY)
    assert target.instances_running([f"uid-{A}/3", f"uid-{B}/0", f"uid-{C}/0"]) == []
    api.answer("GET", PODS, THREE, query=SERVICE_QUERY)
    assert target.instances_running([f"uid-{A}/0", f"uid-{D}/0"]) == [f"uid-{A}/0"]
    assert api.calls() == [("GET", PODS, SERVICE_QUERY)] * 3


def test_ready_counts_running_pods_whose_ready_condition_is_true(
        api: FakeApiServer, target: KubernetesTarget) -> None:
    query = "labelSelector=app%3Dbroker-integration%2Cpod-template-hash%3D6d4cf56db6"
    api.answer("GET", PODS, pod_list(pod(A), pod(B, ready=False), pod(C, deleting=True),
                                     pod(D, phase="Pending", ready=False)), query=query)

    assert target.ready_replicas("app=broker-integration,pod-template-hash=6d4cf56db6") == 1

    assert api.calls() == [("GET", PODS, query)]


def test_ready_raises_when_the_api_server_cannot_answer(
        api: FakeApiServer, target: KubernetesTarget, monkeypatch: pytest.MonkeyPatch) -> None:
    api.answer("GET", PODS, status(500, "InternalError", "etcd timed out"), 500,
               query=SERVICE_QUERY)
    with pytest.raises(MeasurementError, match=r"cannot list pods.*HTTP 500.*etcd timed out"):
        target.ready_replicas("app=broker-integration")

    api.answer("GET", PODS, status(400, "BadRequest", "unable to parse requirement"), 400,
               query="labelSelector=app%3D%3D%3D")
    with pytest.raises(ConfigError, match=r"refused it.*unable to parse requirement"):
        target.ready_replicas("app===")

    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        monkeypatch.setenv("KUBERNETES_HOST", f"http://127.0.0.1:{closed.getsockname()[1]}")
        with pytest.raises(MeasurementError, match="cannot list pods"):
            target.ready_replicas("app=broker-integration")


def test_ready_times_out(api: FakeApiServer, tmp_path: Path) -> None:
    target = KubernetesTarget(replace(settings(tmp_path), api_timeout_s=0.2))
    api.answer("GET", PODS, THREE, query=SERVICE_QUERY, delay_s=1.0)

    started = time.monotonic()
    with pytest.raises(MeasurementError, match="cannot list pods"):
        target.ready_replicas("app=broker-integration")
    assert time.monotonic() - started < 1.5


# --- partitions --------------------------------------------------------------------------

MANAGED = {"app.kubernetes.io/managed-by": "gameday"}


def test_partition_service_broker_denies_the_service_egress_but_dns(
        api: FakeApiServer, target: KubernetesTarget) -> None:
    api.answer("POST", POLICIES, {}, 201)

    target.partition("service-broker")

    assert api.calls() == [("POST", POLICIES, "")]
    assert api.requests[0].content_type == "application/json"
    assert api.requests[0].body == {
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": "gameday-partition-service-broker",
                     "labels": {**MANAGED, "gameday.io/partition": "service-broker"}},
        "spec": {"podSelector": {"matchLabels": {"app": "broker-integration"}},
                 "policyTypes": ["Egress"],
                 "egress": [{"ports": [{"protocol": "UDP", "port": 53},
                                       {"protocol": "TCP", "port": 53}]}]},
    }


def test_partition_is_idempotent_when_the_policy_exists(
        api: FakeApiServer, target: KubernetesTarget) -> None:
    api.answer("POST", POLICIES, status(409, "AlreadyExists", "already exists"), 409)
    target.partition("service-broker")
    assert api.calls() == [("POST", POLICIES, "")]


def test_partition_replica_labels_its_pod_and_denies_its_ingress(
        api: FakeApiServer, target: KubernetesTarget) -> None:
    api.answer("GET", PODS, THREE, query=SERVICE_QUERY)
    api.answer("POST", POLICIES, {}, 201)
    api.answer("PATCH", f"{PODS}/{B}", pod(B))

    target.partition("lb-replica-2")

    assert api.calls() == [("GET", PODS, SERVICE_QUERY), ("POST", POLICIES, ""),
                           ("PATCH", f"{PODS}/{B}", "")]
    create, label = api.requests[1], api.requests[2]
    assert create.body == {
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": "gameday-partition-lb-replica-2",
                     "labels": {**MANAGED, "gameday.io/partition": "lb-replica-2"}},
        "spec": {"podSelector": {"matchLabels": {"app": "broker-integration",
                                                 "gameday.io/partition": "lb-replica-2"}},
                 "policyTypes": ["Ingress"], "ingress": []},
    }
    assert label.content_type == "application/merge-patch+json"
    assert label.body == {"metadata": {"labels": {"gameday.io/partition": "lb-replica-2"}}}


def test_partition_refuses_unknown_links_naming_the_valid_ones(
        api: FakeApiServer, target: KubernetesTarget) -> None:
    api.answer("GET", PODS, THREE, query=SERVICE_QUERY)

    with pytest.raises(ConfigError, match="valid links are service-broker, lb-replica-1, "
                                          "lb-replica-2, lb-replica-3"):
        target.partition("lb-replica-4")
    with pytest.raises(ConfigError, match="unknown link 'broker'"):
        target.partition("broker")

    assert api.calls() == [("GET", PODS, SERVICE_QUERY)]


def test_heal_deletes_the_policy_and_unlabels_the_pod(
        api: FakeApiServer, target: KubernetesTarget) -> None:
    labelled = "labelSelector=gameday.io/partition%3Dlb-replica-2"
    api.answer("DELETE", f"{POLICIES}/gameday-partition-lb-replica-2",
               status(200, "", "deleted"))
    api.answer("GET", PODS, pod_list(pod(B, partition="lb-replica-2")),
               query=labelled)
    api.answer("PATCH", f"{PODS}/{B}", pod(B))

    target.heal("lb-replica-2")

    assert api.calls() == [("DELETE", f"{POLICIES}/gameday-partition-lb-replica-2", ""),
                           ("GET", PODS, labelled), ("PATCH", f"{PODS}/{B}", ""),
                           ("DELETE", f"{CHAOS}/networkchaos/gameday-degrade-lb-replica-2", "")]
    assert api.requests[2].content_type == "application/merge-patch+json"
    assert api.requests[2].body == {"metadata": {"labels": {"gameday.io/partition": None}}}


def test_heal_is_idempotent_on_404s(api: FakeApiServer, target: KubernetesTarget) -> None:
    labelled = "labelSelector=gameday.io/partition%3Dlb-replica-1"
    api.answer("GET", PODS, pod_list(pod(A, partition="lb-replica-1")),
               query=labelled)  # the PATCH gets a 404: the pod went away meanwhile
    api.answer("GET", PODS, pod_list(), query="labelSelector=gameday.io/partition%3Dservice-broker")

    target.heal("lb-replica-1")
    target.heal("service-broker")

    assert api.calls() == [
        ("DELETE", f"{POLICIES}/gameday-partition-lb-replica-1", ""), ("GET", PODS, labelled),
        ("PATCH", f"{PODS}/{A}", ""),
        ("DELETE", f"{CHAOS}/networkchaos/gameday-degrade-lb-replica-1", ""),  # 404: none
        ("DELETE", f"{POLICIES}/gameday-partition-service-broker", ""),
        ("GET", PODS, "labelSelector=gameday.io/partition%3Dservice-broker")]


def test_heal_reports_a_refused_delete(api: FakeApiServer, target: KubernetesTarget) -> None:
    api.answer("DELETE", f"{POLICIES}/gameday-partition-service-broker",
               status(403, "Forbidden", "networkpolicies is forbidden"), 403)
    with pytest.raises(InjectionError, match=r"cannot delete NetworkPolicy.*403 Forbidden"):
        target.heal("service-broker")


def test_links_are_the_broker_link_each_replica_and_every_link_still_cut(
        api: FakeApiServer, target: KubernetesTarget) -> None:
    api.answer("GET", PODS, pod_list(pod(A), pod(B), pod(C, deleting=True)), query=SERVICE_QUERY)
    api.answer("GET", POLICIES, policy_list("lb-replica-3", "lb-replica-1"), query=MANAGED_QUERY)
    api.answer("GET", f"{CHAOS}/networkchaos", chaos_list(delay_chaos("lb-replica-4")),
               query=FAULT_QUERY)

    assert target.links() == ["service-broker", "lb-replica-1", "lb-replica-2", "lb-replica-3",
                              "lb-replica-4"]

    assert api.calls() == [("GET", PODS, SERVICE_QUERY), ("GET", POLICIES, MANAGED_QUERY),
                           ("GET", f"{CHAOS}/networkchaos", FAULT_QUERY)]


def test_links_without_chaos_mesh_are_those_of_pods_and_policies(
        api: FakeApiServer, target: KubernetesTarget) -> None:
    api.answer("GET", PODS, pod_list(pod(A)), query=SERVICE_QUERY)
    api.answer("GET", POLICIES, policy_list(), query=MANAGED_QUERY)  # networkchaos: 404

    assert target.links() == ["service-broker", "lb-replica-1"]


# --- leftovers ---------------------------------------------------------------------------


@contextlib.contextmanager
def _process(log_path: Path, module: str) -> Iterator[list[str]]:
    """Run ``python -m module`` on free loopback ports; yield its first stdout line's words."""
    log = log_path.open("w")
    process = subprocess.Popen([sys.executable, "-m", module, "--host", "127.0.0.1",
                                "--port", "0"], cwd=ROOT, stdout=subprocess.PIPE, stderr=log,
                               text=True)
    assert process.stdout is not None
    try:
        ready, _, _ = select.select([process.stdout], [], [], 10.0)
        line = process.stdout.readline() if ready else ""
        assert line.startswith("listening http://127.0.0.1:"), line
        yield line.split()
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


@pytest.fixture
def toxiproxy(tmp_path: Path) -> Iterator[str]:
    """A real fault proxy (Toxiproxy API) on a free port; its base URL."""
    with _process(tmp_path / "faultproxy.log", "lab.faultproxy") as words:
        yield words[1]


@pytest.fixture
def broker_admin(tmp_path: Path) -> Iterator[str]:
    """A real broker simulator; the base URL of its admin API."""
    with _process(tmp_path / "broker.log", "lab.broker") as words:
        yield words[3]


def _proxy(url: str, name: str, enabled: bool = True) -> None:
    body = {"name": name, "listen": "127.0.0.1:0", "upstream": "127.0.0.1:9",
            "enabled": enabled}
    assert request_json("POST", f"{url}/proxies", body).status == 201


def test_leftovers_lists_policies_labelled_pods_toxics_and_disabled_proxies(
        api: FakeApiServer, toxiproxy: str, tmp_path: Path) -> None:
    _proxy(toxiproxy, "service-broker")
    toxic = {"name": "gameday-latency-downstream", "type": "latency",
             "attributes": {"latency": 500}}
    assert request_json("POST", f"{toxiproxy}/proxies/service-broker/toxics", toxic).status == 200
    _proxy(toxiproxy, "lb-replica-1", enabled=False)
    api.answer("GET", POLICIES, policy_list("service-broker"), query=MANAGED_QUERY)
    api.answer("GET", PODS, pod_list(pod(A, partition="lb-replica-1")),
               query="labelSelector=gameday.io/partition")
    api.answer("GET", f"{CHAOS}/networkchaos", chaos_list(delay_chaos("lb-replica-2")),
               query=FAULT_QUERY)  # stresschaos: 404, Chaos Mesh without it

    found = KubernetesTarget(settings(tmp_path, toxiproxy)).leftovers()

    assert found == [
        "network policy gameday-partition-service-broker (partition of link service-broker) "
        "is in place",
        f"pod {A} is labelled gameday.io/partition=lb-replica-1",
        "NetworkChaos gameday-degrade-lb-replica-2 (replica-link-degrade of lb-replica-2) "
        "is in place",
        "link lb-replica-1 is down",
        "toxic gameday-latency-downstream on link service-broker",
    ]
    assert api.calls() == [("GET", POLICIES, MANAGED_QUERY),
                           ("GET", PODS, "labelSelector=gameday.io/partition"),
                           ("GET", f"{CHAOS}/networkchaos", FAULT_QUERY),
                           ("GET", f"{CHAOS}/stresschaos", FAULT_QUERY)]


def test_leftovers_is_empty_when_clean(api: FakeApiServer, toxiproxy: str,
                                       tmp_path: Path) -> None:
    _proxy(toxiproxy, "service-broker")
    api.answer("GET", POLICIES, policy_list(), query=MANAGED_QUERY)
    api.answer("GET", PODS, pod_list(), query="labelSelector=gameday.io/partition")

    assert KubernetesTarget(settings(tmp_path, toxiproxy)).leftovers() == []


def test_leftovers_raises_when_it_cannot_look(api: FakeApiServer, toxiproxy: str,
                                              tmp_path: Path) -> None:
    api.answer("GET", POLICIES, status(403, "Forbidden", "cannot list networkpolicies"), 403,
               query=MANAGED_QUERY)
    with pytest.raises(MeasurementError, match=r"network policies.*403 Forbidden"):
        KubernetesTarget(settings(tmp_path, toxiproxy)).leftovers()

    api.answer("GET", POLICIES, policy_list(), query=MANAGED_QUERY)
    api.answer("GET", PODS, pod_list(), query="labelSelector=gameday.io/partition")
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        gone = f"http://127.0.0.1:{closed.getsockname()[1]}"
        with pytest.raises(MeasurementError, match="Toxiproxy service"):
            KubernetesTarget(settings(tmp_path, gone)).leftovers()


def test_leftovers_include_a_broker_simulator_out_of_normal_mode(
        api: FakeApiServer, toxiproxy: str, broker_admin: str, tmp_path: Path) -> None:
    api.answer("GET", POLICIES, policy_list(), query=MANAGED_QUERY)
    api.answer("GET", PODS, pod_list(), query="labelSelector=gameday.io/partition")
    target = KubernetesTarget(replace(settings(tmp_path, toxiproxy),
                                      broker_admin_url=broker_admin))
    assert target.leftovers() == []

    assert request_json("POST", f"{broker_admin}/admin/mode", {"mode": "error"}).status == 200
    assert target.leftovers() == [
        f"broker simulator is in mode {request_json('GET', broker_admin + '/admin/mode').body!r}"
        ", not normal"]


# --- settings, credentials and get_target ------------------------------------------------

URLS = {"GAMEDAY_PROMETHEUS_URL": "http://prometheus.monitoring:9090/",
        "GAMEDAY_TOXIPROXY_URL": "http://toxiproxy.broker-integration:8474",
        "GAMEDAY_ENTRY_URL": "https://trading.example.test",
        "GAMEDAY_BROKER_URL": "http://broker-api.example.test"}
OPTIONAL = ("GAMEDAY_K8S_NAMESPACE", "GAMEDAY_K8S_SELECTOR", "GAMEDAY_K8S_TIMEOUT_S",
            "GAMEDAY_K8S_TRAFFIC",
            "GAMEDAY_BROKER_ADMIN_URL", "GAMEDAY_STATE_DIR", "GAMEDAY_SERVICE", "GAMEDAY_TARGET")


@pytest.fixture
def env(api: FakeApiServer, monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path) -> pytest.MonkeyPatch:
    """The required variables set, the optional ones unset, credentials for the fake (and
    no lab: a lab record nearby would name a service of its own)."""
    for name, value in URLS.items():
        monkeypatch.setenv(name, value)
    for name in OPTIONAL:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GAMEDAY_LAB_DIR", str(tmp_path / "no-lab"))
    return monkeypatch


def test_settings_defaults_from_the_environment(env: pytest.MonkeyPatch) -> None:
    target = get_target("kubernetes")

    assert isinstance(target, KubernetesTarget)
    assert target.settings == KubernetesSettings(
        prometheus_url="http://prometheus.monitoring:9090",
        toxiproxy_url="http://toxiproxy.broker-integration:8474",
        entry_url="https://trading.example.test", broker_url="http://broker-api.example.test",
        namespace="broker-integration", selector="app=broker-integration",
        broker_admin_url=None, state_dir=Path(".gameday"), api_timeout_s=10.0)
    assert (target.prometheus_url(), target.fault_proxy_url(), target.entry_url(),
            target.broker_url(), target.state_dir()) == (
        "http://prometheus.monitoring:9090", "http://toxiproxy.broker-integration:8474",
        "https://trading.example.test", "http://broker-api.example.test", Path(".gameday"))
    with pytest.raises(ConfigError, match=r"broker simulator.*network faults"):
        target.broker_admin_url()
    assert target.no_traffic_reason() is None


def test_a_cluster_without_traffic_says_why(env: pytest.MonkeyPatch) -> None:
    env.setenv("GAMEDAY_K8S_TRAFFIC", "none")
    reason = get_target("kubernetes").no_traffic_reason()
    assert reason is not None and reason.startswith(
        "GAMEDAY_K8S_TRAFFIC=none: no request flows through this cluster's pods")


def test_settings_overrides(env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    env.setenv("GAMEDAY_TARGET", "kubernetes")
    env.setenv("GAMEDAY_K8S_NAMESPACE", "trading")
    env.setenv("GAMEDAY_K8S_SELECTOR", "app=broker,tier=api")
    env.setenv("GAMEDAY_K8S_TIMEOUT_S", "2.5")
    env.setenv("GAMEDAY_BROKER_ADMIN_URL", "http://broker-sim:9001/")
    env.setenv("GAMEDAY_STATE_DIR", str(tmp_path))

    target = get_target()

    assert isinstance(target, KubernetesTarget)
    assert (target.settings.namespace, target.settings.selector,
            target.settings.api_timeout_s) == ("trading", "app=broker,tier=api", 2.5)
    assert target.broker_admin_url() == "http://broker-sim:9001"
    assert target.state_dir() == tmp_path


def test_missing_settings_are_named(env: pytest.MonkeyPatch) -> None:
    env.delenv("GAMEDAY_PROMETHEUS_URL")
    env.setenv("GAMEDAY_BROKER_URL", " ")
    with pytest.raises(ConfigError, match="needs GAMEDAY_PROMETHEUS_URL, GAMEDAY_BROKER_URL"):
        get_target("kubernetes")


@pytest.mark.parametrize(("name", "value", "message"), [
    ("GAMEDAY_ENTRY_URL", "trading.example.test", "GAMEDAY_ENTRY_URL=.* is not a URL"),
    ("GAMEDAY_K8S_TIMEOUT_S", "0", "GAMEDAY_K8S_TIMEOUT_S='0' is invalid"),
    ("GAMEDAY_K8S_TIMEOUT_S", "soon", "GAMEDAY_K8S_TIMEOUT_S='soon' is invalid"),
    ("GAMEDAY_K8S_SELECTOR", "app in (broker)", "not an equality-based label selector"),
    ("GAMEDAY_K8S_TRAFFIC", "off", "GAMEDAY_K8S_TRAFFIC='off' is invalid: valid is flows"),
])
def test_bad_settings_are_refused(env: pytest.MonkeyPatch, name: str, value: str,
                                  message: str) -> None:
    env.setenv(name, value)
    with pytest.raises(ConfigError, match=message):
        get_target("kubernetes")


def test_no_credentials_is_refused_rather_than_calling_localhost(
        env: pytest.MonkeyPatch) -> None:
    env.delenv("KUBERNETES_HOST")
    with pytest.raises(ConfigError, match=r"no Kubernetes credentials: no kubeconfig at .*"
                                          r"KUBERNETES_HOST is unset"):
        get_target("kubernetes")


def test_a_kubeconfig_is_used_as_chaostoolkit_kubernetes_uses_it(
        api: FakeApiServer, env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # In a fresh process: the kubernetes client reads KUBECONFIG once, when imported.
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "lab",
        "clusters": [{"name": "lab", "cluster": {"server": api.url}}],
        "users": [{"name": "sre", "user": {"token": "kubeconfig-token"}}],
        "contexts": [{"name": "lab", "context": {"cluster": "lab", "user": "sre"}}]}))
    env.setenv("KUBECONFIG", str(kubeconfig))
    env.setenv("KUBERNETES_HOST", "http://127.0.0.1:9")  # ignored: a kubeconfig comes first
    api.answer("GET", PODS, THREE, query=SERVICE_QUERY)

    code = ("from gameday.targets import get_target; "
            "print(get_target('kubernetes').ready_replicas('app=broker-integration'))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, check=False)

    assert (done.returncode, done.stdout) == (0, "3\n"), done.stderr
    assert api.requests[-1].authorization == "Bearer kubeconfig-token"


# --- GAMEDAY_SERVICE: the service's own metric names, its order -------------------------

SPEC = """
name: renamed-service
command: ["svc", "--port", "{port}", "--broker-url", "{broker_url}"]
paths: {health: /healthz, ready: /readyz}
order:
  path: /v1/orders
  body: {id: "{client_order_id}", symbol: "{instrument}", qty: "{units}", limit: "{price}"}
metrics:
  broker_orders_total: orders_total
  broker_api_request_seconds: api_seconds
  broker_circuit_breaker_state: cb_state
labels: {status: outcome, broker_circuit_breaker_state: state}
"""
SELECTED = 'job="broker-integration"'


def vector(*series: tuple[dict[str, str], float]) -> dict[str, Any]:
    """A Prometheus instant-query answer."""
    return {"status": "success", "data": {"resultType": "vector", "result": [
        {"metric": labels, "value": [1714557600.0, str(value)]} for labels, value in series]}}


@pytest.fixture
def prometheus() -> Iterator[FakeApiServer]:
    """A stand-in for the cluster's Prometheus: answers the exact queries it is given."""
    server = FakeApiServer()
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.fixture
def renamed(env: pytest.MonkeyPatch, prometheus: FakeApiServer,
            tmp_path: Path) -> pytest.MonkeyPatch:
    """The kubernetes target, its Prometheus the stand-in, GAMEDAY_SERVICE a spec renaming
    the contract's metrics and labels."""
    spec = tmp_path / "service.yaml"
    spec.write_text(SPEC)
    env.setenv("GAMEDAY_TARGET", "kubernetes")
    env.setenv("GAMEDAY_SERVICE", str(spec))
    env.setenv("GAMEDAY_PROMETHEUS_URL", prometheus.url)
    return env


def _query(promql: str) -> str:
    return urllib.parse.urlencode({"query": promql})


def test_without_gameday_service_the_contract_names_and_order_are_used(
        env: pytest.MonkeyPatch) -> None:
    target = get_target("kubernetes")

    assert isinstance(target, KubernetesTarget)
    assert target.service is None
    assert target.naming() == MetricNaming()
    assert target.order() == OrderRequest()
    assert target.prometheus() == Prometheus("http://prometheus.monitoring:9090")


def test_gameday_service_gives_the_target_its_names_and_order(
        renamed: pytest.MonkeyPatch, prometheus: FakeApiServer) -> None:
    target = get_target()

    assert isinstance(target, KubernetesTarget)
    assert target.naming() == MetricNaming(
        {"broker_orders_total": "orders_total", "broker_api_request_seconds": "api_seconds",
         "broker_circuit_breaker_state": "cb_state"},
        {"status": "outcome", "broker_circuit_breaker_state": "state"})
    assert (target.order().method, target.order().path) == ("POST", "/v1/orders")
    assert target.order().render({"client_order_id": "c-1", "instrument": "EUR_USD",
                                  "units": 5, "price": 1.1}) == {
        "id": "c-1", "symbol": "EUR_USD", "qty": 5, "limit": 1.1}
    assert target.prometheus() == Prometheus(prometheus.url, naming=target.naming())


def test_gameday_service_names_reach_every_query_and_answers_come_back(
        renamed: pytest.MonkeyPatch, prometheus: FakeApiServer) -> None:
    from probes import breaker, orders, sla  # noqa: PLC0415 (the experiments' API)

    calls = (f'sum(rate(api_seconds_count{{{SELECTED}}}[10s])) / '
             f'sum(rate(orders_total{{{SELECTED}}}[10s]))')
    availability = (f'sum(rate(orders_total{{{SELECTED},outcome=~"filled|rejected"}}[10s])) '
                    f'/ sum(rate(orders_total{{{SELECTED}}}[10s]))')
    up, state = f"up{{{SELECTED}}}", f"cb_state{{{SELECTED}}} == 1"
    queries = [calls, availability, up, state]
    prometheus.answer("GET", "/api/v1/query", vector(({}, 1.25)), query=_query(calls))
    prometheus.answer("GET", "/api/v1/query", vector(({}, 0.998)), query=_query(availability))
    prometheus.answer("GET", "/api/v1/query", vector(({"pod": A}, 1), ({"pod": B}, 1)),
                      query=_query(up))
    prometheus.answer("GET", "/api/v1/query",
                      vector(({"__name__": "cb_state", "pod": A, "state": "open"}, 1),
                             ({"__name__": "cb_state", "pod": B, "state": "closed"}, 1)),
                      query=_query(state))

    assert orders.broker_calls_per_order(window_s=10) == 1.25
    assert sla.availability(window_s=10) == 0.998
    assert breaker.states() == {A: "open", B: "closed"}

    assert prometheus.calls() == [("GET", "/api/v1/query", _query(q)) for q in queries]


def test_a_renamed_metric_with_no_data_is_named_in_the_probe_error(
        renamed: pytest.MonkeyPatch, prometheus: FakeApiServer) -> None:
    from probes import sla  # noqa: PLC0415 (the experiments' API)

    throughput = f"sum(rate(orders_total{{{SELECTED}}}[10s]))"
    prometheus.answer("GET", "/api/v1/query", vector(), query=_query(throughput))

    with pytest.raises(MeasurementError, match=re.escape(
            f"no data for {throughput!r} (the service's names from its spec: "
            f"broker_orders_total -> orders_total) at {prometheus.url}")):
        sla.throughput_rps(window_s=10)


def test_a_bad_service_spec_is_refused_naming_it(renamed: pytest.MonkeyPatch,
                                                 tmp_path: Path) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text(SPEC.replace("broker_orders_total: orders_total", "orders: x"))
    renamed.setenv("GAMEDAY_SERVICE", str(spec))

    with pytest.raises(ConfigError, match=r"(?s)service spec .*bad\.yaml.*'orders' is not a "
                                          r"contract name"):
        get_target()


def test_from_env_takes_the_service_from_resolved_settings(
        env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    spec = tmp_path / "service.yaml"
    spec.write_text(SPEC)
    settings = resolve(environ={"GAMEDAY_SERVICE": str(spec),
                                "GAMEDAY_LAB_DIR": str(tmp_path / "no-lab")})

    target = KubernetesTarget.from_env(settings)

    assert target.naming().metric("broker_orders_total") == "orders_total"
    assert target.service is not None and target.service.health_path == "/healthz"


# --- pure helpers ------------------------------------------------------------------------


def test_match_labels() -> None:
    assert match_labels("app=broker-integration") == {"app": "broker-integration"}
    assert match_labels("app==x, example.com/tier=api") == {"app": "x",
                                                            "example.com/tier": "api"}
    for bad in ("", "app", "app!=x", "app=x,", "app in (x)", "app=x y"):
        with pytest.raises(ConfigError, match="equality-based"):
            match_labels(bad)


def test_replica_number() -> None:
    assert replica_number("service-broker") is None
    assert replica_number("lb-replica-12") == 12
    for bad in ("lb-replica-0", "lb-replica-", "lb-replica-x", "replica-1", ""):
        with pytest.raises(ConfigError, match="valid links are service-broker and lb-replica-N"):
            replica_number(bad)


# --- gray faults without Chaos Mesh --------------------------------------------------------


def test_without_chaos_mesh_a_gray_fault_is_refused_before_it_is_recorded(
        api: FakeApiServer, target: KubernetesTarget, tmp_path: Path) -> None:
    unsupported = target.unsupported_faults()  # API discovery: 404, the group is not served

    assert sorted(unsupported) == ["cpu-throttle", "freeze", "memory-limit", "packet-loss",
                                   "replica-link-degrade"]
    assert "serves no networkchaos.chaos-mesh.org): install Chaos Mesh 2.8" in \
        unsupported["freeze"]
    with pytest.raises(InjectionError, match="not runnable here: Chaos Mesh is not installed"):
        inject.freeze(target, "app=broker-integration")
    assert not (tmp_path / "injected.jsonl").exists()
    assert api.calls() == [("GET", "/apis/chaos-mesh.org/v1alpha1", "")] * 2


def test_a_refused_discovery_makes_the_gray_faults_unsupported_saying_why(
        api: FakeApiServer, target: KubernetesTarget) -> None:
    api.answer("GET", "/apis/chaos-mesh.org/v1alpha1", status(403, "Forbidden", "no"), 403)

    reasons = set(target.unsupported_faults().values()) - {MEMORY_NOT_YET,
                                                           PACKET_LOSS_NOT_YET}

    assert len(reasons) == 1
    assert reasons.pop().startswith("cannot tell whether Chaos Mesh is installed: API "
                                    "discovery of chaos-mesh.org/v1alpha1 failed: HTTP 403")


def test_served_chaos_mesh_makes_them_supported(api: FakeApiServer,
                                                target: KubernetesTarget) -> None:
    resources = [{"name": name, "singularName": "", "namespaced": True, "kind": kind,
                  "verbs": ["create", "delete", "list"]}
                 for name, kind in (("networkchaos", "NetworkChaos"),
                                    ("stresschaos", "StressChaos"))]
    api.answer("GET", "/apis/chaos-mesh.org/v1alpha1",
               {"kind": "APIResourceList", "apiVersion": "v1",
                "groupVersion": "chaos-mesh.org/v1alpha1", "resources": resources})

    assert target.unsupported_faults() == {"memory-limit": MEMORY_NOT_YET,
                                           "packet-loss": PACKET_LOSS_NOT_YET}
    with pytest.raises(InjectionError, match="not runnable here: the packet-loss fault is "
                                             "not supported on the kubernetes target yet"):
        target.drop_packets("service-broker", 0.02)


# --- gray faults as Chaos Mesh objects ------------------------------------------------------


def with_cpu_limit(body: dict[str, Any], cpu: str) -> dict[str, Any]:
    body["spec"]["containers"][0]["resources"] = {"limits": {"cpu": cpu, "memory": "256Mi"}}
    return body


def test_freeze_creates_a_full_loss_networkchaos_and_an_existing_one_is_fine(
        api: FakeApiServer, target: KubernetesTarget) -> None:
    api.answer("GET", PODS, THREE, query=SERVICE_QUERY)
    api.answer("POST", f"{CHAOS}/networkchaos", status(409, "AlreadyExists", "exists"), 409)

    assert target.freeze("app=broker-integration") == [A, B, C]

    assert api.calls() == [("GET", PODS, SERVICE_QUERY), ("POST", f"{CHAOS}/networkchaos", "")]
    assert api.requests[1].body == cm.freeze_chaos(NS, "app=broker-integration", [A, B, C])


def test_the_labs_replica_2_is_the_second_pod_and_only_it_is_frozen(
        api: FakeApiServer, target: KubernetesTarget) -> None:
    api.answer("GET", PODS, THREE, query=SERVICE_QUERY)
    api.answer("POST", f"{CHAOS}/networkchaos", {}, 201)

    assert target.freeze("name=replica-2") == [B]

    assert api.calls() == [("GET", PODS, SERVICE_QUERY), ("POST", f"{CHAOS}/networkchaos", "")]
    body = api.requests[1].body
    assert body["spec"]["selector"] == {"pods": {NS: [B]}}
    assert body["metadata"]["name"] == cm.object_name("freeze", "name=replica-2")


def _injected(body: dict[str, Any], *pods: str) -> dict[str, Any]:
    """``body`` as Chaos Mesh's controller leaves it once its daemon injected ``pods``."""
    records = [{"id": f"{NS}/{p}", "phase": "Injected", "injectedCount": 1,
                "recoveredCount": 0, "selectorKey": "."} for p in pods]
    return {**body, "status": {"experiment": {"desiredPhase": "Run",
                                              "containerRecords": records}}}


class ThrottledPeriods(ExpositionHandler):
    """A stand-in for the kubelets' cAdvisor (no kubelet runs here): pod B's container
    is throttled 7 more CFS periods at each scrape."""

    scrapes = 0

    def exposition(self) -> str:
        ThrottledPeriods.scrapes += 1
        return ("# TYPE container_cpu_cfs_throttled_periods_total counter\n"
                f'container_cpu_cfs_throttled_periods_total{{namespace="{NS}",pod="{B}",'
                f'container="broker-integration"}} {7 * ThrottledPeriods.scrapes}\n'
                f'container_cpu_cfs_throttled_periods_total{{namespace="{NS}",pod="{B}",'
                'container=""} 99999\n')


@needs_prometheus
def test_gray_evidence_is_chaos_mesh_s_records_and_cadvisor_s_throttled_periods(
        api: FakeApiServer, tmp_path: Path) -> None:
    cadvisor = ThreadingHTTPServer(("127.0.0.1", 0), ThrottledPeriods)
    threading.Thread(target=cadvisor.serve_forever, args=(0.05,), daemon=True).start()
    try:
        with running_prometheus(tmp_path, "kubelet", [f"127.0.0.1:{cadvisor.server_port}"]) \
                as url:
            target = KubernetesTarget(replace(settings(tmp_path), prometheus_url=url))
            _wait_for_series(target, "container_cpu_cfs_throttled_periods_total")
            api.answer("GET", PODS, pod_list(pod(A), with_cpu_limit(pod(B), "500m"), pod(C)),
                       query=SERVICE_QUERY)
            freeze = _injected(cm.freeze_chaos(NS, "name=replica-2", [B]), B)
            stress = _injected(cm.stress_chaos(NS, "name=replica-2", [B], 4), f"{B}/x")
            api.answer("GET", f"{CHAOS}/networkchaos", chaos_list(freeze), query=FAULT_QUERY)
            api.answer("GET", f"{CHAOS}/stresschaos", chaos_list(stress), query=FAULT_QUERY)

            figures = target.cgroup_figures("name=replica-2")
            time.sleep(2.5)
            later = target.cgroup_figures("name=replica-2")
            api.answer("GET", f"{CHAOS}/networkchaos", chaos_list(), query=FAULT_QUERY)
            api.answer("GET", f"{CHAOS}/stresschaos", chaos_list(
                cm.stress_chaos(NS, "name=replica-2", [B], 4)), query=FAULT_QUERY)
            released = target.cgroup_figures("name=replica-2")
    finally:
        cadvisor.shutdown()
        cadvisor.server_close()
    assert list(figures) == [B]
    assert figures[B]["freezer_state"] == "FROZEN" and figures[B]["quota_cores"] == 0.5
    # only the container's own series (container="" is the pod's sum in cAdvisor)
    assert figures[B]["nr_throttled"] % 7 == 0
    assert later[B]["nr_throttled"] > figures[B]["nr_throttled"]
    # deleted, or created but not (yet) injected by Chaos Mesh: no evidence
    assert released[B]["freezer_state"] == "THAWED" and released[B]["quota_cores"] == -1.0


def test_without_cadvisor_in_prometheus_the_throttle_cannot_be_counted(
        api: FakeApiServer, target: KubernetesTarget) -> None:
    api.answer("GET", PODS, THREE, query=SERVICE_QUERY)
    api.answer("GET", f"{CHAOS}/networkchaos", chaos_list(), query=FAULT_QUERY)
    api.answer("GET", f"{CHAOS}/stresschaos", chaos_list(), query=FAULT_QUERY)

    figures = target.cgroup_figures("name=replica-3")  # Prometheus at :9090 answers nothing

    assert figures == {C: {"freezer_state": "THAWED", "quota_cores": -1.0, "nr_throttled": None}}


def _wait_for_series(target: KubernetesTarget, metric: str, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            target.prometheus().vector(metric)
            return
        except MeasurementError:
            assert time.monotonic() < deadline, f"Prometheus never scraped {metric}"
            time.sleep(0.3)


def test_thaw_deletes_it_by_name_and_a_404_is_fine(api: FakeApiServer,
                                                   target: KubernetesTarget) -> None:
    api.answer("GET", PODS, pod_list(pod(A)), query=SERVICE_QUERY)

    assert target.thaw("app=broker-integration") == [A]

    name = cm.object_name("freeze", "app=broker-integration")
    assert api.calls() == [("DELETE", f"{CHAOS}/networkchaos/{name}", ""),
                           ("GET", PODS, SERVICE_QUERY)]


def test_throttle_runs_workers_for_the_pods_cpu_limit(api: FakeApiServer,
                                                      target: KubernetesTarget) -> None:
    api.answer("GET", PODS, pod_list(with_cpu_limit(pod(A), "1"),
                                     with_cpu_limit(pod(B), "500m")), query=SERVICE_QUERY)
    api.answer("POST", f"{CHAOS}/stresschaos", {}, 201)

    assert target.throttle_cpu("app=broker-integration", 0.1) == [A, B]

    assert api.requests[1].body["spec"]["stressors"] == {"cpu": {"workers": 9, "load": 100}}
    api.answer("POST", f"{CHAOS}/stresschaos", status(409, "AlreadyExists", "exists"), 409)
    with pytest.raises(ConfigError, match="StressChaos gameday-cpu-throttle-app-broker-"
                                          r".* is in place already: undo that fault first"):
        target.throttle_cpu("app=broker-integration", 0.2)


def test_throttle_refuses_a_pod_without_a_cpu_limit_or_a_selector_matching_none(
        api: FakeApiServer, target: KubernetesTarget) -> None:
    api.answer("GET", PODS, pod_list(pod(A)), query=SERVICE_QUERY)
    with pytest.raises(ConfigError, match=f"pod {A} has no CPU limit"):
        target.throttle_cpu("app=broker-integration", 0.1)
    api.answer("GET", PODS, pod_list(), query=SERVICE_QUERY)
    with pytest.raises(ConfigError, match="matches no pod"):
        target.freeze("app=broker-integration")
    assert [call[0] for call in api.calls()] == ["GET", "GET"]  # nothing created


def test_a_replica_link_latency_is_a_delay_on_its_pod(api: FakeApiServer,
                                                      target: KubernetesTarget) -> None:
    api.answer("GET", PODS, THREE, query=SERVICE_QUERY)
    api.answer("POST", f"{CHAOS}/networkchaos", {}, 201)
    toxic = inject.toxic_body("latency", "downstream", 1.0, {"latency": 2000})

    created = target.degrade("lb-replica-2", toxic)

    assert created == {**toxic, "network_chaos": "gameday-degrade-lb-replica-2", "pod": B}
    assert api.requests[1].body == cm.delay_chaos(NS, "lb-replica-2", B, toxic)


def test_a_role_from_before_chaos_mesh_works_where_chaos_mesh_is_not_installed(
        api: FakeApiServer, target: KubernetesTarget) -> None:
    api.answer("GET", PODS, pod_list(pod(A)), query=SERVICE_QUERY)
    api.answer("GET", POLICIES, policy_list(), query=MANAGED_QUERY)
    forbidden = status(403, "Forbidden", "networkchaos is forbidden")
    api.answer("GET", f"{CHAOS}/networkchaos", forbidden, 403, query=FAULT_QUERY)

    assert target.links() == ["service-broker", "lb-replica-1"]  # discovery: 404

    api.answer("GET", "/apis/chaos-mesh.org/v1alpha1",
               {"kind": "APIResourceList", "apiVersion": "v1",
                "groupVersion": "chaos-mesh.org/v1alpha1",
                "resources": [{"name": "networkchaos", "singularName": "", "namespaced": True,
                               "kind": "NetworkChaos", "verbs": ["list"]}]})
    with pytest.raises(MeasurementError, match=r"cannot list networkchaos.*403 Forbidden"):
        target.links()  # installed: a refusal is an error, not "nothing there"


def test_release_gray_deletes_every_gameday_chaos_object_recorded_or_not(
        api: FakeApiServer, toxiproxy: str, tmp_path: Path) -> None:
    """What `gameday cleanup --all` does to the gray faults of a runner that lost its
    state: every object with gameday's fault label, of each kind, is deleted by name."""
    stress = cm.stress_chaos(NS, "app=broker-integration", {"app": "broker-integration"}, 3)
    api.answer("GET", f"{CHAOS}/networkchaos", chaos_list(delay_chaos("lb-replica-2")),
               query=FAULT_QUERY)
    api.answer("GET", f"{CHAOS}/stresschaos", chaos_list(stress), query=FAULT_QUERY)
    stress_name = stress["metadata"]["name"]
    api.answer("DELETE", f"{CHAOS}/networkchaos/gameday-degrade-lb-replica-2", {})
    api.answer("DELETE", f"{CHAOS}/stresschaos/{stress_name}", {})

    released = KubernetesTarget(settings(tmp_path, toxiproxy)).release_gray()

    assert released == [
        "NetworkChaos gameday-degrade-lb-replica-2 (replica-link-degrade of lb-replica-2) "
        "is in place",
        f"StressChaos {stress_name} (cpu-throttle of app=broker-integration) is in place"]
    assert api.calls() == [("GET", f"{CHAOS}/networkchaos", FAULT_QUERY),
                           ("GET", f"{CHAOS}/stresschaos", FAULT_QUERY),
                           ("DELETE", f"{CHAOS}/networkchaos/gameday-degrade-lb-replica-2", ""),
                           ("DELETE", f"{CHAOS}/stresschaos/{stress_name}", "")]
    assert not (tmp_path / "injected.jsonl").exists()  # nothing was recorded, nor needed
