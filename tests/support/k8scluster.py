"""A real Kubernetes control plane for the tests, on 127.0.0.1 only, all its state in
one folder: etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok with
three fake nodes (programs built by lab/gocomponents.py; a missing one skips the test, or
fails it under ``GAMEDAY_REQUIRE_GO_COMPONENTS=1``).

Identities: a CA of its own (openssl), a client certificate per component
(``system:masters`` for the admin and kwok, ``system:kube-controller-manager`` and
``system:kube-scheduler``), service-account tokens signed by a key of its own;
authorization ``Node,RBAC``. kwok plays the kubelet with the stages kwok ships (read
from kwok's module in the Go module cache), their delays set here
(:data:`STAGE_DELAYS`): a scheduled pod gets its IP at once and is Ready
:data:`POD_READY_DELAY` later (2-4 s, uniformly at random: kwok's jitter), as a small
image with a readiness probe would be, so a replacement's recovery is measurable; a
Job's pod completes 1-2 s after it is Ready; a deleted pod is gone after about a second.
Every process is stopped by its own handle (:func:`stop`).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
import yaml

from lab.gocomponents import (
    ETCD,
    KUBE_APISERVER,
    KUBE_CONTROLLER_MANAGER,
    KUBE_SCHEDULER,
    KWOK,
    cache_root,
)
from support.faultproxy import free_port
from support.gocomponents import go_program

__all__ = ["NODES", "POD_READY_DELAY", "ControlPlane", "kubeconfig", "resident_mib",
           "running_control_plane", "stop"]

NODES = ("gameday-node-1", "gameday-node-2", "gameday-node-3")
START_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 15.0
KWOK_NODE_ANNOTATION = "kwok.x-k8s.io/node"
KWOK_STAGES = ("node/fast/node-initialize.yaml",
               "node/heartbeat-with-lease/node-heartbeat-with-lease.yaml",
               "pod/general/pod-create.yaml", "pod/general/pod-init-container-running.yaml",
               "pod/general/pod-init-container-completed.yaml", "pod/general/pod-ready.yaml",
               "pod/general/pod-complete.yaml", "pod/general/pod-delete.yaml")
_OPENSSL_CONFIG = """\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign,digitalSignature
subjectKeyIdentifier = hash
[server]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default.svc
[client]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = clientAuth
"""


@dataclass(frozen=True)
class StageDelay:
    """How long kwok waits before a stage's change: ``min_ms``, plus a uniformly random
    part up to ``max_ms`` (kwok's ``jitterDurationMilliseconds``; equal: no jitter)."""

    min_ms: int
    max_ms: int

    def as_kwok(self) -> dict[str, int]:
        """The stage's ``spec.delay`` (a per-pod annotation can still override it)."""
        return {"durationMilliseconds": self.min_ms, "jitterDurationMilliseconds": self.max_ms}


POD_READY_DELAY = StageDelay(2000, 4000)
# Stage name -> its delay here (the others keep kwok's own).
STAGE_DELAYS = {"pod-create": StageDelay(0, 0), "pod-ready": POD_READY_DELAY,
                "pod-complete": StageDelay(1000, 2000)}


@dataclass(frozen=True)
class Process:
    """A started program, its log and its handle (stopped by this handle only)."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path


@dataclass(frozen=True)
class ControlPlane:
    """A running control plane: its API server, the CA to trust, an admin kubeconfig,
    its processes (in start order) and how long it took to start (seconds)."""

    base: Path
    server: str
    ca: Path
    admin_kubeconfig: Path
    processes: tuple[Process, ...]
    startup_s: float


@dataclass(frozen=True)
class Ports:
    """The loopback ports of one control plane."""

    etcd_client: int
    etcd_peer: int
    apiserver: int
    controller_manager: int
    scheduler: int

    @classmethod
    def free(cls) -> Ports:
        """Five ports free at the moment (the kernel's choice)."""
        return cls(free_port(), free_port(), free_port(), free_port(), free_port())


def _openssl(base: Path, *args: str) -> None:
    subprocess.run(["openssl", *args], cwd=base, check=True, capture_output=True, timeout=30)


def _new_key_request(pki: Path, name: str, subject: str) -> None:
    _openssl(pki, "req", "-new", "-nodes", "-config", "openssl.cnf", "-newkey", "ec",
             "-pkeyopt", "ec_paramgen_curve:prime256v1", "-keyout", f"{name}.key",
             "-out", f"{name}.csr", "-subj", subject)


def _sign(pki: Path, name: str, extensions: str) -> None:
    _openssl(pki, "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
             "-CAcreateserial", "-days", "2", "-extfile", "openssl.cnf",
             "-extensions", extensions, "-out", f"{name}.crt")


def make_pki(pki: Path) -> None:
    """A CA, the API server's serving certificate, a client certificate per identity
    (``admin``, ``controller-manager``, ``scheduler``) and the service-account key pair."""
    pki.mkdir(parents=True)
    (pki / "openssl.cnf").write_text(_OPENSSL_CONFIG)
    _openssl(pki, "req", "-x509", "-new", "-nodes", "-config", "openssl.cnf", "-extensions",
             "ca", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-days", "2",
             "-keyout", "ca.key", "-out", "ca.crt", "-subj", "/CN=gameday-test-ca")
    _new_key_request(pki, "apiserver", "/CN=kube-apiserver")
    _sign(pki, "apiserver", "server")
    for name, subject in (("admin", "/O=system:masters/CN=gameday-admin"),
                          ("controller-manager", "/CN=system:kube-controller-manager"),
                          ("scheduler", "/CN=system:kube-scheduler")):
        _new_key_request(pki, name, subject)
        _sign(pki, name, "client")
    _openssl(pki, "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
             "-out", "sa.key")
    _openssl(pki, "pkey", "-in", "sa.key", "-pubout", "-out", "sa.pub")


def kubeconfig(path: Path, server: str, ca: Path, user: Mapping[str, str]) -> Path:
    """Write a kubeconfig (JSON, which is YAML) for ``server`` trusting ``ca`` as
    ``user`` (``client-certificate``/``client-key`` or ``token``); return its path."""
    config = {
        "apiVersion": "v1", "kind": "Config", "current-context": "gameday",
        "clusters": [{"name": "gameday",
                      "cluster": {"server": server, "certificate-authority": str(ca)}}],
        "users": [{"name": "gameday", "user": dict(user)}],
        "contexts": [{"name": "gameday", "context": {"cluster": "gameday", "user": "gameday"}}],
    }
    path.write_text(json.dumps(config, indent=2))
    path.chmod(0o600)
    return path


def _client_kubeconfig(base: Path, server: str, name: str) -> Path:
    pki = base / "pki"
    return kubeconfig(base / f"{name}.kubeconfig", server, pki / "ca.crt",
                      {"client-certificate": str(pki / f"{name}.crt"),
                       "client-key": str(pki / f"{name}.key")})


def etcd_command(program: Path, base: Path, ports: Ports) -> list[str]:
    """etcd, one member, plain HTTP on loopback, its data in ``base/etcd``."""
    client, peer = f"http://127.0.0.1:{ports.etcd_client}", f"http://127.0.0.1:{ports.etcd_peer}"
    return [str(program), "--name=gameday", f"--data-dir={base / 'etcd'}",
            f"--listen-client-urls={client}", f"--advertise-client-urls={client}",
            f"--listen-peer-urls={peer}", f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=gameday={peer}", "--unsafe-no-fsync=true",
            "--log-level=warn"]


def apiserver_command(program: Path, base: Path, ports: Ports) -> list[str]:
    """kube-apiserver on 127.0.0.1 only: client certificates of the CA, service-account
    tokens (TokenRequest), ``Node,RBAC`` authorization."""
    pki = base / "pki"
    return [str(program), f"--etcd-servers=http://127.0.0.1:{ports.etcd_client}",
            "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
            f"--secure-port={ports.apiserver}",
            f"--tls-cert-file={pki / 'apiserver.crt'}",
            f"--tls-private-key-file={pki / 'apiserver.key'}",
            f"--client-ca-file={pki / 'ca.crt'}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={pki / 'sa.pub'}",
            f"--service-account-signing-key-file={pki / 'sa.key'}",
            "--authorization-mode=Node,RBAC", "--service-cluster-ip-range=10.96.0.0/16",
            "--endpoint-reconciler-type=none", "--profiling=false", "--v=1"]


def _component_flags(kubeconfig_path: Path, port: int) -> list[str]:
    return [f"--kubeconfig={kubeconfig_path}", f"--authentication-kubeconfig={kubeconfig_path}",
            f"--authorization-kubeconfig={kubeconfig_path}", "--bind-address=127.0.0.1",
            f"--secure-port={port}", "--leader-elect=false", "--profiling=false", "--v=1"]


def controller_manager_command(program: Path, base: Path, ports: Ports) -> list[str]:
    """kube-controller-manager (Deployments -> ReplicaSets -> pods, ServiceAccounts, the
    root CA ConfigMap), each controller with its own service account."""
    pki = base / "pki"
    return [str(program), *_component_flags(base / "controller-manager.kubeconfig",
                                            ports.controller_manager),
            "--use-service-account-credentials=true", f"--root-ca-file={pki / 'ca.crt'}",
            f"--service-account-private-key-file={pki / 'sa.key'}"]


def scheduler_command(program: Path, base: Path, ports: Ports) -> list[str]:
    """kube-scheduler."""
    return [str(program), *_component_flags(base / "scheduler.kubeconfig", ports.scheduler)]


def kwok_stages_dir(env: Mapping[str, str]) -> Path:
    """Where the stages kwok ships are: its module in the Go module cache."""
    return cache_root(env) / "mod" / f"{KWOK.module}@{KWOK.version}" / "kustomize" / "stage"


def stage_with_delay(text: str) -> str:
    """One stage of kwok's (YAML) with its delay as :data:`STAGE_DELAYS` says, keeping the
    annotation a pod can override it with (``durationFrom``, ``jitterDurationFrom``)."""
    stage = yaml.safe_load(text)
    delay = STAGE_DELAYS.get(stage["metadata"]["name"])
    if delay is None:
        return text
    stage["spec"]["delay"] = {**stage["spec"].get("delay", {}), **delay.as_kwok()}
    return yaml.safe_dump(stage, sort_keys=False)


def write_kwok_config(base: Path, stages: Path) -> Path:
    """kwok's configuration: the stages it ships (see :data:`KWOK_STAGES`), with the
    delays of :data:`STAGE_DELAYS`."""
    missing = [name for name in KWOK_STAGES if not (stages / name).is_file()]
    if missing:
        pytest.fail(f"kwok's stages are not in the Go module cache ({stages}: missing "
                    f"{', '.join(missing)}): `make setup` downloads them with kwok",
                    pytrace=False)
    config = base / "kwok.yaml"
    config.write_text("\n---\n".join(stage_with_delay((stages / name).read_text())
                                     for name in KWOK_STAGES))
    return config


def kwok_command(program: Path, base: Path, config: Path) -> list[str]:
    """kwok managing the nodes annotated ``kwok.x-k8s.io/node=fake``."""
    return [str(program), f"--kubeconfig={base / 'admin.kubeconfig'}", f"--config={config}",
            "--manage-all-nodes=false",
            f"--manage-nodes-with-annotation-selector={KWOK_NODE_ANNOTATION}=fake",
            "--cidr=10.244.0.0/16", "--node-ip=10.0.0.1", "--node-lease-duration-seconds=40"]


def node_manifest(name: str) -> dict[str, object]:
    """A fake node for kwok (its status is kwok's)."""
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "annotations": {KWOK_NODE_ANNOTATION: "fake"},
                         "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
                                    "kubernetes.io/arch": "amd64", "type": "kwok"}}}


def _start(base: Path, name: str, command: list[str]) -> Process:
    log = base / "logs" / f"{name}.log"
    with log.open("wb") as out:
        popen = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=base,
                                 stdin=subprocess.DEVNULL, start_new_session=True)
    return Process(name, popen, log)


def stop(processes: tuple[Process, ...]) -> None:
    """SIGTERM each process (by its own handle), last started first; SIGKILL one that is
    still there after :data:`STOP_TIMEOUT_S`."""
    for process in reversed(processes):
        if process.popen.poll() is None:
            process.popen.terminate()
        try:
            process.popen.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.popen.kill()
            process.popen.wait(timeout=STOP_TIMEOUT_S)


def resident_mib(processes: tuple[Process, ...]) -> dict[str, float]:
    """Each running process's resident memory (VmRSS), MiB."""
    sizes = {}
    for process in processes:
        with contextlib.suppress(FileNotFoundError):
            status = Path(f"/proc/{process.popen.pid}/status").read_text()
            kib = next(line.split()[1] for line in status.splitlines()
                       if line.startswith("VmRSS:"))
            sizes[process.name] = int(kib) / 1024
    return sizes


def _tail(process: Process) -> str:
    return process.log.read_text(errors="replace")[-1500:]


def _check_alive(processes: list[Process]) -> None:
    for process in processes:
        if process.popen.poll() is not None:
            raise RuntimeError(f"{process.name} exited ({process.popen.returncode}): "
                               f"{_tail(process)}")


def _session(base: Path) -> requests.Session:
    pki = base / "pki"
    session = requests.Session()
    session.trust_env = False  # REQUESTS_CA_BUNDLE would replace the CA; no proxies either
    session.verify = str(pki / "ca.crt")
    session.cert = (str(pki / "admin.crt"), str(pki / "admin.key"))
    return session


def _wait(what: str, ready: Callable[[], bool], processes: list[Process],
          deadline: float) -> None:
    """Poll ``ready()`` until true; raise (with the processes' state) at the deadline."""
    while time.monotonic() < deadline:
        _check_alive(processes)
        with contextlib.suppress(requests.RequestException):
            if ready():
                return
        time.sleep(0.1)
    raise TimeoutError(f"{what} not within {START_TIMEOUT_S:.0f} s")


def _ready_nodes(session: requests.Session, server: str) -> int:
    nodes = session.get(f"{server}/api/v1/nodes", timeout=5).json().get("items", [])
    return sum(any(c["type"] == "Ready" and c["status"] == "True"
                   for c in (n.get("status") or {}).get("conditions") or []) for n in nodes)


def _create_nodes(session: requests.Session, server: str) -> None:
    for name in NODES:
        answer = session.post(f"{server}/api/v1/nodes", json=node_manifest(name), timeout=5)
        if answer.status_code not in (201, 409):
            raise RuntimeError(f"cannot create node {name}: {answer.status_code} {answer.text}")


def _start_all(base: Path, ports: Ports, programs: Mapping[str, Path],
               processes: list[Process], deadline: float) -> None:
    """Start the components in order (appending to ``processes`` as each starts)."""
    server = f"https://127.0.0.1:{ports.apiserver}"
    session = _session(base)
    processes.append(_start(base, "etcd", etcd_command(programs["etcd"], base, ports)))
    processes.append(_start(base, "kube-apiserver",
                            apiserver_command(programs["kube-apiserver"], base, ports)))
    _wait("kube-apiserver /readyz",
          lambda: session.get(f"{server}/readyz", timeout=2).status_code == 200,
          processes, deadline)
    processes.append(_start(base, "kube-controller-manager", controller_manager_command(
        programs["kube-controller-manager"], base, ports)))
    processes.append(_start(base, "kube-scheduler",
                            scheduler_command(programs["kube-scheduler"], base, ports)))
    config = write_kwok_config(base, kwok_stages_dir(os.environ))
    processes.append(_start(base, "kwok", kwok_command(programs["kwok"], base, config)))
    _create_nodes(session, server)
    _wait("3 Ready kwok nodes", lambda: _ready_nodes(session, server) == len(NODES),
          processes, deadline)
    _wait("the default ServiceAccount",
          lambda: session.get(f"{server}/api/v1/namespaces/default/serviceaccounts/default",
                              timeout=2).status_code == 200, processes, deadline)


def programs() -> dict[str, Path]:
    """The five built programs (skips or fails the test when one is missing)."""
    return {c.name: go_program(c)
            for c in (ETCD, KUBE_APISERVER, KUBE_CONTROLLER_MANAGER, KUBE_SCHEDULER, KWOK)}


@contextlib.contextmanager
def running_control_plane(base: Path) -> Iterator[ControlPlane]:
    """Start a control plane with all its state in ``base`` (a new folder); stop every
    process it started on the way out, whatever happened."""
    built = programs()
    (base / "logs").mkdir(parents=True)
    started = time.monotonic()
    make_pki(base / "pki")
    ports = Ports.free()
    server = f"https://127.0.0.1:{ports.apiserver}"
    for name in ("admin", "controller-manager", "scheduler"):
        _client_kubeconfig(base, server, name)
    processes: list[Process] = []
    try:
        _start_all(base, ports, built, processes, started + START_TIMEOUT_S)
        yield ControlPlane(base, server, base / "pki" / "ca.crt", base / "admin.kubeconfig",
                           tuple(processes), time.monotonic() - started)
    finally:
        stop(tuple(processes))
