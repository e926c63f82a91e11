"""deploy/kubernetes and the resilience workflow: offline schema validation (Kubernetes
1.37, kubernetes-validate's bundled schemas, strict), least-privilege RBAC, hardened
containers, and SLA recording rules that cannot drift from ``gameday.measurements.sla``."""

from __future__ import annotations

import fnmatch
import importlib
import io
import json
import re
import shlex
from pathlib import Path
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]  # no py.typed
import pytest
import yaml
from dockerfile_parse import DockerfileParser  # type: ignore[import-untyped]  # no py.typed

from gameday.contract import recording_rules

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = ROOT / "deploy" / "kubernetes"
WORKFLOW = ROOT / ".github" / "workflows" / "resilience.yml"
K8S_VERSION = "1.37.0"  # schemas bundled with kubernetes-validate 1.37.0: no network
NAMESPACE = "broker-integration"

ROLE_RULES = [
    {"apiGroups": [""], "resources": ["pods"], "verbs": ["list", "delete", "patch"]},
    {"apiGroups": ["networking.k8s.io"], "resources": ["networkpolicies"],
     "verbs": ["create", "delete", "list"]},
    {"apiGroups": ["chaos-mesh.org"], "resources": ["networkchaos", "stresschaos"],
     "verbs": ["create", "delete", "list"]},
]


def _documents() -> list[dict[str, Any]]:
    docs = []
    for path in [*sorted(MANIFESTS.glob("*.yaml")), *sorted(MANIFESTS.glob("load/*.yaml"))]:
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
        elif doc["kind"] == "Job":
            specs.append((doc["metadata"]["name"], doc["spec"]["template"]["spec"]))
    return specs


def test_every_kind_is_there() -> None:
    kinds = sorted(f"{d['kind']}/{d['metadata']['name']}" for d in DOCS)
    assert kinds == sorted([
        "Namespace/broker-integration", "Deployment/broker-integration",
        "Service/broker-integration", "PodDisruptionBudget/broker-integration",
        "ConfigMap/toxiproxy-config", "Deployment/toxiproxy", "Service/toxiproxy",
        "ConfigMap/prometheus-gameday", "ServiceAccount/gameday-runner",
        "Role/gameday-runner", "RoleBinding/gameday-runner", "CronJob/gameday",
        "Job/gameday-load",
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
    assert [job["job_name"] for job in config["scrape_configs"]] == ["broker-integration",
                                                                     "toxiproxy"]


def test_toxiproxy_byte_counters_are_scraped_for_the_link_evidence() -> None:
    """probes.network.link_traffic reads Toxiproxy's per-proxy byte counters from the
    target's Prometheus: Toxiproxy must export them and Prometheus must scrape its API."""
    [container] = _one("Deployment", "toxiproxy")["spec"]["template"]["spec"]["containers"]
    assert "-proxy-metrics" in container["args"]
    api_port = next(p["containerPort"] for p in container["ports"] if p["name"] == "api")
    service = _one("Service", "toxiproxy")
    config = yaml.safe_load(_one("ConfigMap", "prometheus-gameday")["data"]["prometheus.yml"])
    [job] = [j for j in config["scrape_configs"] if j["job_name"] == "toxiproxy"]
    assert job["metrics_path"] == "/metrics"
    namespace = service["metadata"]["namespace"]
    assert job["static_configs"] == [
        {"targets": [f"{service['metadata']['name']}.{namespace}.svc:{api_port}"]}]
    assert api_port in [p["port"] for p in service["spec"]["ports"]]


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


def expand(text: str, env: dict[str, str]) -> str:
    """Kubernetes' ``$(VAR)`` expansion in a container's args."""
    return re.sub(r"\$\((\w+)\)", lambda m: env[m.group(1)], text)


def test_load_workers_are_an_indexed_job_of_shards_of_one_run() -> None:
    job = _one("Job", "gameday-load")
    spec = job["spec"]
    [container] = spec["template"]["spec"]["containers"]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert spec["completionMode"] == "Indexed" and spec["backoffLimit"] == 0
    assert spec["completions"] == spec["parallelism"] == int(env["GAMEDAY_LOAD_SHARDS"])
    assert container["image"] == "gameday:latest"
    assert container["command"] == ["gameday", "load"]
    cli = importlib.import_module("gameday.cli.main")
    for index in range(spec["completions"]):
        values = {**env, "JOB_COMPLETION_INDEX": str(index),
                  "GAMEDAY_LOAD_START_UNIX": "1796284800"}
        args = cli.build_parser().parse_args(
            ["load", *(expand(a, values) for a in container["args"])])
        assert (args.shard, args.start_at, args.rate) == (
            f"{index}/{spec['completions']}", 1796284800.0, float(env["GAMEDAY_LOAD_RATE"]))
        assert args.json is None  # the summary goes to the pod's log
    assert env["GAMEDAY_LOAD_START_UNIX"] == "REPLACE_START_UNIX"


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


# --- deploy/docker: the images the kind job builds (never built here: no Docker engine) ---

DOCKER = ROOT / "deploy" / "docker"
# image name (as the manifests and the workflow use it) -> its Dockerfile
IMAGES = {"broker-integration:latest": DOCKER / "service.Dockerfile",
          "gameday:latest": DOCKER / "gameday.Dockerfile"}
# image name -> the Deployment or CronJob (same name) that runs it
WORKLOADS = {"broker-integration:latest": "broker-integration", "gameday:latest": "gameday"}
VARIABLE = re.compile(r"\$\{(\w+)(?::-([^}]*))?\}|\$(\w+)")


def _stages(path: Path) -> list[list[tuple[str, str]]]:
    """The Dockerfile's stages, each a list of (INSTRUCTION, value), FROM first."""
    parser = DockerfileParser(fileobj=io.BytesIO(path.read_bytes()))
    stages: list[list[tuple[str, str]]] = []
    for item in parser.structure:
        if item["instruction"] == "FROM":
            stages.append([])
        if item["instruction"] != "COMMENT":
            assert stages, f"{path.name}: {item['instruction']} before the first FROM"
            stages[-1].append((item["instruction"], item["value"]))
    return stages


def _final(path: Path, instruction: str) -> list[str]:
    """Values of ``instruction`` in the final stage, in order."""
    return [value for name, value in _stages(path)[-1] if name == instruction]


def _exec_form(value: str) -> list[str]:
    parsed = json.loads(value)
    assert isinstance(parsed, list) and all(isinstance(a, str) for a in parsed), value
    return parsed


def _env(path: Path) -> dict[str, str]:
    env: dict[str, str] = {}
    for value in _final(path, "ENV"):
        for pair in shlex.split(value):
            name, _, setting = pair.partition("=")
            env[name] = setting
    return env


def _workload(image: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(pod spec, container) of the workload that runs ``image``."""
    spec = dict(_pod_specs())[WORKLOADS[image]]
    [container] = [c for c in spec["containers"] if c["image"] == image]
    return spec, container


def _dockerignore() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def _ignored(source: str, patterns: list[str]) -> bool:
    """Whether .dockerignore keeps ``source`` (or a folder above it) out of the context."""
    parts = Path(source).parts
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    ignored = False
    for line in patterns:  # as Docker reads them: the last matching line decides
        keep, pattern = line.startswith("!"), line.removeprefix("!")
        if any(fnmatch.fnmatch(prefix, pattern.removeprefix("**/")) or
               fnmatch.fnmatch(prefix, pattern) for prefix in prefixes):
            ignored = not keep
    return ignored


def _copy_sources(path: Path) -> list[str]:
    """Sources of every COPY/ADD that reads the build context (not ``--from`` a stage)."""
    sources = []
    for stage in _stages(path):
        for instruction, value in stage:
            if instruction not in ("COPY", "ADD") or "--from=" in value:
                continue
            args = _exec_form(value) if value.startswith("[") else shlex.split(value)
            args = [a for a in args if not a.startswith("--")]
            assert len(args) >= 2, f"{path.name}: {instruction} {value}"
            sources += args[:-1]
    return sources


@pytest.mark.parametrize("image", IMAGES)
def test_dockerfile_copies_only_what_exists(image: str) -> None:
    sources = _copy_sources(IMAGES[image])
    patterns = _dockerignore()
    for source in sources:
        assert (ROOT / source).exists(), f"{image}: COPY {source}: no such file in the repo"
        assert not _ignored(source.rstrip("/"), patterns), f"{image}: .dockerignore drops {source}"
    runs = [value for stage in _stages(IMAGES[image]) for name, value in stage if name == "RUN"]
    if image == "gameday:latest":
        assert "pyproject.toml" in sources  # installed from the project's own metadata
        packages = re.search(r"^include = \[(.*)\]$", (ROOT / "pyproject.toml").read_text(),
                             re.MULTILINE)
        assert packages
        for package in re.findall(r'"(\w+)\*"', packages[1]):
            assert f"{package}/" in sources, f"{image} does not COPY {package}/"
        assert any(re.search(r"pip install \.$", run) for run in runs), image
    else:
        assert SERVICE_REQUIREMENTS.relative_to(ROOT).as_posix() in sources
        assert any(re.search(r"pip install -r \S+service-requirements.txt$", run) for run in runs)


SERVICE_REQUIREMENTS = ROOT / "deploy" / "docker" / "service-requirements.txt"
# What the service image must not need: gameday beyond its contract, Chaos Toolkit, the
# Kubernetes client and every other library only the runner uses.
def test_service_requirements_are_pinned_as_in_pyproject() -> None:
    pinned = {line.strip() for line in SERVICE_REQUIREMENTS.read_text().splitlines()
              if line.strip() and not line.startswith("#")}
    project = set(re.findall(r'^    "([\w.-]+==[\w.]+)",$', (ROOT / "pyproject.toml").read_text(),
                             re.MULTILINE))
    assert pinned and pinned <= project, pinned - project


@pytest.mark.parametrize("image", IMAGES)
def test_dockerfile_base_images_are_pinned(image: str) -> None:
    python = re.search(r"<(\d+\.\d+)", (ROOT / "pyproject.toml").read_text())
    assert python, "requires-python has no upper bound"
    stage_names = set()
    for stage in _stages(IMAGES[image]):
        base, *alias = stage[0][1].split()
        if base not in stage_names:
            name, _, tag = base.partition(":")
            assert name == "python" and tag and tag != "latest", base
            major, minor = map(int, python[1].split("."))
            assert tag.startswith(f"{major}.{minor - 1}-"), f"{base}: pyproject wants <{python[1]}"
        if alias:
            stage_names.add(alias[-1])


@pytest.mark.parametrize("image", IMAGES)
def test_dockerfile_user_is_the_manifests_non_root_user(image: str) -> None:
    spec, container = _workload(image)
    user = _final(IMAGES[image], "USER")[-1]
    uid, _, gid = user.partition(":")
    assert uid.isdigit() and int(uid) > 0, f"{image}: USER {user} must be a numeric non-root uid"
    assert int(uid) == spec["securityContext"]["runAsUser"]
    assert int(uid) == container["securityContext"]["runAsUser"]
    assert gid.isdigit() and int(gid) == spec["securityContext"]["runAsGroup"], user


@pytest.mark.parametrize("image", IMAGES)
def test_dockerfile_needs_no_writable_root(image: str) -> None:
    _, container = _workload(image)
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    env = _env(IMAGES[image])
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"  # no .pyc written beside the code
    assert "/tmp" in [m["mountPath"] for m in container["volumeMounts"]]
    manifest_env = {e["name"]: e["value"] for e in container.get("env", [])}
    if "HOME" in env or "HOME" in manifest_env:
        assert env["HOME"] == manifest_env.get("HOME", env["HOME"]) == "/tmp"


def _expand(script: str, env: dict[str, str]) -> str:
    """Expand ``$VAR`` and ``${VAR:-default}`` the way sh does (no other forms used)."""
    return VARIABLE.sub(lambda m: env.get(m[1] or m[3], m[2] or ""), script)


def test_service_image_runs_the_lab_service_as_the_deployment_expects() -> None:
    from lab.service.__main__ import parse_args  # noqa: PLC0415  # the module the CMD runs

    _, container = _workload("broker-integration:latest")
    assert "command" not in container and "args" not in container  # the image's CMD runs
    [cmd] = _final(IMAGES["broker-integration:latest"], "CMD")
    shell, flag, script = _exec_form(cmd)
    assert (shell, flag) == ("sh", "-c")
    env = {e["name"]: e["value"] for e in container["env"]}
    words = shlex.split(_expand(script, {**env, "HOSTNAME": "broker-integration-7d9f-x2"}))
    assert words[:4] == ["exec", "python", "-m", "lab.service"]
    assert (ROOT / "lab" / "service" / "__main__.py").exists()
    settings = parse_args(words[4:])
    assert settings.broker_url == env["BROKER_URL"]
    assert settings.host == "0.0.0.0"
    assert settings.name == "broker-integration-7d9f-x2"
    assert [settings.port] == [p["containerPort"] for p in container["ports"]]
    exposed = _final(IMAGES["broker-integration:latest"], "EXPOSE")
    assert exposed == [str(settings.port)]


def test_runner_image_runs_the_cronjobs_command() -> None:
    _, container = _workload("gameday:latest")
    path = IMAGES["gameday:latest"]
    [cmd] = _final(path, "CMD")
    assert _exec_form(cmd) == container["command"]
    scripts = re.search(r'^gameday = "([\w.]+):(\w+)"$',
                        (ROOT / "pyproject.toml").read_text(), re.MULTILINE)
    assert scripts and container["command"][0] == "gameday"
    assert callable(getattr(importlib.import_module(scripts[1]), scripts[2]))
    cli = importlib.import_module("gameday.cli.main")
    cli.build_parser().parse_args(container["command"][1:])  # every option exists
    assert _final(path, "WORKDIR")[-1] == container["workingDir"] == "/app"
    copies = [shlex.split(value) for value in _final(path, "COPY") if "--from=" not in value]
    assert ["experiments/", "experiments/"] in copies  # relative to WORKDIR /app
    assert sorted((ROOT / "experiments").glob("*.yaml"))


def test_workflow_builds_and_loads_the_images_the_manifests_run() -> None:
    flow = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    [step] = [s for s in flow["jobs"]["kind"]["steps"] if "docker build" in s.get("run", "")]
    built = {name: (dockerfile, context) for name, dockerfile, context in
             re.findall(r"docker build -t (\S+) -f (\S+) (\S+)", step["run"])}
    assert built == {image: (str(path.relative_to(ROOT)), ".") for image, path in IMAGES.items()}
    [load] = re.findall(r"kind load docker-image (.+) --name", step["run"])
    assert sorted(load.split()) == sorted(IMAGES)
    for image in IMAGES:
        _, container = _workload(image)
        assert container["imagePullPolicy"] == "IfNotPresent"  # kind-loaded, never pulled
