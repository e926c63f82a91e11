"""Sampling the machine's CPU (gameday.measurements.machine.read_sample) on real
processes: a busy process of ours is ours, a busy process outside our trees is other
work, and the figures between two samples say so."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from gameday.measurements.machine import load_between, read_sample

BUSY_S = 8.0
# Spins for BUSY_S seconds at most, then exits by itself.
BUSY = f"import time\nend = time.monotonic() + {BUSY_S}\nwhile time.monotonic() < end: pass\n"
# Starts a busy process that outlives its parent (so it descends from no root of ours)
# and prints its PID (the orphan keeps no pipe of ours open).
ORPHAN = ("import subprocess, sys\n"
          f"p = subprocess.Popen([sys.executable, '-c', {BUSY!r}], start_new_session=True,\n"
          "                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
          "print(p.pid)\n")


@pytest.fixture
def busy_pair() -> Iterator[tuple[int, int]]:
    """(a busy process of ours, a busy orphan that is not), each stopped by its PID."""
    ours = subprocess.Popen([sys.executable, "-c", BUSY])
    started = subprocess.run([sys.executable, "-c", ORPHAN], capture_output=True, text=True,
                             check=True, timeout=10)
    orphan = int(started.stdout.strip())
    try:
        yield ours.pid, orphan
    finally:
        ours.kill()
        ours.wait(timeout=5)
        with contextlib.suppress(ProcessLookupError):
            os.kill(orphan, signal.SIGKILL)


def test_ours_are_the_roots_trees_and_the_rest_is_other_work(busy_pair: tuple[int, int]) -> None:
    ours, orphan = busy_pair
    first = read_sample("start", time.time(), [ours])
    time.sleep(1.5)
    last = read_sample("end", time.time(), [ours])
    assert ours in last.ours and orphan not in last.ours, (first, last)
    load = load_between(first, last, os.cpu_count() or 1)
    assert load is not None
    # Two busy processes on the machine: ours took a share of a core, and the orphan's
    # share is other work (so are this test's and anything else's on the machine).
    assert 0.2 < load.ours_cores <= 1.05, (load, first, last)
    assert load.others_cores > 0.2, load
    assert load.busy_cores == pytest.approx(load.ours_cores + load.others_cores)
    assert last.ours[ours].run_s > first.ours[ours].run_s


def test_a_root_that_is_gone_samples_nothing_of_ours() -> None:
    sample = read_sample("start", time.time(), [2 ** 22 + 1])
    assert sample.ours == {}
    assert sample.busy_s > 0
