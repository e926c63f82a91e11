"""What a pod kill ends and how its evidence sees it (lab.procs): a real process group
with a child, and a server that left the group but still listens on the port."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from lab import procs

# A group leader (start_new_session) with one child in its group, and a grandchild that
# leaves the group with setsid and listens on the port in argv[1]; prints the three PIDs.
TREE = r"""
import os, socket, sys, time
port = int(sys.argv[1])
child = os.fork()
if child == 0:
    time.sleep(60); os._exit(0)
r, w = os.pipe()
server = os.fork()
if server == 0:
    os.setsid()
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port)); s.listen()
        os.write(w, b"x")
        time.sleep(60)
    os._exit(0)
os.read(r, 1)
print(os.getpid(), child, server, flush=True)
time.sleep(60)
"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def tree() -> Iterator[tuple[int, int, int, int]]:
    """(port, leader, child in the group, server outside it); every one killed after."""
    port = _free_port()
    process = subprocess.Popen([sys.executable, "-c", TREE, str(port)],
                               stdout=subprocess.PIPE, start_new_session=True, text=True)
    assert process.stdout is not None
    leader, child, server = (int(pid) for pid in process.stdout.readline().split())
    try:
        yield port, leader, child, server
    finally:
        procs.kill_all([leader, child, server])
        process.wait(timeout=10)


def _gone(pid: int, timeout_s: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if procs.instance(pid) is None:
            return True
        time.sleep(0.02)
    return False


def test_a_replica_is_its_group_and_whoever_serves_its_port(
        tree: tuple[int, int, int, int]) -> None:
    port, leader, child, server = tree

    assert procs.group_members(leader) == sorted([leader, child])
    assert procs.listeners(port, leader) == [server]
    assert procs.listeners(_free_port(), leader) == []
    named = procs.instances([leader, child, server])
    assert [name.partition("@")[0] for name in named] == sorted(
        str(pid) for pid in (leader, child, server))


def test_a_kill_of_the_group_leaves_the_server_that_left_it_and_the_evidence_says_so(
        tree: tuple[int, int, int, int]) -> None:
    port, leader, child, server = tree
    before = procs.instances([*procs.group_members(leader), *procs.listeners(port, leader)])

    procs.kill_all(procs.group_members(leader))

    # A SIGKILLed process ends when it next runs: on a busy machine not at once.
    assert _gone(child)
    assert _gone(leader)
    assert procs.still_running(before) == [procs.instance(server)]


def test_a_reused_pid_is_not_the_same_instance() -> None:
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        name = procs.instance(process.pid)
        assert name is not None
        pid, _, start = name.partition("@")
        assert procs.still_running([name]) == [name]
        assert procs.still_running([f"{pid}@{int(start) + 1}"]) == []
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
    assert procs.still_running([name]) == []
