"""Load generator benchmarks: rate accuracy, client-added latency, sustainable rates, ceiling.

Figures (each the median of 3 runs):

- against the lab's entry point (HAProxy → 3 replicas → fault proxy → broker sim), at
  1,000 req/s for 20 s: achieved rate and its error, scheduler lag p99 (the latency the
  client itself adds), late starts, and the lab's answers (errors, p99), because a lab
  that cannot keep up takes CPU from the generator on the same two cores;
- against a trivial aiohttp server in this process (a thread): the same accuracy
  figures, so the generator's own accuracy is known whatever the lab sustains;
- the highest rate one worker, then two workers, sustain with ≤ 1 % late starts and
  the achieved rate within 1 % (a ladder of rates, 3 runs of 5 s at each, sustained
  when 2 of the 3 are, i.e. the median run; trivial server);
- wrk's closed-loop maximum (2 threads, 64 connections, 10 s) against the same
  targets in the same run, as the ceiling for comparison.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from aiohttp import web

from bench.common import figure, median, running_lab, wrk_orders_script

ROOT = Path(__file__).resolve().parent.parent
RUNS = 3
ACCURACY_RATE_RPS = 1000
ACCURACY_DURATION_S = 20
LADDER_RPS = (1000, 1500, 2000, 2500, 3000, 4000, 5000, 6000, 8000)
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


def max_sustained(url: str, workers: int) -> float:
    """The highest rate of the ladder that 2 of 3 runs sustain, climbing until one fails."""
    best = 0.0
    for rate in LADDER_RPS:
        runs = [run_load(url, rate, LADDER_STEP_S, workers) for _ in range(RUNS)]
        passed = sum(sustains(run) for run in runs) * 2 > len(runs)
        late = ", ".join(f"{run['late_start_ratio'] * 100:.2f}" for run in runs)
        print(f"  {workers} worker(s) at {rate} req/s: late starts {late} % -> "
              f"{'sustained' if passed else 'not sustained'}", flush=True)
        if not passed:
            break
        best = rate
    return best


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


async def _answer(request: web.Request) -> web.Response:
    await request.read()
    return web.json_response({"status": "filled"})


@contextmanager
def trivial_server() -> Iterator[str]:
    """An aiohttp server answering 200 to everything, in a thread of this process."""
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(_app(), access_log=None)
    loop.run_until_complete(runner.setup())
    site = web.TCPSite(runner, "127.0.0.1", 0)
    loop.run_until_complete(site.start())
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/orders"
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.run_until_complete(runner.cleanup())
        loop.close()


def _app() -> web.Application:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", _answer)
    return app


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


def bench_trivial() -> None:
    """The generator's own accuracy, sustainable rates and wrk's ceiling (trivial server)."""
    machine_load()
    with trivial_server() as url:
        accuracy("trivial server, 1000 req/s x 20 s", url)
        for workers in (1, 2):
            best = max_sustained(url, workers)
            figure(f"max rate with <= 1 % late starts, {workers} worker(s)", best, "req/s")
        ceiling("trivial server", url)
    machine_load()
    print("note: the trivial server runs in the benchmark process; the generator and "
          "the server share this machine's cores", flush=True)


def main() -> None:
    """Print every figure of the load generator benchmark."""
    bench_lab()
    bench_trivial()


if __name__ == "__main__":
    main()
