"""Replica cgroups: the pure parts (mounts, requirements, names, quotas, the launcher's
arguments, rendering, which experiments a target cannot run). The lab tests freeze and
throttle real replicas (``tests/lab/test_gray_faults.py``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gameday.contract import (
    CGROUP_FAULTS,
    CPU_THROTTLE_FAULT,
    FREEZE_FAULT,
    MEMORY_LIMIT_FAULT,
    REPLICA_LINK_DEGRADE_FAULT,
    ConfigError,
)
from gameday.engine.runner import load_experiment, not_runnable
from gameday.faults import inject
from gameday.faults.inject import check_cores
from gameday.targets.kubernetes import chaosmesh
from gameday.targets.kubernetes.settings import KubernetesSettings
from gameday.targets.kubernetes.target import MEMORY_NOT_YET, KubernetesTarget
from gameday.targets.lab import LabTarget
from lab import cgexec, cgroups
from lab.layout import LabLayout
from lab.render import Executables, all_files
from lab.stack import cgroup_plan
from probes.cgroups import _oom_killed

EXE = Executables("/venv/bin/python", "/usr/sbin/haproxy", "/usr/bin/prometheus")
MOUNTS = """\
tmpfs /sys/fs/cgroup tmpfs rw,relatime,mode=755 0 0
cgroup /sys/fs/cgroup/cpu,cpuacct cgroup rw,relatime,cpu,cpuacct 0 0
cgroup /sys/fs/cgroup/freezer cgroup rw,relatime,freezer 0 0
cgroup /sys/fs/cgroup/cpuset cgroup rw,relatime,cpuset 0 0
cgroup /sys/fs/cgroup/memory cgroup rw,relatime,memory 0 0
cgroup2 /sys/fs/cgroup/unified cgroup2 rw,relatime 0 0
"""


def test_mounts_find_each_v1_controller_even_co_mounted() -> None:
    assert cgroups.mounts(MOUNTS) == {"cpu": Path("/sys/fs/cgroup/cpu,cpuacct"),
                                      "freezer": Path("/sys/fs/cgroup/freezer"),
                                      "memory": Path("/sys/fs/cgroup/memory")}
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
    assert sorted(unsupported) == sorted([FREEZE_FAULT, CPU_THROTTLE_FAULT,
                                          REPLICA_LINK_DEGRADE_FAULT])
    assert all("install Chaos Mesh 2.8" in reason for reason in unsupported.values())
    assert "serves no stresschaos.chaos-mesh.org" in unsupported["cpu-throttle"]
    assert chaosmesh.unsupported(["networkchaos", "stresschaos", "podchaos"]) == {}


def _kubernetes(state_dir: Path) -> KubernetesTarget:
    return KubernetesTarget(KubernetesSettings(
        prometheus_url="http://127.0.0.1:9090", toxiproxy_url="http://127.0.0.1:9",
        entry_url="http://127.0.0.1:8080", broker_url="http://127.0.0.1:8081",
        state_dir=state_dir))


def test_the_memory_fault_is_not_there_yet_on_kubernetes_either(tmp_path: Path) -> None:
    target = _kubernetes(tmp_path)
    with pytest.raises(ConfigError, match="the memory-limit fault is not supported on the "
                                          "kubernetes target yet"):
        target.limit_memory("name=replica-2", 48, 32)
    assert target.unlimit_memory("name=replica-2") == []
    oom = load_experiment(Path("experiments/replica-oom.yaml"))
    [reason] = not_runnable(oom, {MEMORY_LIMIT_FAULT: MEMORY_NOT_YET})
    assert reason.startswith(
        "not runnable here: leak-replica-2-past-its-memory-limit needs the memory-limit "
        "fault: the memory-limit fault is not supported on the kubernetes target yet")


@pytest.mark.parametrize(("name", "value"), [("headroom_mib", 0), ("headroom_mib", 4097),
                                             ("leak_mib_per_s", 1.5), ("leak_mib_per_s", True)])
def test_memory_figures_out_of_range_are_refused_naming_the_valid_range(
        name: str, value: object) -> None:
    valid = inject.HEADROOM_MIB_RANGE if name == "headroom_mib" else inject.LEAK_MIB_PER_S_RANGE
    with pytest.raises(ConfigError, match=rf"{name}={value!r} is out of range: valid is a "
                                          rf"whole number {valid[0]}\.\.{valid[1]} \(MiB\)"):
        inject.check_mib(name, value, valid)  # type: ignore[arg-type]


def test_the_leak_joins_only_the_memory_cgroup_and_stops_at_the_first_oom_kill() -> None:
    command = cgroups.leak_script(Path("/cg/memory/lab/replica-2"), Path("/dev/shm/x.leak"),
                                  3, 600, oom_kills=2)
    assert command[:2] == ["sh", "-c"]
    script, args = command[2], command[4:]
    assert command[3] == cgroups.LEAK_NAME  # what unlimit_memory checks before a kill
    assert args == ["/cg/memory/lab/replica-2", "/dev/shm/x.leak", str(3 * cgroups.MIB),
                    "600", "2", "0.1"]
    watcher, writer = script.split("sh -c '", 1)[0], script.split("sh -c '", 1)[1]
    assert watcher == 'echo $$ > "$2.pid"\n'  # the watcher stays outside the cgroup
    assert writer.startswith('echo $$ > "$1/cgroup.procs" || exit 3\n')  # the writer joins
    assert 'grep -qx "oom_kill $5" "$1/memory.oom_control"' in script  # stop at a kill
    assert '[ "$i" -lt "$4" ]' in script  # and after a bounded number of steps
    assert script.endswith('kill -9 "$!" 2>/dev/null\nrm -f "$2" "$2.pid"\n')
    with pytest.raises(ValueError, match="chunk_mib and steps must be >= 1"):
        cgroups.leak_script(Path("/cg"), Path("/x"), 0, 1, oom_kills=0)


def test_memory_figures_read_the_kernels_files(tmp_path: Path) -> None:
    plan = cgroups.CgroupPlan({"memory": tmp_path}, "lab", ("replica-1",))
    directory = plan.dir("memory", "replica-1")
    directory.mkdir(parents=True)
    (directory / "memory.limit_in_bytes").write_text("9223372036854771712\n")
    (directory / "memory.usage_in_bytes").write_text("52428800\n")
    (directory / "memory.oom_control").write_text(
        "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n")
    assert cgroups.memory_figures(plan, "replica-1") == {
        "memory_usage_bytes": 52428800.0, "memory_limit_bytes": -1.0, "oom_kills": 3.0}
    (directory / "memory.limit_in_bytes").write_text("104857600\n")
    assert cgroups.memory_figures(plan, "replica-1")["memory_limit_bytes"] == 104857600.0
    with pytest.raises(cgroups.CgroupError, match="this lab has no freezer cgroups"):
        plan.dir("freezer", "replica-1")


def test_an_oom_kill_counts_only_when_the_replica_itself_is_gone() -> None:
    figures = {"replica-2": {"oom_kills": 1.0}}
    instances = {"replica-2": ["100@5", "101@6"]}
    assert _oom_killed(figures, {"replica-2": 0}, instances, set()) == 1
    # the count grew but the replica still runs: the kernel killed something else
    assert _oom_killed(figures, {"replica-2": 0}, instances, {"101@6"}) == 0
    assert _oom_killed(figures, {"replica-2": 1}, instances, set()) == 0  # no new kill
    assert _oom_killed(figures, {"replica-2": 0}, {"replica-2": []}, set()) == 0
