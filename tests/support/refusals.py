"""Checks shared by the bad-input tests: a command refused for bad input exits 2 with a
message naming the problem, prints no traceback, and starts nothing."""

from __future__ import annotations

import subprocess


def text(result: subprocess.CompletedProcess[str]) -> str:
    """Everything a command printed."""
    return result.stdout + result.stderr


def assert_refused(result: subprocess.CompletedProcess[str], message: str) -> None:
    """The command exited 2, said ``message`` on stderr, and ran and started nothing."""
    output = text(result)
    assert result.returncode == 2, output[-3000:]
    assert "Traceback" not in output, output
    assert message in result.stderr, output
    assert "running " not in result.stdout and "lab started" not in result.stdout, output
