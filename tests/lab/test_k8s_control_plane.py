"""The kubernetes target against a real control plane (tests/support/k8scluster.py: etcd,
kube-apiserver, controller-manager, scheduler, kwok with three fake nodes, all built from
the Go module proxy by lab/gocomponents.py): deploy/kubernetes/ applied as is, then the
target, authenticated as the ``gameday-runner`` ServiceAccount of
deploy/kubernetes/40-runner-rbac.yaml, kills a pod, cuts and heals both kinds of link and
finds nothing left over. A call its Role does not allow fails the test naming the verb
and the resource. kwok runs pods in name only: NetworkPolicies are stored, not enforced;
Toxiproxy (the leftovers check) is a real one on 127.0.0.1. Chaos Mesh's CRDs (its
release 2.8.3's, fetched by lab/gocomponents.py) are installed during the gray-fault test:
its objects are validated by their real schemas, but no Chaos Mesh controller runs."""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml
from kubernetes import client, config, utils
from kubernetes.config import kube_config
from support.faultproxy import start_toxiproxy, stop_proxy
from support.gocomponents import go_program
from support.k8scluster import ControlPlane, kubeconfig, resident_mib, running_control_plane

from gameday.contract import (
    CGROUP_FAULTS,
    MEMORY_LIMIT_FAULT,
    PACKET_LOSS_FAULT,
    REPLICA_LINK_DEGRADE_FAULT,
    GamedayError,
)
from gameday.faults import inject
from gameday.targets.kubernetes import chaosmesh as cm
from gameday.targets.kubernetes.objects import PARTITION_LABEL
from gameday.targets.kubernetes.settings import KubernetesSettings
from gameday.targets.kubernetes.target import KubernetesTarget
from lab.gocomponents import CHAOS_MESH_CRDS, TOXIPROXY

ROOT = Path(__file__).resolve().parents[2]
NS = "broker-integration"
SELECTOR = "app=broker-integration"
RUNNER = "gameday-runner"
WAIT_S = 60.0
CHAOS_MESH_KINDS = ("networkchaos", "podchaos", "stresschaos")
# What RBAC says when it refuses: '... cannot list resource "pods" in API group "" ...'
REFUSAL = re.compile(r'cannot (\w+) resource \\?"([\w./-]+)\\?" in API group \\?"([\w.]*)\\?"')


@contextlib.contextmanager
def refusals_named() -> Iterator[None]:
    """Fail the test, naming the verb and the resource, when the API server answers a
    call of the target with 403 (the runner's Role lacks it)."""
    try:
        yield
    except GamedayError as exc:
        found = REFUSAL.search(str(exc))
        if found is None and "HTTP 403" not in str(exc):
            raise
        verb, resource, group = found.groups() if found else ("?", "?", "?")
        pytest.fail(f"the {RUNNER} Role does not allow `{verb}` on `{resource}` "
                    f"(API group {group!r}), which the target needs: {exc}", pytrace=False)


def wait_for(what: str, check: Callable[[], bool], timeout_s: float = WAIT_S) -> float:
    """Poll ``check`` until true; fail after ``timeout_s``. Seconds it took."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if check():
            return time.monotonic() - started
        time.sleep(0.2)
    pytest.fail(f"{what}: not within {timeout_s:.0f} s", pytrace=False)


def admin_api(plane: ControlPlane) -> client.ApiClient:
    """A client of the control plane as its admin (system:masters)."""
    return config.new_client_from_config(config_file=str(plane.admin_kubeconfig))


def apply_deploy_manifests(api: client.ApiClient) -> list[str]:
    """Create every object of deploy/kubernetes/*.yaml, in file order; their files."""
    files = sorted((ROOT / "deploy" / "kubernetes").glob("*.yaml"))
    for path in files:
        utils.create_from_yaml(api, str(path))
    return [path.name for path in files]


def ready_pods(api: client.ApiClient) -> list[str]:
    """Pods of the service that run, are not being deleted and are Ready."""
    pods = client.CoreV1Api(api).list_namespaced_pod(NS, label_selector=SELECTOR).items
    return sorted(p.metadata.name for p in pods
                  if p.metadata.deletion_timestamp is None and p.status.phase == "Running"
                  and any(c.type == "Ready" and c.status == "True"
                          for c in p.status.conditions or []))


def all_pods(api: client.ApiClient) -> list[str]:
    """Every pod of the service, being deleted or not."""
    pods = client.CoreV1Api(api).list_namespaced_pod(NS, label_selector=SELECTOR).items
    return sorted(p.metadata.name for p in pods)


def runner_kubeconfig(api: client.ApiClient, plane: ControlPlane) -> Path:
    """A kubeconfig with a token of the gameday-runner ServiceAccount (TokenRequest API)."""
    request = client.AuthenticationV1TokenRequest(
        spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=3600))
    answer = client.CoreV1Api(api).create_namespaced_service_account_token(RUNNER, NS, request)
    return kubeconfig(plane.base / "runner.kubeconfig", plane.server, plane.ca,
                      {"token": answer.status.token})


def use_kubeconfig(monkeypatch: pytest.MonkeyPatch, path: Path) -> None:
    """Make ``path`` the kubeconfig chaostoolkit-kubernetes loads, as ``KUBECONFIG=path``
    does for a new process (the kubernetes package reads KUBECONFIG once, at import),
    verifying the API server's certificate."""
    monkeypatch.setenv("KUBECONFIG", str(path))
    monkeypatch.setenv("KUBERNETES_VERIFY_SSL", "true")
    monkeypatch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(path))


def policies(api: client.ApiClient) -> list[str]:
    """The NetworkPolicies of the namespace."""
    items = client.NetworkingV1Api(api).list_namespaced_network_policy(NS).items
    return sorted(p.metadata.name for p in items)


def target_for(url: str, state: Path) -> KubernetesTarget:
    """The target on the namespace of deploy/kubernetes/, Toxiproxy at ``url``; the
    other URLs are not called by what this test does."""
    unused = "http://127.0.0.1:9"
    return KubernetesTarget(KubernetesSettings(
        prometheus_url=unused, toxiproxy_url=url, entry_url=unused, broker_url=unused,
        state_dir=state))


def check_kill(target: KubernetesTarget, api: client.ApiClient) -> None:
    """A killed pod is gone, a new one replaces it and all three are Ready again."""
    before = ready_pods(api)
    killed = target.kill_pods(SELECTOR, 1)
    assert len(killed) == 1 and killed[0] in before, (killed, before)
    took = wait_for(f"pod {killed[0]} replaced and 3 pods Ready again",
                    lambda: killed[0] not in all_pods(api) and len(ready_pods(api)) == 3)
    assert killed[0] not in ready_pods(api)
    print(f"pod {killed[0]} killed, replaced and Ready again in {took:.1f} s")
    assert target.ready_replicas(SELECTOR) == 3


def check_partition(target: KubernetesTarget, api: client.ApiClient, link: str) -> None:
    """``link`` cut: a gameday NetworkPolicy (and for a replica link, its pod labelled);
    reported as a leftover; healed: none of it left."""
    target.partition(link)
    assert link in target.links()
    assert any(link in name for name in policies(api)), policies(api)
    labelled = client.CoreV1Api(api).list_namespaced_pod(
        NS, label_selector=f"{PARTITION_LABEL}={link}").items
    assert len(labelled) == (0 if link == "service-broker" else 1), labelled
    problems = target.leftovers()
    assert problems and all(link in problem for problem in problems), problems
    target.heal(link)
    assert policies(api) == [] and target.leftovers() == []
    target.heal(link)  # idempotent


@pytest.fixture(scope="module")
def plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    """The control plane of this module's tests (skipped, or failed under
    GAMEDAY_REQUIRE_GO_COMPONENTS=1, when its programs are not built)."""
    with running_control_plane(tmp_path_factory.mktemp("k8s")) as running:
        sizes = resident_mib(running.processes)
        print(f"control plane up in {running.startup_s:.1f} s, "
              f"{sum(sizes.values()):.0f} MiB resident: "
              + ", ".join(f"{name} {mib:.0f}" for name, mib in sizes.items()))
        yield running


@pytest.fixture(scope="module")
def deployed(plane: ControlPlane) -> Iterator[client.ApiClient]:
    """deploy/kubernetes/ applied and the Deployment's 3 pods Ready; the admin's client."""
    admin = admin_api(plane)
    try:
        assert "40-runner-rbac.yaml" in apply_deploy_manifests(admin)
        took = wait_for("3 Ready pods of the Deployment", lambda: len(ready_pods(admin)) == 3)
        print(f"3 pods Ready {took:.1f} s after the manifests were applied")
        yield admin
    finally:
        admin.close()


@pytest.fixture(scope="module")
def toxiproxy_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Toxiproxy on 127.0.0.1 (what the target's leftovers check reads)."""
    proxy = start_toxiproxy(tmp_path_factory.mktemp("toxiproxy") / "toxiproxy.log",
                            go_program(TOXIPROXY))
    try:
        yield proxy.url
    finally:
        stop_proxy(proxy)


@pytest.fixture
def target(plane: ControlPlane, deployed: client.ApiClient, toxiproxy_url: str,
           tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> KubernetesTarget:
    """The target, authenticated as the gameday-runner ServiceAccount."""
    use_kubeconfig(monkeypatch, runner_kubeconfig(deployed, plane))
    return target_for(toxiproxy_url, tmp_path / "state")


def test_the_target_drives_a_real_control_plane_as_the_runner(
        target: KubernetesTarget, deployed: client.ApiClient) -> None:
    with refusals_named():
        assert target.ready_replicas(SELECTOR) == 3
        check_kill(target, deployed)
        check_partition(target, deployed, "service-broker")
        check_partition(target, deployed, "lb-replica-2")
        assert target.leftovers() == []


@contextlib.contextmanager
def role_without(api: client.ApiClient, resource: str, verb: str) -> Iterator[None]:
    """The gameday-runner Role without ``verb`` on ``resource`` for a while."""
    rbac = client.RbacAuthorizationV1Api(api)
    role = rbac.read_namespaced_role(RUNNER, NS)
    original = [dict(apiGroups=r.api_groups, resources=r.resources, verbs=list(r.verbs))
                for r in role.rules]
    reduced = [{**r, "verbs": [v for v in r["verbs"] if not (resource in r["resources"]
                                                              and v == verb)]}
               for r in original]
    rbac.patch_namespaced_role(RUNNER, NS, {"rules": reduced})
    try:
        wait_for(f"RBAC to refuse {verb} {resource}",
                 lambda: not runner_may(api, verb, resource), 10)
        yield
    finally:
        rbac.patch_namespaced_role(RUNNER, NS, {"rules": original})
        wait_for(f"RBAC to allow {verb} {resource} again",
                 lambda: runner_may(api, verb, resource), 10)


def runner_may(api: client.ApiClient, verb: str, resource: str) -> bool:
    """Whether the API server's authorizer lets the runner ``verb`` ``resource`` (core
    group) in the namespace now (a SubjectAccessReview)."""
    review = client.V1SubjectAccessReview(spec=client.V1SubjectAccessReviewSpec(
        user=f"system:serviceaccount:{NS}:{RUNNER}",
        groups=["system:serviceaccounts", f"system:serviceaccounts:{NS}"],
        resource_attributes=client.V1ResourceAttributes(namespace=NS, verb=verb,
                                                        resource=resource)))
    answer = client.AuthorizationV1Api(api).create_subject_access_review(review)
    return bool(answer.status.allowed)


def test_a_call_the_runner_role_lacks_fails_naming_the_verb_and_the_resource(
        target: KubernetesTarget, deployed: client.ApiClient) -> None:
    with role_without(deployed, "pods", "patch"), pytest.raises(
            pytest.fail.Exception, match=r"does not allow `patch` on `pods` \(API group ''\)"
    ), refusals_named():
        target.partition("lb-replica-1")  # labels the pod: refused
    target.heal("lb-replica-1")
    assert target.leftovers() == []


def test_a_refused_call_names_the_verb_and_the_resource() -> None:
    refused = GamedayError(
        'cannot list network policies: HTTP 403 Forbidden: {"message":"networkpolicies.'
        'networking.k8s.io is forbidden: User \\"system:serviceaccount:broker-integration:'
        'gameday-runner\\" cannot list resource \\"networkpolicies\\" in API group '
        '\\"networking.k8s.io\\" in the namespace \\"broker-integration\\""}')
    with pytest.raises(pytest.fail.Exception,
                       match=r"does not allow `list` on `networkpolicies` \(API group "
                             r"'networking.k8s.io'\)"), refusals_named():
        raise refused


def install_chaos_mesh_crds(api: client.ApiClient, crd_file: Path) -> None:
    """Create Chaos Mesh's CRDs of ``CHAOS_MESH_KINDS`` from its crd.yaml (only those
    documents are parsed: the file is 3 MB) and wait until they are established."""
    wanted = {f"{kind}.{cm.GROUP}" for kind in CHAOS_MESH_KINDS}
    extensions = client.ApiextensionsV1Api(api)
    for text in crd_file.read_text(encoding="utf-8").split("\n---\n"):
        found = re.search(r"^  name: (\S+)$", text, re.MULTILINE)
        if found and found.group(1) in wanted:
            extensions.create_custom_resource_definition(yaml.load(text, yaml.CSafeLoader))

    def established() -> bool:
        crds = [extensions.read_custom_resource_definition(name) for name in wanted]
        return all(any(c.type == "Established" and c.status == "True"
                       for c in crd.status.conditions or []) for crd in crds)

    wait_for("Chaos Mesh's CRDs established", established, 20)


def chaos_objects(api: client.ApiClient) -> list[str]:
    """Every NetworkChaos and StressChaos of the namespace, as ``plural/name``."""
    custom = client.CustomObjectsApi(api)
    return sorted(f"{plural}/{item['metadata']['name']}" for plural in cm.PLURALS
                  for item in custom.list_namespaced_custom_object(
                      cm.GROUP, cm.VERSION, NS, plural)["items"])


def check_schema_is_enforced(api: client.ApiClient) -> None:
    """A NetworkChaos with an action Chaos Mesh does not have is refused (422)."""
    body = cm.freeze_chaos(NS, SELECTOR, {"app": "broker-integration"})
    body["spec"]["action"] = "freeze"
    with pytest.raises(client.ApiException) as refused:
        client.CustomObjectsApi(api).create_namespaced_custom_object(
            cm.GROUP, cm.VERSION, NS, "networkchaos", body)
    assert refused.value.status == 422 and 'Unsupported value: \\"freeze\\"' in str(
        refused.value.body), refused.value.body


def inject_gray_faults(target: KubernetesTarget) -> list[str]:
    """Freeze, throttle and delay one replica's link through gameday.faults.inject (so each
    is recorded for cleanup); the pods each landed on."""
    frozen = inject.freeze(target, SELECTOR)["frozen"]
    assert inject.freeze(target, SELECTOR)["frozen"] == frozen  # already frozen: fine
    throttled = inject.throttle(target, SELECTOR, 0.1)["throttled"]
    degraded = inject.degrade(target, "lb-replica-2", toxic="latency", stream="downstream",
                              toxicity=1.0, attributes={"latency": 2000})
    assert frozen == throttled and len(frozen) == 3 and degraded["pod"] == frozen[1]
    return frozen


def test_gray_faults_are_chaos_mesh_objects_the_api_server_accepts(
        target: KubernetesTarget, deployed: client.ApiClient) -> None:
    """Without Chaos Mesh the gray faults are unsupported, naming what to install; with its
    CRDs they are created as objects its schemas accept, listed as leftovers and deleted
    by cleanup. Only acceptance by the API server is checked: no Chaos Mesh controller
    runs (and kwok's pods run nothing), so nothing is actually frozen or slowed."""
    with refusals_named():
        unsupported = target.unsupported_faults()
        assert sorted(unsupported) == sorted([*CGROUP_FAULTS, REPLICA_LINK_DEGRADE_FAULT,
                                              PACKET_LOSS_FAULT])
        assert all("install Chaos Mesh 2.8" in why for fault, why in unsupported.items()
                   if fault not in (MEMORY_LIMIT_FAULT, PACKET_LOSS_FAULT)), unsupported
        install_chaos_mesh_crds(deployed, go_program(CHAOS_MESH_CRDS))
        wait_for("Chaos Mesh served",
                 lambda: sorted(target.unsupported_faults()) == sorted(
                     [MEMORY_LIMIT_FAULT, PACKET_LOSS_FAULT]), 20)
        check_schema_is_enforced(deployed)
        inject_gray_faults(target)
        assert chaos_objects(deployed) == sorted([
            f"networkchaos/{cm.object_name('freeze', SELECTOR)}",
            "networkchaos/gameday-degrade-lb-replica-2",
            f"stresschaos/{cm.object_name('cpu-throttle', SELECTOR)}"])
        assert len(target.leftovers()) == 3, target.leftovers()
        undone = [what.split()[0] for what in inject.cleanup(target)]
        assert undone == ["freeze", "freeze", "cpu-throttle", "degrade"]  # frozen twice
        assert chaos_objects(deployed) == [] and target.leftovers() == []
        target.thaw(SELECTOR)  # idempotent: nothing left to delete
        target.heal("lb-replica-2")
