"""Gray faults on real replicas: each replica in cgroups of its own, frozen, throttled or
run out of memory through the same API as every fault, recorded first, undone by cleanup,
listed by the leftovers check, and the cgroups gone after ``lab down``.

Needs root and the cgroup v1 controllers ``freezer``, ``cpu`` and ``memory``; elsewhere the tests
check that the lab says what is missing and the faults refuse to run.
"""

from __future__ import annotations

import json
import os
import signal
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.labs import PortBases, RunningLab, lab_env, running_lab

from gameday.clients.toxiproxy import Toxiproxy
from gameday.contract import InjectionError
from gameday.faults import inject
from gameday.faults.record import InjectionLog
from gameday.settings import resolve
from gameday.targets.lab import LabTarget
from lab import cgroups, stack
from probes.cgroups import oom_killed

UNAVAILABLE = cgroups.unavailable()
needs_cgroups = pytest.mark.skipif(bool(UNAVAILABLE), reason=f"no replica cgroups here: "
                                                             f"{UNAVAILABLE}")
RESTART_WAIT_S = 20.0


@pytest.fixture(scope="module")
def gray_lab(tmp_path_factory: pytest.TempPathFactory,
             port_bases: PortBases) -> Iterator[RunningLab]:
    """A lab of its own: its replicas get frozen and killed."""
    with running_lab(tmp_path_factory.mktemp("gray-lab"), port_bases.take()) as running:
        yield running


def _target(lab: RunningLab, monkeypatch: pytest.MonkeyPatch) -> LabTarget:
    for key in ("GAMEDAY_LAB_DIR", "GAMEDAY_LAB_PORT_BASE", "GAMEDAY_TARGET"):
        monkeypatch.setenv(key, lab.env[key])
    return LabTarget.from_settings(resolve())


def _health(url: str, timeout_s: float = 1.0) -> bool:
    try:
        with urllib.request.urlopen(url + "/health", timeout=timeout_s) as response:
            return int(response.status) == 200
    except (urllib.error.URLError, OSError):
        return False


@needs_cgroups
def test_a_frozen_replica_accepts_connections_and_answers_nothing(
        gray_lab: RunningLab, monkeypatch: pytest.MonkeyPatch) -> None:
    target = _target(gray_lab, monkeypatch)
    url = target.layout.replica_url("replica-2")
    assert inject.freeze(target, "name=replica-2") == {"frozen": ["replica-2"]}
    try:
        assert [i.kind for i in InjectionLog(target.state_dir()).pending()] == ["freeze"]
        assert target.cgroup_figures("name=replica-2")["replica-2"]["freezer_state"] == "FROZEN"
        assert not _health(url), "a frozen replica answered"
        assert any("replica-2 is FROZEN" in p for p in target.leftovers())
    finally:
        assert inject.cleanup(target) == ["freeze {'selector': 'name=replica-2'}"]
    assert _health(url, timeout_s=5.0)
    assert target.leftovers() == []


@needs_cgroups
def test_a_throttled_replica_is_throttled_by_the_kernel(
        gray_lab: RunningLab, monkeypatch: pytest.MonkeyPatch) -> None:
    target = _target(gray_lab, monkeypatch)
    inject.throttle(target, "name=replica-1", 0.1)
    try:
        before = target.cgroup_figures("name=replica-1")["replica-1"]
        assert before["quota_cores"] == pytest.approx(0.1)
        assert any("replica-1 is CPU-throttled to 0.1 core" in p for p in target.leftovers())
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline:  # busy: a burst of health checks
            _health(target.layout.replica_url("replica-1"))
        after = target.cgroup_figures("name=replica-1")["replica-1"]
        assert after["nr_throttled"] > before["nr_throttled"]
    finally:
        inject.unthrottle(target, "name=replica-1")
    assert target.cgroup_figures("name=replica-1")["replica-1"]["quota_cores"] == -1.0
    assert InjectionLog(target.state_dir()).pending() == []
    assert target.leftovers() == []


@needs_cgroups
def test_a_replica_over_its_memory_limit_is_oom_killed_and_restarted(
        gray_lab: RunningLab, monkeypatch: pytest.MonkeyPatch) -> None:
    target = _target(gray_lab, monkeypatch)
    plan, old = _plan_and_pid(target, "replica-1")
    inject.limit_memory(target, "name=replica-1", 48, 32)
    try:
        figures = target.cgroup_figures("name=replica-1")["replica-1"]
        assert figures["memory_limit_bytes"] > figures["memory_usage_bytes"] - 64 * cgroups.MIB
        assert any("replica-1 is memory-limited to" in p for p in target.leftovers())
        assert oom_killed("name=replica-1", within_s=20) == 1
        # the kernel took the replica's process (the leak holds about a MiB), and the
        # leak ended with it: its file is gone
        assert not _running(old)
        deadline = time.monotonic() + 5.0
        while cgroups.leak_file(plan, "replica-1").exists():
            assert time.monotonic() < deadline, "the leak outlived the OOM kill"
            time.sleep(0.1)
    finally:
        undone = inject.cleanup(target)
        assert len(undone) == 1 and undone[0].startswith("memory-limit {"), undone
        assert "'selector': 'name=replica-1'" in undone[0]
    figures = target.cgroup_figures("name=replica-1")["replica-1"]
    assert figures["memory_limit_bytes"] == -1.0
    assert _back(target, "replica-1", old) in cgroups.members(plan, "replica-1", "memory")
    assert target.leftovers() == []


def _plan_and_pid(target: LabTarget, name: str) -> tuple[cgroups.CgroupPlan, int]:
    """The lab's cgroup plan and the replica's PID now."""
    plan = cgroups.recorded(target.state_dir())
    assert plan is not None
    return plan, {r.name: r.pid for r in target.status().replicas}[name]


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _back(target: LabTarget, name: str, old: int) -> int:
    """The replica's new PID once it runs again and answers its health check."""
    deadline = time.monotonic() + RESTART_WAIT_S
    while True:
        new = {r.name: r.pid for r in target.status().replicas}[name]
        if new not in (0, old) and _health(target.layout.replica_url(name)):
            return new
        assert time.monotonic() < deadline, f"{name} did not come back"
        time.sleep(0.2)


@needs_cgroups
def test_cleanup_all_undoes_faults_gameday_has_no_record_of(
        gray_lab: RunningLab, monkeypatch: pytest.MonkeyPatch) -> None:
    """A runner that lost its state directory: the faults are in place, the log is
    silent. `gameday cleanup` says they remain; `cleanup --all` undoes them."""
    target = _target(gray_lab, monkeypatch)
    target.freeze("name=replica-2")  # the target directly: nothing recorded
    target.throttle_cpu("name=replica-3", 0.1)
    Toxiproxy(target.fault_proxy_url()).add_toxic("service-broker", inject.toxic_body(
        "latency", "downstream", 1.0, {"latency": 300}))
    target.partition("lb-replica-1")
    assert InjectionLog(target.state_dir()).pending() == []
    plain = gray_lab.gameday("cleanup")
    assert plain.returncode != 0 and "faults remain" in plain.stdout, plain.stdout
    assert "replica-2 is FROZEN" in plain.stdout
    swept = gray_lab.gameday("cleanup", "--all")
    assert swept.returncode == 0, swept.stdout + swept.stderr
    for found in ("replica-2 is FROZEN", "replica-3 is CPU-throttled to 0.1 core",
                  "toxic gameday-latency-downstream on link service-broker",
                  "link lb-replica-1 is down"):
        assert f"undone (found, not recorded): {found}" in swept.stdout, swept.stdout
    assert swept.stdout.rstrip().endswith("nothing left injected")
    assert target.leftovers() == []
    assert _health(target.layout.replica_url("replica-2"), timeout_s=5.0)


@needs_cgroups
def test_a_restarted_replica_lands_in_its_cgroup_again(
        gray_lab: RunningLab, monkeypatch: pytest.MonkeyPatch) -> None:
    target = _target(gray_lab, monkeypatch)
    plan, old = _plan_and_pid(target, "replica-3")
    assert old in cgroups.members(plan, "replica-3")
    # the replicas weigh as three tasks of the host, not as one cgroup
    assert (plan.parent_dir("cpu") / "cpu.shares").read_text().strip() == "3072"
    os.kill(old, signal.SIGKILL)
    new = _back(target, "replica-3", old)
    assert new in cgroups.members(plan, "replica-3")
    assert new in cgroups.members(plan, "replica-3", "cpu")
    assert target.leftovers() == []


@needs_cgroups
def test_lab_down_removes_the_cgroups_even_of_a_frozen_replica(
        tmp_path: Path, port_bases: PortBases, monkeypatch: pytest.MonkeyPatch) -> None:
    with running_lab(tmp_path, port_bases.take()) as lab:
        target = _target(lab, monkeypatch)
        plan = cgroups.recorded(target.state_dir())
        assert plan is not None
        target.freeze("name=replica-1")  # not recorded: down must still thaw it
    for controller in cgroups.CONTROLLERS:
        assert not plan.parent_dir(controller).exists()
    assert not (target.state_dir() / cgroups.RECORD_FILE).exists()


def test_without_cgroups_the_lab_says_why_and_the_faults_refuse(
        tmp_path: Path, port_bases: PortBases, monkeypatch: pytest.MonkeyPatch) -> None:
    env = {**lab_env(tmp_path / "state", port_bases.take(), tmp_path / "reports"),
           "GAMEDAY_LAB_CGROUPS": "0"}
    lab = RunningLab(env, tmp_path / "state")
    up = lab.gameday("lab", "up", timeout_s=120)
    assert up.returncode == 0, up.stdout + up.stderr
    try:
        target = _target(lab, monkeypatch)
        record = json.loads((target.state_dir() / "lab.json").read_text())
        assert record["no_cgroups"] == "turned off by GAMEDAY_LAB_CGROUPS=0"
        assert target.unsupported_faults()["freeze"].endswith(
            "turned off by GAMEDAY_LAB_CGROUPS=0")
        with pytest.raises(InjectionError, match="not runnable here: replica cgroups are "
                                                 "not available in this lab"):
            inject.freeze(target, "name=replica-2")
        assert InjectionLog(target.state_dir()).pending() == []
        assert stack.no_cgroups_reason(target.layout) == "turned off by GAMEDAY_LAB_CGROUPS=0"
        plan = lab.gameday("plan", "experiments/replica-freeze.yaml")
        assert "NOT RUNNABLE on this target (freeze-replica-2 needs the freeze fault" in plan.stdout
        run = lab.gameday("run", "experiments/replica-freeze.yaml", "--reports",
                          str(tmp_path / "reports"), timeout_s=120)
        assert run.returncode == 4, run.stdout + run.stderr  # INCONCLUSIVE, never PASS
        assert "\nINCONCLUSIVE  experiments/replica-freeze.yaml" in run.stdout
        assert "not runnable here: freeze-replica-2 needs the freeze fault: replica cgroups " \
               "are not available in this lab: turned off by GAMEDAY_LAB_CGROUPS=0" in run.stdout
        # packet loss needs the replicas in network namespaces, which this lab has not
        with pytest.raises(InjectionError, match="not runnable here: packet loss is made of "
                                                 "iptables rules"):
            inject.drop_packets(target, "service-broker", 2)
        assert InjectionLog(target.state_dir()).pending() == []
        lossy = lab.gameday("run", "experiments/broker-packet-loss.yaml", "--reports",
                            str(tmp_path / "reports"), timeout_s=120)
        assert lossy.returncode == 4, lossy.stdout + lossy.stderr
        assert "\nINCONCLUSIVE  experiments/broker-packet-loss.yaml" in lossy.stdout
        assert ("not runnable here: drop-packets-on-the-broker-link needs the packet-loss "
                "fault: packet loss is made of iptables rules") in " ".join(lossy.stdout.split())
    finally:
        lab.gameday("lab", "down", timeout_s=60)
