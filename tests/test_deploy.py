"""deploy/kubernetes and the resilience workflow: offline schema validation (Kubernetes
1.37, kubernetes-validate's bundled schemas, strict), least-privilege RBAC, hardened
containers, and SLA recording rules that cannot drift from ``gameday.sla``."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]  # no py.typed
import pytest
import yaml

from gameday.sla import recording_rules

ROOT = Path(__file__).resolve().parent.parent
MANIFESTS = ROOT / "deploy" / "kubernetes"
WORKFLOW = ROOT / ".github" / "workflows" / "resilience.yml"
K8S_VERSION = "1.37.0"  # schemas bundled with kubernetes-validate 1.37.0: no network
NAMESPACE = "broker-integration"

ROLE_RULES = [
    {"apiGroups": [""], "resources": ["pods"], "verbs": ["list", "delete", "patch"]},
    {"apiGroups": ["networking.k8s.io"], "resources": ["networkpolicies"],
     "verbs": ["create", "delete", "list"]},
]


def _documents() -> list[dict[str, Any]]:
    docs = []
    for path in sorted(MANIFESTS.glob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]
    return docs


DOCS = _documents()


def _one(kind: str, name: str) -> dict[str, Any]:
    found = [d for d in DOCS if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} found"
    return found[0]


def _pod_specs() -> list[tuple[str, dict[str, Any]]]:
    specs = []
    for doc in DOCS:
        if doc["kind"] == "Deployment":
            specs.append((doc["metadata"]["name"], doc["spec"]["template"]["spec"]))
        elif doc["kind"] == "CronJob":
            job = doc["spec"]["jobTemplate"]["spec"]
            specs.append((doc["metadata"]["name"], job["template"]["spec"]))
    return specs


def test_every_kind_is_there() -> None:
    kinds = sorted(f"{d['kind']}/{d['metadata']['name']}" for d in DOCS)
    assert kinds == sorted([
        "Namespace/broker-integration", "Deployment/broker-integration",
        "Service/broker-integration", "PodDisruptionBudget/broker-integration",
        "ConfigMap/toxiproxy-config", "Deployment/toxiproxy", "Service/toxiproxy",
        "ConfigMap/prometheus-gameday", "ServiceAccount/gameday-runner",
        "Role/gameday-runner", "RoleBinding/gameday-runner", "CronJob/gameday",
    ])


@pytest.mark.parametrize("doc", DOCS, ids=lambda d: f"{d['kind']}-{d['metadata']['name']}")
def test_manifest_validates_offline(doc: dict[str, Any]) -> None:
    kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    if doc["kind"] != "Namespace":
        assert doc["metadata"]["namespace"] == NAMESPACE


def test_validation_catches_a_bad_manifest() -> None:
    bad = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "x"},
           "spec": {"ports": [{"port": 80}], "unknownField": 1}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, K8S_VERSION, strict=True)


def test_role_grants_exactly_what_the_kubernetes_target_calls() -> None:
    role = _one("Role", "gameday-runner")
    assert role["metadata"]["namespace"] == NAMESPACE
    assert role["rules"] == ROLE_RULES
    assert not [d for d in DOCS if d["kind"] in ("ClusterRole", "ClusterRoleBinding")]
    assert [d["kind"] for d in DOCS].count("Role") == 1


def test_role_is_bound_to_the_runner_only() -> None:
    binding = _one("RoleBinding", "gameday-runner")
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                  "name": "gameday-runner"}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "gameday-runner",
                                    "namespace": NAMESPACE}]
    runner = dict(_pod_specs())["gameday"]
    assert runner["serviceAccountName"] == "gameday-runner"
    for name, spec in _pod_specs():
        if name != "gameday":
            assert spec.get("automountServiceAccountToken") is False, name


@pytest.mark.parametrize(("name", "spec"), [pytest.param(n, s, id=n) for n, s in _pod_specs()])
def test_every_container_is_hardened(name: str, spec: dict[str, Any]) -> None:
    assert spec["securityContext"]["runAsNonRoot"] is True
    for container in spec["containers"] + spec.get("initContainers", []):
        sc = container["securityContext"]
        assert sc["runAsNonRoot"] is True and sc["runAsUser"] > 0, name
        assert sc["readOnlyRootFilesystem"] is True, name
        assert sc["allowPrivilegeEscalation"] is False, name
        assert sc["capabilities"] == {"drop": ["ALL"]}, name
        assert "privileged" not in sc, name
        for part in ("requests", "limits"):
            assert set(container["resources"][part]) == {"cpu", "memory"}, name


def test_service_deployment() -> None:
    deploy = _one("Deployment", "broker-integration")
    pod = deploy["spec"]["template"]
    assert deploy["spec"]["replicas"] == 3
    assert pod["metadata"]["labels"]["app"] == "broker-integration"
    assert pod["metadata"]["annotations"] == {"prometheus.io/scrape": "true",
                                              "prometheus.io/port": "8080",
                                              "prometheus.io/path": "/metrics"}
    [term] = pod["spec"]["affinity"]["podAntiAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"]
    assert term["topologyKey"] == "kubernetes.io/hostname"
    [container] = pod["spec"]["containers"]
    assert container["image"] == "broker-integration:latest"
    assert container["ports"] == [{"name": "http", "containerPort": 8080}]
    assert container["livenessProbe"]["httpGet"] == {"path": "/health", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/ready", "port": "http"}
    pdb = _one("PodDisruptionBudget", "broker-integration")
    assert pdb["spec"] == {"minAvailable": 2,
                           "selector": {"matchLabels": {"app": "broker-integration"}}}


def test_toxiproxy_api_is_cluster_internal() -> None:
    [container] = _one("Deployment", "toxiproxy")["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "ghcr.io/shopify/toxiproxy:2.9.0"
    service = _one("Service", "toxiproxy")["spec"]
    assert service["type"] == "ClusterIP"
    assert 8474 in [p["port"] for p in service["ports"]]
    proxies = yaml.safe_load(_one("ConfigMap", "toxiproxy-config")["data"]["toxiproxy.json"])
    assert [p["name"] for p in proxies] == ["service-broker"]  # gameday's link name
    assert not [d for d in DOCS if d["kind"] == "Service" and d["spec"]["type"] != "ClusterIP"]


def test_prometheus_rules_equal_recording_rules() -> None:
    data = _one("ConfigMap", "prometheus-gameday")["data"]
    assert yaml.safe_load(data["gameday-sla.rules.yml"]) == recording_rules()
    config = yaml.safe_load(data["prometheus.yml"])
    assert config["rule_files"] == ["/etc/prometheus/gameday/gameday-sla.rules.yml"]
    # recording_rules() selects job="broker-integration": the scrape job must carry it.
    assert [job["job_name"] for job in config["scrape_configs"]] == ["broker-integration"]


def test_runner_cronjob() -> None:
    cron = _one("CronJob", "gameday")
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    assert len(cron["spec"]["schedule"].split()) == 5
    spec = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    [container] = spec["containers"]
    assert container["image"] == "gameday:latest"
    assert container["command"] == ["gameday", "run", "--target", "kubernetes", "--junit",
                                    "/reports/junit.xml", "--reports", "/reports"]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["GAMEDAY_TARGET"] == "kubernetes"
    assert env["GAMEDAY_K8S_NAMESPACE"] == NAMESPACE
    assert env["CHAOSTOOLKIT_IN_POD"] == "true"
    for name in ("PROMETHEUS", "TOXIPROXY", "ENTRY", "BROKER"):
        assert env[f"GAMEDAY_{name}_URL"].startswith(("http://", "https://"))
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes[mounts["/reports"]]["emptyDir"] == {}


def test_workflow() -> None:
    text = WORKFLOW.read_text(encoding="utf-8")
    flow = yaml.safe_load(text)
    triggers = flow[True]  # YAML 1.1 reads the key `on` as a boolean
    assert len(triggers["schedule"][0]["cron"].split()) == 5
    assert "workflow_dispatch" in triggers
    lab = flow["jobs"]["lab"]
    assert lab["runs-on"] == "ubuntu-latest"
    [upload] = [s for s in lab["steps"] if s.get("uses", "").startswith("actions/upload-artifact")]
    assert upload["if"] == "always()"
    assert upload["with"]["path"] == "reports/"
    runs = " ".join(s.get("run", "") for s in lab["steps"])
    assert "--junit reports/junit.xml" in runs and "make setup" in runs
    assert flow["jobs"]["kind"]["if"] == "github.event_name == 'workflow_dispatch'"
    assert "secrets." not in text
    assert not re.search(r"(echo|cat|printenv|env\b).*(TOKEN|SECRET|PASSWORD)", text, re.I)
