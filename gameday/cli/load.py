"""``gameday load``: run the open-model load generator from the command line.

Examples::

    gameday load --url http://127.0.0.1:18000/orders --rate 200 --duration 60
    gameday load --url URL --rate 3000 --duration 20 --workers 2 --json out.json
    gameday load --url URL --rate 3000 --duration 20 --shard 0/4 --start-at 1796284800
    gameday load-merge shard-*.json --json run.json   # or - (stdin): kubectl logs

``--shard I/N --start-at UNIX`` runs one of N shards of a load on machines (or pods: an
Indexed Job, deploy/kubernetes/60-load-workers.yaml) of their own: request i goes to
shard i % N, every shard counts seconds from the same wall-clock second 0 (UNIX, which
must not have passed by more than a few seconds: give the shards time to start), and its
summary keeps the HDR histograms (printed, or written with ``--json``).
``gameday load-merge`` merges N such summaries exactly, as ``--workers`` merges its
processes: counts add, histograms add, so the run's percentiles are those of one
histogram of every latency. It checks that the summaries are the N shards of one run.

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
import time
import urllib.parse
from pathlib import Path
from typing import Any, TextIO

import uvloop

from gameday.contract import ORDER_PLACEHOLDERS, ORDER_VALUES, fill_placeholders
from gameday.load.generator import LoadOutputs, LoadSettings, run_load
from gameday.load.merge import ShardError, merge_shards
from gameday.load.merge import documents as merge_documents
from gameday.load.output import LiveSink, OutcomeLog, Progress, write_atomic
from gameday.load.stats import public_summary
from gameday.load.workers import run_workers

__all__ = ["add_parser", "command", "merge_command", "outcomes_path"]

PARENT_CHECK_S = 0.5
START_PASSED_MAX_S = 5.0
SHARDS_MAX = 1024


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
    parser.add_argument("--shard", metavar="I/N",
                        help="send only requests i with i %% N == I, as shard I of a load "
                        "split over N machines or pods (needs --start-at); the summary "
                        "keeps its histograms for `gameday load-merge`")
    parser.add_argument("--start-at", type=float, metavar="UNIX",
                        help="the wall-clock time (seconds since the epoch) of the run's "
                        "second 0, the same for every shard")
    parser.add_argument("--worker", help=argparse.SUPPRESS)  # I/N: run as worker I of N
    parser.set_defaults(func=command)
    merge = subparsers.add_parser(
        "load-merge", help="merge the summaries of `gameday load --shard I/N` exactly")
    merge.add_argument("inputs", nargs="+", metavar="FILE",
                       help="files holding shard summaries (several JSON objects one after "
                       "another are fine, e.g. `kubectl logs` of the pods); - for stdin")
    merge.add_argument("--json", type=Path, help="write the merged summary to this file")
    merge.set_defaults(func=merge_command)


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
    _check_shard(args)
    if args.stop_with_parent is not None and args.stop_with_parent <= 0:
        raise ValueError(f"--stop-with-parent must be a process id > 0, got "
                         f"{args.stop_with_parent}")
    for option in ("json", "live"):
        path = getattr(args, option)
        if path is not None and (path.is_dir() or not path.parent.is_dir()):
            raise ValueError(f"--{option} {path}: expected a file in an existing directory")


def _check_shard(args: argparse.Namespace) -> None:
    """ValueError when ``--shard``/``--start-at`` cannot work together with the rest."""
    if args.shard is None and args.start_at is None:
        return
    if args.shard is None or args.start_at is None:
        raise ValueError("--shard I/N and --start-at UNIX go together: every shard needs "
                         "the run's second 0")
    if args.workers > 1 or args.worker:
        raise ValueError("--shard runs one shard in this process: not with --workers")
    index, count = _worker(args.shard, "--shard")
    if not (1 <= count <= SHARDS_MAX and 0 <= index < count):
        raise ValueError(f"--shard {args.shard!r} is invalid: valid is I/N with "
                         f"0 <= I < N <= {SHARDS_MAX}")
    passed_s = time.time() - args.start_at
    if not math.isfinite(args.start_at) or passed_s > START_PASSED_MAX_S:
        raise ValueError(f"--start-at {args.start_at!r} passed {passed_s:.0f} s ago: give "
                         "the shards a second 0 after the last of them starts "
                         "(e.g. now + 120 s)")


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


def _worker(text: str, option: str = "--worker") -> tuple[int, int]:
    """``I/N`` → (I, N): this process is worker (or shard) I of N."""
    index, _, total = text.partition("/")
    try:
        return int(index), int(total)
    except ValueError:
        raise ValueError(f"{option} {text!r} is invalid: expected I/N, e.g. 0/2") from None


def _settings(args: argparse.Namespace) -> LoadSettings:
    _check_options(args)
    index, count = _worker(args.worker) if args.worker else (0, 1)
    if args.shard:
        index, count = _worker(args.shard, "--shard")
    start_unix = _handshake() if args.worker else args.start_at
    return LoadSettings(url=args.url, rate_rps=args.rate, duration_s=args.duration,
                        timeout_s=args.timeout_s, method=args.method,
                        order_template=args.order_template,
                        unknown_statuses=args.unknown_status,
                        in_time_s=args.in_time_s, worker_index=index, worker_count=count,
                        start_unix=start_unix)


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
    if args.shard:
        index, count = _worker(args.shard, "--shard")
        summary["shard"] = {"index": index, "count": count, "start_unix": args.start_at,
                            "rate_rps": args.rate}
    if args.json:
        if args.workers == 1:
            summary["outcomes_path"] = str(outcomes_path(args.json))
        keep = summary if args.worker or args.shard else public_summary(summary)
        write_atomic(args.json, json.dumps(keep, indent=2))
    elif args.shard:
        print(json.dumps(summary), flush=True)  # one line: `kubectl logs` collects it
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
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            summary = runner.run(_run(args, settings, sink, outcomes))
    if progress is not None:
        progress.close()
    _write(args, summary)
    return 0


def _read_input(name: str) -> str:
    if name == "-":
        return sys.stdin.read()
    return Path(name).read_text(encoding="utf-8")


def merge_command(args: argparse.Namespace) -> int:
    """``gameday load-merge``: print (or write) the merged summary of the shards found in
    the inputs; exit 2 naming what cannot be merged."""
    found: list[dict[str, Any]] = []
    try:
        for name in args.inputs:
            documents, skipped = merge_documents(_read_input(name))
            found += documents
            if skipped:
                print(f"gameday load-merge: {name}: skipped {skipped} line(s) that are not "
                      "JSON objects", file=sys.stderr)
        merged = merge_shards(found)
    except (OSError, UnicodeDecodeError, ShardError) as exc:
        print(f"gameday load-merge: {exc}", file=sys.stderr)
        return 2
    text = json.dumps(public_summary(merged), indent=2)
    if args.json:
        write_atomic(args.json, text)
    else:
        print(text)
    return 0
