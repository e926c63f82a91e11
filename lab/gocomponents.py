"""The Go programs the lab and the tests use, built once per machine from the Go module
proxy (``scripts/build-go-components``, run by ``make setup``).

Each component is a Go module at a pinned version; ``go install`` builds it into a cache
outside the repository, shared by every clone and CI run on the machine::

    ${XDG_CACHE_HOME:-$HOME/.cache}/gameday/go/
        <module>@<version>/bin/<binary>      the built program
        <module>@<version>/build-error.txt   why the last build failed (absent once built)
        mod/ build/ gopath/                  Go's module cache, build cache and GOPATH

When a build fails (no Go, the module proxy unreachable), the reason is kept next to
where the binary would be: the tests that need the program are skipped with that
reason, unless ``GAMEDAY_REQUIRE_GO_COMPONENTS=1`` (``make test``), where they fail.

The functions here are pure (paths and commands from an environment mapping), except
:func:`build`, which runs ``go install``.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "COMPONENTS",
    "TOXIPROXY",
    "BuildResult",
    "GoComponent",
    "binary_path",
    "build",
    "cache_root",
    "go_environment",
    "install_command",
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
    """

    name: str
    module: str
    version: str
    package: str
    binary: str
    ldflags: str = ""

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

COMPONENTS = (TOXIPROXY,)


def cache_root(env: Mapping[str, str]) -> Path:
    """``$XDG_CACHE_HOME/gameday/go`` (``$HOME/.cache`` when XDG_CACHE_HOME is unset)."""
    base = env.get("XDG_CACHE_HOME") or str(Path(env.get("HOME") or "/root") / ".cache")
    return Path(base) / "gameday" / "go"


def component_dir(component: GoComponent, env: Mapping[str, str]) -> Path:
    """The component's own folder in the cache: ``<module>@<version>``."""
    return cache_root(env) / f"{component.module}@{component.version}"


def binary_path(component: GoComponent, env: Mapping[str, str]) -> Path:
    """Where the built program is (whether or not it has been built)."""
    return component_dir(component, env) / "bin" / component.binary


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
        if target.is_file() and os.access(target, os.X_OK):
            return BuildResult(component, "cached", target, time.monotonic() - started)
        error = _go_install(component, env, target)
        if error:
            (folder / ERROR_FILE).write_text(error + "\n", encoding="utf-8")
            return BuildResult(component, "failed", target, time.monotonic() - started, error)
        (folder / ERROR_FILE).unlink(missing_ok=True)
        return BuildResult(component, "built", target, time.monotonic() - started)


def _go_install(component: GoComponent, env: Mapping[str, str], target: Path) -> str:
    """Run ``go install`` into a scratch folder and move the program into place; the
    error in one line ('' on success)."""
    go = shutil.which("go", path=env.get("PATH")) or shutil.which("go", path="/usr/local/go/bin")
    if go is None:
        return "no `go` on PATH (Go 1.26 is needed: https://go.dev/dl/)"
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent.parent, prefix=".gobin-") as scratch:
        try:
            result = subprocess.run(
                install_command(go, component), env=go_environment(env, Path(scratch)),
                cwd=scratch, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return f"`go install` did not finish within {BUILD_TIMEOUT_S:.0f} s"
        if result.returncode != 0:
            tail = " ".join((result.stderr or result.stdout).split())[-_ERROR_TAIL_CHARS:]
            return f"`go install {component.package}@{component.version}` failed: {tail}"
        os.replace(Path(scratch) / component.binary, target)
    return ""
