"""`chaos discover` metadata: every exported probe and action is documented and typed."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

from gameday.engine.activity import ACTIVITY_MODULES as MODULES


def test_chaos_discover_lists_every_probe_and_action(tmp_path: Path) -> None:
    out = tmp_path / "discovery.json"
    chaos = Path(sys.executable).with_name("chaos")
    done = subprocess.run([str(chaos), "--log-file", str(tmp_path / "chaos.log"), "discover",
                           "--no-install", "--discovery-path", str(out), "gameday"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    found = {(a["mod"], a["name"], a["type"]) for a in json.loads(out.read_text())["activities"]}
    expected = {(module, name, kind) for module, kind in MODULES.items()
                for name in importlib.import_module(module).__all__}
    assert found == expected


