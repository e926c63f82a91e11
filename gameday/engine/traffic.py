"""Chaos Toolkit control: order traffic for the whole experiment, from the load generator.

Declare it in an experiment::

    controls:
      - name: traffic
        provider:
          type: python
          module: controls.traffic
          arguments: {rate_rps: 200, warmup_s: 12}

Before the experiment it starts ``gameday load`` against the target's entry point and
waits ``warmup_s`` so that the SLA windows hold data; after the experiment it stops the
load and adds the load generator's summary to the journal as the extension
``gameday-traffic`` (its ``outcomes_path`` names the log of every order's outcome).
While it runs, the load generator keeps a live file of its finished seconds
(``traffic_files().live``) from which client-side SLA probes compute
:func:`gameday.measurements.client_sla.client_sla`. The load runs in its own process (its timing
is not disturbed by Chaos Toolkit's threads) and stops by itself after
``max_duration_s`` or when the Chaos Toolkit process goes away.

Under ``gameday run`` the traffic is *shared*: the runner starts one load generator for
the whole game day (when every experiment asks for the same rate) and names its files
in ``$GAMEDAY_SHARED_TRAFFIC``; the control then only waits until that traffic has run
``warmup_s`` in all, and afterwards summarises the seconds the experiment covered. So
experiments follow each other without a warm-up each, and the load never pauses.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

from chaoslib.exceptions import InterruptExecution

from gameday.contract import GamedayError, MeasurementError
from gameday.engine.orders import reconcile_window
from gameday.engine.verdict import TRAFFIC_EXTENSION
from gameday.load.stats import merged_histogram
from gameday.load.workers import order_template_args, unknown_status_args
from gameday.measurements.client_sla import (
    STALE_S,
    connect_failures,
    figures,
    read_live,
    seconds_between,
)
from gameday.measurements.machine import CpuSample, phase_loads, read_sample
from gameday.targets import Target, get_target

__all__ = [
    "Orders",
    "TrafficFiles",
    "after_experiment_control",
    "before_experiment_control",
    "current_files",
    "orders_of",
    "shared_summary",
    "start_shared",
    "stop_shared",
    "traffic_files",
]

EXTENSION_NAME = TRAFFIC_EXTENSION
STOP_TIMEOUT_S = 15.0
SHARED_ENV = "GAMEDAY_SHARED_TRAFFIC"
SHARED_MAX_DURATION_S = 3600.0
REACH_WINDOW_S = 3.0
UNREACHABLE_SHARE = 0.9


class TrafficFiles(NamedTuple):
    """The files of one experiment's load (unpacks as ``pid, summary, live``)."""

    pid: Path
    summary: Path
    live: Path


def traffic_files(pid: int | None = None) -> TrafficFiles:
    """Where the load of the Chaos Toolkit process ``pid`` (default: this one) keeps its
    PID, summary and live file, in ``$GAMEDAY_RUN_DIR/traffic/`` (default ``reports``)."""
    run_dir = Path(os.environ.get("GAMEDAY_RUN_DIR", "reports")) / "traffic"
    run_dir.mkdir(parents=True, exist_ok=True)
    key = pid or os.getpid()
    return TrafficFiles(run_dir / f"load-{key}.pid", run_dir / f"load-{key}.json",
                        run_dir / f"load-{key}.live.json")


def shared_files(run_dir: Path) -> TrafficFiles:
    """The files of a game day's shared load, in ``run_dir/traffic/``."""
    directory = run_dir / "traffic"
    directory.mkdir(parents=True, exist_ok=True)
    return TrafficFiles(directory / "shared.pid", directory / "shared.json",
                        directory / "shared.live.json")


def current_files() -> TrafficFiles:
    """The files of the traffic this experiment runs under: the shared load when
    ``$GAMEDAY_SHARED_TRAFFIC`` names one, else this process' own."""
    shared = os.environ.get(SHARED_ENV)
    return shared_files(Path(shared)) if shared else traffic_files()


def outcomes_path(files: TrafficFiles) -> Path:
    """The log of every order's outcome next to a load's summary."""
    return files.summary.with_suffix(".outcomes.jsonl")


def _start_marker() -> Path:
    return traffic_files().pid.with_suffix(".start")


class Window(NamedTuple):
    """Where an experiment's share of the traffic begins: its wall-clock start and the
    byte offset of its first order in the outcome log."""

    start_unix: float
    outcomes_offset: int


def _line_offset(path: Path) -> int:
    """The size of ``path`` up to its last complete line (0 when it does not exist)."""
    try:
        with path.open("rb") as log:
            size = log.seek(0, os.SEEK_END)
            tail_start = max(0, size - 65536)
            log.seek(tail_start)
            tail = log.read()
    except FileNotFoundError:
        return 0
    return tail_start + tail.rfind(b"\n") + 1


def _mark_start(files: TrafficFiles) -> None:
    """Record where this experiment's window begins (see :class:`Window`)."""
    window = Window(time.time(), _line_offset(outcomes_path(files)))
    _start_marker().write_text(json.dumps(window._asdict()), encoding="utf-8")


def _take_window() -> Window | None:
    """This experiment's window, once (None when its start was never marked)."""
    marker = _start_marker()
    try:
        window = Window(**json.loads(marker.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        return None
    finally:
        marker.unlink(missing_ok=True)
    return window


def _join_shared(files: TrafficFiles, warmup_s: float) -> None:
    """Wait until the shared traffic has run ``warmup_s`` in all; mark our start."""
    deadline = time.monotonic() + warmup_s + STALE_S
    while True:
        try:
            live = read_live(files.live)
            break
        except MeasurementError as exc:
            if time.monotonic() > deadline:
                raise InterruptExecution(f"the shared traffic is not running: {exc}") from None
            time.sleep(0.2)
    wait_s = float(live["t0_unix"]) + warmup_s - time.time()
    if wait_s > 0:
        time.sleep(wait_s)
    if time.time() - float(read_live(files.live)["updated_unix"]) > STALE_S:
        raise InterruptExecution(f"the shared traffic has stopped: {files.live} is stale")
    _mark_start(files)


class Orders(NamedTuple):
    """Where and how the load generator places orders: the service's order request, and
    the statuses by which the service says an order's outcome is unknown."""

    url: str
    method: str
    template: Mapping[str, Any]
    unknown_statuses: tuple[int, ...] = ()


def orders_of(target: Target) -> Orders:
    """The target's order request (its service spec's), at its entry point."""
    order = target.order()
    return Orders(target.entry_url() + order.path, order.method, order.body,
                  tuple(order.statuses.get("unknown", ())))


def _load_command(orders: Orders, rate_rps: float, max_duration_s: float,
                  files: TrafficFiles, workers: int = 1) -> list[str]:
    return [
        sys.executable, "-m", "gameday", "load", "--url", orders.url, "--rate", str(rate_rps),
        "--duration", str(max_duration_s), "--json", str(files.summary),
        "--live", str(files.live), "--workers", str(workers),
        "--stop-with-parent", str(os.getpid()), "--method", orders.method,
        *order_template_args(orders.template), *unknown_status_args(orders.unknown_statuses),
    ]


def before_experiment_control(  # noqa: PLR0917 (Chaos Toolkit calls it so)
    context: dict[str, Any], configuration: dict[str, Any] | None = None,
    secrets: dict[str, Any] | None = None, rate_rps: float = 200.0, warmup_s: float = 12.0,
    max_duration_s: float = 900.0, workers: int = 1, **kwargs: Any,
) -> None:
    """Start order traffic at ``rate_rps`` (split over ``workers`` processes) and wait
    ``warmup_s`` seconds; the load stops by itself after ``max_duration_s``. Under a
    shared game-day load, only wait until it has run ``warmup_s`` in all.

    Interrupts the experiment (before its steady state is measured) when the load
    generator dies or when the target is unreachable (nearly every order of the last
    seconds failed to connect); the reason goes into the journal with the traffic's
    figures."""
    orders = orders_of(get_target())
    _sample_machine("start")
    try:
        if os.environ.get(SHARED_ENV):
            _join_shared(current_files(), float(warmup_s))
        else:
            _start_own(orders, rate_rps, warmup_s, max_duration_s, int(workers))
        _check_reachable(orders.url)
    except InterruptExecution as exc:
        _error_note().write_text(str(exc), encoding="utf-8")
        raise InterruptExecution(str(exc)) from None


def _check_reachable(url: str) -> None:
    """Check the traffic so far; when its figures cannot tell yet, the SLA probes will."""
    try:
        check_reachable(read_live(current_files().live), url, time.time())
    except MeasurementError:
        return


def check_reachable(live: dict[str, Any], url: str, now_unix: float) -> None:
    """Raise InterruptExecution naming ``url`` when at least ``UNREACHABLE_SHARE`` of the
    orders due in the last ``REACH_WINDOW_S`` finished seconds could not connect (pure;
    MeasurementError when the live figures cannot tell)."""
    due, failed = connect_failures(live, REACH_WINDOW_S, now_unix)
    if due and failed >= UNREACHABLE_SHARE * due:
        raise InterruptExecution(
            f"the target is unreachable: {failed} of {due} orders in the last "
            f"{REACH_WINDOW_S:g} s could not connect to {url}")


def _start_own(orders: Orders, rate_rps: float, warmup_s: float, max_duration_s: float,
               workers: int) -> None:
    files = traffic_files()
    pid_file, out = files.pid, files.summary
    for stale in (out, files.live, outcomes_path(files), _error_note()):
        stale.unlink(missing_ok=True)
    _mark_start(files)
    command = _load_command(orders, rate_rps, max_duration_s, files, workers)
    with out.with_suffix(".log").open("w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    pid_file.write_text(str(process.pid))
    deadline = time.monotonic() + warmup_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise InterruptExecution(
                f"the load generator died at start (exit {process.returncode}); "
                f"see {out.with_suffix('.log')}")
        time.sleep(0.2)


def _error_note() -> Path:
    """Where the before-control leaves why it interrupted the experiment (Chaos Toolkit
    keeps only the status), for the after-control to put into the journal."""
    return traffic_files().pid.with_suffix(".error")


def _take_error_note() -> str | None:
    note = _error_note()
    try:
        text = note.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    note.unlink(missing_ok=True)
    return text


def stopped_early(live: dict[str, Any], now_unix: float) -> str | None:
    """Why the load's figures end before ``now_unix``, or None if it is still running
    (pure): a live file not rewritten for over ``STALE_S`` means the generator died."""
    age_s = now_unix - float(live["updated_unix"])
    if age_s <= STALE_S or live.get("done"):
        return None
    return (f"the load generator stopped {age_s:.0f} s before the experiment ended (no "
            "figures since): the traffic the SLA was measured on is missing")


def _exited(pid: int) -> bool:
    """True once our child ``pid`` has exited (reaping it), never signalling it."""
    try:
        reaped, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True
    return reaped == pid


def _wait_exit(pid: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if _exited(pid):
            return True
        time.sleep(0.1)
    return _exited(pid)


def _stop(pid: int) -> None:
    """Ask the load to stop (SIGINT: it writes its summary), SIGKILL it if it hangs."""
    if _exited(pid):
        return
    os.kill(pid, signal.SIGINT)
    if not _wait_exit(pid, STOP_TIMEOUT_S):
        os.kill(pid, signal.SIGKILL)
        _wait_exit(pid, 5.0)


def after_experiment_control(
    context: dict[str, Any], state: dict[str, Any],
    configuration: dict[str, Any] | None = None, secrets: dict[str, Any] | None = None,
    **kwargs: Any,
) -> None:
    """Stop the traffic and add its summary to the journal (extension ``gameday-traffic``);
    under a shared load, summarise the seconds this experiment covered. Then reconcile
    the orders that finished during the experiment with the broker's ledger (the
    extension's ``orders``, see :mod:`gameday.engine.orders`)."""
    note = _take_error_note()
    window = _take_window()
    if os.environ.get(SHARED_ENV):
        extension = _shared_extension(window)
    else:
        pid_file = traffic_files().pid
        if not pid_file.exists():
            return
        extension = _own_extension(int(pid_file.read_text()))
        pid_file.unlink(missing_ok=True)
    if note:
        extension["error"] = note
    if window is not None:
        extension["orders"] = _reconcile(window)
    extension["service"] = _service_name()
    machine = _machine_loads()
    if machine:
        extension["machine"] = machine
    state.setdefault("extensions", []).append(extension)


def after_hypothesis_control(context: dict[str, Any], state: Any = None,
                             **kwargs: Any) -> None:
    """Sample the machine's CPU after each steady-state check (see
    :mod:`gameday.measurements.machine`)."""
    _sample_machine("hypothesis")


def before_method_control(context: dict[str, Any], **kwargs: Any) -> None:
    """Sample the machine's CPU as the method (the fault) begins."""
    _sample_machine("method-before")


def after_method_control(context: dict[str, Any], state: Any = None, **kwargs: Any) -> None:
    """Sample the machine's CPU as the method ends."""
    _sample_machine("method-after")


def _machine_file() -> Path:
    return traffic_files().pid.with_suffix(".machine.jsonl")


def _sample_machine(label: str) -> None:
    """Append a sample of the machine's CPU to this experiment's samples; the first one
    (``start``) also records which processes are ours: the target's (None: not on this
    machine, so nothing is sampled), this Chaos Toolkit process' and, under ``gameday
    run``, the runner's (it holds the shared load generator). A sample that cannot be
    taken is left out: the verdict then claims nothing about the machine."""
    path = _machine_file()
    header: dict[str, Any]
    try:
        if label == "start":
            path.unlink(missing_ok=True)
            own = get_target().own_processes()
            if own is None:
                return
            runner = [os.getppid()] if os.environ.get(SHARED_ENV) else []
            header = {"roots": [*own[0], os.getpid(), *runner], "cgroups": own[1]}
            path.write_text(json.dumps(header) + "\n", encoding="utf-8")
        else:
            header = json.loads(path.read_text(encoding="utf-8").splitlines()[0])
        sample = read_sample(label, time.time(), header["roots"], header["cgroups"])
        with path.open("a", encoding="utf-8") as samples:
            samples.write(json.dumps(sample.as_json()) + "\n")
    except (OSError, ValueError, IndexError, KeyError, TypeError, GamedayError):
        return


def _machine_loads() -> dict[str, Any]:
    """The machine's load in each phase of the experiment (the extension's
    ``machine``; empty when it was not sampled)."""
    _sample_machine("end")
    path = _machine_file()
    try:
        lines = path.read_text(encoding="utf-8").splitlines()[1:]
        samples = [CpuSample.from_json(json.loads(line)) for line in lines]
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    finally:
        path.unlink(missing_ok=True)
    cores = os.cpu_count() or 1
    loads = phase_loads(samples, cores)
    return {"cores": cores, **{phase: load.as_json() for phase, load in loads.items()}}


def _reconcile(window: Window) -> dict[str, Any]:
    try:
        target = get_target()
    except GamedayError as exc:
        return {"error": f"no target to read the ledger of: {exc}"}
    return reconcile_window(target, outcomes_path(current_files()), window.outcomes_offset,
                            window.start_unix)


def _service_name() -> str:
    """The name of the service under test, for the report ("?" when it cannot be read)."""
    try:
        return get_target().service_name()
    except GamedayError:
        return "?"


def _own_extension(pid: int) -> dict[str, Any]:
    """Stop this experiment's own load and describe it."""
    files = traffic_files()
    early = (f"the load generator exited before the experiment ended: the traffic the SLA "
             f"was measured on is missing; see {files.summary.with_suffix('.log')}"
             if _exited(pid) else None)
    _stop(pid)
    extension: dict[str, Any] = {"name": EXTENSION_NAME}
    if files.summary.exists():
        extension["summary"] = json.loads(files.summary.read_text(encoding="utf-8"))
        extension["summary"]["t0_unix"] = _t0_unix(files.live)
    else:
        extension["error"] = f"the load generator wrote no summary ({files.summary} missing)"
    if early:
        extension["error"] = early
    return extension


def _t0_unix(live: Path) -> float | None:
    """When the load's second 0 began, from its live file (None if it has none)."""
    try:
        return float(read_live(live)["t0_unix"])
    except (MeasurementError, KeyError, TypeError, ValueError):
        return None


def _shared_extension(window: Window | None) -> dict[str, Any]:
    extension: dict[str, Any] = {"name": EXTENSION_NAME}
    if window is None:
        extension["error"] = "no figures from the shared traffic: the experiment never joined it"
        return extension
    try:
        live = read_live(current_files().live)
        extension.update(shared_mark(live, window.start_unix, time.time()))
        if "summary" in extension:
            extension["summary"]["outcomes_path"] = str(outcomes_path(current_files()))
    except MeasurementError as exc:
        extension["error"] = f"no figures from the shared traffic: {exc}"
    return extension


def shared_mark(live: dict[str, Any], start_unix: float, end_unix: float) -> dict[str, Any]:
    """What the journal gets of the shared traffic between two unix times (pure): its
    ``summary``, an ``error`` when the load generator stopped early, a ``note`` when no
    whole second lies between the two."""
    mark: dict[str, Any] = {}
    early = stopped_early(live, end_unix)
    if early:
        mark["error"] = early
    if not seconds_between(live, start_unix, end_unix):
        mark["note"] = "the experiment covered no whole second of the traffic"
        return mark
    mark["summary"] = shared_summary(live, start_unix, end_unix)
    return mark


def shared_summary(live: dict[str, Any], start_unix: float, end_unix: float) -> dict[str, Any]:
    """The load generator's figures for the seconds between two unix times (pure)."""
    window = seconds_between(live, start_unix, end_unix)
    sla = figures(window)
    histogram = merged_histogram(e.get("hist") for e in window)
    errors = {k: sum(int(e["errors"][k]) for e in window) for k in window[0]["errors"]}
    return {
        "mode": "shared", "since_unix": start_unix, "target_rps": live.get("rate_rps"),
        "due": sla["requests"], "sent": sum(int(e["sent"]) for e in window),
        "answered": sum(int(e["answered"]) for e in window),
        "errors": errors, "error_rate": sla["error_rate"], "availability": sla["availability"],
        "latency_ms": {f"p{q}": histogram.get_value_at_percentile(q) / 1000
                       for q in (50, 95, 99)},
        "timeline": [{k: v for k, v in e.items() if k != "hist"} for e in window],
    }


def start_shared(orders: Orders, rate_rps: float, run_dir: Path,
                 workers: int = 1) -> subprocess.Popen[bytes]:
    """Start a game day's shared load (stops by itself with this process, or after an
    hour); point experiments at it by setting ``$GAMEDAY_SHARED_TRAFFIC`` to ``run_dir``."""
    files = shared_files(run_dir)
    for stale in (files.summary, files.live, outcomes_path(files)):
        stale.unlink(missing_ok=True)
    command = _load_command(orders, rate_rps, SHARED_MAX_DURATION_S, files, workers)
    with files.summary.with_suffix(".log").open("w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    files.pid.write_text(str(process.pid))
    return process


def stop_shared(process: subprocess.Popen[bytes]) -> None:
    """Stop the shared load (it writes its summary)."""
    _stop(process.pid)
