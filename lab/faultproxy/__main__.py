"""Command line: `python -m lab.faultproxy --host 127.0.0.1 --port 8474 [--config FILE]`.

Prints `listening http://HOST:PORT` as its first stdout line once the API answers
(and the proxies of --config listen); runs until SIGTERM or SIGINT. The API listens on
127.0.0.1 unless --host says otherwise. With `GAMEDAY_ADMIN_TOKEN` set in its
environment, the API requires `Authorization: Bearer <token>` (see `lab.faultproxy.api`);
a token that cannot be used in a header stops it with exit code 2.

It runs on uvloop's event loop: measured with `python -m bench.bench_faultproxy`, about
a fifth less CPU per relayed request than asyncio's own loop, whose every socket read
allocates (and the kernel maps, shrinks and unmaps) a 256 KiB buffer. `--event-loop
asyncio` runs it on asyncio's.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import uvloop
from aiohttp import web

from gameday.contract import ConfigError, admin_token
from lab.faultproxy.api import create_app
from lab.faultproxy.collection import ProxyCollection
from lab.faultproxy.errors import ApiError
from lab.faultproxy.metrics import Metrics
from lab.faultproxy.schema import decode, parse_proxy_list
from lab.faultproxy.settings import Address, ServerSettings

__all__ = ["main", "serve"]

log = logging.getLogger("lab.faultproxy")

EVENT_LOOPS = ("uvloop", "asyncio")
"""The event loops it can run on, by the name --event-loop takes (the first: default)."""


@dataclass(frozen=True)
class _Options:
    """What the command line asks for besides the server's settings."""

    log_level: str
    event_loop: str


def _parse_args(argv: list[str] | None) -> tuple[ServerSettings, _Options]:
    parser = argparse.ArgumentParser(
        prog="python -m lab.faultproxy",
        description="TCP fault proxy speaking Toxiproxy's HTTP API.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="API address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8474, help="API port; 0 picks a free one")
    parser.add_argument("--config", help="JSON list of proxies to create at start")
    parser.add_argument("--log-level", default="info", help="debug, info, warning, error")
    parser.add_argument("--event-loop", choices=EVENT_LOOPS, default=EVENT_LOOPS[0],
                        help="uvloop (default) or asyncio")
    args = parser.parse_args(argv)
    settings = ServerSettings(
        api=Address(args.host, args.port), config_path=args.config, admin_token=admin_token()
    )
    return settings, _Options(args.log_level, args.event_loop)


async def _populate(proxies: ProxyCollection, path: str) -> None:
    specs = parse_proxy_list(decode(Path(path).read_bytes()))
    created = await proxies.populate(specs)
    log.info("created %d proxies from %s", len(created), path)


async def _open_api(app: web.Application, api: Address) -> tuple[web.AppRunner, Address]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    family = socket.AF_INET6 if ":" in api.host else socket.AF_INET
    sock = socket.create_server((api.host, api.port), family=family, backlog=1024)
    await web.SockSite(runner, sock).start()
    return runner, Address(api.host, sock.getsockname()[1])


async def _until_signalled() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()


async def serve(settings: ServerSettings) -> int:
    """Run the fault proxy until signalled; 0 on a clean stop, 2 on a bad config."""
    metrics = Metrics()
    proxies = ProxyCollection(metrics, settings.link)
    metrics.watch(proxies.states)
    try:
        if settings.config_path:
            await _populate(proxies, settings.config_path)
    except (ApiError, OSError) as error:
        print(f"faultproxy: bad config {settings.config_path}: {error}", file=sys.stderr)
        await proxies.close()
        return 2
    app = create_app(proxies, metrics, settings.admin_token)
    runner, bound = await _open_api(app, settings.api)
    log.info("API on %s %s", bound, "requires the admin token" if settings.admin_token
             else "is open (GAMEDAY_ADMIN_TOKEN not set)")
    print(f"listening http://{bound}", flush=True)
    try:
        await _until_signalled()
    finally:
        await proxies.close()
        await runner.cleanup()
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of `python -m lab.faultproxy`."""
    try:
        settings, options = _parse_args(argv)
    except ConfigError as error:
        print(f"faultproxy: {error}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=options.log_level.upper(), stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(message)s",
    )
    with asyncio.Runner(loop_factory=_loop_factory(options.event_loop)) as runner:
        return runner.run(serve(settings))


def _loop_factory(name: str) -> Callable[[], asyncio.AbstractEventLoop]:
    """What makes a new event loop of the one called `name` in EVENT_LOOPS."""
    return uvloop.new_event_loop if name == "uvloop" else asyncio.new_event_loop


if __name__ == "__main__":
    sys.exit(main())
