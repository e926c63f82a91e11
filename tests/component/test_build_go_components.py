"""scripts/build-go-components as `make setup` runs it: the Go module proxy out of
reach (GOPROXY=off, an empty cache) is reported and recorded, not fatal, for the programs
and for the file fetched from a module (Chaos Mesh's CRDs)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from support.faultproxy import ROOT
from support.gocomponents import absent_outcome

from lab.gocomponents import CHAOS_MESH_CRDS, TOXIPROXY, binary_path


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
