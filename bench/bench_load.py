"""Load generator benchmarks: rate accuracy, client-added latency, sustainable rates, ceiling.

Figures (each the median of 3 runs):

- against the lab's entry point (HAProxy → 3 replicas → fault proxy → broker sim), at
  1,000 req/s for 20 s: achieved rate and its error, scheduler lag p99 (the latency the
  client itself adds), late starts, and the lab's answers (errors, p99), because a lab
  that cannot keep up takes CPU from the generator on the same two cores;
- against HAProxy answering 200 itself (one thread, a static answer: fast enough that
  the load tools set the figures): the same accuracy figures, so the generator's own
  accuracy is known whatever the lab sustains;
- the highest rate one worker, then two workers, sustain with ≤ 1 % late starts and
  the achieved rate within 1 % (a ladder of rates, 3 runs of 5 s at each, sustained
  when 2 of the 3 are, i.e. the median run);
- the peer in the same run: the highest constant rate vegeta (an open-model load tool
  in Go, built by the bench from its module, see ``lab.gocomponents.VEGETA``) keeps on
  the same ladder (requests started within 1 % of the rate, ≥ 99 % answered 2xx), and
  gameday's rate as a ratio to it: **the goal is ≥ 1**, else ``make bench`` exits 1.
  (k6, the peer first named for this, is AGPL-licensed and not used by this project);
- wrk's closed-loop maximum (2 threads, 64 connections, 10 s) against the same
  targets in the same run, as the ceiling for comparison.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.common import figure, median, running_lab, wrk_orders_script
from lab.gocomponents import VEGETA, build

ROOT = Path(__file__).resolve().parent.parent
RUNS = 3
ACCURACY_RATE_RPS = 1000
ACCURACY_DURATION_S = 20
LADDER_RPS = (1000, 2000, 3000, 4000, 6000, 8000, 10000, 12000, 16000, 20000)
STATIC_HAPROXY = """
global
  nbthread 1
defaults
  mode http
  timeout client 30s
  timeout server 30s
  timeout connect 5s
frontend static
  bind 127.0.0.1:PORT
  http-request return status 200 content-type application/json string "{}"
"""
LADDER_STEP_S = 5
WRK_DURATION_S = 10



def run_load(url: str, rate_rps: float, duration_s: float, workers: int = 1) -> dict[str, Any]:
    """One ``gameday load`` run in its own process(es); returns its summary."""
    with tempfile.TemporaryDirectory(prefix="gameday-bench-load-") as tmp:
        out = Path(tmp) / "load.json"
        command = [sys.executable, "-m", "gameday", "load", "--url", url,
                   "--rate", str(rate_rps), "--duration", str(duration_s),
                   "--workers", str(workers), "--json", str(out)]
        subprocess.run(command, cwd=ROOT, check=True, timeout=duration_s + 120,
                       stdout=subprocess.DEVNULL)
        summary: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
        return summary


def _error_share(summary: dict[str, Any]) -> float:
    return sum(summary["errors"].values()) / max(1, summary["due"])


ACCURACY_FIGURES: dict[str, tuple[str, Callable[[dict[str, Any]], float]]] = {
    "achieved rate": ("req/s", lambda s: s["achieved_rps"]),
    "achieved rate error": ("%", lambda s: abs(s["achieved_rps"] / s["target_rps"] - 1) * 100),
    "scheduler lag p99 (client-added)": ("ms", lambda s: s["scheduler_lag_ms"]["p99"]),
    "late starts (> 10 ms)": ("%", lambda s: s["late_start_ratio"] * 100),
    "latency p50 (from due time)": ("ms", lambda s: s["latency_ms"]["p50"]),
    "latency p99 (from due time)": ("ms", lambda s: s["latency_ms"]["p99"]),
    "errors (5xx, timeout, connection)": ("%", lambda s: _error_share(s) * 100),
}


def accuracy(label: str, url: str) -> list[dict[str, Any]]:
    """Print the accuracy figures of 3 runs at 1,000 req/s for 20 s; returns the runs."""
    runs = [run_load(url, ACCURACY_RATE_RPS, ACCURACY_DURATION_S) for _ in range(RUNS)]
    for name, (unit, value) in ACCURACY_FIGURES.items():
        values = [value(run) for run in runs]
        figure(f"{label}: {name}", median(values), unit, values)
    return runs


def sustains(summary: dict[str, Any]) -> bool:
    """≤ 1 % late starts and the achieved rate within 1 % of the target."""
    return (summary["late_start_ratio"] <= 0.01
            and abs(summary["achieved_rps"] / summary["target_rps"] - 1) <= 0.01)


def wrk_max(url: str) -> tuple[float, float]:
    """wrk's closed-loop requests/s POSTing unique orders, and its share of non-2xx/3xx
    answers (NaN when wrk is missing: ``apt-get install -y wrk``)."""
    wrk = shutil.which("wrk")
    if wrk is None:
        return float("nan"), float("nan")
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(wrk_orders_script("wrk", uuid.uuid4().hex[:8]))
    try:
        done = subprocess.run([wrk, "-t2", "-c64", f"-d{WRK_DURATION_S}s", "-s", script.name,
                               url], capture_output=True, text=True, check=True,
                              timeout=WRK_DURATION_S + 30)
    finally:
        Path(script.name).unlink()
    return _wrk_figure(done.stdout, r"Requests/sec:\s+([\d.]+)"), _wrk_bad_share(done.stdout)


def _wrk_figure(text: str, pattern: str) -> float:
    found = re.search(pattern, text)
    return float(found.group(1)) if found else float("nan")


def _wrk_bad_share(text: str) -> float:
    total = _wrk_figure(text, r"(\d+) requests in")
    bad = _wrk_figure(text, r"Non-2xx or 3xx responses:\s+(\d+)")
    return 0.0 if math.isnan(bad) else bad / total  # no such line: every answer was good


def ceiling(label: str, url: str) -> float:
    """Print wrk's closed-loop maximum (and its non-2xx share), median of 3."""
    runs = [wrk_max(url) for _ in range(RUNS)]
    rates, bad = [r for r, _ in runs], [b * 100 for _, b in runs]
    figure(f"{label}: wrk closed-loop max (ceiling)", median(rates), "req/s", rates)
    figure(f"{label}: wrk non-2xx/3xx answers", median(bad), "%", bad)
    return median(rates)


def machine_load() -> None:
    """Print the machine's load average: other work on the cores moves every figure."""
    one, five, _ = os.getloadavg()
    print(f"machine load average: {one:.2f} (1 min), {five:.2f} (5 min) on "
          f"{os.cpu_count()} cores", flush=True)


def bench_lab() -> None:
    """Accuracy at 1,000 req/s and wrk's ceiling against the lab's entry point."""
    machine_load()
    try:
        with running_lab() as layout:
            url = layout.url("entry") + "/orders"
            runs = accuracy("lab entry, 1000 req/s x 20 s", url)
            top = ceiling("lab entry", url)
    except Exception as exc:  # a lab under construction must not hide the other figures
        print(f"lab figures unavailable: the lab did not run ({exc})", flush=True)
        return
    errors = median([_error_share(run) for run in runs])
    if errors > 0.01 or top < ACCURACY_RATE_RPS:
        print(f"note: the lab does not sustain {ACCURACY_RATE_RPS} req/s here (errors "
              f"{errors:.1%}, wrk max {top:.0f} req/s); it shares 2 cores with the "
              "generator, so see the trivial-server figures for the generator's own "
              "accuracy", flush=True)


def vegeta_run(vegeta: Path, url: str, rate_rps: float, duration_s: float) -> dict[str, Any]:
    """One ``vegeta attack`` at a constant rate (open model), POSTing a small order each
    time; its JSON report (``rate``: requests started per second; ``success``: the
    share answered 2xx)."""
    with tempfile.TemporaryDirectory(prefix="gameday-bench-vegeta-") as tmp:
        body = Path(tmp) / "order.json"
        body.write_text('{"client_order_id":"vegeta","instrument":"EUR_USD","units":1000}')
        targets = Path(tmp) / "targets.txt"
        targets.write_text(f"POST {url}\nContent-Type: application/json\n@{body}\n")
        results = Path(tmp) / "results.bin"
        subprocess.run([str(vegeta), "attack", f"-targets={targets}", f"-rate={rate_rps:g}/s",
                        f"-duration={duration_s:g}s", f"-output={results}"],
                       check=True, timeout=duration_s + 60, stderr=subprocess.DEVNULL)
        report = subprocess.run([str(vegeta), "report", "-type=json", str(results)],
                                check=True, capture_output=True, text=True, timeout=60)
    parsed: dict[str, Any] = json.loads(report.stdout)
    return parsed


def vegeta_sustains(report: dict[str, Any], rate_rps: float) -> bool:
    """Vegeta kept the rate (requests started within 1 % of it) with ≥ 99 % answered 2xx."""
    return report["rate"] >= 0.99 * rate_rps and report["success"] >= 0.99


def ladder(label: str, sustained_at: Callable[[float], bool]) -> float:
    """The highest rate of the ladder sustained by 2 of 3 runs, climbing until one is not."""
    best = 0.0
    for rate in LADDER_RPS:
        passed = sum(sustained_at(rate) for _ in range(RUNS)) * 2 > RUNS
        print(f"  {label} at {rate} req/s: {'sustained' if passed else 'not sustained'}",
              flush=True)
        if not passed:
            break
        best = rate
    return best


@contextmanager
def static_haproxy() -> Iterator[str]:
    """HAProxy (one thread) answering every request 200 with a small JSON body itself:
    a server fast enough that the load tools, not it, set the figures."""
    haproxy = shutil.which("haproxy") or "/usr/sbin/haproxy"
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with tempfile.TemporaryDirectory(prefix="gameday-bench-haproxy-") as tmp:
        config = Path(tmp) / "haproxy.cfg"
        config.write_text(STATIC_HAPROXY.replace("PORT", str(port)))
        server = subprocess.Popen([haproxy, "-db", "-f", str(config)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            _wait_for_port(port)
            yield f"http://127.0.0.1:{port}/orders"
        finally:
            server.terminate()
            server.wait(timeout=10)


def _wait_for_port(port: int) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as client:
            if client.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"HAProxy did not listen on 127.0.0.1:{port} within 10 s")


def bench_generator() -> bool:
    """The generator's accuracy and the highest rate it sustains, beside vegeta's, both
    against HAProxy's static answer; True when gameday's rate is at least vegeta's."""
    machine_load()
    built = build(VEGETA, os.environ)
    with static_haproxy() as url:
        accuracy("static HAProxy, 1000 req/s x 20 s", url)
        best = {workers: ladder(f"gameday load, {workers} worker(s)",
                                lambda rate, w=workers: sustains(
                                    run_load(url, rate, LADDER_STEP_S, w)))
                for workers in (1, 2)}
        for workers, rate in best.items():
            figure(f"max rate with <= 1 % late starts, {workers} worker(s)", rate, "req/s")
        if built.outcome == "failed":
            print(f"vegeta not built ({built.error}): no peer figure", flush=True)
            return False
        peer = ladder("vegeta", lambda rate: vegeta_sustains(
            vegeta_run(built.path, url, rate, LADDER_STEP_S), rate))
        figure("vegeta: max constant rate kept (peer)", peer, "req/s")
        ours = max(best.values())
        figure("gameday load max rate / vegeta's (goal >= 1)", ours / peer, "x")
        ceiling("static HAProxy", url)
    machine_load()
    return ours >= peer


def main() -> int:
    """Print every figure of the load generator benchmark; 1 when its goal is missed
    (gameday's highest sustained rate below vegeta's, or vegeta not built)."""
    bench_lab()
    met = bench_generator()
    print(f"goal (issue #20: at least the peer's rate): {'met' if met else 'MISSED'}",
          flush=True)
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
