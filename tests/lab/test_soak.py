"""The soak (``make soak``, ``python -m bench.soak``): its pure parts exhaustively (fault
schedule, memory growth and judging, option checks, verdict), then short real runs on
a lab of their own (a port base from ``port_bases``): one to the end, one
interrupted with Ctrl-C in the middle of a fault."""

from __future__ import annotations

import os
import re
import select
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from support.labs import PortBases

from gameday.faults.record import InjectionLog

ROOT = Path(__file__).resolve().parents[2]
REPLICAS = ["replica-1", "replica-2", "replica-3"]
ROLES = ["supervisord", "broker", "faultproxy", "haproxy", "prometheus", *REPLICAS]
# --- the fault schedule ---

def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def _soak_command(port_base: int, *args: str) -> list[str]:
    return [sys.executable, "-m", "bench.soak", "--port-base", str(port_base), *args]


@pytest.mark.lab
def test_short_soak_end_to_end(port_bases: PortBases) -> None:
    port_base = port_bases.take()
    command = _soak_command(port_base, "--duration-s", "20", "--warmup-s", "5", "--seed", "3",
                            "--no-warmup-faults")
    done = subprocess.run(command,
                          cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    out = done.stdout
    assert "seed 3 (repeat with --seed 3)" in out, out + done.stderr
    table = out.split("== memory")[1].split("\n\n")[0].splitlines()[1:]
    assert table[0].split()[:6] == ["process", "pid", "rss_start", "rss_mid", "rss_end", "rss_%"]
    rows = {line.split()[0]: line.split() for line in table[1:] if line.split()[0] in ROLES}
    assert sorted(rows) == sorted(ROLES)
    for role, row in rows.items():
        assert min(float(row[2]), float(row[3]), float(row[4])) > 0, role  # MiB
        assert re.fullmatch(r"[+-]\d+\.\d", row[5]), role  # growth %
        assert row[7] in ("PASS", "FAIL", "-"), role
    assert rows["prometheus"][7] == "-" and rows["replica-1"][7] in ("PASS", "FAIL")
    reconciliation = re.search(r"^reconciliation: acked=(\d+) filled=(\d+) lost=(\d+) "
                               r"duplicated=(\d+) unknown_outcome=(\d+) failed_but_filled=(\d+) "
                               r"unknown=(\d+) unknown_filled=(\d+)$", out, re.MULTILINE)
    assert reconciliation, out
    orders = re.search(r"^orders: due=(\d+) sent=(\d+) ok=(\d+) failed=(\d+) unknown=(\d+)",
                       out, re.MULTILINE)
    assert orders and int(orders[1]) >= 200 * (5 + 20), out
    assert int(orders[3]) == int(reconciliation[1])  # every ok answer was reconciled
    faults = re.search(r"^faults: injected=(\d+)", out, re.MULTILINE)
    assert faults and int(faults[1]) >= 1, out
    assert "injection record: injected=" in out and "pending=0" in out
    verdict = re.search(r"^verdict: (PASS|FAIL)", out, re.MULTILINE)
    assert verdict, out
    assert done.returncode == (0 if verdict[1] == "PASS" else 1), out + done.stderr
    if int(reconciliation[3]) or int(reconciliation[4]):
        assert verdict[1] == "FAIL"
    assert _port_free(port_base), "the soak left its lab running"


def _first_fault_undoable_seed(soak: SimpleNamespace) -> int:
    """A seed whose first fault (the warm-up round's) has an undo: not a kill."""
    return next(seed for seed in range(100)
                if soak.plan.warmup_schedule(seed, REPLICAS)[0].action != "kill")


def _wait_for_output(process: subprocess.Popen[bytes], pattern: str, timeout_s: float) -> str:
    """Read the process' stdout (unbuffered) until ``pattern`` shows up in it."""
    assert process.stdout is not None
    fd = process.stdout.fileno()
    deadline = time.monotonic() + timeout_s
    seen = b""
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        chunk = os.read(fd, 65536) if ready else b""
        seen += chunk
        if re.search(pattern, seen.decode(errors="replace")):
            return seen.decode(errors="replace")
        if ready and not chunk:
            break  # end of output: the process is gone
    raise AssertionError(f"no output matching {pattern!r} in:\n{seen.decode(errors='replace')}")


@pytest.mark.lab
def test_interrupted_soak_undoes_its_faults_and_stops_the_lab(
        soak: SimpleNamespace, tmp_path: Path, port_bases: PortBases) -> None:
    port_base = port_bases.take()
    state = tmp_path / "state"
    seed = _first_fault_undoable_seed(soak)
    command = _soak_command(port_base, "--duration-s", "60", "--warmup-s", "5", "--seed", str(seed),
                            "--state-dir", str(state))
    with subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE) as process:
        try:
            _wait_for_output(process, r"\] inject ", timeout_s=120)
            time.sleep(1.0)  # the fault (held 5 s) is injected now
            process.send_signal(signal.SIGINT)
            raw_out, raw_err = process.communicate(timeout=120)
        finally:
            if process.poll() is None:
                process.kill()
    err = raw_err.decode(errors="replace")
    assert process.returncode == 130, err
    assert "soak interrupted" in err
    assert "undid 1 fault(s) left injected" in raw_out.decode(errors="replace")
    log = InjectionLog(state)
    assert [e for e in log.entries() if e["event"] == "injected"], "nothing was injected"
    assert log.pending() == []
    assert _port_free(port_base)
    assert not (state / "supervisor.sock").exists() or not _supervisor_up(state)


def _supervisor_up(state: Path) -> bool:
    from lab.supervisor_client import SupervisorClient  # noqa: PLC0415

    return SupervisorClient(state / "supervisor.sock").is_up()
