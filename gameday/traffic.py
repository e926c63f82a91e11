"""Chaos Toolkit control: order traffic for the whole experiment, from the load generator.

Declare it in an experiment::

    controls:
      - name: traffic
        provider:
          type: python
          module: gameday.traffic
          arguments: {rate_rps: 200, warmup_s: 12}

Before the experiment it starts ``gameday load`` against the target's entry point and
waits ``warmup_s`` so that the SLA windows hold data; after the experiment it stops the
load and adds the load generator's summary to the journal as the extension
``gameday-traffic`` (its ``outcomes_path`` names the log of every order's outcome).
While it runs, the load generator keeps a live file of its finished seconds
(``traffic_files().live``) from which client-side SLA probes compute
:func:`gameday.clientsla.client_sla`. The load runs in its own process (its timing
is not disturbed by Chaos Toolkit's threads) and stops by itself after
``max_duration_s`` or when the Chaos Toolkit process goes away.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, NamedTuple

from chaoslib.exceptions import InterruptExecution

from gameday.targets import get_target

__all__ = [
    "TrafficFiles",
    "after_experiment_control",
    "before_experiment_control",
    "traffic_files",
]

EXTENSION_NAME = "gameday-traffic"
STOP_TIMEOUT_S = 15.0


class TrafficFiles(NamedTuple):
    """The files of one experiment's load (unpacks as ``pid, summary, live``)."""

    pid: Path
    summary: Path
    live: Path


def traffic_files(pid: int | None = None) -> TrafficFiles:
    """Where the load of the Chaos Toolkit process ``pid`` (default: this one) keeps its
    PID, summary and live file, in ``$GAMEDAY_RUN_DIR/traffic/`` (default ``reports``)."""
    run_dir = Path(os.environ.get("GAMEDAY_RUN_DIR", "reports")) / "traffic"
    run_dir.mkdir(parents=True, exist_ok=True)
    key = pid or os.getpid()
    return TrafficFiles(run_dir / f"load-{key}.pid", run_dir / f"load-{key}.json",
                        run_dir / f"load-{key}.live.json")


def _load_command(url: str, rate_rps: float, max_duration_s: float, files: TrafficFiles,
                  workers: int = 1) -> list[str]:
    return [
        sys.executable, "-m", "gameday", "load", "--url", url, "--rate", str(rate_rps),
        "--duration", str(max_duration_s), "--json", str(files.summary),
        "--live", str(files.live), "--workers", str(workers),
        "--stop-with-parent", str(os.getpid()),
    ]


def before_experiment_control(  # noqa: PLR0917 (Chaos Toolkit calls it so)
    context: dict[str, Any], configuration: dict[str, Any] | None = None,
    secrets: dict[str, Any] | None = None, rate_rps: float = 200.0, warmup_s: float = 12.0,
    max_duration_s: float = 900.0, workers: int = 1, **kwargs: Any,
) -> None:
    """Start order traffic at ``rate_rps`` (split over ``workers`` processes) and wait
    ``warmup_s`` seconds; the load stops by itself after ``max_duration_s``."""
    files = traffic_files()
    pid_file, out = files.pid, files.summary
    for stale in (out, files.live, out.with_suffix(".outcomes.jsonl")):
        stale.unlink(missing_ok=True)
    url = get_target().entry_url() + "/orders"
    command = _load_command(url, rate_rps, max_duration_s, files, int(workers))
    with out.with_suffix(".log").open("w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    pid_file.write_text(str(process.pid))
    deadline = time.monotonic() + warmup_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise InterruptExecution(
                f"the load generator died at start (exit {process.returncode}); "
                f"see {out.with_suffix('.log')}")
        time.sleep(0.2)


def _exited(pid: int) -> bool:
    """True once our child ``pid`` has exited (reaping it), never signalling it."""
    try:
        reaped, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True
    return reaped == pid


def _wait_exit(pid: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if _exited(pid):
            return True
        time.sleep(0.1)
    return _exited(pid)


def _stop(pid: int) -> None:
    """Ask the load to stop (SIGINT: it writes its summary), SIGKILL it if it hangs."""
    if _exited(pid):
        return
    os.kill(pid, signal.SIGINT)
    if not _wait_exit(pid, STOP_TIMEOUT_S):
        os.kill(pid, signal.SIGKILL)
        _wait_exit(pid, 5.0)


def after_experiment_control(
    context: dict[str, Any], state: dict[str, Any],
    configuration: dict[str, Any] | None = None, secrets: dict[str, Any] | None = None,
    **kwargs: Any,
) -> None:
    """Stop the traffic and add its summary to the journal (extension ``gameday-traffic``)."""
    pid_file, out, _ = traffic_files()
    if not pid_file.exists():
        return
    _stop(int(pid_file.read_text()))
    pid_file.unlink(missing_ok=True)
    extension: dict[str, Any] = {"name": EXTENSION_NAME}
    if out.exists():
        extension["summary"] = json.loads(out.read_text(encoding="utf-8"))
    else:
        extension["error"] = f"the load generator wrote no summary ({out} missing)"
    state.setdefault("extensions", []).append(extension)
