"""Serving aiohttp apps as a lab process: bind (port 0 allowed), announce, stop on signal.

Used by ``python -m lab.broker`` and ``python -m lab.service``. A process prints one
first line on stdout naming its bound addresses, e.g.
``listening http://127.0.0.1:PORT admin http://127.0.0.1:APORT``, then serves until
SIGTERM or SIGINT, and then shuts down cleanly (cleanup hooks run) and exits 0.
"""

from __future__ import annotations

import asyncio
import signal

from aiohttp import web

__all__ = ["serve_until_signal", "start_app", "stop_on_signal"]


async def start_app(app: web.Application, host: str, port: int) -> tuple[web.AppRunner, str]:
    """Start serving ``app`` on host:port (0 = any free port); return runner and URL."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    bound_host, bound_port = runner.addresses[0][:2]
    shown_host = f"[{bound_host}]" if ":" in bound_host else bound_host
    return runner, f"http://{shown_host}:{bound_port}"


def stop_on_signal() -> asyncio.Event:
    """An event set by SIGTERM or SIGINT (handlers installed now, on the running loop)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    return stop


async def serve_until_signal(apps: list[tuple[str, web.Application, str, int]]) -> None:
    """Serve each ``(label, app, host, port)``, print the listening line, wait, stop.

    The line is ``listening URL`` for the first app, then ``LABEL URL`` per other app.
    Signal handlers are in place before the line is printed.
    """
    stop = stop_on_signal()
    runners: list[web.AppRunner] = []
    words = ["listening"]
    try:
        for index, (label, app, host, port) in enumerate(apps):
            runner, url = await start_app(app, host, port)
            runners.append(runner)
            words += [url] if index == 0 else [label, url]
        print(" ".join(words), flush=True)
        await stop.wait()
    finally:
        for runner in reversed(runners):
            await runner.cleanup()
