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


class _Direction:
    """One direction of a link: its source and sink sockets, its pipeline of fault
    stages, and its byte counts; `on_data` is the source's read callback."""

    __slots__ = ("counts", "in_flight", "pipeline", "sink", "source")

    def __init__(
        self,
        source: Endpoint,
        sink: Endpoint,
        counts: ByteCounts,
        in_flight: InFlight,
        pipeline: Pipeline,
    ) -> None:
        self.source = source
        self.sink = sink
        self.counts = counts
        self.in_flight = in_flight
        self.pipeline = pipeline

    def on_data(self, data: bytes) -> None:
        """Bytes read from the source: into the pipeline, or straight to the sink's
        transport while the pipeline is idle (no stage, nothing queued for the writer:
        then the bytes go out in order, with no task switch). The idle path runs once
        per socket read, so it is written out here: no property, no helper call."""
        size = len(data)
        counts = self.counts
        counts.received += size
        pipeline = self.pipeline
        if pipeline.entry is pipeline.exit and not pipeline.exit.items:
            transport = self.sink.transport
            if not transport.is_closing():  # as Endpoint.write
                transport.write(data)
            counts.sent += size
            return
        self.in_flight.add(size)
        pipeline.entry.put(Chunk(data, now_s()))

    def on_eof(self) -> None:
        """The source's peer shut down its side: the end goes down the pipeline."""
        self.pipeline.entry.put(End.EOF)

    def on_writable(self, writable: bool) -> None:
        """The sink's buffer went above (False) or back below (True) its high mark:
        stop (or resume) reading the source."""
        self.source.hold_reading("sink full", not writable)


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
        ends = {"upstream": (client, upstream), "downstream": (upstream, client)}
        rng = random.Random()
        self._directions: dict[str, _Direction] = {}
        for stream in STREAMS:
            source, sink = ends[stream]
            in_flight = InFlight(
                settings.max_in_flight_bytes, partial(source.hold_reading, "in flight")
            )
            pipeline = Pipeline(toxics[stream], in_flight, rng, self.abort)
            self._directions[stream] = _Direction(
                source, sink, meters[stream], in_flight, pipeline
            )
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    async def run(self) -> None:
        """Carry bytes both ways until both directions ended, a fault ended the
        connection, or a socket failed."""
        self._task = asyncio.current_task()
        self._wire()
        try:
            async with asyncio.TaskGroup() as group:
                for direction in self._directions.values():
                    group.create_task(self._write(direction))
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
        self._directions[toxic.direction].pipeline.add(toxic)

    def update_toxic(self, toxic: Toxic) -> None:
        """Apply new settings of a toxic to this open connection."""
        self._directions[toxic.direction].pipeline.update(toxic)

    def remove_toxic(self, toxic: Toxic) -> None:
        """Stop applying a toxic to this open connection (see `Pipeline.remove`)."""
        self._directions[toxic.direction].pipeline.remove(toxic.name)

    def _wire(self) -> None:
        for direction in self._directions.values():
            direction.source.on_data = direction.on_data
            direction.source.on_eof = direction.on_eof
            direction.source.on_lost = self._on_lost
            direction.sink.on_writable = direction.on_writable
        for direction in self._directions.values():
            direction.source.wired()

    def _on_lost(self, error: Exception | None) -> None:
        """A socket failed (None: we closed it, nothing to do)."""
        if error is not None:
            log.debug("link socket failed: %s", error)
            self.abort()

    async def _write(self, direction: _Direction) -> None:
        """Write what leaves the pipeline, in order, waiting while the socket is full."""
        exit_, sink = direction.pipeline.exit, direction.sink
        in_flight, counts = direction.in_flight, direction.counts
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
            for direction in self._directions.values():
                direction.source.reset()
        raise _Ended(end.value)

    def _close(self) -> None:
        self._closed = True
        for direction in self._directions.values():
            direction.pipeline.close()
        for direction in self._directions.values():
            direction.source.close()
