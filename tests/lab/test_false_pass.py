"""No false pass: when gameday cannot see, the experiment fails and says why.

Each test breaks one thing the measurement depends on, in a real lab of its own, while
a real ``gameday run`` of the broker-down experiment is under way: Prometheus goes down,
a metric gets renamed, the target's entry point becomes unreachable, the load generator
dies, a control cannot be loaded. The run must fail (exit 1) with a reason that names
the cause, and the lab is put back as it was afterwards.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml
from support.labs import ROOT, PortBases, RunningLab, running_lab

EXPERIMENT = ROOT / "experiments" / "broker-down.yaml"
SHORT = ("--var", "outage_hold_s=0")
RUN_TIMEOUT_S = 240.0
METHOD_STARTED = "Playing your experiment's method now"
RENAMED = "broker_orders_handled_total"


@pytest.fixture(scope="module")
def own_lab(tmp_path_factory: pytest.TempPathFactory,
            port_bases: PortBases) -> Iterator[RunningLab]:
    """A lab of its own: these tests stop parts of it."""
    with running_lab(tmp_path_factory.mktemp("false-pass-lab"), port_bases.take()) as running:
        yield running


def supervisorctl(lab: RunningLab, *args: str) -> str:
    """Drive the lab's supervisord, as an operator would."""
    command = [str(Path(sys.executable).parent / "supervisorctl"),
               "-c", str(lab.state_dir / "supervisord.conf"), *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    return done.stdout + done.stderr


@contextmanager
def stopped_while(lab: RunningLab, program: str) -> Iterator[None]:
    """Within the block the lab's ``program`` may be stopped; afterwards it runs and the
    lab is ready again."""
    try:
        yield
    finally:
        supervisorctl(lab, "start", program)
        ready = lab.gameday("lab", "up", timeout_s=120)
        assert ready.returncode == 0, ready.stdout + ready.stderr


def start_run(lab: RunningLab, reports: Path, *args: str) -> subprocess.Popen[str]:
    """``gameday run`` of broker-down (shortened), in the background."""
    return subprocess.Popen(
        [sys.executable, "-m", "gameday", "run", *args, "--reports", str(reports), *SHORT],
        cwd=ROOT, env=lab.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finish(process: subprocess.Popen[str]) -> str:
    """Wait for the run; its output."""
    try:
        output, _ = process.communicate(timeout=RUN_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
        pytest.fail(f"gameday run did not end within {RUN_TIMEOUT_S} s:\n{output[-3000:]}")
    return output


def wait_for_log(reports: Path, text: str, timeout_s: float = 120.0) -> None:
    """Wait until the experiment's Chaos Toolkit log says ``text``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if any(text in log.read_text(errors="replace") for log in reports.glob("*.chaos.log")):
            return
        time.sleep(0.2)
    pytest.fail(f"the chaos log never said {text!r}")


def wait_for_file(path: Path, timeout_s: float = 60.0) -> None:
    """Wait until ``path`` exists."""
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.1)


def verdict_of(output: str) -> str:
    """The verdict block: the FAIL/PASS line and its reasons."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(("FAIL", "PASS")))
    end = next((i for i in range(start + 1, len(lines)) if not lines[i].startswith(" ")),
               len(lines))
    return "\n".join(lines[start:end])


def assert_failed_because(process: subprocess.Popen[str], *causes: str) -> str:
    """The run failed (exit 1) and its verdict names every one of ``causes``."""
    output = finish(process)
    assert process.returncode == 1, output[-3000:]
    verdict = verdict_of(output)
    assert verdict.startswith("FAIL"), verdict
    for cause in causes:
        assert cause in verdict, f"{cause!r} not in the verdict:\n{verdict}"
    assert "Traceback" not in output
    return verdict


def test_prometheus_down_during_the_method(own_lab: RunningLab, tmp_path: Path) -> None:
    prometheus = own_lab.env["GAMEDAY_LAB_PORT_BASE"]
    port = int(prometheus) + 2
    with stopped_while(own_lab, "prometheus"):
        process = start_run(own_lab, tmp_path, str(EXPERIMENT))
        wait_for_log(tmp_path, METHOD_STARTED)
        assert "stopped" in supervisorctl(own_lab, "stop", "prometheus")
        assert_failed_because(process, f"Prometheus at http://127.0.0.1:{port} could not answer",
                              "Connection refused")


def test_a_renamed_metric(own_lab: RunningLab, tmp_path: Path) -> None:
    config = own_lab.state_dir / "prometheus.yml"
    original = config.read_text()
    scrape = yaml.safe_load(original)
    job = next(j for j in scrape["scrape_configs"] if j["job_name"] == "broker-integration")
    job["metric_relabel_configs"] = [{
        "source_labels": ["__name__"], "regex": "broker_orders_total",
        "target_label": "__name__", "replacement": RENAMED}]
    try:
        config.write_text(yaml.safe_dump(scrape))
        reload_prometheus(own_lab)
        time.sleep(12)  # longer than the SLA window: the old name has no samples in it
        process = start_run(own_lab, tmp_path, str(EXPERIMENT))
        assert_failed_because(process, "baseline (before): probe sla-within-targets could not "
                              "measure", "broker_orders_total", "missing, renamed")
    finally:
        config.write_text(original)
        reload_prometheus(own_lab)


def reload_prometheus(lab: RunningLab) -> None:
    """SIGHUP the lab's Prometheus (by the PID its supervisord reports) to reread its
    configuration."""
    pid = int(supervisorctl(lab, "pid", "prometheus").strip())
    os.kill(pid, signal.SIGHUP)
    time.sleep(2)


def test_the_target_unreachable(own_lab: RunningLab, tmp_path: Path) -> None:
    port = int(own_lab.env["GAMEDAY_LAB_PORT_BASE"])
    with stopped_while(own_lab, "haproxy"):
        process = start_run(own_lab, tmp_path, str(EXPERIMENT))
        wait_for_file(tmp_path / "traffic" / "shared.live.json")
        assert "stopped" in supervisorctl(own_lab, "stop", "haproxy")
        verdict = assert_failed_because(
            process, "control gameday-traffic: the target is unreachable",
            f"could not connect to http://127.0.0.1:{port}/orders")
        assert "status is 'interrupted'" in verdict


def test_the_load_generator_dies(own_lab: RunningLab, tmp_path: Path) -> None:
    process = start_run(own_lab, tmp_path, str(EXPERIMENT))
    wait_for_log(tmp_path, METHOD_STARTED)
    load_pid = int((tmp_path / "traffic" / "shared.pid").read_text())
    os.kill(load_pid, signal.SIGKILL)  # a child of the run this test started
    assert_failed_because(process, "control gameday-traffic: the load generator stopped",
                          "the traffic the SLA was measured on is missing")


def test_a_control_that_fails_to_load(own_lab: RunningLab, tmp_path: Path) -> None:
    experiment = yaml.safe_load(EXPERIMENT.read_text())
    experiment["controls"].append({"name": "audit", "provider": {
        "type": "python", "module": "gameday_audit_trail_missing"}})
    path = tmp_path / "broker-down-with-audit.yaml"
    path.write_text(yaml.safe_dump(experiment))
    process = start_run(own_lab, tmp_path / "reports", str(path))
    assert_failed_because(process, "gameday_audit_trail_missing")


HOG_S = 90.0
# One busy process: spins until HOG_S have passed, then exits by itself.
HOG = f"import time\nend = time.monotonic() + {HOG_S}\nwhile time.monotonic() < end: pass\n"


@contextmanager
def other_work(processes: int) -> Iterator[None]:
    """Busy processes that are neither the lab's nor gameday's (a build beside the game
    day), each stopped by its PID afterwards."""
    hogs = [subprocess.Popen([sys.executable, "-c", HOG]) for _ in range(processes)]
    try:
        yield
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait(timeout=10)


def test_a_baseline_failed_on_a_machine_starved_by_other_work_is_inconclusive(
        own_lab: RunningLab, tmp_path: Path) -> None:
    # A p95 bound no baseline meets, so that the baseline fails whatever the machine.
    with other_work(processes=2 * (os.cpu_count() or 1)):
        process = start_run(own_lab, tmp_path, str(EXPERIMENT), "--var",
                            "sla_p95_latency_max_s=0.001")
        output = finish(process)
    assert process.returncode == 4, output[-3000:]
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("INCONCLUSIVE"))
    verdict = "\n".join(lines[start:start + 4])
    assert "the machine was starved before any fault: other processes than the lab's and " \
           "gameday's took" in verdict, verdict
    assert "not judged, as the machine was starved: baseline (before): sla-within-targets " \
           "returned" in verdict, verdict
    assert "method:" not in output
    # Read back later, the journal gives the run's verdict: judged with its --var bound
    # and its machine figures, not again with the experiment's own 1 s bound.
    journal = next(tmp_path.glob("*.journal.json"))
    for command in (("judge", str(journal)),
                    ("report", str(journal), "--out", str(tmp_path / "again"),
                     "--prometheus", "")):
        again = own_lab.gameday(*command)
        assert again.returncode == 4, again.stdout + again.stderr
    judged = own_lab.gameday("judge", str(journal)).stdout
    assert judged.startswith("INCONCLUSIVE") and "the machine was starved" in judged, judged
