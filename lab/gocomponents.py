"""The Go programs the lab and the tests use, built once per machine from the Go module
proxy (``scripts/build-go-components``, run by ``make setup``).

Each component is a Go module at a pinned version; ``go install`` builds it into a cache
outside the repository, shared by every clone and CI run on the machine::

    ${XDG_CACHE_HOME:-$HOME/.cache}/gameday/go/
        <module>@<version>/bin/<binary>      the built program
        <module>@<version>/build-error.txt   why the last build failed (absent once built)
        mod/ build/ gopath/                  Go's module cache, build cache and GOPATH

A component that ``go install pkg@version`` cannot build (the Kubernetes control plane:
k8s.io/kubernetes replaces its staging modules with folders of its own repository) is
built with ``go build`` inside a build module of this repository (``lab/k8sbuild``: its
go.mod pins every module), one folder per program::

        <module>@<version>/<name>/bin/<binary>   and its build-error.txt

A component that is a file of a module rather than a program (Chaos Mesh's CRDs, which
the tests install into their control plane) is fetched with ``go mod download`` and
checked against its pinned SHA-256::

        <module>@<version>/<file name>          e.g. crd.yaml, and its build-error.txt

When a build fails (no Go, the module proxy unreachable), the reason is kept next to
where the binary would be: the tests that need the program are skipped with that
reason, unless ``GAMEDAY_REQUIRE_GO_COMPONENTS=1`` (``make test``), where they fail.

The functions here are pure (paths and commands from an environment mapping), except
:func:`build`, which runs ``go install``.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "CHAOS_MESH_CRDS",
    "COMPONENTS",
    "ETCD",
    "K8S_BUILD_DIR",
    "K8S_COMPONENTS",
    "KUBE_APISERVER",
    "KUBE_CONTROLLER_MANAGER",
    "KUBE_SCHEDULER",
    "KWOK",
    "TOXIPROXY",
    "VEGETA",
    "BuildResult",
    "GoComponent",
    "binary_path",
    "build",
    "build_command",
    "cache_root",
    "download_command",
    "go_environment",
    "install_command",
    "is_present",
    "missing_reason",
    "required",
]

BUILD_TIMEOUT_S = 900.0
ERROR_FILE = "build-error.txt"
REQUIRE_ENV = "GAMEDAY_REQUIRE_GO_COMPONENTS"
_ERROR_TAIL_CHARS = 600


@dataclass(frozen=True)
class GoComponent:
    """A Go program built from a module at a pinned version.

    Attributes:
        name: what the lab and the tests call it.
        module: the Go module path.
        version: the pinned module version.
        package: the package ``go install`` builds (a ``main`` package of the module).
        binary: the file ``go install`` writes (the package path's last element).
        ldflags: linker flags (e.g. the version the program reports).
        build_dir: a build module of this repository to ``go build`` the package in
            (its go.mod pins ``module`` at ``version``); None: ``go install pkg@version``.
        timeout_s: how long its cold build may take.
        module_file: a file of the module to fetch instead of building a program (its
            path in the module; ``binary`` is then the name it is cached under).
        sha256: the pinned SHA-256 of ``module_file``.
    """

    name: str
    module: str
    version: str
    package: str
    binary: str
    ldflags: str = ""
    build_dir: Path | None = None
    timeout_s: float = BUILD_TIMEOUT_S
    module_file: str = ""
    sha256: str = ""

    def describe(self) -> str:
        """``name (module@version)``, as the build script prints it."""
        return f"{self.name} ({self.module}@{self.version})"


TOXIPROXY = GoComponent(
    name="toxiproxy-server",
    module="github.com/Shopify/toxiproxy/v2",
    version="v2.5.0",
    package="github.com/Shopify/toxiproxy/v2/cmd/server",
    binary="server",
    # Built with plain `go install`, the server reports version "git"; say the real one.
    ldflags="-X github.com/Shopify/toxiproxy/v2.Version=2.5.0",
)
"""Toxiproxy's server: v2.5.0 is the newest v2 release the Go module proxy lists."""

VEGETA = GoComponent(
    name="vegeta",
    module="github.com/tsenart/vegeta/v12",
    version="v12.12.0",
    package="github.com/tsenart/vegeta/v12",
    binary="vegeta",
)
"""Vegeta, a constant-rate (open-model) HTTP load tool: the peer ``make bench`` measures
``gameday load`` against. Built by the bench only (not in :data:`COMPONENTS`); k6, the
peer first named for it, is AGPL-licensed and not used here."""

K8S_BUILD_DIR = Path(__file__).resolve().parent / "k8sbuild"
"""The build module of the Kubernetes control plane (its go.mod pins every version)."""

K8S_VERSION = "v1.36.3"
_K8S_BUILD_TIMEOUT_S = 2400.0  # kube-apiserver alone: 180 s cold on 2 cores
_K8S_LDFLAGS = " ".join(
    f"-X k8s.io/component-base/version.{name}={value}"
    for name, value in (("gitVersion", K8S_VERSION), ("gitMajor", "1"), ("gitMinor", "36"),
                        ("gitTreeState", "clean")))


def _k8s_program(name: str) -> GoComponent:
    return GoComponent(name=name, module="k8s.io/kubernetes", version=K8S_VERSION,
                       package=f"k8s.io/kubernetes/cmd/{name}", binary=name,
                       ldflags=_K8S_LDFLAGS, build_dir=K8S_BUILD_DIR,
                       timeout_s=_K8S_BUILD_TIMEOUT_S)


ETCD = GoComponent(
    name="etcd", module="go.etcd.io/etcd/server/v3", version="v3.6.16",
    package="go.etcd.io/etcd/server/v3", binary="etcd", build_dir=K8S_BUILD_DIR,
    timeout_s=_K8S_BUILD_TIMEOUT_S,
)
"""etcd 3.6 (Kubernetes 1.36 is tested with 3.6; a current 3.6 has RequestWatchProgress)."""

KUBE_APISERVER = _k8s_program("kube-apiserver")
KUBE_CONTROLLER_MANAGER = _k8s_program("kube-controller-manager")
KUBE_SCHEDULER = _k8s_program("kube-scheduler")

KWOK = GoComponent(
    name="kwok", module="sigs.k8s.io/kwok", version="v0.8.0",
    package="sigs.k8s.io/kwok/cmd/kwok", binary="kwok", build_dir=K8S_BUILD_DIR,
    timeout_s=_K8S_BUILD_TIMEOUT_S,
)
"""kwok (its controller, not kwokctl): fake nodes whose pods it runs in name only."""

K8S_COMPONENTS = (ETCD, KUBE_APISERVER, KUBE_CONTROLLER_MANAGER, KUBE_SCHEDULER, KWOK)
"""A Kubernetes control plane with fake nodes (tests/support/k8scluster.py)."""

CHAOS_MESH_CRDS = GoComponent(
    name="chaos-mesh-crds", module="github.com/chaos-mesh/chaos-mesh",
    version="v0.9.1-0.20260902003049-47411975a8cb", package="", binary="crd.yaml",
    module_file="manifests/crd.yaml",
    sha256="26a5b211c9e33380db651ca312b01321469b03d85ba7f3774e47501e32551a3a",
    timeout_s=300.0,
)
"""Chaos Mesh's CRDs (``manifests/crd.yaml``), byte for byte those of its release 2.8.3.
Its module path has no ``/v2``, so the module proxy serves no ``v2.x`` tag: the pin is
the pseudo-version of a later commit whose crd.yaml is 2.8.3's (the SHA-256 holds it)."""

COMPONENTS = (TOXIPROXY, *K8S_COMPONENTS, CHAOS_MESH_CRDS)


def cache_root(env: Mapping[str, str]) -> Path:
    """``$XDG_CACHE_HOME/gameday/go`` (``$HOME/.cache`` when XDG_CACHE_HOME is unset)."""
    base = env.get("XDG_CACHE_HOME") or str(Path(env.get("HOME") or "/root") / ".cache")
    return Path(base) / "gameday" / "go"


def component_dir(component: GoComponent, env: Mapping[str, str]) -> Path:
    """The component's own folder in the cache: ``<module>@<version>``, and under it
    ``<name>`` for a program of a build module (several share a module)."""
    folder = cache_root(env) / f"{component.module}@{component.version}"
    return folder if component.build_dir is None else folder / component.name


def binary_path(component: GoComponent, env: Mapping[str, str]) -> Path:
    """Where the built program (or the fetched file) is, whether or not it is there."""
    if component.module_file:
        return component_dir(component, env) / component.binary
    return component_dir(component, env) / "bin" / component.binary


def is_present(component: GoComponent, path: Path) -> bool:
    """Whether the component is at ``path``: a file there (executable, for a program)."""
    return path.is_file() and (bool(component.module_file) or os.access(path, os.X_OK))


def go_environment(env: Mapping[str, str], gobin: Path) -> dict[str, str]:
    """``env`` with Go's caches and GOPATH under the cache root, installing into ``gobin``,
    with the Go on the machine (no toolchain download) and a deletable module cache."""
    root = cache_root(env)
    return {
        **env,
        "GOPATH": str(root / "gopath"),
        "GOMODCACHE": str(root / "mod"),
        "GOCACHE": str(root / "build"),
        "GOBIN": str(gobin),
        "GOFLAGS": "-modcacherw -buildvcs=false",
        "GOTOOLCHAIN": "local",
        "CGO_ENABLED": "0",
    }


def install_command(go: str, component: GoComponent) -> list[str]:
    """The ``go install`` command line for the component at its pinned version."""
    ldflags = [f"-ldflags={component.ldflags}"] if component.ldflags else []
    return [go, "install", "-trimpath", *ldflags, f"{component.package}@{component.version}"]


def build_command(go: str, component: GoComponent, output: Path) -> list[str]:
    """The ``go build`` command line for a component of a build module (run in its
    ``build_dir``), writing the program to ``output``."""
    ldflags = [f"-ldflags={component.ldflags}"] if component.ldflags else []
    return [go, "build", "-trimpath", *ldflags, "-o", str(output), component.package]


def download_command(go: str, component: GoComponent) -> list[str]:
    """The ``go mod download`` command line fetching the component's module."""
    return [go, "mod", "download", "-json", f"{component.module}@{component.version}"]


def required(env: Mapping[str, str]) -> bool:
    """True when a missing component must fail the tests (``GAMEDAY_REQUIRE_GO_COMPONENTS=1``)."""
    return env.get(REQUIRE_ENV, "") == "1"


def missing_reason(component: GoComponent, env: Mapping[str, str],
                   recorded_error: str | None) -> str:
    """Why the component's program is not there, and how to build it (pure)."""
    where = binary_path(component, env)
    why = f"its last build failed: {recorded_error}" if recorded_error else "it was never built"
    return (f"{component.describe()} is not built ({where}): {why}; "
            f"`make setup` (scripts/build-go-components) builds it with Go from the "
            f"Go module proxy")


def recorded_error(component: GoComponent, env: Mapping[str, str]) -> str | None:
    """The reason the last build failed, if one was recorded."""
    path = component_dir(component, env) / ERROR_FILE
    try:
        return path.read_text(encoding="utf-8").strip() or None
    except FileNotFoundError:
        return None


@dataclass(frozen=True)
class BuildResult:
    """What :func:`build` did: ``built``, ``cached`` or ``failed`` (with the reason)."""

    component: GoComponent
    outcome: str
    path: Path
    duration_s: float
    error: str = ""


def build(component: GoComponent, env: Mapping[str, str]) -> BuildResult:
    """Build the component unless its program is already in the cache (I/O).

    One build at a time per component (a lock file); the program appears only when
    complete. A failure is recorded for :func:`missing_reason` and returned, not raised.
    """
    started = time.monotonic()
    folder = component_dir(component, env)
    folder.mkdir(parents=True, exist_ok=True)
    target = binary_path(component, env)
    with (folder / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if is_present(component, target):
            return BuildResult(component, "cached", target, time.monotonic() - started)
        error = _go_install(component, env, target)
        if error:
            (folder / ERROR_FILE).write_text(error + "\n", encoding="utf-8")
            return BuildResult(component, "failed", target, time.monotonic() - started, error)
        (folder / ERROR_FILE).unlink(missing_ok=True)
        return BuildResult(component, "built", target, time.monotonic() - started)


def _go_install(component: GoComponent, env: Mapping[str, str], target: Path) -> str:
    """Run ``go install`` (``go build`` in a build module) into a scratch folder and move
    the program into place; the error in one line ('' on success)."""
    go = shutil.which("go", path=env.get("PATH")) or shutil.which("go", path="/usr/local/go/bin")
    if go is None:
        return "no `go` on PATH (Go 1.26 is needed: https://go.dev/dl/)"
    target.parent.mkdir(parents=True, exist_ok=True)
    if component.module_file:
        return _fetch_file(go, component, env, target)
    with tempfile.TemporaryDirectory(dir=target.parent.parent, prefix=".gobin-") as scratch:
        output = Path(scratch) / component.binary
        if component.build_dir is None:
            command, cwd = install_command(go, component), Path(scratch)
            what = f"go install {component.package}@{component.version}"
        else:
            command, cwd = build_command(go, component, output), component.build_dir
            what = f"go build {component.package} (in {component.build_dir})"
        try:
            result = subprocess.run(
                command, env=go_environment(env, Path(scratch)), cwd=cwd,
                capture_output=True, text=True, timeout=component.timeout_s, check=False,
            )
        except subprocess.TimeoutExpired:
            return f"`{what}` did not finish within {component.timeout_s:.0f} s"
        if result.returncode != 0:
            tail = " ".join((result.stderr or result.stdout).split())[-_ERROR_TAIL_CHARS:]
            return f"`{what}` failed: {tail}"
        os.replace(output, target)
    return ""


def _fetch_file(go: str, component: GoComponent, env: Mapping[str, str], target: Path) -> str:
    """Download the component's module into Go's module cache and copy its file to
    ``target`` when its SHA-256 is the pinned one; the error in one line ('' on success)."""
    what = " ".join(download_command("go", component)[1:])
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".gofile-") as scratch:
        try:
            result = subprocess.run(
                download_command(go, component), env=go_environment(env, Path(scratch)),
                cwd=scratch, capture_output=True, text=True, timeout=component.timeout_s,
                check=False)
        except subprocess.TimeoutExpired:
            return f"`go {what}` did not finish within {component.timeout_s:.0f} s"
        answer = json.loads(result.stdout or "{}") if result.stdout.startswith("{") else {}
        if result.returncode != 0 or not answer.get("Dir"):
            why = answer.get("Error") or result.stderr or result.stdout
            return f"`go {what}` failed: {' '.join(str(why).split())[-_ERROR_TAIL_CHARS:]}"
        data = (Path(answer["Dir"]) / component.module_file).read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        if digest != component.sha256:
            return (f"{component.module_file} of {component.module}@{component.version} has "
                    f"SHA-256 {digest}, not the pinned {component.sha256}")
        (Path(scratch) / component.binary).write_bytes(data)
        os.replace(Path(scratch) / component.binary, target)
    return ""
