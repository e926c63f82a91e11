"""A pod kill must land on the process that serves, or the run proves nothing.

The service here is the reference service started the way some real ones are: a start
script forks the server into a session of its own and stays behind (``setsid … &``).
Killing the start script's process group leaves the server answering on the replica's
port; the replica "comes back" at once and pod-kill would pass without any replica ever
going down. The evidence probe (``probes.replicas.replaced``) sees the server survive and
the verdict is INCONCLUSIVE. With replica cgroups, a kill ends every process in the
replica's cgroup, as a container runtime does, and the same service passes.
"""

from __future__ import annotations

import json
import os
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml
from support.labs import ROOT, PortBases, RunningLab, lab_env

from lab import cgroups, procs

LAB_PER_TEST = True  # tests/conftest.py: a pytest-xdist group per test, not per module
REFERENCE = ROOT / "lab" / "service" / "service.yaml"
START_SCRIPT = ("setsid {python} -m lab.service --host {host} --port {port} "
                "--broker-url {broker_url} --name {name} --log-file {log_dir}/{name}.log "
                "& exec sleep 3600")


def _escaping_spec(path: Path) -> Path:
    spec = yaml.safe_load(REFERENCE.read_text(encoding="utf-8"))
    spec.update(name="escapes-its-group", workdir=str(ROOT),
                command=["sh", "-c", START_SCRIPT])
    path.write_text(yaml.safe_dump(spec), encoding="utf-8")
    return path


def _servers(lab: RunningLab) -> list[int]:
    """The PIDs serving the lab's replica ports that this lab started (their log file is
    in its state directory)."""
    status = lab.gameday("lab", "status", "--json", timeout_s=60)
    ports = [urllib.parse.urlsplit(r["url"]).port or 0
             for r in json.loads(status.stdout)["replicas"]]
    return [pid for port in ports for pid in procs.listeners(port, os.getpid())
            if str(lab.state_dir) in Path(f"/proc/{pid}/cmdline").read_text(errors="replace")]


@contextmanager
def escaping_lab(base: Path, port_base: int, with_cgroups: bool) -> Iterator[RunningLab]:
    env = lab_env(base / "state", port_base, base / "reports")
    env.update(GAMEDAY_LAB_CGROUPS="1" if with_cgroups else "0", GAMEDAY_LIVE="0")
    running = RunningLab(env, base / "state")
    spec = _escaping_spec(base / "service.yaml")
    up = running.gameday("lab", "up", "--service", str(spec), timeout_s=300)
    assert up.returncode == 0, up.stdout + up.stderr
    try:
        yield running
    finally:
        escaped = _servers(running)
        down = running.gameday("lab", "down", timeout_s=120)
        procs.kill_all(escaped)  # servers that left their group outlive supervisord
        assert down.returncode == 0, down.stdout + down.stderr


def test_a_kill_that_misses_the_serving_process_is_inconclusive(
        tmp_path: Path, port_bases: PortBases) -> None:
    with escaping_lab(tmp_path, port_bases.take(), with_cgroups=False) as lab:
        run = lab.gameday("run", "experiments/pod-kill.yaml", timeout_s=300)

    assert run.returncode == 4, run.stdout + run.stderr
    assert "INCONCLUSIVE  experiments/pod-kill.yaml" in run.stdout
    assert ("the fault left no evidence that it took effect: the-kills-landed returned 0, "
            "tolerance") in run.stdout


@pytest.mark.skipif(bool(cgroups.unavailable()),
                    reason=f"no replica cgroups here: {cgroups.unavailable()}")
def test_with_replica_cgroups_the_kill_ends_the_whole_replica(
        tmp_path: Path, port_bases: PortBases) -> None:
    with escaping_lab(tmp_path, port_bases.take(), with_cgroups=True) as lab:
        run = lab.gameday("run", "experiments/pod-kill.yaml", timeout_s=300)
        journal = next((tmp_path / "reports").glob("pod-kill-*.journal.json"))

    assert run.returncode == 0, run.stdout + run.stderr
    landed = [r for r in json.loads(journal.read_text())["run"]
              if r["activity"]["name"] == "the-kills-landed"]
    assert [r["output"] for r in landed] == [3]
