"""``gameday load``: run the open-model load generator from the command line.

Examples::

    gameday load --url http://127.0.0.1:18000/orders --rate 200 --duration 60
    gameday load --url URL --rate 3000 --duration 20 --workers 2 --json out.json

SIGINT/SIGTERM stop the load early; the summary is still written. With ``--json PATH``
the summary goes to PATH and every order's outcome to ``PATH`` with the suffix
``.outcomes.jsonl``; without it the summary is printed. ``--live PATH`` keeps a live
file of the finished seconds (:mod:`gameday.load.output`). A progress line is shown
only when stdout is a terminal.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import math
import os
import signal
import sys
import urllib.parse
from pathlib import Path
from typing import Any, TextIO

from gameday.contract import ORDER_PLACEHOLDERS, ORDER_VALUES, fill_placeholders
from gameday.load.generator import LoadOutputs, LoadSettings, run_load
from gameday.load.output import LiveSink, OutcomeLog, Progress, write_atomic
from gameday.load.stats import public_summary
from gameday.load.workers import run_workers

__all__ = ["add_parser", "command", "outcomes_path"]

PARENT_CHECK_S = 0.5


def add_parser(subparsers: Any) -> None:
    """Register ``gameday load`` and its options."""
    parser = subparsers.add_parser("load", help="send open-model load to a URL")
    parser.add_argument("--url", required=True, help="where to send requests")
    parser.add_argument("--rate", type=float, required=True, help="requests per second")
    parser.add_argument("--duration", type=float, required=True, help="seconds to send")
    parser.add_argument("--order-template", type=_template, default=None, metavar="JSON",
                        help="the order body as a JSON object with placeholders "
                        "{client_order_id}, {instrument}, {units}, {price} (a service "
                        "spec's order.body); default: the contract's order")
    parser.add_argument("--unknown-status", type=_statuses, default=(), metavar="CODES",
                        help="comma-separated HTTP statuses by which the service says an "
                        "order's outcome is unknown (logged 'unknown', not 'failed')")
    parser.add_argument("--method", choices=("POST", "PUT", "GET"), default="POST",
                        help="POST (default) sends a new order each time; GET has no body")
    parser.add_argument("--timeout-s", type=float, default=2.0, help="per-request timeout")
    parser.add_argument("--in-time-s", type=float, default=1.0,
                        help="an answer within this many seconds counts as in time (1)")
    parser.add_argument("--workers", type=int, default=1,
                        help="processes to split the rate over (default 1)")
    parser.add_argument("--json", type=Path, help="write the summary as JSON to this file")
    parser.add_argument("--live", type=Path,
                        help="rewrite this file each second with the finished seconds")
    parser.add_argument("--stop-with-parent", type=int, metavar="PID",
                        help="stop when the process PID is no longer this one's parent")
    parser.add_argument("--worker", help=argparse.SUPPRESS)  # I/N: run as worker I of N
    parser.set_defaults(func=command)


def outcomes_path(json_path: Path) -> Path:
    """Where the outcome log of a run with ``--json json_path`` goes."""
    return Path(json_path).with_suffix(".outcomes.jsonl")


def _check_options(args: argparse.Namespace) -> None:
    """ValueError naming the first option that cannot work."""
    url = urllib.parse.urlsplit(args.url)
    if url.scheme not in ("http", "https") or not url.hostname:
        raise ValueError(f"--url {args.url!r} is not an HTTP URL: expected e.g. "
                         "http://127.0.0.1:18000/orders")
    for option in ("rate", "duration", "timeout_s", "in_time_s"):
        value = getattr(args, option)
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"--{option.replace('_', '-')} must be a finite number > 0, "
                             f"got {value}")
    if not 1 <= args.workers <= 64:
        raise ValueError(f"--workers must be 1..64, got {args.workers}")
    if args.stop_with_parent is not None and args.stop_with_parent <= 0:
        raise ValueError(f"--stop-with-parent must be a process id > 0, got "
                         f"{args.stop_with_parent}")
    for option in ("json", "live"):
        path = getattr(args, option)
        if path is not None and (path.is_dir() or not path.parent.is_dir()):
            raise ValueError(f"--{option} {path}: expected a file in an existing directory")


def _template(text: str) -> dict[str, Any]:
    """``--order-template``: a JSON object carrying ``{client_order_id}``."""
    try:
        template = json.loads(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not JSON ({exc})") from None
    if not isinstance(template, dict) or "{client_order_id}" not in json.dumps(template):
        raise argparse.ArgumentTypeError("expected a JSON object carrying "
                                         '"{client_order_id}"')
    try:
        fill_placeholders(template, {**ORDER_VALUES, "client_order_id": "x"})
    except KeyError as exc:
        raise argparse.ArgumentTypeError(
            f"unknown placeholder {{{exc.args[0]}}}: valid are "
            + ", ".join(f"{{{name}}}" for name in ORDER_PLACEHOLDERS)) from None
    return template


def _statuses(text: str) -> tuple[int, ...]:
    """``--unknown-status``: e.g. ``502,504``, each 100..599."""
    try:
        codes = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a comma-separated list of HTTP statuses, e.g. 502,504") from None
    bad = [code for code in codes if not 100 <= code <= 599]
    if bad:
        raise argparse.ArgumentTypeError(f"{bad} are not HTTP statuses: valid are 100..599")
    return codes


def _worker(text: str) -> tuple[int, int]:
    """``I/N`` → (I, N): this process is worker I of N."""
    index, _, total = text.partition("/")
    try:
        return int(index), int(total)
    except ValueError:
        raise ValueError(f"--worker {text!r} is invalid: expected I/N, e.g. 0/2") from None


def _settings(args: argparse.Namespace) -> LoadSettings:
    _check_options(args)
    index, count = _worker(args.worker) if args.worker else (0, 1)
    return LoadSettings(url=args.url, rate_rps=args.rate, duration_s=args.duration,
                        timeout_s=args.timeout_s, method=args.method,
                        order_template=args.order_template,
                        unknown_statuses=args.unknown_status,
                        in_time_s=args.in_time_s, worker_index=index, worker_count=count,
                        start_unix=_handshake() if args.worker else None)


def _handshake() -> float:
    """As a worker: say ``ready``, then read the shared start time (unix) from stdin."""
    print("ready", flush=True)
    line = sys.stdin.readline()
    if not line.strip():
        raise ValueError("no start time on stdin (the parent went away)")
    return float(line)


async def _watch_parent(parent: int, stop: asyncio.Event) -> None:
    while not stop.is_set():
        if os.getppid() != parent:
            stop.set()
        await asyncio.sleep(PARENT_CHECK_S)


async def _run(args: argparse.Namespace, settings: LoadSettings, sink: LiveSink,
               outcomes: TextIO | None) -> dict[str, Any]:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    watcher = (asyncio.create_task(_watch_parent(args.stop_with_parent, stop))
               if args.stop_with_parent else None)
    try:
        if args.workers > 1:
            out = outcomes_path(args.json) if args.json else None
            return await run_workers(settings, args.workers, stop, sink, out)
        return await run_load(settings, stop, LoadOutputs(OutcomeLog(outcomes), sink))
    finally:
        if watcher:
            watcher.cancel()


def _write(args: argparse.Namespace, summary: dict[str, Any]) -> None:
    if args.json:
        if args.workers == 1:
            summary["outcomes_path"] = str(outcomes_path(args.json))
        keep = summary if args.worker else public_summary(summary)
        write_atomic(args.json, json.dumps(keep, indent=2))
    else:
        print(json.dumps(public_summary(summary), indent=2))


def command(args: argparse.Namespace) -> int:
    """Run the load and print (or write) its summary; exit 2 on bad options."""
    try:
        settings = _settings(args)
    except ValueError as exc:
        print(f"gameday load: {exc}", file=sys.stderr)
        return 2
    gc.freeze()  # what is loaded now stays: full collections no longer stall the schedule
    progress = Progress(sys.stdout) if sys.stdout.isatty() and not args.worker else None
    sink = LiveSink(args.live, progress)
    with contextlib.ExitStack() as stack:
        outcomes = None
        if args.json and args.workers == 1:
            outcomes = stack.enter_context(outcomes_path(args.json).open("w", encoding="utf-8"))
        summary = asyncio.run(_run(args, settings, sink, outcomes))
    if progress is not None:
        progress.close()
    _write(args, summary)
    return 0
