"""Where the Go programs are built and cached, how, and what a missing one means."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from support.gocomponents import absent_outcome

from lab.gocomponents import (
    CHAOS_MESH_CRDS,
    COMPONENTS,
    ETCD,
    K8S_BUILD_DIR,
    K8S_COMPONENTS,
    KUBE_APISERVER,
    KUBE_CONTROLLER_MANAGER,
    KUBE_SCHEDULER,
    KWOK,
    TOXIPROXY,
    binary_path,
    build_command,
    cache_root,
    download_command,
    go_environment,
    install_command,
    is_present,
    missing_reason,
    required,
)


def test_the_cache_follows_xdg_cache_home_then_home() -> None:
    assert cache_root({"XDG_CACHE_HOME": "/c", "HOME": "/h"}) == Path("/c/gameday/go")
    assert cache_root({"XDG_CACHE_HOME": "", "HOME": "/h"}) == Path("/h/.cache/gameday/go")


def test_the_program_sits_under_its_module_and_pinned_version() -> None:
    path = binary_path(TOXIPROXY, {"XDG_CACHE_HOME": "/c"})
    assert path == Path("/c/gameday/go/github.com/Shopify/toxiproxy/v2@v2.5.0/bin/server")


def test_go_keeps_everything_in_the_cache_and_uses_the_local_toolchain() -> None:
    env = go_environment({"XDG_CACHE_HOME": "/c", "PATH": "/bin"}, Path("/tmp/x"))
    assert env["GOMODCACHE"] == "/c/gameday/go/mod" and env["GOCACHE"] == "/c/gameday/go/build"
    assert env["GOPATH"] == "/c/gameday/go/gopath" and env["GOBIN"] == "/tmp/x"
    assert env["GOTOOLCHAIN"] == "local" and env["PATH"] == "/bin"


def test_install_pins_the_version_and_sets_the_reported_one() -> None:
    command = install_command("/go/bin/go", TOXIPROXY)
    assert command[:2] == ["/go/bin/go", "install"]
    assert command[-1] == "github.com/Shopify/toxiproxy/v2/cmd/server@v2.5.0"
    assert "-ldflags=-X github.com/Shopify/toxiproxy/v2.Version=2.5.0" in command


@pytest.mark.parametrize(("value", "expected"), [("1", True), ("", False), ("0", False)])
def test_only_make_test_requires_the_programs(value: str, expected: bool) -> None:
    assert required({"GAMEDAY_REQUIRE_GO_COMPONENTS": value}) is expected
    assert required({}) is False


def test_a_missing_program_skips_with_the_recorded_reason_or_fails_when_required(
    tmp_path: Path,
) -> None:
    env = {"XDG_CACHE_HOME": str(tmp_path)}
    fail, reason = absent_outcome(TOXIPROXY, env)
    assert not fail and "never built" in reason and "make setup" in reason
    folder = binary_path(TOXIPROXY, env).parent.parent
    folder.mkdir(parents=True)
    (folder / "build-error.txt").write_text("proxy.golang.org: connection refused\n")
    fail, reason = absent_outcome(TOXIPROXY, {**env, "GAMEDAY_REQUIRE_GO_COMPONENTS": "1"})
    assert fail and "last build failed: proxy.golang.org: connection refused" in reason


def test_the_reason_names_the_component_and_where_it_should_be() -> None:
    reason = missing_reason(TOXIPROXY, {"XDG_CACHE_HOME": "/c"}, None)
    assert reason.startswith("toxiproxy-server (github.com/Shopify/toxiproxy/v2@v2.5.0)")
    assert "/c/gameday/go/" in reason


def test_a_control_plane_program_sits_in_a_folder_of_its_own_under_its_release() -> None:
    env = {"XDG_CACHE_HOME": "/c"}
    assert binary_path(KUBE_APISERVER, env) == Path(
        "/c/gameday/go/k8s.io/kubernetes@v1.36.3/kube-apiserver/bin/kube-apiserver")
    assert binary_path(ETCD, env) == Path(
        "/c/gameday/go/go.etcd.io/etcd/server/v3@v3.6.16/etcd/bin/etcd")
    folders = {binary_path(c, env).parent.parent for c in K8S_COMPONENTS}
    assert len(folders) == len(K8S_COMPONENTS)  # one lock and error file per program


def test_a_control_plane_program_is_built_in_the_build_module_with_its_release() -> None:
    command = build_command("/go/bin/go", KUBE_SCHEDULER, Path("/tmp/s/kube-scheduler"))
    assert command[:3] == ["/go/bin/go", "build", "-trimpath"]
    assert command[-3:] == ["-o", "/tmp/s/kube-scheduler", "k8s.io/kubernetes/cmd/kube-scheduler"]
    assert "-X k8s.io/component-base/version.gitVersion=v1.36.3" in command[3]
    assert KUBE_SCHEDULER.build_dir == K8S_BUILD_DIR and TOXIPROXY.build_dir is None
    assert build_command("go", KWOK, Path("k"))[-1] == "sigs.k8s.io/kwok/cmd/kwok"


def test_the_build_module_pins_each_program_at_its_version_and_staging_at_its_release() -> None:
    gomod = (K8S_BUILD_DIR / "go.mod").read_text()
    for component in K8S_COMPONENTS:
        assert re.search(rf"^\t{re.escape(component.module)} {component.version}\b", gomod,
                         re.MULTILINE), component
        assert f"\t{component.package}\n" in gomod.split("tool (")[1], component
    staging = [line.split() for line in gomod.splitlines() if " => " in line]
    assert len(staging) > 20
    assert all(left == right and version == "v0.36.3" for left, _, right, version in staging)


def test_make_setup_builds_toxiproxy_then_the_control_plane_then_fetches_chaos_mesh() -> None:
    assert COMPONENTS == (TOXIPROXY, ETCD, KUBE_APISERVER, KUBE_CONTROLLER_MANAGER,
                          KUBE_SCHEDULER, KWOK, CHAOS_MESH_CRDS)


def test_chaos_mesh_crds_are_a_file_of_its_module_at_a_pinned_pseudo_version() -> None:
    path = binary_path(CHAOS_MESH_CRDS, {"XDG_CACHE_HOME": "/c"})
    assert path == Path("/c/gameday/go/github.com/chaos-mesh/chaos-mesh@"
                        "v0.9.1-0.20260902003049-47411975a8cb/crd.yaml")
    assert download_command("/go/bin/go", CHAOS_MESH_CRDS) == [
        "/go/bin/go", "mod", "download", "-json",
        "github.com/chaos-mesh/chaos-mesh@v0.9.1-0.20260902003049-47411975a8cb"]
    assert CHAOS_MESH_CRDS.module_file == "manifests/crd.yaml"
    assert re.fullmatch(r"[0-9a-f]{64}", CHAOS_MESH_CRDS.sha256)


def test_a_fetched_file_need_not_be_executable_a_program_must(tmp_path: Path) -> None:
    crd = tmp_path / "crd.yaml"
    assert not is_present(CHAOS_MESH_CRDS, crd)
    crd.write_text("kind: CustomResourceDefinition\n")
    assert is_present(CHAOS_MESH_CRDS, crd) and not is_present(TOXIPROXY, crd)
    crd.chmod(0o755)
    assert is_present(TOXIPROXY, crd)
