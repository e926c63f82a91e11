"""Bad input to the ``gameday`` commands other than ``run`` (and bad settings): exit 2,
one clear message, no traceback, no lab started. ``gameday run`` on a running lab:
tests/lab/test_bad_input.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.labs import ROOT, PortBases, RunningLab, lab_env
from support.refusals import assert_refused, text

GOOD = str(ROOT / "experiments" / "broker-down.yaml")


@pytest.fixture(scope="module")
def no_lab(tmp_path_factory: pytest.TempPathFactory,
           port_bases: PortBases) -> Iterator[RunningLab]:
    """An environment whose lab is not running (and must never be started): commands
    refused for bad input must not need one."""
    base = tmp_path_factory.mktemp("nolab")
    env = lab_env(base / "state", port_bases.take(), base / "reports")
    yield RunningLab(env, base / "state")
    subprocess.run([sys.executable, "-m", "gameday", "lab", "down"], cwd=ROOT, env=env,
                   capture_output=True, timeout=60, check=False)


def _gameday(lab: RunningLab, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gameday", *args], cwd=ROOT,
                          env={**lab.env, **env}, capture_output=True, text=True,
                          timeout=60, check=False)


JOURNALS: dict[str, tuple[str, str]] = {
    "not-json.json": ("not json", "cannot read journal"),
    "list.json": ("[1, 2]", "is not a Chaos Toolkit journal: it holds a list"),
    "experiment-string.json": ('{"experiment": "x", "status": "completed"}',
                               "experiment must be the experiment (a mapping)"),
    "run-of-numbers.json": ('{"experiment": {}, "status": "completed", "run": [1]}',
                            "run must be a list of mappings"),
    "start-number.json": ('{"experiment": {}, "status": "completed", "start": 5}',
                          "start must be an ISO 8601 time, not 5"),
    "run-start-word.json": ('{"experiment": {}, "status": "completed", "start": '
                            '"2026-01-01T00:00:00", "run": [{"activity": {}, "start": "zz"}]}',
                            "run must be a list of mappings (with ISO 8601 start and end"),
}


@pytest.mark.parametrize("command", ["judge", "report"])
@pytest.mark.parametrize("name", [*sorted(JOURNALS), "missing.json"])
def test_a_bad_journal_is_refused(no_lab: RunningLab, tmp_path: Path, command: str,
                                  name: str) -> None:
    for file_name, (content, _) in JOURNALS.items():
        (tmp_path / file_name).write_text(content)
    message = JOURNALS.get(name, ("", "No such file or directory"))[1]
    extra = ["--prometheus", "", "-o", str(tmp_path / "out")] if command == "report" else []
    assert_refused(_gameday(no_lab, command, *extra, str(tmp_path / name)), message)


def _journal(tmp_path: Path) -> str:
    path = tmp_path / "ok.journal.json"
    path.write_text(json.dumps({"experiment": {"title": "t"}, "status": "completed",
                                "start": "2026-01-01T00:00:00"}))
    return str(path)


@pytest.mark.parametrize(("args", "message"), [
    (["--margin", "-1"], "--margin -1.0 is invalid"),
    (["--margin", "abc"], "argument --margin: invalid float value"),
    (["-o", "FILE"], "is a file: name a directory for the reports"),
])
def test_bad_report_options_are_refused(no_lab: RunningLab, tmp_path: Path, args: list[str],
                                        message: str) -> None:
    journal = _journal(tmp_path)
    args = [journal if a == "FILE" else a for a in args]
    assert_refused(_gameday(no_lab, "report", "--prometheus", "", *args, journal), message)


LOAD = ["load", "--url", "http://127.0.0.1:9/orders", "--rate", "5", "--duration", "1"]


@pytest.mark.parametrize(("args", "message"), [
    (["--rate", "0"], "--rate must be a finite number > 0, got 0.0"),
    (["--rate", "abc"], "argument --rate: invalid float value: 'abc'"),
    (["--rate", "inf"], "--rate must be a finite number > 0, got inf"),
    (["--duration", "nan"], "--duration must be a finite number > 0"),
    (["--in-time-s", "-1"], "--in-time-s must be a finite number > 0"),
    (["--workers", "0"], "--workers must be 1..64"),
    (["--url", "notaurl"], "--url 'notaurl' is not an HTTP URL"),
    (["--url", "ftp://127.0.0.1/x"], "is not an HTTP URL"),
    (["--json", "/nonexistent-dir/x.json"], "expected a file in an existing directory"),
    (["--json", "/tmp"], "--json /tmp: expected a file in an existing directory"),
    (["--live", "/nonexistent-dir/live.json"], "expected a file in an existing directory"),
    (["--stop-with-parent", "-3"], "--stop-with-parent must be a process id > 0"),
    (["--method", "DELETE"], "argument --method: invalid choice: 'DELETE'"),
    (["--unknown-status", "502,x"], "is not a comma-separated list of HTTP statuses"),
    (["--unknown-status", "700"], "[700] are not HTTP statuses: valid are 100..599"),
], ids=str)
def test_bad_load_options_are_refused(no_lab: RunningLab, args: list[str],
                                      message: str) -> None:
    assert_refused(_gameday(no_lab, *LOAD, *args), message)


@pytest.mark.parametrize(("variable", "value", "message"), [
    ("GAMEDAY_LAB_PORT_BASE", "abc", "GAMEDAY_LAB_PORT_BASE='abc' is not an integer port"),
    ("GAMEDAY_LAB_PORT_BASE", "80", "GAMEDAY_LAB_PORT_BASE=80 is out of range: valid is 1024"),
    ("GAMEDAY_LAB_PORT_BASE", "70000", "GAMEDAY_LAB_PORT_BASE=70000 is out of range"),
    ("GAMEDAY_LAB_NETNS", "maybe", "GAMEDAY_LAB_NETNS='maybe' is not a switch"),
    ("GAMEDAY_LAB_DIR", "", "GAMEDAY_LAB_DIR is empty"),
    ("GAMEDAY_LAB_DIR", GOOD, "is a file: name a directory"),
])
@pytest.mark.parametrize("command", [["lab", "status"], ["lab", "doctor"], ["lab", "up"],
                                     ["lab", "down"], ["cleanup"], ["run", GOOD]],
                         ids=" ".join)
def test_bad_lab_settings_are_refused(no_lab: RunningLab, variable: str, value: str,
                                      message: str, command: list[str]) -> None:
    assert_refused(_gameday(no_lab, *command, **{variable: value}), message)


@pytest.mark.parametrize("command", [["lab", "up"], ["run", GOOD]], ids=" ".join)
def test_a_bad_sabotage_is_refused(no_lab: RunningLab, command: list[str]) -> None:
    result = _gameday(no_lab, *command, GAMEDAY_LAB_SABOTAGE="no-brakes")
    assert_refused(result, "GAMEDAY_LAB_SABOTAGE has unknown ['no-brakes']: valid are")


@pytest.mark.parametrize("command", [["cleanup"], ["run", GOOD]], ids=" ".join)
def test_an_unknown_target_is_refused(no_lab: RunningLab, command: list[str]) -> None:
    result = _gameday(no_lab, *command, GAMEDAY_TARGET="mars")
    assert_refused(result, "GAMEDAY_TARGET='mars' is not a target: valid targets are lab, "
                            "kubernetes")


@pytest.mark.parametrize(("args", "message"), [
    (["frobnicate"], "invalid choice: 'frobnicate'"),
    (["lab"], "the following arguments are required: ACTION"),
    (["lab", "explode"], "invalid choice: 'explode'"),
    (["judge"], "the following arguments are required: journal"),
    (["report"], "the following arguments are required: JOURNAL"),
    (["cleanup", "--target", "mars"], "invalid choice: 'mars'"),
], ids=" ".join)
def test_bad_commands_are_refused(no_lab: RunningLab, args: list[str], message: str) -> None:
    assert_refused(_gameday(no_lab, *args), message)


@pytest.mark.parametrize(("args", "env", "message"), [
    (["--notify", "ftp://hooks.example.test/s3cret"], {},
     "--notify must be an http:// or https:// URL with a host, got ftp://hooks.example.test"),
    ([], {"GAMEDAY_NOTIFY_URL": "hooks.example.test/s3cret"},
     "$GAMEDAY_NOTIFY_URL must be an http:// or https:// URL with a host"),
    (["--report-url", "https://ci.example.test/7"], {},
     "--report-url is only used with --notify URL"),
], ids=["scheme", "env-no-scheme", "report-url-alone"])
def test_a_bad_notify_url_is_refused_without_its_secret(
    no_lab: RunningLab, args: list[str], env: dict[str, str], message: str
) -> None:
    result = _gameday(no_lab, "run", GOOD, *args, **env)
    assert_refused(result, message)
    assert "s3cret" not in text(result)


def test_no_lab_was_started_by_the_refused_commands(no_lab: RunningLab) -> None:
    status = _gameday(no_lab, "lab", "status")
    assert status.returncode == 0 and "lab: not running" in status.stdout, text(status)
    assert not os.path.exists(no_lab.state_dir / "supervisord.conf")
