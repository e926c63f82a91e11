"""scripts/build-go-components as `make setup` runs it: the Go module proxy out of
reach (GOPROXY=off, an empty cache) is reported and recorded, not fatal, for the programs
and for the file fetched from a module (Chaos Mesh's CRDs)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import zipfile
from dataclasses import replace
from pathlib import Path

from support.faultproxy import ROOT
from support.gocomponents import absent_outcome

from lab.gocomponents import CHAOS_MESH_CRDS, TOXIPROXY, binary_path, build


def test_an_unreachable_module_proxy_is_recorded_and_does_not_stop_make(tmp_path: Path) -> None:
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path), "GOPROXY": "off"}
    result = subprocess.run(
        [sys.executable, "scripts/build-go-components"], cwd=ROOT, env=env,
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "toxiproxy-server NOT BUILT" in result.stderr and "GOPROXY=off" in result.stderr
    assert "done in" in result.stdout
    assert not binary_path(TOXIPROXY, env).exists()
    fail, reason = absent_outcome(TOXIPROXY, {**env, "GAMEDAY_REQUIRE_GO_COMPONENTS": "1"})
    assert fail and "GOPROXY=off" in reason
    # Chaos Mesh's CRDs, a file of a module rather than a program, the same way
    assert "chaos-mesh-crds NOT BUILT" in result.stderr
    assert not binary_path(CHAOS_MESH_CRDS, env).exists()
    fail, reason = absent_outcome(CHAOS_MESH_CRDS, {**env, "GAMEDAY_REQUIRE_GO_COMPONENTS": "1"})
    assert fail and "`go mod download -json github.com/chaos-mesh/chaos-mesh@" in reason
    assert "GOPROXY=off" in reason


def _module_proxy(root: Path, crd: bytes) -> str:
    """A Go module proxy in a folder serving Chaos Mesh's pinned module with ``crd`` as
    its manifests/crd.yaml; its GOPROXY URL."""
    module, version = CHAOS_MESH_CRDS.module, CHAOS_MESH_CRDS.version
    folder = root / module / "@v"
    folder.mkdir(parents=True)
    (folder / "list").write_text("")
    (folder / f"{version}.info").write_text(json.dumps({"Version": version}))
    (folder / f"{version}.mod").write_text(f"module {module}\n")
    with zipfile.ZipFile(folder / f"{version}.zip", "w") as archive:
        archive.writestr(f"{module}@{version}/go.mod", f"module {module}\n")
        archive.writestr(f"{module}@{version}/manifests/crd.yaml", crd)
    return f"file://{root}"


def test_the_crds_are_taken_only_with_their_pinned_sha256(tmp_path: Path) -> None:
    crd = b"kind: CustomResourceDefinition\n"
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache"), "GOSUMDB": "off",
           "GOPROXY": _module_proxy(tmp_path / "proxy", crd)}

    refused = build(CHAOS_MESH_CRDS, env)
    assert refused.outcome == "failed" and not refused.path.exists()
    assert f"has SHA-256 {hashlib.sha256(crd).hexdigest()}, not the pinned" in refused.error
    pinned = replace(CHAOS_MESH_CRDS, sha256=hashlib.sha256(crd).hexdigest())
    fetched = build(pinned, env)
    assert fetched.outcome == "built" and fetched.path.read_bytes() == crd
    assert not (fetched.path.parent / "build-error.txt").exists()
    assert build(pinned, env).outcome == "cached"
