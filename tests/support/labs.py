"""Whole labs for the tests, each on a port base of its own.

Port bases come from :class:`PortBases`: every pytest-xdist worker owns a span of
``WORKER_SPAN`` ports starting at ``GAMEDAY_TEST_PORT_BASE`` (default 21000) and hands
out ``LAB_SPAN`` ports per lab, so labs started at the same time never collide, and
all of them stay below the kernel's ephemeral range (32768 and up), where an outgoing
connection could hold a port a lab wants.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from lab import netns

ROOT = Path(__file__).resolve().parents[2]
LAB_SPAN = 50  # a lab uses its base + 0..30
WORKER_SPAN = 1000
MAX_WORKERS = 8
EPHEMERAL_FIRST = 32768


@dataclass
class PortBases:
    """Hands out port bases to the labs one pytest worker starts (never the same twice)."""

    worker: int
    root: int = 21000
    _next: Iterator[int] = field(default_factory=itertools.count, repr=False)

    def __post_init__(self) -> None:
        top = self.root + MAX_WORKERS * WORKER_SPAN
        if not self.root >= 1024 or top > EPHEMERAL_FIRST or self.worker >= MAX_WORKERS:
            raise ValueError(f"GAMEDAY_TEST_PORT_BASE={self.root} with worker {self.worker}: "
                             f"labs need 1024 <= base and base + {MAX_WORKERS * WORKER_SPAN} "
                             f"<= {EPHEMERAL_FIRST}, at most {MAX_WORKERS} workers")

    def take(self) -> int:
        """A port base no other lab of this test session uses."""
        index = next(self._next)
        if (index + 1) * LAB_SPAN > WORKER_SPAN:
            raise RuntimeError(f"worker {self.worker} started more than "
                               f"{WORKER_SPAN // LAB_SPAN} labs: raise WORKER_SPAN")
        return self.root + self.worker * WORKER_SPAN + index * LAB_SPAN

    @classmethod
    def for_worker(cls, worker_id: str) -> PortBases:
        """The allocator of pytest-xdist worker ``gwN`` (``master``: not distributed)."""
        worker = int(worker_id.removeprefix("gw")) if worker_id.startswith("gw") else 0
        return cls(worker, int(os.environ.get("GAMEDAY_TEST_PORT_BASE", "21000")))


@dataclass(frozen=True)
class RunningLab:
    """A lab started for the tests: its environment and state directory."""

    env: dict[str, str]
    state_dir: Path

    @property
    def port_base(self) -> int:
        """The lab's port base (entry point = this port)."""
        return int(self.env["GAMEDAY_LAB_PORT_BASE"])

    def gameday(self, *args: str, timeout_s: float = 300) -> subprocess.CompletedProcess[str]:
        """Run ``gameday ARGS`` against this lab from the project root."""
        return subprocess.run(
            [sys.executable, "-m", "gameday", *args], cwd=ROOT, env=self.env,
            capture_output=True, text=True, timeout=timeout_s, check=False,
        )


def lab_env(state_dir: Path, port_base: int, reports: Path) -> dict[str, str]:
    """Environment pointing gameday at a lab in ``state_dir`` on ``port_base``."""
    return {**os.environ, "GAMEDAY_LAB_DIR": str(state_dir),
            "GAMEDAY_LAB_PORT_BASE": str(port_base), "GAMEDAY_RUN_DIR": str(reports),
            "GAMEDAY_TARGET": "lab"}


@contextmanager
def running_lab(base: Path, port_base: int) -> Iterator[RunningLab]:
    """A lab in ``base/state`` on ``port_base`` for the block (reports in ``base/reports``)."""
    running = RunningLab(lab_env(base / "state", port_base, base / "reports"), base / "state")
    up = running.gameday("lab", "up", timeout_s=120)
    assert up.returncode == 0, up.stdout + up.stderr
    try:
        yield running
    finally:
        down = running.gameday("lab", "down", timeout_s=60)
        assert down.returncode == 0, down.stdout + down.stderr


def netns_unavailable() -> str:
    """Why a lab in network namespaces cannot run here ("" when it can)."""
    try:
        netns.require_tools()
    except netns.NetnsError as exc:
        return str(exc)
    return ""
