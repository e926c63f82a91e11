"""Replica cgroups: the pure parts (mounts, requirements, names, quotas, the launcher's
arguments, rendering, which experiments a target cannot run). The lab tests freeze and
throttle real replicas (``tests/lab/test_gray_faults.py``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gameday.contract import (
    CGROUP_FAULTS,
    REPLICA_LINK_DEGRADE_FAULT,
    ConfigError,
)
from gameday.engine.runner import load_experiment, not_runnable
from gameday.faults.inject import check_cores
from gameday.targets.kubernetes import chaosmesh
from gameday.targets.lab import LabTarget
from lab import cgexec, cgroups
from lab.layout import LabLayout
from lab.render import Executables, all_files
from lab.stack import cgroup_plan

EXE = Executables("/venv/bin/python", "/usr/sbin/haproxy", "/usr/bin/prometheus")
MOUNTS = """\
tmpfs /sys/fs/cgroup tmpfs rw,relatime,mode=755 0 0
cgroup /sys/fs/cgroup/cpu,cpuacct cgroup rw,relatime,cpu,cpuacct 0 0
cgroup /sys/fs/cgroup/freezer cgroup rw,relatime,freezer 0 0
cgroup /sys/fs/cgroup/cpuset cgroup rw,relatime,cpuset 0 0
cgroup2 /sys/fs/cgroup/unified cgroup2 rw,relatime 0 0
"""


def test_mounts_find_each_v1_controller_even_co_mounted() -> None:
    assert cgroups.mounts(MOUNTS) == {"cpu": Path("/sys/fs/cgroup/cpu,cpuacct"),
                                      "freezer": Path("/sys/fs/cgroup/freezer")}
    assert cgroups.mounts("cgroup2 /sys/fs/cgroup cgroup2 rw 0 0\n") == {}


def test_missing_requirements_name_each_lack() -> None:
    roots = cgroups.mounts(MOUNTS)
    assert cgroups.missing_requirements(0, roots, lambda p: True) == []
    missing = cgroups.missing_requirements(1000, {"cpu": roots["cpu"]},
                                           lambda p: False)
    assert missing[0] == "root (running as user id 1000)"
    assert "controller 'freezer' mounted" in missing[1] and "cgroup2-only" in missing[1]
    assert missing[2] == ("the cgroup v1 controller 'cpu' writable "
                          "(/sys/fs/cgroup/cpu,cpuacct is not)")


def test_each_lab_gets_a_parent_of_its_own(tmp_path: Path) -> None:
    one = cgroups.lab_group_name(tmp_path / "a", 18000)
    assert one.startswith("gameday-lab-18000-")
    assert one != cgroups.lab_group_name(tmp_path / "b", 18000)
    assert one != cgroups.lab_group_name(tmp_path / "a", 18050)
    assert one == cgroups.lab_group_name(tmp_path / "a", 18000)


def test_quota_is_a_share_of_the_period() -> None:
    assert cgroups.quota_us(0.1) == 10_000
    assert cgroups.quota_us(0.5) == 50_000
    assert cgroups.quota_us(0.001) == cgroups.MIN_QUOTA_US
    with pytest.raises(ValueError, match="valid is 0 < cores <= 64"):
        cgroups.quota_us(0)
    assert check_cores(0.1) == 0.1
    with pytest.raises(ConfigError, match=r"valid is 0.01..64"):
        check_cores(0)


def test_the_launcher_needs_dirs_and_a_command() -> None:
    assert cgexec.split_argv(["/cg/a", "/cg/b", "--", "python", "-m", "x"]) == (
        ["/cg/a", "/cg/b"], ["python", "-m", "x"])
    for bad in (["/cg/a", "python"], ["--", "python"], ["/cg/a", "--"]):
        with pytest.raises(ValueError, match="usage"):
            cgexec.split_argv(bad)


def test_replicas_start_through_the_launcher_into_their_cgroups(tmp_path: Path) -> None:
    layout = LabLayout(tmp_path, port_base=30000)
    plan = cgroups.CgroupPlan({"freezer": Path("/cg/freezer"), "cpu": Path("/cg/cpu")},
                              "gameday-lab-30000-x", tuple(layout.replica_names()))
    conf = all_files(layout, EXE, tmp_path, LabTarget(layout).program(),
                     cgroups=plan)["supervisord.conf"]
    assert (f"/venv/bin/python {Path(cgexec.__file__)} "
            "/cg/freezer/gameday-lab-30000-x/replica-2 /cg/cpu/gameday-lab-30000-x/replica-2 "
            "-- /venv/bin/python -m lab.service") in conf
    plain = all_files(layout, EXE, tmp_path, LabTarget(layout).program())["supervisord.conf"]
    assert "cgexec" not in plain


def test_cgroups_can_be_turned_off(tmp_path: Path) -> None:
    plan, why = cgroup_plan(LabLayout(tmp_path), {"GAMEDAY_LAB_CGROUPS": "0"})
    assert plan is None and why == "turned off by GAMEDAY_LAB_CGROUPS=0"


def test_an_experiment_needing_a_missing_fault_is_not_runnable() -> None:
    freeze = {"name": "freeze-replica-2", "type": "action",
              "provider": {"type": "python", "module": "actions.freeze", "func": "freeze"}}
    thaw = {"name": "thaw", "type": "action",
            "provider": {"type": "python", "module": "actions.freeze", "func": "thaw"}}
    experiment = {"method": [freeze, thaw]}
    assert not_runnable(experiment, {}) == []
    reasons = not_runnable(experiment, dict.fromkeys(CGROUP_FAULTS, "no root here"))
    assert reasons == ["not runnable here: freeze-replica-2 needs the freeze fault: "
                       "no root here"]
    assert not_runnable(load_experiment(Path("experiments/pod-kill.yaml")),
                        dict.fromkeys(CGROUP_FAULTS, "no root here")) == []


def test_a_toxic_on_a_replica_link_is_not_runnable_where_the_proxy_is_off_that_path() -> None:
    slow = load_experiment(Path("experiments/slow-replica.yaml"))
    assert not_runnable(slow, dict.fromkeys(CGROUP_FAULTS, "no root here")) == []
    assert not_runnable(slow, {REPLICA_LINK_DEGRADE_FAULT: "HAProxy goes direct"}) == [
        "not runnable here: slow-down-replica-2 needs the replica-link-degrade fault: "
        "HAProxy goes direct"]
    # a toxic on the broker link is not that fault
    assert not_runnable(load_experiment(Path("experiments/broker-partition.yaml")),
                        {REPLICA_LINK_DEGRADE_FAULT: "HAProxy goes direct"}) == []


def test_without_chaos_mesh_the_kubernetes_target_names_what_to_install() -> None:
    unsupported = chaosmesh.unsupported(None)
    assert sorted(unsupported) == sorted([*CGROUP_FAULTS, REPLICA_LINK_DEGRADE_FAULT])
    assert all("install Chaos Mesh 2.8" in reason for reason in unsupported.values())
    assert "serves no stresschaos.chaos-mesh.org" in unsupported["cpu-throttle"]
    assert chaosmesh.unsupported(["networkchaos", "stresschaos", "podchaos"]) == {}
