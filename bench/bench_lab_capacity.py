"""Lab capacity without faults: orders/s through HAProxy and the latency they get.

Figures, each the median of 3 runs on one fresh lab (HAProxy → fault proxy → 3 replicas
→ fault proxy → broker simulator with its SQLite ledger; port base 26000):

- wrk closed loop (2 threads, 32 connections, 10 s, unique client order ids): orders/s
  and the p50/p95/p99 latency at that maximum;
- gameday's open-model load at fixed rates (10 s each): answered orders/s, p50/p95/p99
  from each order's due time (no coordinated omission) and the error share — the
  target is 1,000 orders/s with p95 < 100 ms on a 2-core machine;
- during the 500 orders/s runs (a rate the lab sustains), CPU time per order of every
  lab process and of the load generator (µs, from /proc and getrusage): what limits
  the lab. The CPU-bound ceiling is cores x 1 s / (CPU per order), load generator
  included: no rate above it can be sustained, whatever the latency;
- ``gameday explore rate`` on the same lab, right after: the capacity it finds (where
  the SLA stops holding) and whether it agrees with the fixed-rate runs above (no rate
  that held lies above it, none that failed below it, beyond the sweep's resolution).

The load average at the start is printed too: other work on the machine takes CPU from
the lab and shows as lower figures.
"""

from __future__ import annotations

import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.common import figure, median, running_lab, wrk_orders_script
from gameday.engine.envelope import Knee, Step, capacity_agreement
from gameday.measurements.sla import SlaTargets
from lab import stack
from lab.layout import LabLayout

ROOT = Path(__file__).resolve().parent.parent
RUNS = 3
WRK_CONNECTIONS = 32
WRK_DURATION_S = 10
OPEN_RATES_RPS = (500, 750, 1000)
CPU_RATE_RPS = 500
GOAL_RATE_RPS = 1000
GOAL_P95_MS = 100.0
OPEN_DURATION_S = 10
WARM_UP_S = 3
EXPLORE_RANGE = "200:1400"
EXPLORE_BUDGET_MIN = 6
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
WRK_DONE = """
function done(summary, latency, requests)
  io.write(string.format("CAPACITY %d %d %d %d %d %d %d\\n", summary.requests,
    summary.duration, summary.errors.status + summary.errors.connect + summary.errors.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), 0))
end
"""
CAPACITY_LINE = re.compile(r"^CAPACITY (\d+) (\d+) (\d+) (\d+) (\d+) (\d+)", re.MULTILINE)


def wrk_run(url: str) -> dict[str, float]:
    """One closed-loop wrk run: orders/s, errors (non-2xx, socket errors), p50/p95/p99 ms."""
    wrk = shutil.which("wrk")
    assert wrk is not None
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as script:
        script.write(wrk_orders_script("cap", uuid.uuid4().hex[:8], WRK_DONE))
        script.flush()
        command = [wrk, "-t2", f"-c{WRK_CONNECTIONS}", f"-d{WRK_DURATION_S}s", "-s",
                   script.name, url]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, check=True,
                              timeout=WRK_DURATION_S + 60)  # fmt: skip
    match = CAPACITY_LINE.search(done.stdout)
    assert match, done.stdout + done.stderr
    requests, duration_us, errors, p50, p95, p99 = (int(value) for value in match.groups())
    return {"orders_per_s": requests / (duration_us / 1e6), "errors": errors,
            "p50_ms": p50 / 1000, "p95_ms": p95 / 1000, "p99_ms": p99 / 1000}  # fmt: skip


def open_run(url: str, rate_rps: float, duration_s: float) -> dict[str, Any]:
    """One ``gameday load`` run (its own process, open model); returns its summary."""
    with tempfile.TemporaryDirectory(prefix="gameday-bench-capacity-") as tmp:
        out = Path(tmp) / "load.json"
        command = [sys.executable, "-m", "gameday", "load", "--url", url,
                   "--rate", str(rate_rps), "--duration", str(duration_s), "--json", str(out)]
        subprocess.run(command, cwd=ROOT, check=True, timeout=duration_s + 120,
                       stdout=subprocess.DEVNULL)  # fmt: skip
        summary: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
        return summary


def lab_pids(layout: LabLayout) -> dict[str, int]:
    """PID of every running lab process, by supervisord program name."""
    return {p.name: p.pid for p in stack.client(layout).processes() if p.running}


def cpu_s(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def children_cpu_s() -> float:
    """CPU seconds used so far by this process' finished children (the load generator)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@contextmanager
def cpu_meter(pids: Mapping[str, int]) -> Iterator[dict[str, float]]:
    """Yields a dict filled, on exit, with the CPU seconds each process used meanwhile,
    and under ``load generator`` what the children that finished meanwhile used."""
    before = {name: cpu_s(pid) for name, pid in pids.items()}
    children = children_cpu_s()
    used: dict[str, float] = {}
    yield used
    used.update({name: cpu_s(pid) - before[name] for name, pid in pids.items()})
    used["load generator"] = children_cpu_s() - children


def report(label: str, runs: list[dict[str, float]], units: Mapping[str, str]) -> None:
    """Print the median (and the runs) of each figure named in ``units``."""
    for name, unit in units.items():
        values = [run[name] for run in runs]
        figure(f"{label}: {name}", median(values), unit, values)


def _open_figures(summary: Mapping[str, Any]) -> dict[str, float]:
    latency = summary["latency_ms"]
    errors = sum(summary["errors"].values())
    return {"orders_per_s": summary["ok"] / summary["send_window_s"],
            "p50_ms": latency["p50"], "p95_ms": latency["p95"], "p99_ms": latency["p99"],
            "errors_pct": 100 * errors / max(1, summary["due"]),
            "availability": summary.get("in_time", 0) / max(1, summary["due"])}  # fmt: skip


def bench_open(url: str, pids: Mapping[str, int],
               goal: dict[str, bool]) -> dict[float, bool]:
    """Fixed-rate runs; CPU per order of each process at ``CPU_RATE_RPS``. Returns, by
    rate, whether the SLA held (median error share and p95 within it); sets
    ``goal["met"]`` to whether ``GOAL_RATE_RPS`` held with p95 < ``GOAL_P95_MS``."""
    held: dict[float, bool] = {}
    for rate in OPEN_RATES_RPS:
        runs, cpu_runs = [], []
        for _ in range(RUNS):
            with cpu_meter(pids) as used:
                summary = open_run(url, rate, OPEN_DURATION_S)
            runs.append(_open_figures(summary))
            orders = max(1, summary["answered"])
            cpu_runs.append({name: 1e6 * seconds / orders for name, seconds in used.items()})
        units = {"orders_per_s": "orders/s", "p50_ms": "ms", "p95_ms": "ms", "p99_ms": "ms",
                 "errors_pct": "%"}  # fmt: skip
        report(f"open model {rate}/s", runs, units)
        if rate == CPU_RATE_RPS:
            report_cpu(rate, cpu_runs)
        held[rate] = _sla_held(runs)
        if rate == GOAL_RATE_RPS:
            goal["met"] = (median([r["p95_ms"] for r in runs]) < GOAL_P95_MS
                           and median([r["errors_pct"] for r in runs])
                           <= 100 * SlaTargets().error_rate_max)
    return held


def _sla_held(runs: list[dict[str, float]]) -> bool:
    """The SLA held over fixed-rate runs, as ``explore`` judges a step: median error
    share, p95 and availability (answered in time) within its bounds."""
    sla = SlaTargets()
    return (median([r["errors_pct"] for r in runs]) <= 100 * sla.error_rate_max
            and median([r["p95_ms"] for r in runs]) <= 1000 * sla.p95_latency_max_s
            and median([r["availability"] for r in runs]) >= sla.availability_min)


def bench_explore(layout: LabLayout, fixed_runs: Mapping[float, bool]) -> None:
    """``gameday explore rate`` on the same lab: its capacity, and whether the fixed-rate
    runs agree with it."""
    env = {**os.environ, "GAMEDAY_LAB_DIR": str(layout.state_dir),
           "GAMEDAY_LAB_PORT_BASE": str(layout.port_base), "GAMEDAY_TARGET": "lab"}
    with tempfile.TemporaryDirectory(prefix="gameday-bench-explore-") as tmp:
        command = [sys.executable, "-m", "gameday", "explore", "rate", "--json",
                   "--range", EXPLORE_RANGE, "--budget-min", str(EXPLORE_BUDGET_MIN)]
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=900,
                              env={**env, "GAMEDAY_RUN_DIR": tmp}, check=False)
    if done.returncode not in (0, 4):
        print(f"explore rate failed (exit {done.returncode}): {done.stderr.strip()[-400:]}")
        return
    sweep = json.loads(done.stdout)
    knee = next(k for k in sweep["knees"] if k["property"] == "sla")
    held = [s["value"] for s in sweep["steps"] if Step(**s).holds(SlaTargets())["sla"]]
    sla = Knee("sla", knee["value"], knee["uncertainty"], knee["holds_throughout"])
    if knee["value"] is not None:
        figure("explore rate: capacity (SLA held)", knee["value"], "orders/s",
               [knee["value"] - knee["uncertainty"], knee["value"] + knee["uncertainty"]])
    elif held:
        figure("explore rate: SLA held up to (whole range)", max(held), "orders/s")
    agrees, why = capacity_agreement(sla, max(held) if held else None, fixed_runs,
                                     margin=float(sweep["resolution"]))
    print(f"explore rate vs the fixed-rate runs: {'agree' if agrees else 'DISAGREE'} "
          f"({why}; sweep {sweep['stopped']}, {sweep['duration_s']:.0f} s)", flush=True)


def report_cpu(rate: float, cpu_runs: list[dict[str, float]]) -> None:
    """CPU per order by process, their total and the CPU-bound ceiling it implies."""
    report(f"CPU per order at {rate}/s", cpu_runs, dict.fromkeys(cpu_runs[0], "µs"))
    totals = [sum(run.values()) for run in cpu_runs]
    figure(f"CPU per order at {rate}/s: total", median(totals), "µs", totals)
    ceilings = [(os.cpu_count() or 1) * 1e6 / total for total in totals]
    figure("CPU-bound ceiling (cores / CPU per order)", median(ceilings), "orders/s", ceilings)


def bench_wrk(url: str) -> None:
    """Closed-loop maximum with wrk (skipped when wrk is not installed)."""
    if shutil.which("wrk") is None:
        print("wrk not installed (apt-get install -y wrk): closed-loop figures skipped")
        return
    runs = [wrk_run(url) for _ in range(RUNS)]
    units = {"orders_per_s": "orders/s", "p50_ms": "ms", "p95_ms": "ms", "p99_ms": "ms",
             "errors": "answers"}  # fmt: skip
    report(f"wrk closed loop, {WRK_CONNECTIONS} connections", runs, units)


def _timed(name: str, step: Callable[[], None]) -> None:
    started = time.monotonic()
    step()
    print(f"({name} took {time.monotonic() - started:.0f} s)", flush=True)


def main() -> int:
    """Start a lab, warm it up, then measure closed-loop and open-model capacity; 1 when
    the goal (issue #20: 1,000 orders/s at p95 < 100 ms, errors within the SLA) is missed."""
    print(f"load average at start: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    with running_lab() as layout:
        url = layout.url("entry") + "/orders"
        open_run(url, 200, WARM_UP_S)
        pids = lab_pids(layout)
        _timed("wrk", lambda: bench_wrk(url))
        fixed: dict[float, bool] = {}
        goal = {"met": False}
        _timed("open model", lambda: fixed.update(bench_open(url, pids, goal)))
        _timed("explore rate", lambda: bench_explore(layout, fixed))
    print(f"goal ({GOAL_RATE_RPS} orders/s at p95 < {GOAL_P95_MS} ms, errors within the "
          f"SLA): {'met' if goal['met'] else 'MISSED'}", flush=True)
    return 0 if goal["met"] else 1


if __name__ == "__main__":
    sys.exit(main())
