"""The lab with Toxiproxy's own server as its fault proxy (GAMEDAY_LAB_FAULT_PROXY=toxiproxy):
a replica partition passes through it, and so does a broker link fault, whose evidence
(bytes on the service-broker link) Toxiproxy counts only when a connection ends. (What
refuses it: test_lab_fault_proxy_choice.)"""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

from support.gocomponents import go_program
from support.labs import PortBases, RunningLab, lab_env

from lab.gocomponents import TOXIPROXY


def _toxiproxy_env(base: Path, port_base: int) -> dict[str, str]:
    env = lab_env(base / "state", port_base, base / "reports")
    env = {key: value for key, value in env.items() if key != "GAMEDAY_ADMIN_TOKEN"}
    return {**env, "GAMEDAY_LAB_FAULT_PROXY": "toxiproxy"}


def test_link_faults_pass_with_toxiproxy_and_their_evidence_counts(tmp_path: Path,
                                                   port_bases: PortBases) -> None:
    go_program(TOXIPROXY)
    lab = RunningLab(_toxiproxy_env(tmp_path, port_bases.take()), tmp_path / "state")
    up = lab.gameday("lab", "up", timeout_s=120)
    assert up.returncode == 0, up.stdout + up.stderr
    try:
        url = f"http://127.0.0.1:{lab.port_base + 3}/version"
        with urllib.request.urlopen(url, timeout=5) as response:
            assert response.read().decode().strip() == "2.5.0"  # Toxiproxy's own answer
        record = json.loads((lab.state_dir / "lab.json").read_text())
        assert record["fault_proxy"] == "toxiproxy"
        assert "proxy program Toxiproxy's server" in lab.gameday("lab", "status").stdout
        run = lab.gameday("run", "experiments/replica-partition.yaml",
                          "experiments/broker-blip.yaml", timeout_s=600)
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
        assert "PASS  experiments/replica-partition.yaml" in run.stdout
        assert "PASS  experiments/broker-blip.yaml" in run.stdout
        journal = json.loads(next((tmp_path / "reports").glob("broker-blip-*.journal.json"))
                             .read_text())
        evidence = [r["output"] for r in journal["run"]
                    if r["activity"]["name"] == "broker-link-carries-the-service-traffic"]
        assert len(evidence) == 1 and evidence[0] > 10_000, evidence
    finally:
        down = lab.gameday("lab", "down", timeout_s=60)
        assert down.returncode == 0, down.stdout + down.stderr
