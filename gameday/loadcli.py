"""``gameday load``: run the open-model load generator from the command line."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

from gameday.load import LoadSettings, run_load

PARENT_CHECK_S = 0.5


def add_parser(subparsers: Any) -> None:
    """Register ``gameday load`` and its options."""
    parser = subparsers.add_parser("load", help="send open-model load to a URL")
    parser.add_argument("--url", required=True, help="where to send requests")
    parser.add_argument("--rate", type=float, required=True, help="requests per second")
    parser.add_argument("--duration", type=float, required=True, help="seconds to send")
    parser.add_argument("--method", choices=("POST", "GET"), default="POST")
    parser.add_argument("--timeout-s", type=float, default=2.0, help="per-request timeout")
    parser.add_argument("--json", type=Path, help="write the summary as JSON to this file")
    parser.add_argument("--stop-with-parent", type=int, metavar="PID",
                        help="stop when the process PID is no longer this one's parent")
    parser.set_defaults(func=command)


async def _watch_parent(parent: int, stop: asyncio.Event) -> None:
    while not stop.is_set():
        if os.getppid() != parent:
            stop.set()
        await asyncio.sleep(PARENT_CHECK_S)


async def _run(settings: LoadSettings, parent: int | None) -> dict[str, Any]:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    watcher = asyncio.create_task(_watch_parent(parent, stop)) if parent else None
    try:
        return await run_load(settings, stop)
    finally:
        if watcher:
            watcher.cancel()


def command(args: argparse.Namespace) -> int:
    """Run the load and print (or write) its summary."""
    try:
        settings = LoadSettings(url=args.url, rate_rps=args.rate, duration_s=args.duration,
                                timeout_s=args.timeout_s, method=args.method)
    except ValueError as exc:
        print(f"gameday load: {exc}", file=sys.stderr)
        return 2
    summary = asyncio.run(_run(settings, args.stop_with_parent))
    text = json.dumps(summary, indent=2)
    if args.json:
        tmp = args.json.with_suffix(".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(args.json)
    else:
        print(text)
    return 0
