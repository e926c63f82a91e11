"""End to end: `gameday run` drives Chaos Toolkit against the real lab and judges strictly."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from support.labs import ROOT, PortBases, RunningLab, lab_env
from support.receiver import Receiver, receiver

from gameday.clients.http import request_json
from gameday.clients.prometheus import Prometheus
from gameday.engine.status import PHASES
from gameday.report.dashboard import FAULT_ANNOTATION, PHASE_ANNOTATION

EXPERIMENT = "experiments/broker-down.yaml"


def test_lab_status_json_lists_every_part(lab: RunningLab) -> None:
    result = lab.gameday("lab", "status", "--json")
    assert result.returncode == 0, result.stderr
    status = json.loads(result.stdout)
    assert status["running"] is True
    assert status["entry_url"] == f"http://127.0.0.1:{lab.port_base}"
    for key in ("prometheus_url", "fault_proxy_url", "broker_url", "broker_admin_url"):
        assert status[key].startswith("http://127.0.0.1:")
    assert [r["name"] for r in status["replicas"]] == ["replica-1", "replica-2", "replica-3"]
    assert all(r["running"] and r["pid"] > 0 for r in status["replicas"])
    assert status["setup"]["proxy program"] == "lab.faultproxy"
    assert status["setup"]["namespaces"] == "off"
    # The controllers the lab really has cgroups in (this machine offers all three).
    assert status["setup"]["cgroups"] == "freezer, cpu, memory per replica"
    text = lab.gameday("lab", "status").stdout
    assert "proxy program lab.faultproxy" in text


def _journal(reports: Path) -> dict[str, object]:
    journals = sorted(reports.glob("broker-down-*.journal.json"))
    assert journals, f"no journal in {reports}"
    return dict(json.loads(journals[-1].read_text()))


def test_broker_down_passes_end_to_end(lab: RunningLab, tmp_path: Path) -> None:
    started = time.time()
    result = lab.gameday("run", EXPERIMENT, "--reports", str(tmp_path))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert f"PASS  {EXPERIMENT}" in result.stdout
    assert "1 passed, 0 failed" in result.stdout
    journal = _journal(tmp_path)
    assert journal["status"] == "completed"
    runs = {r["activity"]["name"]: r for r in journal["run"]}  # type: ignore[attr-defined]
    assert runs["breaker-opened-within-bound"]["output"] is True
    assert runs["p95-latency-during-outage"]["output"] <= 1.0
    traffic = journal["extensions"][0]["summary"]  # type: ignore[index]
    assert traffic["sent"] > 200 * 25, "traffic ran for the whole experiment"
    assert traffic["errors"]["5xx"] > 0, "the outage must show in the client-side figures"
    assert "lab started" not in result.stdout, "a running lab must be reused"
    assert "phase: " not in result.stdout, "no live view when the output is not a terminal"
    assert f"reports: {tmp_path / 'index.html'}" in result.stdout
    page = next(tmp_path.glob("broker-down-*.html")).read_text()
    assert "PASS" in page and "<svg" in page
    _assert_dashboard_has_data(lab, started, time.time())


def _assert_dashboard_has_data(lab: RunningLab, start: float, end: float) -> None:
    """Every panel and annotation of the shipped Grafana dashboard found data in the lab's
    Prometheus during the game day, and the fault window is the broker link's."""
    shipped = json.loads((ROOT / "deploy" / "grafana" / "gameday.json").read_text())
    prometheus = Prometheus(json.loads(lab.gameday("lab", "status", "--json").stdout)
                            ["prometheus_url"])
    queries = [t["expr"] for panel in shipped["panels"] for t in panel["targets"]]
    queries += [a["expr"] for a in shipped["annotations"]["list"]]
    empty = [q for q in queries if not prometheus.query_range(q, start, end)]
    assert empty == [], f"dashboard queries without data during the game day: {empty}"
    faults = prometheus.query_range(FAULT_ANNOTATION, start, end)
    assert {(s.labels["experiment"], s.labels["fault"], s.labels["target"])
            for s in faults} == {("broker-down", "partition", "service-broker")}
    window = [t for s in faults for t, _ in s.points]
    assert 15 <= max(window) - min(window) <= 40, "the fault window spans the outage"
    phases = {s.labels["phase"] for s in prometheus.query_range(PHASE_ANNOTATION, start, end)}
    # the steady-state checks take well under the 1 s scrape interval: not always seen
    assert {"warm-up", "method"} <= phases <= set(PHASES), phases


def test_sabotaged_baseline_fails_naming_the_steady_state(lab: RunningLab, tmp_path: Path) -> None:
    admin = json.loads(lab.gameday("lab", "status", "--json").stdout)["broker_admin_url"]
    assert request_json("POST", admin + "/admin/mode", {"mode": "error", "status": 500}).status \
        == 200
    with receiver() as chat:
        try:
            result = lab.gameday("run", EXPERIMENT, "--reports", str(tmp_path), "--notify",
                                 chat.url, "--report-url", "https://ci.example.test/run/7/")
        finally:
            request_json("POST", admin + "/admin/reset", {})
    assert result.returncode == 1, result.stdout[-3000:]
    assert f"FAIL  {EXPERIMENT}" in result.stdout
    assert "baseline (before): sla-within-targets returned" in result.stdout
    assert "method:" not in result.stdout, "the method must not run on a failed baseline"
    assert "left injected after the run: broker simulator is in mode" in result.stdout
    _assert_told(chat, tmp_path)


def _assert_told(chat: Receiver, reports: Path) -> None:
    """The chat got start, the failure (with its reasons and report) and the end."""
    assert chat.events() == ["start", "experiment", "end"], chat.messages
    start, failed, end = (m["gameday"] for m in chat.messages)
    assert start["experiments"] == ["broker-down"] and start["service"] == "reference"
    assert failed["verdict"] == "FAIL" and failed["experiment"] == "broker-down"
    assert any("sla-within-targets" in reason for reason in failed["reasons"])
    page = failed["report"].removeprefix("https://ci.example.test/run/7/")
    assert (reports / page).is_file(), f"the failure links to {page}, not written"
    assert end["summary"] == "0 passed, 1 failed" and end["exit_code"] == 1
    assert end["report"] == "https://ci.example.test/run/7/index.html"
    assert all(m["text"].startswith("gameday: ") for m in chat.messages)


def test_run_starts_and_stops_a_lab_when_none_runs(tmp_path: Path,
                                                   port_bases: PortBases) -> None:
    env = lab_env(tmp_path / "state", port_bases.take(), tmp_path / "reports")
    lab = RunningLab(env, tmp_path / "state")
    result = lab.gameday("run", EXPERIMENT, "--reports", str(tmp_path / "reports"),
                         "--var", "outage_hold_s=0")
    # What this test is about is the lab's life around the run: started, judged, stopped.
    # The verdict itself is a measurement of a lab seconds old, beside the other pytest
    # worker's labs starting up (a CPU stall there once timed out every replica's broker
    # calls and opened a breaker in the baseline); broker-down's PASS is checked on a warm
    # lab by test_broker_down_passes_end_to_end. So any verdict will do here, as long as
    # the experiment was judged (never a crash or usage error) and nothing it broke was
    # left behind.
    output = result.stdout[-3000:] + result.stderr[-3000:]
    assert result.returncode in (0, 1, 4), output
    assert "experiments/broker-down.yaml" in result.stdout and "passed" in result.stdout, output
    assert "left injected" not in result.stdout, output
    assert not re.search(r"rollback \S+ (failed|interrupted)", result.stdout), output
    assert "lab started for this run" in result.stdout
    assert "lab stopped" in result.stdout
    status = json.loads(lab.gameday("lab", "status", "--json").stdout)
    assert status["running"] is False


def test_bad_input_exits_2_with_a_clear_message(tmp_path: Path,
                                                port_bases: PortBases) -> None:
    lab = RunningLab(lab_env(tmp_path, port_bases.take(), tmp_path), tmp_path)
    missing = lab.gameday("run", "experiments/nope.yaml")
    assert missing.returncode == 2
    assert "experiment experiments/nope.yaml does not exist" in missing.stderr
    bad_var = lab.gameday("run", EXPERIMENT, "--var", "no-equals")
    assert bad_var.returncode == 2 and "expected key=value" in bad_var.stderr
    assert "Traceback" not in missing.stderr + bad_var.stderr
    assert (ROOT / EXPERIMENT).exists()


def test_doctor_finds_leftovers_and_cleanup_undoes_them(lab: RunningLab) -> None:
    healthy = lab.gameday("lab", "doctor")
    assert healthy.returncode == 0, healthy.stdout
    assert "lab is healthy and nothing is injected" in healthy.stdout
    script = ("from gameday.faults import inject; from gameday.targets import get_target; "
              "t = get_target(); inject.partition(t, 'service-broker'); "
              "inject.broker_fail(t, {'mode': 'error', 'status': 503})")
    injected = subprocess.run([sys.executable, "-c", script], env=lab.env, cwd=ROOT,
                              capture_output=True, text=True, timeout=60, check=False)
    assert injected.returncode == 0, injected.stderr
    sick = lab.gameday("lab", "doctor")
    assert sick.returncode == 1
    assert "link service-broker is down" in sick.stdout
    assert "broker simulator is in mode" in sick.stdout
    cleaned = lab.gameday("cleanup")
    assert cleaned.returncode == 0, cleaned.stdout + cleaned.stderr
    assert "undone: partition {'link': 'service-broker'}" in cleaned.stdout
    assert "nothing left injected" in cleaned.stdout
    assert lab.gameday("lab", "doctor").returncode == 0


def test_junit_and_summary_table(lab: RunningLab, tmp_path: Path) -> None:
    junit = tmp_path / "junit.xml"
    result = lab.gameday("run", EXPERIMENT, "--junit", str(junit),
                         "--reports", str(tmp_path), "--var", "outage_hold_s=0")
    assert result.returncode == 0, result.stdout[-3000:]
    assert "experiment" in result.stdout and "trip_s" in result.stdout
    xml = junit.read_text()
    assert '<testcase classname="gameday.experiments" name="broker-down"' in xml
    assert 'failures="0"' in xml
    unknown = lab.gameday("run", "--tag", "nope")
    assert unknown.returncode == 2 and "known tags are" in unknown.stderr


CATALOG = sorted((ROOT / "experiments").glob("*.yaml"))


@pytest.mark.parametrize("path", CATALOG, ids=lambda p: p.stem)
def test_every_experiment_passes_chaos_validate(path: Path) -> None:
    result = subprocess.run(
        [str(Path(sys.executable).parent / "chaos"), "--no-version-check", "--no-log-file",
         "validate", str(path)], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "look valid" in result.stdout + result.stderr


def _without_lab_settings() -> dict[str, str]:
    return {k: v for k, v in os.environ.items()
            if k not in ("GAMEDAY_LAB_DIR", "GAMEDAY_LAB_PORT_BASE", "GAMEDAY_LAB_NETNS")}


def _ready_count(cwd: Path) -> subprocess.CompletedProcess[str]:
    code = "from probes.replicas import ready_count; print(ready_count())"
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=_without_lab_settings(),
                          capture_output=True, text=True, timeout=60, check=False)


def test_plain_chaos_run_finds_the_lab_from_any_directory(tmp_path: Path,
                                                          port_bases: PortBases) -> None:
    """A lab brought up at its default place (``./.lab``) is found by probes run from a
    directory below it (its record) and by ``chaos run`` from anywhere else (the note of
    the default lab); once it is down, a probe raises naming where it looked."""
    repo, below, elsewhere = tmp_path / "repo", tmp_path / "repo" / "sub", tmp_path / "else"
    below.mkdir(parents=True)
    elsewhere.mkdir()
    gameday = [sys.executable, "-m", "gameday", "lab"]
    up_env = {**_without_lab_settings(), "GAMEDAY_LAB_PORT_BASE": str(port_bases.take())}
    up = subprocess.run([*gameday, "up"], cwd=repo, env=up_env, capture_output=True,
                        text=True, timeout=120, check=False)
    assert up.returncode == 0, up.stdout + up.stderr
    try:
        counted = _ready_count(below)
        assert counted.stdout.strip() == "3", counted.stdout + counted.stderr
        journal = tmp_path / "journal.json"
        result = subprocess.run(
            [str(Path(sys.executable).parent / "chaos"), "--no-version-check", "--no-log-file",
             "run", "--rollback-strategy", "always", "--journal-path", str(journal),
             str(ROOT / "experiments" / "pod-kill.yaml")],
            cwd=elsewhere, env=_without_lab_settings(), capture_output=True, text=True,
            timeout=300, check=False)
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
        judged = subprocess.run([sys.executable, "-m", "gameday", "judge", str(journal)],
                                cwd=elsewhere, capture_output=True, text=True, timeout=60,
                                check=False)
        assert judged.stdout.startswith("PASS"), judged.stdout
    finally:
        down = subprocess.run([*gameday, "down"], cwd=repo, env=_without_lab_settings(),
                              capture_output=True, text=True, timeout=60, check=False)
        assert down.returncode == 0, down.stdout + down.stderr
    gone = _ready_count(elsewhere)
    assert gone.returncode != 0
    assert "no lab is running: looked for the lab in" in gone.stderr, gone.stderr
    assert "GAMEDAY_LAB_DIR" in gone.stderr


def _pane(session: str) -> str:
    return subprocess.run(["tmux", "capture-pane", "-p", "-t", session], capture_output=True,
                          text=True, timeout=10, check=False).stdout


def _wait_for_pane(session: str, wanted: Callable[[str], bool], timeout_s: float) -> str:
    deadline = time.monotonic() + timeout_s
    pane = _pane(session)
    while not wanted(pane) and time.monotonic() < deadline:
        time.sleep(0.5)
        pane = _pane(session)
    return pane


def test_the_live_view_shows_phase_and_fault_in_a_terminal(lab: RunningLab,
                                                           tmp_path: Path) -> None:
    """A real terminal (tmux): mid-fault, the status area names the phase and the fault."""
    session = f"gameday-live-{os.getpid()}-{lab.port_base}"
    command = shlex.join(["env", *(f"{k}={v}" for k, v in lab.env.items()), sys.executable,
                          "-m", "gameday", "run", EXPERIMENT, "--reports", str(tmp_path)])
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "150", "-y", "40",
                    "-c", str(ROOT), f"{command}; echo EXIT=$?; sleep 300"],
                   check=True, timeout=10)
    try:
        mid = _wait_for_pane(session, lambda p: "FAULT" in p or "EXIT=" in p, 90)
        done = _wait_for_pane(session, lambda p: "EXIT=" in p, 180)
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], timeout=10, check=False)
    assert "phase: method" in mid and "FAULT  partition service-broker  on for" in mid, mid
    assert "breakers: replica-1 " in mid and "client SLA (last 10 s): " in mid, mid
    assert "EXIT=0" in done and "PASS  experiments/broker-down.yaml" in done, done
    console = next(tmp_path.glob("broker-down-*.console.log")).read_text()
    assert "Steady state hypothesis" in console, "chaos' console went to its file"


def _lab_state(lab: RunningLab) -> tuple[object, object, str]:
    status = json.loads(lab.gameday("lab", "status", "--json").stdout)
    proxies = request_json("GET", status["fault_proxy_url"] + "/proxies").body
    mode = request_json("GET", status["broker_admin_url"] + "/admin/mode").body
    record = lab.state_dir / "injected.jsonl"
    return proxies, mode, record.read_text() if record.exists() else ""


def test_a_dry_run_of_the_catalog_injects_nothing(lab: RunningLab, tmp_path: Path) -> None:
    before = _lab_state(lab)
    result = lab.gameday("run", "--dry-run", "--reports", str(tmp_path))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    catalog = sorted((ROOT / "experiments").glob("*.yaml"))
    assert f"{len(catalog)} experiment(s)" in result.stdout
    assert "nothing was injected (dry run)" in result.stdout
    assert _lab_state(lab) == before, "the fault proxy, broker or fault record changed"
    assert not list(tmp_path.glob("*.journal.json")), "a dry run runs no experiment"
    bad = tmp_path / "bad.yaml"
    bad.write_text((ROOT / EXPERIMENT).read_text().replace("func: partition", "func: partitoin"))
    refused = lab.gameday("run", "--dry-run", EXPERIMENT, str(bad))
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "partitoin" in refused.stderr and "Traceback" not in refused.stderr
    assert _lab_state(lab) == before
