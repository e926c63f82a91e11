"""``gameday load --workers N``: the load split over N processes, their figures merged exactly.

Each worker is ``python -m gameday load`` sending every N-th request (request i goes
to worker i % N), so together they keep the exact schedule t0 + i/rate. They start
in their own session, say ``ready`` on stdout, and get the shared start time (unix) on
stdin, so every worker counts seconds from the same second 0. The parent merges their
live files once per second (:class:`gameday.load.merge.LiveMerger`), forwards a stop
(SIGINT) to them, and at the end merges their summaries — counts add, HDR histograms
add — and concatenates their outcome logs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gameday.contract import GamedayError
from gameday.load.generator import LoadSettings
from gameday.load.merge import LiveMerger, merge_summaries
from gameday.load.output import LiveHeader

__all__ = ["run_workers", "worker_command"]

READY_TIMEOUT_S = 30.0
START_DELAY_S = 0.3
POLL_S = 1.0
STOP_GRACE_S = 10.0

Sink = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class WorkerFiles:
    """Where worker ``i`` writes its summary, live figures and outcome log."""

    directory: Path

    def summary(self, index: int) -> Path:
        """Worker ``index``'s full summary (with histograms)."""
        return self.directory / f"worker-{index}.json"

    def live(self, index: int) -> Path:
        """Worker ``index``'s live file."""
        return self.directory / f"worker-{index}.live.json"

    def outcomes(self, index: int) -> Path:
        """Worker ``index``'s outcome log."""
        return self.summary(index).with_suffix(".outcomes.jsonl")


def worker_command(settings: LoadSettings, index: int, count: int, files: WorkerFiles,
                   parent_pid: int) -> list[str]:
    """The command line of worker ``index`` of ``count``."""
    return [
        sys.executable, "-m", "gameday", "load", "--url", settings.url,
        "--rate", repr(settings.rate_rps), "--duration", repr(settings.duration_s),
        "--method", settings.method, "--timeout-s", repr(settings.timeout_s),
        "--in-time-s", repr(settings.in_time_s), "--worker", f"{index}/{count}",
        "--json", str(files.summary(index)), "--live", str(files.live(index)),
        "--stop-with-parent", str(parent_pid),
        *order_template_args(settings.order_template),
        *unknown_status_args(settings.unknown_statuses),
    ]


def order_template_args(template: Mapping[str, Any] | None) -> list[str]:
    """``--order-template JSON`` for a load command, when there is a template."""
    return [] if template is None else ["--order-template", json.dumps(template)]


def unknown_status_args(statuses: Sequence[int]) -> list[str]:
    """``--unknown-status 502,504`` for a load command, when there are such statuses."""
    return ["--unknown-status", ",".join(str(s) for s in statuses)] if statuses else []


async def _spawn(commands: Sequence[list[str]]) -> list[asyncio.subprocess.Process]:
    """Start every worker (each in its own session: the parent forwards stops)."""
    return [await asyncio.create_subprocess_exec(
        *command, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        start_new_session=True) for command in commands]


async def _ready(procs: Sequence[asyncio.subprocess.Process]) -> None:
    """Wait until every worker has said ``ready``."""
    for proc in procs:
        assert proc.stdout is not None
        try:
            line = await asyncio.wait_for(proc.stdout.readline(), READY_TIMEOUT_S)
        except TimeoutError:
            line = b"nothing in %d s" % READY_TIMEOUT_S
        if line.strip() != b"ready":
            raise GamedayError(f"load worker {proc.pid} did not start (said {line!r})")


def _go(procs: Sequence[asyncio.subprocess.Process]) -> float:
    """Give every worker the same start time (unix), a moment from now."""
    start_unix = time.time() + START_DELAY_S
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write(f"{start_unix!r}\n".encode())
        proc.stdin.close()
    return start_unix


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _signal_all(procs: Sequence[asyncio.subprocess.Process], sig: int) -> None:
    for proc in procs:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(sig)


async def _wait_all(procs: Sequence[asyncio.subprocess.Process], timeout_s: float) -> bool:
    pending = [asyncio.ensure_future(proc.wait()) for proc in procs]
    _, still = await asyncio.wait(pending, timeout=timeout_s)
    for future in still:
        future.cancel()
    return not still


async def _stop_all(procs: Sequence[asyncio.subprocess.Process]) -> None:
    """Ask the workers to stop (SIGINT: they write their summary); SIGKILL if they hang."""
    _signal_all(procs, signal.SIGINT)
    if not await _wait_all(procs, STOP_GRACE_S):
        _signal_all(procs, signal.SIGKILL)
        await _wait_all(procs, STOP_GRACE_S)


async def _supervise(procs: Sequence[asyncio.subprocess.Process], files: WorkerFiles,
                     stop: asyncio.Event, *, merger: LiveMerger, sink: Sink | None,
                     deadline_s: float) -> None:
    """Merge live figures each second until every worker has exited or the deadline."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if stop.is_set() or any(p.returncode not in (None, 0) for p in procs):
            await _stop_all(procs)
        exited = await _wait_all(procs, POLL_S)
        lives = [_read_json(files.live(i)) for i in range(len(procs))]
        if sink is not None:
            sink(merger.update(lives, time.time()))
        if exited:
            return
    await _stop_all(procs)


def _concat(sources: Sequence[Path], target: Path) -> None:
    with target.open("wb") as out:
        for source in sources:
            if source.exists():
                with source.open("rb") as src:
                    shutil.copyfileobj(src, out)


def _summaries(procs: Sequence[asyncio.subprocess.Process],
               files: WorkerFiles) -> list[dict[str, Any]]:
    summaries = []
    for index, proc in enumerate(procs):
        summary = _read_json(files.summary(index))
        if summary is None:
            raise GamedayError(f"load worker {index} (pid {proc.pid}) wrote no summary "
                               f"(exit {proc.returncode})")
        summaries.append(summary)
    return summaries


async def run_workers(settings: LoadSettings, workers: int, stop: asyncio.Event,
                      sink: Sink | None = None,
                      outcomes_path: Path | None = None) -> dict[str, Any]:
    """Run the load in ``workers`` processes; returns the merged full summary."""
    with tempfile.TemporaryDirectory(prefix="gameday-load-") as tmp:
        files = WorkerFiles(Path(tmp))
        commands = [worker_command(settings, i, workers, files, os.getpid())
                    for i in range(workers)]
        procs = await _spawn(commands)
        try:
            await _ready(procs)
            header = LiveHeader(_go(procs), settings.rate_rps, settings.in_time_s,
                                settings.timeout_s)
            deadline_s = settings.duration_s + settings.timeout_s + READY_TIMEOUT_S
            await _supervise(procs, files, stop, merger=LiveMerger(header), sink=sink,
                             deadline_s=deadline_s)
        finally:
            await _stop_all(procs)
        merged = merge_summaries(_summaries(procs, files), settings.rate_rps,
                                 str(outcomes_path) if outcomes_path else None)
        if outcomes_path is not None:
            _concat([files.outcomes(i) for i in range(workers)], outcomes_path)
    return merged
