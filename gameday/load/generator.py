"""An open-model load generator: request i is due at t0 + i/rate, whatever came before.

Each request starts as its own task at its due time, whether or not earlier ones have
answered, and its latency is measured from that *due* time: a stalled service shows
as high latency instead of as fewer requests (no coordinated omission). The delay
between a request's due time and the moment it really starts is the scheduler lag
(the client's own added latency); a start more than ``late_threshold_ms`` late is a
late start. Every request has a timeout; every ending is classified (2xx, 4xx, 5xx,
timeout, connection) and, per order, as ``ok`` (2xx), ``failed`` (another HTTP answer,
or a connection refused before anything was sent) or ``unknown`` (a timeout or a
broken connection after the order may have reached the service).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from gameday.contract import DEFAULT_ORDER_BODY, ORDER_VALUES, fill_placeholders
from gameday.http1 import Broken, ConnectionPool, Endpoint, NotSent, RequestHead
from gameday.load.output import LiveHeader, OutcomeLog, live_document
from gameday.load.stats import LoadStats, RunFacts, build_summary, classify_status

__all__ = ["LoadOutputs", "LoadSettings", "new_order", "run_load"]

MAX_CONNECTIONS = 1024
DRAIN_GRACE_S = 1.0
STOP_POLL_S = 0.05
BURST_MAX = 32
TICK_OFFSET_S = 0.05
METHODS = ("GET", "POST", "PUT")

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoadSettings:
    """One load run.

    Attributes:
        url: where requests go (the service's ``/orders`` for order traffic).
        rate_rps: requests due per second (over all workers).
        duration_s: how long to send; the run stops by itself after it.
        timeout_s: per-request timeout; a request over it counts as ``timeout``.
        method: ``POST`` or ``PUT`` sends a new order (unique client order id) each time;
            ``GET`` sends no body.
        order_template: the order's JSON body with placeholders (a service spec's
            ``order.body``, see :func:`gameday.contract.fill_placeholders`); None = the contract's.
        late_threshold_ms: a start later than this after its due time is a late start.
        in_time_s: an answer within this many seconds of its due time is "in time".
        worker_index, worker_count: this process sends requests i with
            i % worker_count == worker_index (``--workers`` splits the rate this way).
        start_unix: wall-clock time of the run's second 0 (None = now); workers share it.
        unknown_statuses: HTTP statuses by which the service says an order's outcome is
            unknown (it may have been filled: a service spec's ``order.statuses.unknown``);
            such an order is logged ``unknown``, any other non-2xx answer ``failed``.
    """

    url: str
    rate_rps: float
    duration_s: float
    timeout_s: float = 2.0
    method: str = "POST"
    late_threshold_ms: float = 10.0
    in_time_s: float = 1.0
    worker_index: int = 0
    worker_count: int = 1
    start_unix: float | None = None
    order_template: Mapping[str, Any] | None = None
    unknown_statuses: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if not self.rate_rps > 0:
            raise ValueError(f"rate must be > 0 requests/s, got {self.rate_rps}")
        if not self.duration_s > 0:
            raise ValueError(f"duration must be > 0 s, got {self.duration_s}")
        if not self.timeout_s > 0:
            raise ValueError(f"timeout must be > 0 s, got {self.timeout_s}")
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {', '.join(METHODS)}, got {self.method!r}")
        if not 0 <= self.worker_index < self.worker_count:
            raise ValueError(f"worker {self.worker_index} of {self.worker_count} is invalid")
        Endpoint.from_url(self.url)  # raises ValueError naming what is wrong with it

    def indices(self) -> range:
        """The request numbers this process sends (request i is due at t0 + i/rate)."""
        total = int(self.rate_rps * self.duration_s)
        return range(self.worker_index, total, self.worker_count)


@dataclass(frozen=True)
class LoadOutputs:
    """Where a run's figures go while it runs (both optional).

    outcomes: receives every order's outcome (see :mod:`gameday.load.output`).
    on_second: called about once per second, and once at the end, with the live document.
    """

    outcomes: OutcomeLog = field(default_factory=OutcomeLog)
    on_second: Callable[[dict[str, Any]], None] | None = None


def new_order(client_order_id: str,
              template: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A small market order with the given client order id, in the shape of ``template``
    (default: the contract's order)."""
    values = {**ORDER_VALUES, "client_order_id": client_order_id}
    body: dict[str, Any] = fill_placeholders(template or DEFAULT_ORDER_BODY, values)
    return body


ID_MARK = "\x00client_order_id\x00"


def body_maker(template: Mapping[str, Any] | None) -> Callable[[str], bytes]:
    """:func:`new_order` as JSON bytes, for one id after another: the template is filled
    and serialized once, and each order only puts its (JSON-escaped) id in (pure)."""
    text = json.dumps(new_order(ID_MARK, template), separators=(",", ":"))
    mark = json.dumps(ID_MARK)[1:-1]

    def body(client_order_id: str) -> bytes:
        return text.replace(mark, json.dumps(client_order_id)[1:-1]).encode()

    return body


@dataclass
class _Run:
    settings: LoadSettings
    client: ConnectionPool
    head: RequestHead
    stats: LoadStats
    outputs: LoadOutputs
    t0: float
    body: Callable[[str], bytes]
    id_prefix: str = field(default_factory=lambda: f"gd-{os.getpid()}-{uuid.uuid4().hex[:8]}")


def answer_outcome(status: int, unknown_statuses: tuple[int, ...]) -> tuple[str, str]:
    """An HTTP answer's class and the order's outcome (pure): ``ok`` for 2xx, ``unknown``
    for one of ``unknown_statuses``, else ``failed``."""
    klass = classify_status(status)
    if klass == "2xx":
        return klass, "ok"
    return klass, "unknown" if status in unknown_statuses else "failed"


async def _send(run: _Run, order_id: str) -> tuple[str, str]:
    """Send one request; returns (class, order outcome)."""
    settings = run.settings
    body = None if settings.method == "GET" else run.body(order_id)
    try:
        status = await run.client.request(run.head.encode(body), settings.timeout_s)
    except TimeoutError:
        return "timeout", "unknown"
    except NotSent:
        return "connection", "failed"  # no connection: nothing was sent
    except Broken:
        return "connection", "unknown"
    return answer_outcome(status, settings.unknown_statuses)


async def _request(run: _Run, sequence: int, t: int, due: float) -> None:
    started = time.monotonic()
    run.stats.record_start(t, started - due, started - run.t0)
    order_id = f"{run.id_prefix}-{sequence}"
    try:
        klass, outcome = await _send(run, order_id)
    except asyncio.CancelledError:
        run.stats.record_end(t, "timeout", time.monotonic() - due)
        run.outputs.outcomes.write(order_id, "unknown")
        raise
    except Exception:  # every request must end in the figures, or its second never finishes
        log.exception("request %s failed unexpectedly; counted as a connection error", order_id)
        klass, outcome = "connection", "unknown"
    run.stats.record_end(t, klass, time.monotonic() - due)
    run.outputs.outcomes.write(order_id, outcome)


async def _wait(delay_s: float, stop: asyncio.Event) -> None:
    """Sleep ``delay_s`` (always yielding to the loop); long sleeps end early on ``stop``."""
    if delay_s <= STOP_POLL_S:
        await asyncio.sleep(max(0.0, delay_s))
        return
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), delay_s)


async def _schedule(run: _Run, stop: asyncio.Event) -> set[asyncio.Task[None]]:
    tasks: set[asyncio.Task[None]] = set()
    loop = asyncio.get_running_loop()  # once: each call is a getpid() on Python 3.11
    rate = run.settings.rate_rps
    for sequence in run.settings.indices():
        t = int(sequence / rate)
        run.stats.schedule_reaches(t)
        due = run.t0 + sequence / rate
        delay_s = due - time.monotonic()
        if delay_s > 0 or sequence % BURST_MAX == 0:
            # Requests already due start back to back (up to BURST_MAX of them between
            # two yields): a sleep per request costs a loop turn each at high rates.
            await _wait(delay_s, stop)
        if stop.is_set():
            break
        run.stats.record_due(t)
        task = loop.create_task(_request(run, sequence, t, due))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    run.stats.finish_scheduling()
    return tasks


async def _drain(tasks: set[asyncio.Task[None]], timeout_s: float) -> None:
    """Wait for the requests under way; cancel (and count) those still going after it."""
    if tasks:
        await asyncio.wait(set(tasks), timeout=timeout_s)
    leftovers = set(tasks)
    for task in leftovers:
        task.cancel()
    await asyncio.gather(*leftovers, return_exceptions=True)


def _header(settings: LoadSettings, t0_unix: float) -> LiveHeader:
    return LiveHeader(t0_unix=t0_unix, rate_rps=settings.rate_rps,
                      in_time_s=settings.in_time_s, timeout_s=settings.timeout_s)


async def _tick(run: _Run, header: LiveHeader) -> None:
    """About once per second: finish seconds, flush outcomes, hand on the live document."""
    ticks = int(run.settings.duration_s + run.settings.timeout_s + DRAIN_GRACE_S) + 2
    for tick in range(1, ticks + 1):
        await asyncio.sleep(max(0.0, run.t0 + tick + TICK_OFFSET_S - time.monotonic()))
        _report(run, header, done=False)


def _report(run: _Run, header: LiveHeader, *, done: bool) -> None:
    run.stats.finalize()
    run.outputs.outcomes.flush()
    if run.outputs.on_second is not None:
        run.outputs.on_second(live_document(header, run.stats.timeline, time.time(), done))


def _clock(settings: LoadSettings) -> tuple[float, float]:
    """(t0 on the monotonic clock, t0 as unix time)."""
    if settings.start_unix is None:
        return time.monotonic(), time.time()
    return time.monotonic() + (settings.start_unix - time.time()), settings.start_unix


async def run_load(
    settings: LoadSettings, stop: asyncio.Event | None = None,
    outputs: LoadOutputs | None = None,
) -> dict[str, Any]:
    """Send the load until ``duration_s`` has passed or ``stop`` is set; return the summary.

    The summary (see :func:`gameday.load.stats.build_summary`) includes the encoded
    histograms; :func:`gameday.load.stats.public_summary` drops them.
    """
    stop = stop or asyncio.Event()
    outputs = outputs or LoadOutputs()
    stats = LoadStats(settings.rate_rps / settings.worker_count, settings.in_time_s,
                      settings.late_threshold_ms / 1000)
    endpoint = Endpoint.from_url(settings.url)
    async with ConnectionPool(endpoint, MAX_CONNECTIONS) as client:
        t0, t0_unix = _clock(settings)
        run = _Run(settings, client, RequestHead(settings.method, endpoint), stats, outputs,
                   t0, body_maker(settings.order_template))
        header = _header(settings, t0_unix)
        ticker = asyncio.create_task(_tick(run, header))
        try:
            await _drain(await _schedule(run, stop), settings.timeout_s + DRAIN_GRACE_S)
        finally:
            ticker.cancel()
        elapsed = time.monotonic() - t0
    stats.abandon_pending()
    _report(run, header, done=True)
    facts = RunFacts(stats.target_rps, elapsed, stats.last_start_s, 1,
                     dict(outputs.outcomes.counts))
    return build_summary(stats.timeline, stats.latency, stats.lag, facts)
