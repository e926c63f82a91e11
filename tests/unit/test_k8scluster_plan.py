"""The test control plane's command lines (tests/support/k8scluster.py): loopback only,
its state in its own folder, the authorization and identities the tests rely on."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from support.k8scluster import (
    KWOK_NODE_ANNOTATION,
    Ports,
    apiserver_command,
    controller_manager_command,
    etcd_command,
    kubeconfig,
    kwok_command,
    kwok_stages_dir,
    node_manifest,
    scheduler_command,
    stage_with_delay,
)

BASE = Path("/t/k8s")
PORTS = Ports(2379, 2380, 6443, 10257, 10259)


def test_every_component_listens_on_loopback_only() -> None:
    etcd = etcd_command(Path("/b/etcd"), BASE, PORTS)
    assert "--listen-client-urls=http://127.0.0.1:2379" in etcd
    assert "--listen-peer-urls=http://127.0.0.1:2380" in etcd
    assert "--data-dir=/t/k8s/etcd" in etcd
    apiserver = apiserver_command(Path("/b/kube-apiserver"), BASE, PORTS)
    assert "--bind-address=127.0.0.1" in apiserver and "--secure-port=6443" in apiserver
    for command in (controller_manager_command(Path("/b/kcm"), BASE, PORTS),
                    scheduler_command(Path("/b/ks"), BASE, PORTS)):
        assert "--bind-address=127.0.0.1" in command and "--leader-elect=false" in command


def test_the_api_server_authorizes_with_rbac_and_signs_service_account_tokens() -> None:
    apiserver = apiserver_command(Path("/b/kube-apiserver"), BASE, PORTS)
    assert "--authorization-mode=Node,RBAC" in apiserver
    assert "--service-account-signing-key-file=/t/k8s/pki/sa.key" in apiserver
    assert "--client-ca-file=/t/k8s/pki/ca.crt" in apiserver
    kcm = controller_manager_command(Path("/b/kcm"), BASE, PORTS)
    assert "--use-service-account-credentials=true" in kcm
    assert "--kubeconfig=/t/k8s/controller-manager.kubeconfig" in kcm


def test_kwok_manages_only_the_fake_nodes_with_the_stages_it_ships() -> None:
    command = kwok_command(Path("/b/kwok"), BASE, BASE / "kwok.yaml")
    assert f"--manage-nodes-with-annotation-selector={KWOK_NODE_ANNOTATION}=fake" in command
    assert "--manage-all-nodes=false" in command and "--config=/t/k8s/kwok.yaml" in command
    node = node_manifest("n1")
    assert node["metadata"] == {
        "name": "n1", "annotations": {KWOK_NODE_ANNOTATION: "fake"},
        "labels": {"kubernetes.io/hostname": "n1", "kubernetes.io/os": "linux",
                   "kubernetes.io/arch": "amd64", "type": "kwok"}}
    assert kwok_stages_dir({"XDG_CACHE_HOME": "/c"}) == Path(
        "/c/gameday/go/mod/sigs.k8s.io/kwok@v0.8.0/kustomize/stage")


def test_a_kubeconfig_names_the_server_the_ca_and_the_user(tmp_path: Path) -> None:
    path = kubeconfig(tmp_path / "k", "https://127.0.0.1:6443", Path("/ca"), {"token": "t"})
    config = json.loads(path.read_text())
    assert config["clusters"][0]["cluster"] == {"server": "https://127.0.0.1:6443",
                                                "certificate-authority": "/ca"}
    assert config["users"][0]["user"] == {"token": "t"}
    assert path.stat().st_mode & 0o077 == 0


STAGE = """\
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: {name}
spec:
  delay:
    durationMilliseconds: 1000
    durationFrom:
      expressionFrom: '.metadata.annotations["x/delay"]'
    jitterDurationMilliseconds: 5000
  next:
    statusTemplate: "phase: Running"
"""


def test_pods_become_ready_2_to_4_s_after_they_get_their_ip() -> None:
    ready = yaml.safe_load(stage_with_delay(STAGE.format(name="pod-ready")))
    assert ready["spec"]["delay"] == {
        "durationMilliseconds": 2000, "jitterDurationMilliseconds": 4000,
        "durationFrom": {"expressionFrom": '.metadata.annotations["x/delay"]'}}
    assert ready["spec"]["next"] == {"statusTemplate": "phase: Running"}
    created = yaml.safe_load(stage_with_delay(STAGE.format(name="pod-create")))
    assert created["spec"]["delay"]["durationMilliseconds"] == 0
    assert created["spec"]["delay"]["jitterDurationMilliseconds"] == 0
    other = STAGE.format(name="pod-delete")
    assert stage_with_delay(other) == other  # kwok's own delay
