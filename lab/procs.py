"""The processes a replica runs as, read from the kernel: what a pod kill must end.

A replica is more than the PID supervisord started: a service launched through a shell
script or a process manager runs as a tree, and a kill that hits only the first PID
leaves the real server serving. Like a container, a lab replica is every process in its
cgroup (when the lab has replica cgroups) and in its process group (supervisord starts
each program as a group leader, so the group id is that PID). A kill ends those, and
only those: processes the lab started. Whether it landed is judged by them and by
whatever process listens on the replica's port (found through the socket's inode, in the
replica's own network namespace): a server that left the group and the cgroup survives
the kill, and the evidence says so.

Each process is named ``PID@START`` (its start time in clock ticks since boot, from
``/proc/PID/stat``), so a PID the kernel reuses for a new process is a new name.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterable
from pathlib import Path

PROC = Path("/proc")

# /proc/PID/stat fields after the ")" that closes the command name (index 0 = state):
# pgrp is field 5 of the whole line, starttime field 22 (proc(5), numbered from 1).
_PGRP_AFTER_COMM = 2
_START_AFTER_COMM = 19


def stat_fields(stat_text: str) -> list[str]:
    """The fields of a ``/proc/PID/stat`` line after the command name (pure); the name
    may hold spaces and parentheses, so the split is at its last ``)``."""
    return stat_text[stat_text.rindex(")") + 2:].split()


def _stat(pid: int, proc: Path) -> list[str] | None:
    try:
        return stat_fields((proc / str(pid) / "stat").read_text(encoding="ascii",
                                                                 errors="replace"))
    except (OSError, ValueError):
        return None


def instance(pid: int, proc: Path = PROC) -> str | None:
    """``PID@START`` for a running process, None once it is gone (or a zombie)."""
    fields = _stat(pid, proc)
    if fields is None or fields[0] == "Z":
        return None
    return f"{pid}@{fields[_START_AFTER_COMM]}"


def group_members(pgid: int, proc: Path = PROC) -> list[int]:
    """The PIDs in process group ``pgid`` (0: none)."""
    if pgid <= 0:
        return []
    members = []
    for entry in proc.iterdir():
        if entry.name.isdigit():
            fields = _stat(int(entry.name), proc)
            if fields is not None and fields[_PGRP_AFTER_COMM] == str(pgid):
                members.append(int(entry.name))
    return sorted(members)


def listening_inodes(tcp_tables: Iterable[str], port: int) -> set[str]:
    """The socket inodes listening on ``port`` in ``/proc/PID/net/tcp``/``tcp6`` texts
    (pure)."""
    inodes = set()
    for table in tcp_tables:
        for line in table.splitlines()[1:]:
            fields = line.split()
            if len(fields) > 9 and fields[3] == "0A":  # state LISTEN
                local_port = fields[1].rpartition(":")[2]
                if int(local_port, 16) == port:
                    inodes.add(fields[9])
    return inodes


def listeners(port: int, netns_pid: int, proc: Path = PROC) -> list[int]:
    """The PIDs holding a socket that listens on ``port`` in the network namespace of
    process ``netns_pid`` (empty when that process is gone or nothing listens)."""
    tables = []
    for name in ("tcp", "tcp6"):
        try:
            tables.append((proc / str(netns_pid) / "net" / name).read_text(encoding="ascii"))
        except OSError:
            continue
    wanted = {f"socket:[{inode}]" for inode in listening_inodes(tables, port)}
    if not wanted:
        return []
    holders = []
    for entry in proc.iterdir():
        if entry.name.isdigit() and _holds(entry / "fd", wanted):
            holders.append(int(entry.name))
    return sorted(holders)


def _holds(fd_dir: Path, sockets: set[str]) -> bool:
    try:
        for fd in fd_dir.iterdir():
            try:
                if os.readlink(fd) in sockets:
                    return True
            except OSError:
                continue
    except OSError:
        return False
    return False


def instances(pids: Iterable[int], proc: Path = PROC) -> list[str]:
    """``PID@START`` of each of ``pids`` that still runs, sorted."""
    return sorted(name for name in (instance(pid, proc) for pid in set(pids)) if name)


def still_running(recorded: Iterable[str], proc: Path = PROC) -> list[str]:
    """Those of the ``PID@START`` names that name a process running now (the same
    process: a reused PID has another start time)."""
    out = []
    for name in recorded:
        pid, _, _start = name.partition("@")
        if pid.isdigit() and instance(int(pid), proc) == name:
            out.append(name)
    return sorted(out)


def kill_all(pids: Iterable[int]) -> None:
    """SIGKILL every one of ``pids`` that still exists."""
    for pid in sorted(set(pids)):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
