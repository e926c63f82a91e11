"""The soak's orders: ``gameday load`` in its own process, and what the broker filled.

The load runs (open model) from before the warm-up to after the end sample and is then
stopped with SIGTERM (it still writes its summary, after waiting for the orders in
flight); it also stops by itself after its time bound, or when the soak dies.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gameday.clients.http import HttpUnreachable, request_json
from gameday.load.workers import unknown_status_args
from gameday.service_spec import load_spec
from gameday.targets.lab import reference_spec_path
from lab.layout import LabLayout
from lab.stack import LabError

__all__ = ["LoadRun", "read_fills", "running_load"]

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 30.0
FILLS_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class LoadRun:
    """A running ``gameday load``: its process and its summary file (the outcome log
    and the live file sit next to it)."""

    process: subprocess.Popen[str]
    summary_path: Path

    @property
    def outcomes_path(self) -> Path:
        """One JSON line per order: ``{"id", "outcome"}``."""
        return self.summary_path.with_suffix(".outcomes.jsonl")

    @property
    def live_path(self) -> Path:
        """Rewritten each second while the load runs."""
        return self.summary_path.with_suffix(".live.json")

    def wait_started(self) -> None:
        """Wait until the load's first second is done (LabError if it never is)."""
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self.live_path.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise LabError(f"the load generator did not start "
                               f"(exit code {self.process.poll()})")
            time.sleep(0.2)

    def finish(self) -> dict[str, Any]:
        """Stop the load now and return its summary (LabError if it wrote none)."""
        stop(self.process)
        if self.process.returncode != 0 or not self.summary_path.exists():
            raise LabError(f"the load generator failed (exit code {self.process.returncode}, "
                           f"summary {self.summary_path})")
        summary: dict[str, Any] = json.loads(self.summary_path.read_text(encoding="utf-8"))
        return summary


@contextmanager
def running_load(url: str, rate_rps: float, bound_s: float, summary_path: Path
                 ) -> Iterator[LoadRun]:
    """``gameday load`` at ``rate_rps`` for at most ``bound_s`` seconds; stopped at the
    end of the block if still running. The reference service's "outcome unknown"
    statuses (its spec's ``order.statuses.unknown``) are logged as unknown outcomes."""
    unknown = load_spec(reference_spec_path()).order.statuses.get("unknown", ())
    command = [sys.executable, "-m", "gameday", "load", "--url", url,
               "--rate", f"{rate_rps:g}", "--duration", f"{bound_s:g}",
               "--json", str(summary_path), "--live", str(summary_path.with_suffix(".live.json")),
               "--stop-with-parent", str(os.getpid()), *unknown_status_args(unknown)]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, text=True)
    try:
        yield LoadRun(process, summary_path)
    finally:
        stop(process)


def stop(process: subprocess.Popen[str]) -> None:
    """SIGTERM (the load then drains and writes its summary), SIGKILL if it lingers."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=STOP_TIMEOUT_S)


def read_fills(layout: LabLayout) -> list[dict[str, Any]]:
    """Every fill in the soak lab's broker ledger (the lab is the soak's own)."""
    url = layout.url("broker") + "/fills?since=0"
    try:
        response = request_json("GET", url, timeout_s=FILLS_TIMEOUT_S)
    except HttpUnreachable as exc:
        raise LabError(f"cannot read the broker's ledger: {exc}") from exc
    if response.status != 200 or not isinstance(response.body, dict):
        raise LabError(f"the broker's ledger answered {response.status}")
    return list(response.body.get("fills") or [])
