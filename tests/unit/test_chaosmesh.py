"""The Chaos Mesh objects of the kubernetes target (pure builders): their exact shapes,
names, the CPU stressors' count and what is unsupported without Chaos Mesh. That the API
server accepts them under Chaos Mesh's own CRD schemas is checked on a real control plane
(tests/lab/test_k8s_control_plane.py)."""

from __future__ import annotations

import re

import pytest
from kubernetes.client import V1Container, V1ObjectMeta, V1Pod, V1PodSpec, V1ResourceRequirements

from gameday.contract import ConfigError
from gameday.faults.inject import toxic_body
from gameday.targets.kubernetes import chaosmesh as cm
from gameday.targets.kubernetes.objects import cpu_limit_cores

NS = "broker-integration"
MANAGED = {"app.kubernetes.io/managed-by": "gameday"}
DNS_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def test_freeze_is_a_full_loss_on_every_pod_the_selector_matched() -> None:
    body = cm.freeze_chaos(NS, "app=broker-integration", ["bi-a", "bi-b"])
    name = cm.object_name("freeze", "app=broker-integration")
    assert body == {
        "apiVersion": "chaos-mesh.org/v1alpha1", "kind": "NetworkChaos",
        "metadata": {"name": name, "labels": {**MANAGED, "gameday.io/fault": "freeze"},
                     "annotations": {"gameday.io/selector": "app=broker-integration"}},
        "spec": {"action": "loss", "mode": "all",
                 "selector": {"pods": {NS: ["bi-a", "bi-b"]}},
                 "loss": {"loss": "100", "correlation": "100"}}}
    assert "duration" not in body["spec"]  # until gameday deletes it


def test_throttle_runs_busy_cpu_workers_in_the_pods() -> None:
    body = cm.stress_chaos(NS, "app=x,tier=y", ["x-1"], 9)
    assert body == {
        "apiVersion": "chaos-mesh.org/v1alpha1", "kind": "StressChaos",
        "metadata": {"name": cm.object_name("cpu-throttle", "app=x,tier=y"),
                     "labels": {**MANAGED, "gameday.io/fault": "cpu-throttle"},
                     "annotations": {"gameday.io/selector": "app=x,tier=y"}},
        "spec": {"mode": "all",
                 "selector": {"pods": {NS: ["x-1"]}},
                 "stressors": {"cpu": {"workers": 9, "load": 100}}}}


def test_chaos_mesh_s_records_name_the_pods_it_injected_into() -> None:
    def record(record_id: str, phase: str) -> dict[str, object]:
        return {"id": record_id, "phase": phase, "injectedCount": 1, "recoveredCount": 0,
                "selectorKey": "."}
    chaos = {"status": {"experiment": {"desiredPhase": "Run", "containerRecords": [
        record(f"{NS}/bi-a", "Injected"), record(f"{NS}/bi-b", "Not Injected"),
        record(f"{NS}/bi-c/broker-integration", "Injected"), record("garbage", "Injected")]}}}
    assert cm.injected_pods(chaos) == {"bi-a", "bi-c"}
    assert cm.injected_pods(None) == set()
    assert cm.injected_pods({"spec": {}}) == set()  # created, not yet seen by Chaos Mesh


def test_a_replica_link_latency_is_a_delay_on_that_one_pod() -> None:
    toxic = toxic_body("latency", "downstream", 1.0, {"latency": 2000, "jitter": 12.5})
    body = cm.delay_chaos(NS, "lb-replica-2", "broker-integration-abc", toxic)
    assert body == {
        "apiVersion": "chaos-mesh.org/v1alpha1", "kind": "NetworkChaos",
        "metadata": {"name": "gameday-degrade-lb-replica-2",
                     "labels": {**MANAGED, "gameday.io/fault": "replica-link-degrade",
                                "gameday.io/link": "lb-replica-2"},
                     "annotations": {}},
        "spec": {"action": "delay", "mode": "all",
                 "selector": {"pods": {NS: ["broker-integration-abc"]}},
                 "delay": {"latency": "2000ms", "jitter": "12.5ms", "correlation": "0"}}}
    assert cm.plural(body) == "networkchaos"


@pytest.mark.parametrize(("toxic", "match"), [
    (toxic_body("bandwidth", "downstream", 1.0, {"rate": 1}), "only a latency toxic"),
    (toxic_body("latency", "upstream", 1.0, {"latency": 1}), "only a latency toxic"),
    (toxic_body("latency", "downstream", 0.5, {"latency": 1}), "toxicity must be 1"),
    (toxic_body("latency", "downstream", 1.0, {"latency": -1}), "milliseconds >= 0"),
    (toxic_body("latency", "downstream", 1.0, {"latency": "2s"}), "milliseconds >= 0"),
])
def test_what_a_delay_cannot_express_is_refused(toxic: dict[str, object], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        cm.delay_chaos(NS, "lb-replica-1", "p", toxic)


def test_names_are_valid_distinct_and_stable() -> None:
    selectors = ["app=broker-integration", "app=broker-integration,tier=a", "name=replica-2",
                 "App=X", "a" * 200 + "=b", "==="]
    names = [cm.object_name("cpu-throttle", s) for s in selectors]
    assert len(set(names)) == len(names)
    assert all(DNS_NAME.match(n) and len(n) <= 63 for n in names), names
    assert names[0].startswith("gameday-cpu-throttle-app-broker-integration-")
    assert cm.object_name("cpu-throttle", selectors[0]) == names[0]


@pytest.mark.parametrize(("limit", "cores", "workers"), [
    (1.0, 0.1, 9), (1.0, 0.5, 1), (1.0, 0.9, 1), (2.0, 0.25, 7), (0.5, 0.1, 4), (1.0, 0.3, 3)])
def test_workers_leave_the_service_about_its_share_of_the_limit(
        limit: float, cores: float, workers: int) -> None:
    assert cm.stress_workers(limit, cores) == workers
    assert limit / (workers + 1) <= cores + 1e-9


def test_workers_refuse_what_competition_cannot_do() -> None:
    with pytest.raises(ConfigError, match="not below the pods' CPU limit"):
        cm.stress_workers(1.0, 1.0)
    with pytest.raises(ConfigError, match="needs 99 stress workers"):
        cm.stress_workers(1.0, 0.01)


def _pod(name: str, cpu: str | None) -> V1Pod:
    limits = {"cpu": cpu, "memory": "1Gi"} if cpu else {"memory": "1Gi"}
    container = V1Container(name="service", resources=V1ResourceRequirements(limits=limits))
    return V1Pod(metadata=V1ObjectMeta(name=name), spec=V1PodSpec(containers=[container]))


def test_the_cpu_limit_is_the_largest_first_container_limit() -> None:
    assert cpu_limit_cores([_pod("a", "500m"), _pod("b", "1")]) == 1.0
    with pytest.raises(ConfigError, match="pod b has no CPU limit"):
        cpu_limit_cores([_pod("a", "500m"), _pod("b", None)])


def test_unsupported_names_the_missing_resource_or_why_it_is_unknown() -> None:
    only_network = cm.unsupported(["networkchaos", "podchaos"])
    assert list(only_network) == ["cpu-throttle"]
    assert "serves no stresschaos.chaos-mesh.org" in only_network["cpu-throttle"]
    unknown = cm.unsupported(None, "HTTP 403 Forbidden")
    assert set(unknown.values()) == {"cannot tell whether Chaos Mesh is installed: "
                                     "HTTP 403 Forbidden"}


def test_leftovers_say_which_fault_of_what() -> None:
    objects = [cm.freeze_chaos(NS, "app=x", {"app": "x"}),
               cm.delay_chaos(NS, "lb-replica-3", "p",
                              toxic_body("latency", "downstream", 1.0, {"latency": 5}))]
    assert cm.leftover_problems(objects) == [
        f"NetworkChaos {cm.object_name('freeze', 'app=x')} (freeze of app=x) is in place",
        "NetworkChaos gameday-degrade-lb-replica-3 (replica-link-degrade of lb-replica-3) "
        "is in place"]
