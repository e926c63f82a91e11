"""One proxied connection (a link): two directions, each a pipeline of fault stages.

    client --upstream pipeline--> upstream server
    client <--downstream pipeline-- upstream server

Bytes read from a socket go straight to the other socket when their direction has
no fault stage and nothing queued (the fast path: no task switch, no copy); else
into the pipeline, whose writer task writes what comes out in order. How a
direction ends decides how the connection ends (see `stream.End`): a peer's EOF is
passed on as a half-close, a fault's CLOSE closes both sockets after the bytes
before it, a fault's RESET aborts both sockets with a TCP RST.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Mapping
from functools import partial

from lab.faultproxy.endpoint import Endpoint
from lab.faultproxy.pipeline import Pipeline
from lab.faultproxy.settings import LinkSettings
from lab.faultproxy.stream import Chunk, End, InFlight, now_s
from lab.faultproxy.toxics import STREAMS, Toxic

__all__ = ["ByteCounts", "Link", "LinkMeters"]

log = logging.getLogger(__name__)


class ByteCounts:
    """Bytes read and written in one direction of a proxy's links: plain integers
    (one event loop, no lock on the hot path), read by the metrics at scrape time."""

    __slots__ = ("received", "sent")

    def __init__(self) -> None:
        self.received = 0
        self.sent = 0


LinkMeters = Mapping[str, ByteCounts]
"""A link's byte counts, by stream name."""


class _Ended(Exception):
    """A fault ended the connection (CLOSE or RESET reached a writer)."""


class Link:
    """Carries one client connection to the upstream through the proxy's toxics."""

    def __init__(
        self,
        client: Endpoint,
        upstream: Endpoint,
        toxics: dict[str, list[Toxic]],
        meters: LinkMeters,
        settings: LinkSettings,
    ) -> None:
        self._ends = {"upstream": (client, upstream), "downstream": (upstream, client)}
        self._meters = meters
        rng = random.Random()
        self._in_flight = {
            s: InFlight(settings.max_in_flight_bytes, partial(self._hold, s, "in flight"))
            for s in STREAMS
        }
        self._pipelines = {
            s: Pipeline(toxics[s], self._in_flight[s], rng, self.abort) for s in STREAMS
        }
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    async def run(self) -> None:
        """Carry bytes both ways until both directions ended, a fault ended the
        connection, or a socket failed."""
        self._task = asyncio.current_task()
        self._wire()
        try:
            async with asyncio.TaskGroup() as group:
                for stream in STREAMS:
                    group.create_task(self._write(stream))
        except* OSError as errors:
            log.debug("link closed: %s", errors.exceptions[0])
        except* _Ended:
            log.debug("link closed by a fault")
        finally:
            self._close()

    def abort(self) -> None:
        """Close the connection (both sockets) as soon as possible."""
        if self._task is not None and not self._closed:
            self._task.cancel()

    def add_toxic(self, toxic: Toxic) -> None:
        """Start applying a new toxic to this open connection."""
        self._pipelines[toxic.direction].add(toxic)

    def update_toxic(self, toxic: Toxic) -> None:
        """Apply new settings of a toxic to this open connection."""
        self._pipelines[toxic.direction].update(toxic)

    def remove_toxic(self, toxic: Toxic) -> None:
        """Stop applying a toxic to this open connection (see `Pipeline.remove`)."""
        self._pipelines[toxic.direction].remove(toxic.name)

    def _wire(self) -> None:
        for stream, (source, sink) in self._ends.items():
            source.on_data = partial(self._on_data, stream)
            source.on_eof = partial(self._on_eof, stream)
            source.on_lost = self._on_lost
            sink.on_writable = partial(self._on_writable, stream)
        for source, _ in self._ends.values():
            source.wired()

    def _on_data(self, stream: str, data: bytes) -> None:
        counts = self._meters[stream]
        counts.received += len(data)
        pipeline = self._pipelines[stream]
        if pipeline.idle:
            self._ends[stream][1].write(data)
            counts.sent += len(data)
            return
        self._in_flight[stream].add(len(data))
        pipeline.entry.put(Chunk(data, now_s()))

    def _on_eof(self, stream: str) -> None:
        self._pipelines[stream].entry.put(End.EOF)

    def _on_lost(self, error: Exception | None) -> None:
        """A socket failed (None: we closed it, nothing to do)."""
        if error is not None:
            log.debug("link socket failed: %s", error)
            self.abort()

    def _on_writable(self, stream: str, writable: bool) -> None:
        self._hold(stream, "sink full", not writable)

    def _hold(self, stream: str, reason: str, hold: bool) -> None:
        """Stop (or resume) reading the source of `stream` for `reason`."""
        self._ends[stream][0].hold_reading(reason, hold)

    async def _write(self, stream: str) -> None:
        """Write what leaves the pipeline, in order, waiting while the socket is full."""
        exit_, sink = self._pipelines[stream].exit, self._ends[stream][1]
        in_flight, counts = self._in_flight[stream], self._meters[stream]
        while isinstance(item := await exit_.get(), Chunk):
            sink.write(item.data)
            counts.sent += len(item.data)
            in_flight.done(len(item.data))
            await sink.writable.wait()
        self._end(item, sink)

    def _end(self, end: End, sink: Endpoint) -> None:
        """EOF half-closes `sink`; CLOSE and RESET end the whole link."""
        if end is End.EOF:
            sink.write_eof()
            return
        if end is End.RESET:
            for source, _ in self._ends.values():
                source.reset()
        raise _Ended(end.value)

    def _close(self) -> None:
        self._closed = True
        for pipeline in self._pipelines.values():
            pipeline.close()
        for source, _ in self._ends.values():
            source.close()
