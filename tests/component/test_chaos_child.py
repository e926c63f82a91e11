"""A Ctrl-C at any moment of a ``chaos run`` child ends it without a traceback: before
Chaos Toolkit has imported, the child is stopped outright; once it runs, it gets one
SIGINT and runs its rollbacks.

The experiment is a real one for the real ``chaos`` (no target): its method sleeps in a
process, its rollback writes a file, so the test sees whether the rollback ran. To hit the
start-up window every time, a ``sitecustomize`` makes the child's start-up slow.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

RUNNER = textwrap.dedent("""
    import json, os, signal, sys
    from gameday.engine.chaosproc import run_chaos
    # as at a terminal, even when the tests run where SIGINT is ignored (a background job)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        ended = run_chaos(sys.argv[1:], os.environ, 30.0)
    except KeyboardInterrupt:
        print("KeyboardInterrupt reached the runner", flush=True)
        raise SystemExit(3)
    print(json.dumps({"returncode": ended.returncode, "interrupted": ended.interrupted}))
""")


SLOW_START = textwrap.dedent("""
    import os, sys, time
    if os.environ.get("SLOW_CHILD_S") and "gameday.engine.chaosproc" in sys.orig_argv:
        time.sleep(float(os.environ["SLOW_CHILD_S"]))
""")


def _experiment(tmp_path: Path) -> Path:
    marker = tmp_path / "rolled-back"
    experiment = {
        "title": "sleeps, then rolls back", "description": "chaos child test",
        "method": [{"type": "action", "name": "sleep",
                    "provider": {"type": "process", "path": "sleep", "arguments": "20"}}],
        "rollbacks": [{"type": "action", "name": "mark",
                       "provider": {"type": "process", "path": "touch",
                                    "arguments": str(marker)}}],
    }
    path = tmp_path / "experiment.json"
    path.write_text(json.dumps(experiment), encoding="utf-8")
    return path


def _run_and_interrupt(tmp_path: Path, delay_s: float,
                       slow_child_s: float = 0.0) -> tuple[str, dict[str, object]]:
    slow = tmp_path / "slow"
    slow.mkdir()
    (slow / "sitecustomize.py").write_text(SLOW_START, encoding="utf-8")
    arguments = ["--no-version-check", "--log-file", str(tmp_path / "chaos.log"), "run",
                 "--rollback-strategy", "always", "--journal-path",
                 str(tmp_path / "journal.json"), str(_experiment(tmp_path))]
    env = {**os.environ, "SLOW_CHILD_S": str(slow_child_s),
           "PYTHONPATH": f"{slow}:{Path(__file__).resolve().parents[2]}"}
    process = subprocess.Popen([sys.executable, "-c", RUNNER, *arguments], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               start_new_session=True, text=True)
    time.sleep(delay_s)
    os.killpg(process.pid, signal.SIGINT)  # what a Ctrl-C at a terminal does
    printed, _ = process.communicate(timeout=60)
    last = printed.strip().splitlines()[-1] if printed.strip() else "{}"
    return printed, json.loads(last) if last.startswith("{") else {}


def test_interrupt_while_chaos_starts_stops_it_without_a_traceback(tmp_path: Path) -> None:
    started = time.monotonic()
    printed, ended = _run_and_interrupt(tmp_path, 1.0, slow_child_s=5.0)
    assert "Traceback" not in printed, printed
    assert ended == {"returncode": -signal.SIGKILL, "interrupted": True}, printed
    assert time.monotonic() - started < 4.0, "the child was not stopped outright"
    assert not (tmp_path / "journal.json").exists(), "chaos ran after the interruption"


@pytest.mark.parametrize("delay_s", [0.2, 0.3, 0.5])
def test_interrupt_just_after_start_prints_no_traceback(tmp_path: Path,
                                                        delay_s: float) -> None:
    printed, ended = _run_and_interrupt(tmp_path, delay_s)
    assert "Traceback" not in printed, printed
    assert ended.get("interrupted") is True, printed


def test_interrupt_during_the_method_runs_the_rollbacks(tmp_path: Path) -> None:
    printed, ended = _run_and_interrupt(tmp_path, 6.0)
    assert "Traceback" not in printed, printed
    assert ended == {"returncode": ended.get("returncode"), "interrupted": True}, printed
    assert (tmp_path / "rolled-back").exists(), printed
    journal = json.loads((tmp_path / "journal.json").read_text(encoding="utf-8"))
    assert journal["status"] in {"interrupted", "aborted"}, journal["status"]
