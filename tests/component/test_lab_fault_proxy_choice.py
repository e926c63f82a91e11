"""GAMEDAY_LAB_FAULT_PROXY as `gameday lab up` reads it: what it refuses, with exit 2,
one line and nothing started (the lab with Toxiproxy itself: tests/lab/test_toxiproxy.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.labs import PortBases, RunningLab, lab_env

CASES = {
    "token": ({"GAMEDAY_LAB_FAULT_PROXY": "toxiproxy", "GAMEDAY_ADMIN_TOKEN": "t0ken-x"},
              "cannot be combined with GAMEDAY_ADMIN_TOKEN"),
    "not built": ({"GAMEDAY_LAB_FAULT_PROXY": "toxiproxy", "XDG_CACHE_HOME": "{tmp}/cache"},
                  "is not built ({tmp}/cache/gameday/go/github.com/Shopify/toxiproxy/v2@v2.5.0"
                  "/bin/server): it was never built; `make setup`"),
    "unknown": ({"GAMEDAY_LAB_FAULT_PROXY": "envoy"}, "valid are faultproxy, toxiproxy"),
}


@pytest.mark.parametrize("case", CASES)
def test_a_fault_proxy_the_lab_cannot_run_is_refused(tmp_path: Path, port_bases: PortBases,
                                                     case: str) -> None:
    extra, message = CASES[case]
    env = {key: value for key, value in lab_env(tmp_path / "state", port_bases.take(),
                                                 tmp_path / "reports").items()
           if key != "GAMEDAY_ADMIN_TOKEN"}
    env.update({key: value.format(tmp=tmp_path) for key, value in extra.items()})
    up = RunningLab(env, tmp_path / "state").gameday("lab", "up", timeout_s=60)
    assert up.returncode == 2, up.stdout + up.stderr
    assert message.format(tmp=tmp_path) in up.stderr and "Traceback" not in up.stderr
    assert len(up.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "state" / "lab.json").exists()
