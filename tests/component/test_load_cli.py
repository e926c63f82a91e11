"""``gameday load`` and the traffic control as real processes against a real server."""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.procs import start_broker, start_service, stop

from gameday.cli.main import main
from gameday.engine import traffic
from gameday.measurements.client_sla import client_sla, read_live
from gameday.service_spec import OrderRequest

ROOT = Path(__file__).resolve().parents[2]
SERVER = """
import asyncio
from aiohttp import web

async def handle(request):
    await request.read()
    return web.json_response({"status": "filled"})

async def main():
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    print(runner.addresses[0][1], flush=True)
    await asyncio.sleep(300)

asyncio.run(main())
"""


@pytest.fixture(scope="module")
def server_url() -> Iterator[str]:
    """An aiohttp server in its own process on 127.0.0.1 (port 0), for 300 s at most."""
    process = subprocess.Popen([sys.executable, "-c", SERVER], stdout=subprocess.PIPE,
                               text=True)
    try:
        assert process.stdout is not None
        yield f"http://127.0.0.1:{int(process.stdout.readline())}/orders"
    finally:
        process.terminate()
        process.wait(timeout=10)


def _load(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "gameday", "load", *args], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _outcomes(path: Path) -> list[dict[str, str]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_json_outcomes_and_live_files(server_url: str, tmp_path: Path) -> None:
    out, live = tmp_path / "run.json", tmp_path / "run.live.json"
    process = _load("--url", server_url, "--rate", "100", "--duration", "2",
                    "--json", str(out), "--live", str(live))
    stdout, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr
    assert stdout == "", "no progress line when stdout is not a terminal"
    summary = json.loads(out.read_text(encoding="utf-8"))
    assert summary["sent"] == summary["ok"] == 200
    assert "histograms" not in summary and "hist" not in summary["timeline"][0]
    assert summary["outcomes_path"] == str(tmp_path / "run.outcomes.jsonl")
    lines = _outcomes(Path(summary["outcomes_path"]))
    assert len({line["id"] for line in lines}) == 200
    assert {line["outcome"] for line in lines} == {"ok"}
    final = json.loads(live.read_text(encoding="utf-8"))
    assert final["done"] and [e["due"] for e in final["timeline"]] == [100, 100]


def test_sigint_stops_early_and_the_summary_is_still_written(
    server_url: str, tmp_path: Path,
) -> None:
    out = tmp_path / "run.json"
    process = _load("--url", server_url, "--rate", "50", "--duration", "60",
                    "--json", str(out))
    time.sleep(2.0)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=10)
    assert process.returncode == 0, stderr
    summary = json.loads(out.read_text(encoding="utf-8"))
    assert 1 <= summary["sent"] <= 150, "stopped within a second or so of the SIGINT"
    assert summary["sent"] == summary["ok"] == summary["outcomes"]["ok"]


def test_workers_split_the_rate_and_merge_exactly(server_url: str, tmp_path: Path) -> None:
    out, live = tmp_path / "run.json", tmp_path / "run.live.json"
    process = _load("--url", server_url, "--rate", "300", "--duration", "3", "--workers", "2",
                    "--json", str(out), "--live", str(live))
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    summary = json.loads(out.read_text(encoding="utf-8"))
    assert summary["workers"] == 2
    assert summary["sent"] == summary["ok"] == 900
    assert [e["due"] for e in summary["timeline"]] == [300, 300, 300]
    assert abs(summary["achieved_rps"] - 300) <= 6
    lines = _outcomes(Path(summary["outcomes_path"]))
    assert len({line["id"] for line in lines}) == 900
    final = json.loads(live.read_text(encoding="utf-8"))
    assert final["done"]
    public = [{k: v for k, v in e.items() if k != "hist"} for e in final["timeline"]]
    assert public == summary["timeline"]


def test_shards_of_one_run_merge_exactly_and_the_merge_checks_they_are_one_run(
        server_url: str, tmp_path: Path) -> None:
    """Two shards (as two pods of the Indexed Job would run them) share second 0; their
    printed summaries, concatenated with a stray log line as `kubectl logs` would give
    them, merge into the run's: every request due once, the latency histograms added."""
    start = f"{time.time() + 2:.3f}"
    shards = [_load("--url", server_url, "--rate", "200", "--duration", "2",
                    "--shard", f"{i}/2", "--start-at", start) for i in range(2)]
    printed = []
    for shard in shards:
        stdout, stderr = shard.communicate(timeout=60)
        assert shard.returncode == 0, stderr
        printed.append(stdout)
    first, second = (json.loads(text) for text in printed)
    assert first["shard"] == {"index": 0, "count": 2, "start_unix": float(start),
                              "rate_rps": 200.0} and "histograms" in first
    logs = tmp_path / "logs.txt"
    logs.write_text(printed[1] + "W1203 a log line of a pod\n" + printed[0], encoding="utf-8")
    merge = subprocess.run([sys.executable, "-m", "gameday", "load-merge", str(logs), "--json",
                            str(tmp_path / "run.json")], cwd=ROOT, capture_output=True,
                           text=True, timeout=60, check=False)
    assert merge.returncode == 0, merge.stderr
    assert "skipped 1 line(s)" in merge.stderr
    run = json.loads((tmp_path / "run.json").read_text(encoding="utf-8"))
    assert run["shards"] == run["workers"] == 2 and "histograms" not in run
    assert run["sent"] == run["ok"] == first["sent"] + second["sent"] == 400
    assert [e["due"] for e in run["timeline"]] == [200, 200]
    assert min(first["latency_ms"]["max"], second["latency_ms"]["max"]) <= \
        run["latency_ms"]["max"] == max(first["latency_ms"]["max"], second["latency_ms"]["max"])
    alone = tmp_path / "alone.json"
    alone.write_text(printed[0], encoding="utf-8")
    missing = subprocess.run([sys.executable, "-m", "gameday", "load-merge", str(alone)],
                             cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
    assert "not the 2 shards of one run: missing [1]" in missing.stderr


@pytest.mark.parametrize(("args", "message"), [
    (["--shard", "0/2"], "--shard I/N and --start-at UNIX go together"),
    (["--shard", "2/2", "--start-at", "9999999999"], "--shard '2/2' is invalid"),
    (["--shard", "0/2", "--start-at", "1000"], "--start-at 1000.0 passed"),
    (["--shard", "0/2", "--start-at", "9999999999", "--workers", "2"], "not with --workers"),
])
def test_bad_shard_options_exit_2(args: list[str], message: str,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    base = ["load", "--url", "http://127.0.0.1:9/", "--rate", "1", "--duration", "1"]
    assert main([*base, *args]) == 2
    assert message in capsys.readouterr().err


def _read_all(fd: int, timeout_s: float) -> str:
    """Everything written to the pty whose master is ``fd``, until it closes or times out."""
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO: the other side closed
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks).decode(errors="replace")


def test_a_progress_line_on_a_terminal(server_url: str) -> None:
    main_fd, sub_fd = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "gameday", "load", "--url", server_url, "--rate", "50",
         "--duration", "2"], cwd=ROOT, stdout=sub_fd, stderr=subprocess.PIPE)
    os.close(sub_fd)
    try:
        output = _read_all(main_fd, timeout_s=30)
    finally:
        os.close(main_fd)
    assert process.wait(timeout=30) == 0
    assert "req/s (target 50)" in output and "sent 100  errors 0" in output


@pytest.mark.parametrize("args", [["--rate", "0"], ["--workers", "0"], ["--duration", "-1"]])
def test_bad_options_exit_2(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    base = {"--url": "http://127.0.0.1:9/", "--rate": "1", "--duration": "1"}
    base.update(dict(zip(args[::2], args[1::2], strict=True)))
    assert main(["load", *[item for pair in base.items() for item in pair]]) == 2
    assert "gameday load:" in capsys.readouterr().err


def _wait_for_seconds(path: Path, seconds: int, timeout_s: float) -> dict[str, Any]:
    """The live file once it holds ``seconds`` finished seconds (polled, bounded)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if path.exists():
            live = read_live(path)
            if len(live["timeline"]) >= seconds:
                return live
        time.sleep(0.2)
    raise AssertionError(f"{path} did not get {seconds} finished seconds in {timeout_s} s")


class _Target:
    def __init__(self, url: str, broker: str | None = None) -> None:
        self.url = url
        self.broker = broker or url

    def entry_url(self) -> str:
        return self.url

    def broker_url(self) -> str:
        return self.broker

    @staticmethod
    def order() -> OrderRequest:
        return OrderRequest()

    @staticmethod
    def service_name() -> str:
        return "stand-in"

    @staticmethod
    def own_processes() -> tuple[list[int], list[str]] | None:
        return [os.getpid()], []  # the stand-in's processes: this test's tree


def test_traffic_control_keeps_a_live_file_and_journals_the_summary(
    server_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GAMEDAY_RUN_DIR", str(tmp_path))
    monkeypatch.setattr(traffic, "get_target",
                        lambda: _Target(server_url.removesuffix("/orders")))
    traffic.before_experiment_control({}, rate_rps=50, warmup_s=2, max_duration_s=60)
    files = traffic.traffic_files()
    assert files.live == tmp_path / "traffic" / f"load-{os.getpid()}.live.json"
    live = _wait_for_seconds(files.live, seconds=2, timeout_s=15)
    sla = client_sla(live, window_s=2, now_unix=time.time())
    assert sla["availability"] == 1.0 and sla["throughput_rps"] == 50 and sla["seconds"] == 2
    state: dict[str, Any] = {}
    traffic.after_experiment_control({}, state)
    extension = state["extensions"][0]
    assert extension["name"] == "gameday-traffic" and extension["service"] == "stand-in"
    summary = extension["summary"]
    assert summary["ok"] == summary["sent"] >= 100
    assert len(_outcomes(Path(summary["outcomes_path"]))) == summary["sent"]
    assert not files.pid.exists()
    # the stand-in says "filled" to every order but its ledger holds none: all lost
    orders = extension["orders"]
    assert orders["orders"] == orders["acked"] == orders["lost"] == summary["sent"]
    # The machine sampled at the start and the end (no steady state, no method here):
    # the load generator is this test's child, so its CPU is ours.
    machine = extension["machine"]
    assert set(machine) == {"cores", "experiment"}, machine
    assert machine["experiment"]["seconds"] >= 2 and machine["experiment"]["ours_cores"] > 0


def test_traffic_control_reconciles_the_experiments_own_orders_with_the_ledger(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    broker = start_broker(tmp_path / "broker.log", "--host", "127.0.0.1", "--port", "0",
                          "--admin-port", "0", "--latency-ms", "2")
    service = start_service(tmp_path / "service.log", broker.url)
    try:
        monkeypatch.setenv("GAMEDAY_RUN_DIR", str(tmp_path))
        monkeypatch.setattr(traffic, "get_target", lambda: _Target(service.url, broker.url))
        traffic.before_experiment_control({}, rate_rps=50, warmup_s=2, max_duration_s=60)
        state: dict[str, Any] = {}
        traffic.after_experiment_control({}, state)
    finally:
        stop(service.proc)
        stop(broker.proc)
    extension = state["extensions"][0]
    orders, sent = extension["orders"], extension["summary"]["sent"]
    assert sent >= 20
    assert orders == {"orders": sent, "acked": sent, "filled": sent, "lost": 0,
                      "duplicated": 0, "unknown_outcome": 0, "failed_but_filled": 0,
                      "unknown": 0, "unknown_filled": 0, "unexplained": 0}
