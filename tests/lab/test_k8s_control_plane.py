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
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from kubernetes import client, config, utils
from kubernetes.config import kube_config
from support.faultproxy import start_toxiproxy, stop_proxy
from support.gocomponents import go_program
from support.k8scluster import (
    POD_READY_DELAY,
    ControlPlane,
    kubeconfig,
    resident_mib,
    running_control_plane,
)

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
from gameday.targets.kubernetes.target import MEMORY_NOT_YET, KubernetesTarget
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
        pods = inject_gray_faults(target)
        # The catalog's replica 2 is the second pod: only it is selected, and with no
        # Chaos Mesh controller to inject it, its evidence says the fault did not land.
        assert inject.freeze(target, "name=replica-2")["frozen"] == [pods[1]]
        assert target.cgroup_figures("name=replica-2") == {pods[1]: {
            "freezer_state": "THAWED", "quota_cores": -1.0, "nr_throttled": None}}
        assert chaos_objects(deployed) == sorted([
            f"networkchaos/{cm.object_name('freeze', SELECTOR)}",
            f"networkchaos/{cm.object_name('freeze', 'name=replica-2')}",
            "networkchaos/gameday-degrade-lb-replica-2",
            f"stresschaos/{cm.object_name('cpu-throttle', SELECTOR)}"])
        assert len(target.leftovers()) == 4, target.leftovers()
        undone = [what.split()[0] for what in inject.cleanup(target)]
        assert sorted(undone) == ["cpu-throttle", "degrade", "freeze", "freeze", "freeze"]
        assert chaos_objects(deployed) == [] and target.leftovers() == []
        target.thaw(SELECTOR)  # idempotent: nothing left to delete
        target.heal("lb-replica-2")


def replacement_timings(api: client.ApiClient, before: set[str]) -> tuple[str, float, float]:
    """Watch (every 50 ms) for a pod of the service not in ``before``: its name, when it
    was first seen scheduled (a node, an IP) and when first seen Ready, in seconds of
    ``time.monotonic()``."""
    scheduled: dict[str, float] = {}
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        now = time.monotonic()
        pods = client.CoreV1Api(api).list_namespaced_pod(NS, label_selector=SELECTOR).items
        for pod in pods:
            name = pod.metadata.name
            if name in before or not (pod.spec.node_name and pod.status.pod_ip):
                continue
            scheduled.setdefault(name, now)
            if any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or []):
                return name, scheduled[name], now
        time.sleep(0.05)
    pytest.fail(f"no replacement pod Ready within {WAIT_S:.0f} s", pytrace=False)


def test_a_killed_pods_replacement_is_ready_after_kwoks_realistic_delay(
        target: KubernetesTarget, deployed: client.ApiClient) -> None:
    """kwok's pod-ready stage waits 2-4 s (tests/support/k8scluster.py): recovery after a
    kill takes that long, not the 0.5 s of kwok's instant stages, so a bound such as
    pod-kill's ``ready_within_s`` measures something."""
    wait_for("3 Ready pods", lambda: len(ready_pods(deployed)) == 3)
    before = set(all_pods(deployed))
    with refusals_named():
        killed_at = time.monotonic()
        target.kill_pods(SELECTOR, 1)
    name, scheduled_at, ready_at = replacement_timings(deployed, before)
    low_s, high_s = POD_READY_DELAY.min_ms / 1000, POD_READY_DELAY.max_ms / 1000
    print(f"replacement {name}: scheduled {scheduled_at - killed_at:.2f} s after the kill, "
          f"Ready {ready_at - scheduled_at:.2f} s after that "
          f"({ready_at - killed_at:.2f} s kill to Ready)")
    # seen scheduled up to one poll late, and Ready up to one poll (+ a busy machine) late
    assert low_s - 0.15 <= ready_at - scheduled_at <= high_s + 1.5, ready_at - scheduled_at
    assert ready_at - killed_at >= low_s
    wait_for("3 Ready pods again", lambda: len(ready_pods(deployed)) == 3)
    assert target.ready_replicas(SELECTOR) == 3


CRONJOB = "gameday"


def cronjob_container(path: Path) -> dict[str, object]:
    """The runner container of the CronJob in ``path`` (as written in the file)."""
    manifest = yaml.safe_load(path.read_text())
    pod = manifest["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return dict(pod["containers"][0])


def controller_jobs(api: client.ApiClient) -> list[client.V1Job]:
    """The Jobs of the namespace the CronJob controller made for ``gameday``."""
    return [job for job in client.BatchV1Api(api).list_namespaced_job(NS).items
            if any(ref.kind == "CronJob" and ref.name == CRONJOB and ref.controller
                   for ref in job.metadata.owner_references or [])]


def test_the_cronjob_controller_makes_the_runner_job_of_the_manifest(
        deployed: client.ApiClient) -> None:
    """50-runner-cronjob.yaml as applied, its schedule set to every minute: the
    controller-manager's CronJob controller creates the Job (at most a minute later), the
    Job controller its pod, as the runner ServiceAccount, with the manifest's image,
    command and environment; kwok then completes the pod and the Job."""
    batch = client.BatchV1Api(deployed)
    assert controller_jobs(deployed) == []
    batch.patch_namespaced_cron_job(CRONJOB, NS, {"spec": {"schedule": "* * * * *"}})
    try:
        took = wait_for("the CronJob controller's Job", lambda: bool(controller_jobs(deployed)),
                        75)
        batch.patch_namespaced_cron_job(CRONJOB, NS, {"spec": {"suspend": True}})
    finally:
        batch.patch_namespaced_cron_job(CRONJOB, NS, {"spec": {"schedule": "0 3 * * *"}})
    job = controller_jobs(deployed)[0]
    print(f"the CronJob controller made {job.metadata.name} {took:.1f} s after the patch")
    expected = cronjob_container(ROOT / "deploy" / "kubernetes" / "50-runner-cronjob.yaml")
    spec = job.spec.template.spec
    container = spec.containers[0]
    assert (spec.service_account_name, spec.restart_policy) == (RUNNER, "Never")
    assert (job.spec.backoff_limit, job.spec.active_deadline_seconds) == (0, 7200)
    assert container.image == expected["image"] == "gameday:latest"
    assert container.command == expected["command"] and container.command[:4] == [
        "gameday", "run", "--target", "kubernetes"]
    assert {e.name: e.value for e in container.env} == {
        e["name"]: e["value"] for e in expected["env"]}  # type: ignore[attr-defined]
    assert container.security_context.read_only_root_filesystem is True
    assert spec.security_context.run_as_user == 10001
    check_the_job_runs(deployed, job.metadata.name)
    batch.delete_namespaced_job(job.metadata.name, NS, propagation_policy="Foreground")


def check_the_job_runs(api: client.ApiClient, job: str) -> None:
    """The Job controller made the Job's pod as the runner, and kwok ran it to the end:
    the Job is Complete."""
    pods = client.CoreV1Api(api).list_namespaced_pod(NS, label_selector=f"job-name={job}")
    assert [p.spec.service_account_name for p in pods.items] == [RUNNER], pods.items

    def complete() -> bool:
        status = client.BatchV1Api(api).read_namespaced_job_status(job, NS).status
        return any(c.type == "Complete" and c.status == "True"
                   for c in status.conditions or [])

    took = wait_for(f"Job {job} Complete", complete, 30)
    print(f"Job {job} Complete {took:.1f} s later (kwok ran its pod)")


def run_env(kubeconfig_path: Path, toxiproxy: str, tmp_path: Path) -> dict[str, str]:
    """``gameday run`` on the kubernetes target as the runner, no traffic (kwok): the
    URLs nothing calls point at a closed port of 127.0.0.1, Toxiproxy is the real one."""
    unused = "http://127.0.0.1:9"
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("GAMEDAY_", "KUBERNETES_", "CHAOSTOOLKIT_"))}
    return {**env, "KUBECONFIG": str(kubeconfig_path), "KUBERNETES_VERIFY_SSL": "true",
            "GAMEDAY_TARGET": "kubernetes", "GAMEDAY_K8S_TRAFFIC": "none",
            "GAMEDAY_TOXIPROXY_URL": toxiproxy, "GAMEDAY_PROMETHEUS_URL": unused,
            "GAMEDAY_ENTRY_URL": unused, "GAMEDAY_BROKER_URL": unused,
            "GAMEDAY_STATE_DIR": str(tmp_path / "state"), "GAMEDAY_LIVE": "0",
            "GAMEDAY_LAB_DIR": str(tmp_path / "no-lab")}


def verdicts(stdout: str) -> dict[str, tuple[str, list[str]]]:
    """Per experiment file: its verdict and reasons, as ``gameday run`` printed them."""
    found: dict[str, tuple[str, list[str]]] = {}
    current: list[str] = []
    for line in stdout.splitlines():
        head = re.match(r"^(PASS|FAIL|INCONCLUSIVE)  (\S+)  — ", line)
        if head:
            current = []
            found[head.group(2)] = (head.group(1), current)
        elif line.startswith("      ") and found:
            current.append(line.strip())
    return found


def journal_outputs(reports: Path, stem: str) -> dict[str, object]:
    """The method's outputs of the experiment's journal, by activity name."""
    journal = json.loads(next(reports.glob(f"{stem}-[0-9]*T*.journal.json")).read_text())
    return {run["activity"]["name"]: run.get("output") for run in journal["run"]}


def test_gameday_run_of_the_pods_tag_judges_what_the_control_plane_shows(
        plane: ControlPlane, deployed: client.ApiClient, toxiproxy_url: str,
        target: KubernetesTarget, tmp_path: Path) -> None:
    """``gameday run --target kubernetes --tag pods`` with GAMEDAY_K8S_TRAFFIC=none: the
    pod experiments' kills land, the pods are replaced and Ready again within their
    bounds, nothing is left; as the SLA could not be measured they are INCONCLUSIVE
    naming what did not run, never PASS. replica-oom's memory limit is not supported
    there: not run, with the reason. Exit 4."""
    wait_for("3 Ready pods", lambda: len(ready_pods(deployed)) == 3)
    reports = tmp_path / "reports"
    env = run_env(runner_kubeconfig(deployed, plane), toxiproxy_url, tmp_path)
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "gameday", "run", "--target", "kubernetes", "--tag", "pods",
         "--reports", str(reports)], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=300, check=False)
    print(f"gameday run --tag pods: exit {result.returncode} in "
          f"{time.monotonic() - started:.0f} s\n{result.stdout[-3000:]}")
    output = result.stdout + result.stderr
    assert "Traceback" not in output, output
    assert result.returncode == 4, output
    found = verdicts(result.stdout)
    assert sorted(found) == ["experiments/pod-kill-majority.yaml", "experiments/pod-kill.yaml",
                             "experiments/replica-oom.yaml"], output
    for name in ("pod-kill", "pod-kill-majority"):
        kind, reasons = found[f"experiments/{name}.yaml"]
        assert kind == "INCONCLUSIVE", (name, reasons)
        assert reasons[0].startswith("what the control plane shows held"), reasons
        assert reasons[1].startswith("not runnable here: GAMEDAY_K8S_TRAFFIC=none: no "
                                     "request flows"), reasons
        assert "steady-state probes sla-within-targets" in reasons[1], reasons
    kills = journal_outputs(reports, "pod-kill")
    assert kills["the-kills-landed"] == 3 and kills["every-replica-ready-again"] == 3, kills
    assert all(len(kills[f"kill-replica-{n}"]) == 1 for n in (1, 2, 3)), kills  # type: ignore[arg-type]
    majority = journal_outputs(reports, "pod-kill-majority")
    assert len(majority["kill-two-replicas"]) == 2, majority  # type: ignore[arg-type]
    kind, reasons = found["experiments/replica-oom.yaml"]
    assert kind == "INCONCLUSIVE" and reasons == [
        "not runnable here: leak-replica-2-past-its-memory-limit needs the memory-limit "
        f"fault: {MEMORY_NOT_YET}"], reasons
    assert not list(reports.glob("replica-oom-*.journal.json"))  # never run
    assert target.leftovers() == [] and policies(deployed) == []
    assert "0 passed" in result.stdout and "3 inconclusive" in result.stdout.replace(
        ",", ""), result.stdout[-500:]


def load_job(start_unix: int) -> dict[str, Any]:
    """deploy/kubernetes/load/60-load-workers.yaml with its start time set."""
    text = (ROOT / "deploy" / "kubernetes" / "load" / "60-load-workers.yaml").read_text()
    job: dict[str, Any] = yaml.safe_load(text.replace("REPLACE_START_UNIX", str(start_unix)))
    return job


def server_dry_run(plane: ControlPlane, job: dict[str, Any]) -> requests.Response:
    """POST ``job`` as JSON, as it is (no client model in between), with a server-side
    dry run and strict field validation, as the admin."""
    pki = plane.base / "pki"
    return requests.post(f"{plane.server}/apis/batch/v1/namespaces/{NS}/jobs",
                         params={"dryRun": "All", "fieldValidation": "Strict"}, json=job,
                         cert=(str(pki / "admin.crt"), str(pki / "admin.key")),
                         verify=str(plane.ca), timeout=10)


def test_the_load_workers_indexed_job_is_accepted_and_makes_one_pod_per_shard(
        plane: ControlPlane, deployed: client.ApiClient) -> None:
    """The API server accepts the load workers' Job as written (a server-side dry run
    with strict field validation: an unknown or misplaced field is refused), and the Job
    controller makes one pod per shard, each with its completion index; kwok completes
    them."""
    batch = client.BatchV1Api(deployed)
    body = load_job(int(time.time()) + 120)
    accepted = server_dry_run(plane, body)
    assert accepted.status_code == 201, accepted.text
    assert accepted.json()["spec"]["completionMode"] == "Indexed"
    bad = load_job(0)
    bad["spec"]["template"]["spec"]["containers"][0]["argz"] = ["--rate", "1"]
    refused = server_dry_run(plane, bad)
    assert refused.status_code == 400 and 'unknown field "spec.template.spec.containers[0]' \
        '.argz"' in refused.json()["message"], refused.text
    batch.create_namespaced_job(NS, body)
    try:
        shards = body["spec"]["completions"]
        core = client.CoreV1Api(deployed)

        def indices() -> list[str]:
            pods = core.list_namespaced_pod(NS, label_selector="app=gameday-load").items
            return sorted((p.metadata.annotations or {}).get(
                "batch.kubernetes.io/job-completion-index", "?") for p in pods)

        wait_for(f"{shards} load pods", lambda: len(indices()) == shards, 30)
        assert indices() == [str(i) for i in range(shards)]
        pod = core.list_namespaced_pod(NS, label_selector="app=gameday-load").items[0]
        env = {e.name for e in pod.spec.containers[0].env}
        assert {"JOB_COMPLETION_INDEX", "GAMEDAY_LOAD_SHARDS"} <= env, env
        took = wait_for("the load Job Complete", lambda: any(
            c.type == "Complete" and c.status == "True" for c in
            batch.read_namespaced_job_status("gameday-load", NS).status.conditions or []), 40)
        print(f"load Job: {shards} indexed pods, Complete {took:.1f} s after they were seen")
    finally:
        batch.delete_namespaced_job("gameday-load", NS, propagation_policy="Foreground")
