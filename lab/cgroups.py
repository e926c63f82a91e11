"""Each replica in cgroups of its own: the kernel mechanisms behind the gray faults.

When the machine offers it — root, and the cgroup v1 controllers ``freezer``, ``cpu``
and ``memory`` mounted writable (see :func:`unavailable`) — ``gameday lab up`` creates,
for a lab on port base B in state directory D, a parent ``gameday-lab-B-<hash of D>``
in each controller's hierarchy (so labs side by side never share one) and under it one
cgroup per replica (``replica-N``). supervisord starts every replica through
:mod:`lab.cgexec`, which joins its cgroups before it execs the replica, so a replica
restarted by supervisord lands in them again: a fault addresses the cgroup, never a PID.

The lab records the plan in ``<state dir>/cgroups.json`` before creating anything, so
``gameday lab down`` removes exactly those cgroups, even after a crash; it thaws them and
lifts their CPU quota first (a frozen process cannot even die). Where the machine cannot
offer the mechanism the lab runs without cgroups and records why (``lab.json``), and the
faults needing it are reported as not runnable here.

Faults: :func:`freeze` (``freezer.state`` FROZEN: the replica keeps its sockets, the
kernel still completes TCP handshakes into its backlog, and nothing answers),
:func:`throttle` (``cpu.cfs_quota_us``: a share of one core per period) and
:func:`limit_memory` (``memory.limit_in_bytes`` a little above what the replica uses, then
a leak charged to its cgroup until the kernel's OOM killer ends the replica);
:func:`thaw`, :func:`unthrottle` and :func:`unlimit_memory` undo them and are idempotent.
Every write raises :class:`CgroupError` quoting the file.

The leak stands in for the replica's own: a small shell loop (the writer) that joins the
replica's memory cgroup (and no other) and appends to a file on tmpfs (``/dev/shm``),
whose pages are charged to that cgroup and cannot be reclaimed without swap. When the
cgroup reaches its limit the kernel first reclaims what it can (the replica's page
cache: it slows down), then kills the task with the largest resident set in the cgroup —
the replica, since tmpfs pages count in no process' resident set and the writer holds
about a MiB. A watcher outside the cgroup (so it needs none of the cgroup's memory to
act) then kills the writer and deletes the file (a leak dies with its process); it also
ends the leak after a bounded number of steps. Any service works: nothing is asked of
it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = ["CONTROLLERS", "CgroupError", "CgroupPlan", "create", "faults_left", "freeze",
           "freezer_state", "gray_faults_in_place", "leak_script", "limit_memory", "memory_figures",
           "missing_requirements", "mounts", "plan_for", "recorded", "remove", "thaw",
           "throttle", "throttle_figures", "unavailable", "unlimit_memory", "unthrottle"]

CONTROLLERS = ("freezer", "cpu", "memory")
RECORD_FILE = "cgroups.json"
PROC_MOUNTS = Path("/proc/mounts")
FROZEN, THAWED = "FROZEN", "THAWED"
NO_QUOTA = -1
PERIOD_US = 100_000
MIN_QUOTA_US = 1_000
TASK_SHARES = 1024  # cpu.shares of one task of the root cgroup (nice 0)
FREEZE_WAIT_S = 5.0
UNLIMITED_BYTES = 1 << 62  # memory.limit_in_bytes reads about 2**63 (page-rounded) when unset
MIB = 1 << 20
LEAK_DIR = Path("/dev/shm")
LEAK_STEP_S = 0.1
LEAK_MAX_S = 60.0
LEAK_NAME = "gameday-leak"
LEAK_WRITER_NAME = "gameday-leak-writer"
STRAGGLER_WAIT_S = 5.0
POLL_S = 0.02


class CgroupError(RuntimeError):
    """A cgroup could not be created, changed, read or removed; the message says why."""


@dataclass(frozen=True)
class CgroupPlan:
    """Where one lab's replica cgroups are: a parent per controller, a child per replica.

    Attributes:
        roots: each controller's mount point (cgroup v1 hierarchy).
        parent: the lab's own directory name under each root.
        replicas: the replicas' names (one cgroup each, named after it).
    """

    roots: Mapping[str, Path]
    parent: str
    replicas: tuple[str, ...]

    def controllers(self) -> list[str]:
        """The controllers of :data:`CONTROLLERS` this lab has cgroups in (a lab brought
        up by an older gameday may lack ``memory``)."""
        return [c for c in CONTROLLERS if c in self.roots]

    def parent_dir(self, controller: str) -> Path:
        """The lab's cgroup in ``controller``'s hierarchy; CgroupError if it has none."""
        if controller not in self.roots:
            raise CgroupError(f"this lab has no {controller} cgroups (brought up before "
                              "gameday used them): restart it with `gameday lab down` and "
                              "`gameday lab up`")
        return self.roots[controller] / self.parent

    def dir(self, controller: str, replica: str) -> Path:
        """One replica's cgroup in ``controller``'s hierarchy; CgroupError if unknown."""
        if replica not in self.replicas:
            raise CgroupError(f"unknown replica {replica!r}: valid are "
                              f"{', '.join(self.replicas)}")
        return self.parent_dir(controller) / replica

    def replica_dirs(self, replica: str) -> list[Path]:
        """The replica's cgroup in every controller (what :mod:`lab.cgexec` joins)."""
        return [self.dir(c, replica) for c in self.controllers()]

    def as_json(self) -> dict[str, object]:
        """The record written to ``cgroups.json``."""
        return {"roots": {c: str(p) for c, p in self.roots.items()}, "parent": self.parent,
                "replicas": list(self.replicas)}


def mounts(mounts_text: str) -> dict[str, Path]:
    """Each cgroup v1 controller of :data:`CONTROLLERS` and where it is mounted, from the
    text of ``/proc/mounts`` (pure; ``cpu,cpuacct`` co-mounts count as ``cpu``)."""
    found: dict[str, Path] = {}
    for line in mounts_text.splitlines():
        fields = line.split()
        if len(fields) < 4 or fields[2] != "cgroup":
            continue
        options = set(fields[3].split(","))
        for controller in CONTROLLERS:
            if controller in options and controller not in found:
                found[controller] = Path(fields[1].replace("\\040", " "))
    return found


def missing_requirements(euid: int, roots: Mapping[str, Path],
                         writable: Callable[[Path], bool]) -> list[str]:
    """What the gray faults lack on this machine, in words; empty when they can run."""
    missing = [] if euid == 0 else [f"root (running as user id {euid})"]
    for controller in CONTROLLERS:
        root = roots.get(controller)
        if root is None:
            missing.append(f"the cgroup v1 controller {controller!r} mounted (none in "
                           f"{PROC_MOUNTS}; cgroup2-only machines are not supported yet)")
        elif not writable(root):
            missing.append(f"the cgroup v1 controller {controller!r} writable ({root} is not)")
    return missing


def _roots() -> dict[str, Path]:
    try:
        return mounts(PROC_MOUNTS.read_text(encoding="utf-8"))
    except OSError:
        return {}


def unavailable() -> str:
    """Why replicas cannot get cgroups here, in words; empty when they can."""
    euid = os.geteuid() if hasattr(os, "geteuid") else -1
    missing = missing_requirements(euid, _roots(), lambda p: os.access(p, os.W_OK))
    return "; ".join(missing)


def lab_group_name(state_dir: Path, port_base: int) -> str:
    """The lab's parent cgroup name: port base and a hash of its state directory (pure)."""
    digest = hashlib.sha256(str(state_dir.resolve()).encode()).hexdigest()[:8]
    return f"gameday-lab-{port_base}-{digest}"


def plan_for(state_dir: Path, port_base: int, replicas: list[str]) -> CgroupPlan:
    """The cgroups a lab would get on this machine; CgroupError saying what is missing."""
    missing = unavailable()
    if missing:
        raise CgroupError(f"replica cgroups need {missing}")
    return CgroupPlan(_roots(), lab_group_name(state_dir, port_base), tuple(replicas))


def recorded(state_dir: Path) -> CgroupPlan | None:
    """The plan the lab in ``state_dir`` was brought up with; None if it has none."""
    try:
        body = json.loads((state_dir / RECORD_FILE).read_text(encoding="utf-8"))
        return CgroupPlan({c: Path(p) for c, p in body["roots"].items()}, str(body["parent"]),
                          tuple(str(r) for r in body["replicas"]))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise CgroupError(f"{state_dir / RECORD_FILE} is unreadable ({exc}); remove the lab's "
                          "gameday-lab-* cgroups by hand (rmdir), then that file") from None


def _write(path: Path, value: str) -> None:
    try:
        path.write_text(value, encoding="ascii")
    except OSError as exc:
        raise CgroupError(f"cannot write {value!r} to {path}: {exc}") from None


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="ascii").strip()
    except OSError as exc:
        raise CgroupError(f"cannot read {path}: {exc}") from None


def create(plan: CgroupPlan, state_dir: Path) -> None:
    """Record the plan, then create the lab's cgroups (existing ones are kept). The lab's
    parent gets the CPU weight of as many tasks as it holds replicas: a cgroup competes
    with the root's tasks as one, so with the default weight three replicas would share
    one task's CPU on a busy host (and stall, answering their health checks late)."""
    state_dir.mkdir(parents=True, exist_ok=True)
    (state_dir / RECORD_FILE).write_text(json.dumps(plan.as_json()) + "\n", encoding="utf-8")
    for controller in CONTROLLERS:
        for replica in plan.replicas:
            try:
                plan.dir(controller, replica).mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise CgroupError(f"cannot create cgroup {plan.dir(controller, replica)}: "
                                  f"{exc}") from None
    _write(plan.parent_dir("cpu") / "cpu.shares", str(TASK_SHARES * len(plan.replicas)))


def remove(state_dir: Path) -> list[str]:
    """Thaw and unthrottle the recorded cgroups, then remove them (once their processes
    are gone) and the record; returns what was removed. Idempotent."""
    plan = recorded(state_dir)
    if plan is None:
        return []
    removed = []
    for controller in plan.controllers():
        for replica in plan.replicas:
            path = plan.dir(controller, replica)
            if path.is_dir():
                _release(plan, controller, replica)
                _end_stragglers(path)
                _rmdir(path)
                removed.append(str(path))
        if plan.parent_dir(controller).is_dir():
            _rmdir(plan.parent_dir(controller))
            removed.append(str(plan.parent_dir(controller)))
    (state_dir / RECORD_FILE).unlink(missing_ok=True)
    return removed


def release_all(state_dir: Path) -> None:
    """Thaw and unthrottle every recorded cgroup (before the lab stops: a frozen process
    cannot die); a no-op without a record."""
    plan = recorded(state_dir)
    if plan is None:
        return
    for replica in plan.replicas:
        for controller in plan.controllers():
            if plan.dir(controller, replica).is_dir():
                _release(plan, controller, replica)


def _release(plan: CgroupPlan, controller: str, replica: str) -> None:
    if controller == "freezer":
        thaw(plan, replica)
    elif controller == "cpu":
        unthrottle(plan, replica)
    elif controller == "memory":
        unlimit_memory(plan, replica)


def _end_stragglers(path: Path, wait_s: float = STRAGGLER_WAIT_S) -> None:
    """SIGKILL what is left in a replica's cgroup once supervisord has stopped it: a
    server that left its process group (a start script's ``setsid … &``) outlives the
    group's stop, as it would not outlive its container. Waits until the cgroup is empty
    (or ``wait_s`` passed; removing it then says which processes stayed)."""
    deadline = time.monotonic() + wait_s
    while (left := _procs(path)) and time.monotonic() < deadline:
        for pid in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.05)


def _rmdir(path: Path) -> None:
    try:
        path.rmdir()
    except FileNotFoundError:
        return
    except OSError as exc:
        raise CgroupError(f"cannot remove cgroup {path}: {exc} (processes still in it: "
                          f"{_procs(path) or 'none'})") from None


def _procs(path: Path) -> list[int]:
    try:
        return [int(p) for p in (path / "cgroup.procs").read_text().split()]
    except (OSError, ValueError):
        return []


def members(plan: CgroupPlan, replica: str, controller: str = "freezer") -> list[int]:
    """PIDs in the replica's cgroup of ``controller``."""
    return _procs(plan.dir(controller, replica))


def freezer_state(plan: CgroupPlan, replica: str) -> str:
    """``THAWED``, ``FREEZING`` or ``FROZEN``: the replica's ``freezer.state``."""
    return _read(plan.dir("freezer", replica) / "freezer.state")


def freeze(plan: CgroupPlan, replica: str, wait_s: float = FREEZE_WAIT_S) -> str:
    """Freeze every process of the replica's cgroup and wait until the kernel says FROZEN;
    returns the state. CgroupError if it stays FREEZING longer than ``wait_s``."""
    path = plan.dir("freezer", replica) / "freezer.state"
    _write(path, FROZEN)
    deadline = time.monotonic() + wait_s
    while (state := _read(path)) != FROZEN:
        if time.monotonic() > deadline:
            raise CgroupError(f"{path} still {state} {wait_s:g} s after writing {FROZEN}")
        time.sleep(POLL_S)
    return state


def thaw(plan: CgroupPlan, replica: str) -> str:
    """Let the replica's processes run again; idempotent. Returns the state."""
    path = plan.dir("freezer", replica) / "freezer.state"
    _write(path, THAWED)
    return _read(path)


def quota_us(cores: float, period_us: int = PERIOD_US) -> int:
    """The CFS quota that gives ``cores`` (0 < cores <= 64) per period (pure)."""
    if not 0 < cores <= 64:
        raise ValueError(f"cores={cores} is out of range: valid is 0 < cores <= 64")
    return max(MIN_QUOTA_US, round(cores * period_us))


def throttle(plan: CgroupPlan, replica: str, cores: float) -> dict[str, float]:
    """Limit the replica to ``cores`` of CPU time (e.g. 0.1 = 10 ms per 100 ms period);
    returns the quota as set."""
    directory = plan.dir("cpu", replica)
    try:
        quota = quota_us(cores)
    except ValueError as exc:
        raise CgroupError(str(exc)) from None
    _write(directory / "cpu.cfs_period_us", str(PERIOD_US))
    _write(directory / "cpu.cfs_quota_us", str(quota))
    return throttle_figures(plan, replica)


def unthrottle(plan: CgroupPlan, replica: str) -> dict[str, float]:
    """Lift the replica's CPU quota; idempotent. Returns the figures."""
    _write(plan.dir("cpu", replica) / "cpu.cfs_quota_us", str(NO_QUOTA))
    return throttle_figures(plan, replica)


def throttle_figures(plan: CgroupPlan, replica: str) -> dict[str, float]:
    """The replica's CPU quota (``quota_cores``, -1 when unlimited) and the kernel's
    throttling counters (``cpu.stat``: ``nr_periods``, ``nr_throttled``,
    ``throttled_time`` in ns)."""
    directory = plan.dir("cpu", replica)
    quota = int(_read(directory / "cpu.cfs_quota_us"))
    period = int(_read(directory / "cpu.cfs_period_us"))
    stat = dict(line.split()[:2] for line in _read(directory / "cpu.stat").splitlines()
                if len(line.split()) >= 2)
    return {"quota_cores": -1.0 if quota < 0 else quota / period,
            **{key: float(stat.get(key, 0)) for key in ("nr_periods", "nr_throttled",
                                                        "throttled_time")}}


def leak_file(plan: CgroupPlan, replica: str) -> Path:
    """Where the leak of ``replica`` grows (tmpfs, named after the lab's cgroup)."""
    return LEAK_DIR / f"{plan.parent}-{replica}.leak"


def leak_script(cgroup: Path, leak: Path, chunk_mib: int, steps: int, *, oom_kills: int,
                step_s: float = LEAK_STEP_S) -> list[str]:
    """The command of the leak (pure). A watcher, outside the replica's cgroups, writes
    its PID to ``<leak>.pid`` and starts the writer, which joins ``cgroup`` (a memory
    cgroup) and every ``step_s`` appends ``chunk_mib`` MiB of zeros to ``leak``. The
    watcher ends it once the cgroup's ``oom_kill`` count is no longer ``oom_kills`` (or
    after ``steps`` steps): it kills the writer and deletes the file. The watcher is not
    charged to the cgroup, so it can act while the cgroup is out of memory."""
    if chunk_mib < 1 or steps < 1 or oom_kills < 0 or not step_s > 0:
        raise ValueError("chunk_mib and steps must be >= 1, oom_kills >= 0, step_s > 0")
    writer = ('echo $$ > "$1/cgroup.procs" || exit 3\n'
              'while head -c "$3" /dev/zero >> "$2"; do sleep "$4"; done\n')
    script = (
        'echo $$ > "$2.pid"\n'
        f"sh -c '{writer}' {LEAK_WRITER_NAME} \"$1\" \"$2\" \"$3\" \"$6\" &\n"
        'i=0\n'
        'while [ "$i" -lt "$4" ] && grep -qx "oom_kill $5" "$1/memory.oom_control"; do\n'
        '  sleep "$6"\n'
        '  i=$((i + 1))\n'
        'done\n'
        'kill -9 "$!" 2>/dev/null\n'
        'rm -f "$2" "$2.pid"\n')
    return ["sh", "-c", script, LEAK_NAME, str(cgroup), str(leak),
            str(chunk_mib * MIB), str(steps), str(oom_kills), f"{step_s:g}"]


def memory_figures(plan: CgroupPlan, replica: str) -> dict[str, float]:
    """The replica's memory cgroup: ``memory_usage_bytes``, ``memory_limit_bytes`` (-1
    when unlimited) and ``oom_kills`` (the kernel's count of OOM kills in it)."""
    directory = plan.dir("memory", replica)
    limit = int(_read(directory / "memory.limit_in_bytes"))
    control = dict(line.split()[:2] for line in
                   _read(directory / "memory.oom_control").splitlines()
                   if len(line.split()) >= 2)
    return {"memory_usage_bytes": float(_read(directory / "memory.usage_in_bytes")),
            "memory_limit_bytes": -1.0 if limit >= UNLIMITED_BYTES else float(limit),
            "oom_kills": float(control.get("oom_kill", 0))}


def limit_memory(plan: CgroupPlan, replica: str, headroom_mib: int,
                 leak_mib_per_s: int) -> dict[str, float]:
    """Limit the replica's memory to what it uses now plus ``headroom_mib``, then start
    the leak at ``leak_mib_per_s`` (it ends at the first OOM kill, or after
    :data:`LEAK_MAX_S`). Returns the figures as the leak starts."""
    figures = memory_figures(plan, replica)
    directory = plan.dir("memory", replica)
    _write(directory / "memory.limit_in_bytes",
           str(int(figures["memory_usage_bytes"]) + headroom_mib * MIB))
    chunk_mib = max(1, round(leak_mib_per_s * LEAK_STEP_S))
    command = leak_script(directory, leak_file(plan, replica), chunk_mib,
                          round(LEAK_MAX_S / LEAK_STEP_S), oom_kills=int(figures["oom_kills"]))
    try:
        subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, start_new_session=True)
    except OSError as exc:
        raise CgroupError(f"cannot start the memory leak of {replica}: {exc}") from None
    return memory_figures(plan, replica)


def _leak_pids(plan: CgroupPlan, replica: str) -> list[int]:
    """The leak's processes: in the replica's memory cgroup, in none of its others."""
    others = {pid for c in plan.controllers() if c != "memory"
              for pid in members(plan, replica, c)}
    return [pid for pid in members(plan, replica, "memory") if pid not in others]


def _end_watcher(leak: Path) -> None:
    """SIGKILL the leak's watcher and, with it, its process group (the writer and its
    ``head``), by the PID it recorded — only if that PID still runs the watcher."""
    pid_file = Path(f"{leak}.pid")
    try:
        pid = int(pid_file.read_text(encoding="ascii").strip())
        command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (OSError, ValueError):
        return
    if LEAK_NAME.encode() in command[:4]:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)


def unlimit_memory(plan: CgroupPlan, replica: str) -> dict[str, float]:
    """End the leak (SIGKILL to its watcher, writer and whatever is left of it in the
    replica's memory cgroup; its file deleted) and lift the memory limit; idempotent.
    Returns the figures."""
    leak = leak_file(plan, replica)
    _end_watcher(leak)
    for pid in _leak_pids(plan, replica):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    leak.unlink(missing_ok=True)
    Path(f"{leak}.pid").unlink(missing_ok=True)
    _write(plan.dir("memory", replica) / "memory.limit_in_bytes", "-1")
    return memory_figures(plan, replica)


def faults_left(plan: CgroupPlan, running: Mapping[str, int]) -> list[str]:
    """Replicas still frozen, throttled or memory-limited, a leak left, missing cgroups,
    and running replicas (name → PID) that are not in their cgroup, in words; empty when
    clean."""
    problems = []
    for replica in plan.replicas:
        missing = [str(p) for p in plan.replica_dirs(replica) if not p.is_dir()]
        if missing:
            problems.append(f"cgroup {', '.join(missing)} of {replica} is missing")
            continue
        problems += gray_faults_in_place(plan, replica)
        pid = running.get(replica, 0)
        if pid and pid not in members(plan, replica):
            problems.append(f"{replica} (PID {pid}) is not in its cgroup "
                            f"{plan.dir('freezer', replica)}")
    return problems


def gray_faults_in_place(plan: CgroupPlan, replica: str) -> list[str]:
    """The replica's frozen, throttled or memory-limited cgroups and a leak left behind,
    in words; empty when it has none (its cgroups must exist)."""
    problems = []
    state = freezer_state(plan, replica)
    if state != THAWED:
        problems.append(f"{replica} is {state} (cgroup freezer "
                        f"{plan.dir('freezer', replica)})")
    quota = throttle_figures(plan, replica)["quota_cores"]
    if quota >= 0:
        problems.append(f"{replica} is CPU-throttled to {quota:g} core (cgroup "
                        f"{plan.dir('cpu', replica)})")
    if "memory" in plan.roots:
        problems += _memory_left(plan, replica)
    return problems


def _memory_left(plan: CgroupPlan, replica: str) -> list[str]:
    problems = []
    limit = memory_figures(plan, replica)["memory_limit_bytes"]
    if limit >= 0:
        problems.append(f"{replica} is memory-limited to {limit / MIB:.0f} MiB (cgroup "
                        f"{plan.dir('memory', replica)})")
    leaking = _leak_pids(plan, replica)
    leak = leak_file(plan, replica)
    if leaking or leak.exists() or Path(f"{leak}.pid").exists():
        problems.append(f"a memory leak of {replica} is left (processes "
                        f"{leaking or 'none'}, file {leak})")
    return problems
