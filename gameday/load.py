"""An open-model load generator: request i is due at t0 + i/rate, whatever came before.

Each request starts as its own task at its due time, whether or not earlier ones have
answered, and its latency is measured from that *due* time: a stalled service shows
as high latency instead of as fewer requests (no coordinated omission). Requests that
start more than ``late_threshold_ms`` after their due time are counted as late starts.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from dataclasses import dataclass
from typing import Any

import aiohttp

from gameday.loadstats import LoadStats, classify_status

MAX_CONNECTIONS = 1024


@dataclass(frozen=True)
class LoadSettings:
    """One load run.

    Attributes:
        url: where requests go (the service's ``/orders`` for order traffic).
        rate_rps: requests started per second.
        duration_s: how long to send; the run stops by itself after it.
        timeout_s: per-request timeout; a request over it counts as ``timeout``.
        method: ``POST`` sends a new order (unique client order id) each time; ``GET`` no body.
        late_threshold_ms: a start later than this after its due time is a late start.
    """

    url: str
    rate_rps: float
    duration_s: float
    timeout_s: float = 2.0
    method: str = "POST"
    late_threshold_ms: float = 10.0

    def __post_init__(self) -> None:
        if not self.rate_rps > 0:
            raise ValueError(f"rate must be > 0 requests/s, got {self.rate_rps}")
        if not self.duration_s > 0:
            raise ValueError(f"duration must be > 0 s, got {self.duration_s}")
        if self.method not in ("GET", "POST"):
            raise ValueError(f"method must be GET or POST, got {self.method!r}")


def new_order(sequence: int) -> dict[str, Any]:
    """A small market order with a unique client order id."""
    return {
        "client_order_id": f"gd-{os.getpid()}-{sequence}-{uuid.uuid4().hex[:8]}",
        "instrument": "EUR_USD",
        "units": 1000,
        "price": 1.0842,
    }


async def _one_request(
    session: aiohttp.ClientSession, settings: LoadSettings, sequence: int
) -> str:
    body = new_order(sequence) if settings.method == "POST" else None
    try:
        async with session.request(settings.method, settings.url, json=body) as response:
            await response.read()
            return classify_status(response.status)
    except TimeoutError:
        return "timeout"
    except aiohttp.ClientError:
        return "connection"


async def _timed_request(
    session: aiohttp.ClientSession, settings: LoadSettings, stats: LoadStats,
    *, sequence: int, due: float, t0: float,
) -> None:
    outcome = await _one_request(session, settings, sequence)
    stats.record_outcome(int(due - t0), outcome, time.monotonic() - due)


async def run_load(settings: LoadSettings, stop: asyncio.Event | None = None) -> dict[str, Any]:
    """Send the load until ``duration_s`` has passed or ``stop`` is set; return the summary."""
    stop = stop or asyncio.Event()
    stats = LoadStats(target_rps=settings.rate_rps)
    timeout = aiohttp.ClientTimeout(total=settings.timeout_s)
    connector = aiohttp.TCPConnector(limit=MAX_CONNECTIONS)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        t0 = time.monotonic()
        tasks = await _schedule(session, settings, stats, stop, t0)
        if tasks:
            await asyncio.wait(tasks, timeout=settings.timeout_s + 1.0)
        elapsed = time.monotonic() - t0
    return stats.summary(elapsed)


async def _schedule(
    session: aiohttp.ClientSession, settings: LoadSettings, stats: LoadStats,
    stop: asyncio.Event, t0: float,
) -> set[asyncio.Task[None]]:
    tasks: set[asyncio.Task[None]] = set()
    total = int(settings.rate_rps * settings.duration_s)
    late_s = settings.late_threshold_ms / 1000
    for sequence in range(total):
        due = t0 + sequence / settings.rate_rps
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        if stop.is_set():
            break
        lag = time.monotonic() - due
        stats.record_start(int(due - t0), lag, lag > late_s)
        request = _timed_request(session, settings, stats, sequence=sequence, due=due, t0=t0)
        task = asyncio.create_task(request)
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    return tasks
