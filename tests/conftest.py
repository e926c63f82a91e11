"""Shared fixtures: a real lab on its own port base and state directory."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Tests that run whole labs use ports from this base: the shared lab +0, e2e +1000 and
# +1500, bad input +1700, sabotage +2000/+3000, netns +2500, interruptions +3500,
# security +4000, false passes +4500, soak +5000. Override it with
# GAMEDAY_TEST_PORT_BASE to run two test sessions side by side.
LAB_PORT_BASE = int(os.environ.get("GAMEDAY_TEST_PORT_BASE", "28000"))


@dataclass(frozen=True)
class RunningLab:
    """A lab started for the tests: its environment and state directory."""

    env: dict[str, str]
    state_dir: Path

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


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningLab]:
    """The whole lab (broker sim, fault proxy, 3 replicas, HAProxy, Prometheus), once."""
    with running_lab(tmp_path_factory.mktemp("lab"), LAB_PORT_BASE) as running:
        yield running
