"""One proxied connection (a link): two directions, each a chain of fault stages.

    client --upstream pipeline--> upstream server
    client <--downstream pipeline-- upstream server

A pipeline is reader -> entry channel -> stage ... stage -> exit channel -> writer.
Adding, updating or removing a toxic rewires the open pipelines synchronously (no
await in between), so no chunk is lost or reordered while faults come and go.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass

from prometheus_client import Counter

from lab.faultproxy.settings import LinkSettings
from lab.faultproxy.stream import EOF, Channel, Chunk, InFlight, Stub
from lab.faultproxy.toxics import STREAMS, Toxic

__all__ = ["Link", "LinkMeters", "Peer", "Pipeline"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Peer:
    """Both ends of an asyncio stream connection."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter


@dataclass(frozen=True)
class LinkMeters:
    """Byte counters of one link, by stream name."""

    received: dict[str, Counter]
    sent: dict[str, Counter]


async def _pass_through(stub: Stub) -> None:
    """What a stage does when its toxic's toxicity roll says "not this connection"."""
    while (chunk := await stub.receive()) is not None:
        stub.send(chunk)


class Stage:
    """One toxic running on one direction of one connection."""

    def __init__(self, toxic: Toxic, stub: Stub, on_failure: Callable[[], None]) -> None:
        self.toxic = toxic
        self.stub = stub
        self._on_failure = on_failure
        self._task = self._start()

    def _start(self) -> asyncio.Task[None]:
        task = asyncio.create_task(self._run(), name=f"fault {self.toxic.name}")
        task.add_done_callback(self._check)
        return task

    async def _run(self) -> None:
        if self.stub.rng.random() < self.toxic.toxicity:
            await self.toxic.fault.pipe(self.stub)
        else:
            await _pass_through(self.stub)
        self.stub.outbox.put(EOF)

    def _check(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("fault %s failed", self.toxic.name, exc_info=task.exception())
            self._on_failure()

    def interrupt(self) -> None:
        """Stop the fault now and pass on the chunk it held."""
        self._task.cancel()
        self.stub.release_held()

    def restart(self, toxic: Toxic) -> None:
        """Swap in new settings; queued chunks go through the new fault."""
        self.interrupt()
        self.toxic = toxic
        self._task = self._start()

    def cancel(self) -> None:
        """Stop the fault for good (the connection is closing)."""
        self._task.cancel()


class Pipeline:
    """The stages of one direction; `entry` is fed by the reader, `exit` drained by the writer."""

    def __init__(
        self, toxics: list[Toxic], rng: random.Random, on_failure: Callable[[], None]
    ) -> None:
        self.exit = Channel()
        self.entry = self.exit
        self._rng = rng
        self._on_failure = on_failure
        self._stages: list[Stage] = []
        for toxic in toxics:
            self.add(toxic)

    def add(self, toxic: Toxic) -> None:
        """Append a stage at the end of the chain (nearest the writer)."""
        stub = Stub(Channel(), self.exit, self._rng)
        self._stages.append(Stage(toxic, stub, self._on_failure))
        self._rewire()

    def update(self, toxic: Toxic) -> None:
        """Restart the stage of the toxic with the same name with new settings."""
        self._find(toxic.name).restart(toxic)

    def remove(self, name: str) -> None:
        """Take a stage out; what it held and what waited for it move on, in order."""
        stage = self._find(name)
        self._stages.remove(stage)
        stage.interrupt()
        stage.stub.inbox.move_to(stage.stub.outbox)
        self._rewire()

    def close(self) -> None:
        """Cancel every stage."""
        for stage in self._stages:
            stage.cancel()

    def _find(self, name: str) -> Stage:
        return next(stage for stage in self._stages if stage.toxic.name == name)

    def _rewire(self) -> None:
        inboxes = [stage.stub.inbox for stage in self._stages] + [self.exit]
        self.entry = inboxes[0]
        for stage, next_inbox in zip(self._stages, inboxes[1:], strict=True):
            stage.stub.outbox = next_inbox


class Link:
    """Carries one client connection to the upstream through the proxy's toxics."""

    def __init__(
        self,
        client: Peer,
        upstream: Peer,
        toxics: dict[str, list[Toxic]],
        meters: LinkMeters,
        settings: LinkSettings,
    ) -> None:
        self._ends = {"upstream": (client, upstream), "downstream": (upstream, client)}
        self._meters = meters
        self._settings = settings
        rng = random.Random()
        self._pipelines = {s: Pipeline(toxics[s], rng, self.abort) for s in STREAMS}
        self._in_flight = {s: InFlight(settings.max_in_flight_bytes) for s in STREAMS}
        self._task: asyncio.Task[None] | None = None

    async def run(self) -> None:
        """Carry bytes both ways until both directions ended or one failed."""
        self._task = asyncio.current_task()
        try:
            async with asyncio.TaskGroup() as group:
                for stream, (source, sink) in self._ends.items():
                    group.create_task(self._read(stream, source.reader))
                    group.create_task(self._write(stream, sink.writer))
        except* OSError as errors:
            log.debug("link closed: %s", errors.exceptions[0])
        finally:
            self._close()

    def abort(self) -> None:
        """Close the connection (both sockets) as soon as possible."""
        if self._task is not None:
            self._task.cancel()

    def add_toxic(self, toxic: Toxic) -> None:
        """Start applying a new toxic to this open connection."""
        self._pipelines[toxic.stream].add(toxic)

    def update_toxic(self, toxic: Toxic) -> None:
        """Apply new settings of a toxic to this open connection."""
        self._pipelines[toxic.stream].update(toxic)

    def remove_toxic(self, toxic: Toxic) -> None:
        """Stop applying a toxic to this open connection, dropping nothing."""
        self._pipelines[toxic.stream].remove(toxic.name)

    async def _read(self, stream: str, source: asyncio.StreamReader) -> None:
        loop = asyncio.get_running_loop()
        in_flight, meter = self._in_flight[stream], self._meters.received[stream]
        while True:
            await in_flight.wait_for_room()
            data = await source.read(self._settings.read_size_bytes)
            if not data:
                break
            meter.inc(len(data))
            in_flight.add(len(data))
            self._pipelines[stream].entry.put(Chunk(data, loop.time()))
        self._pipelines[stream].entry.put(EOF)

    async def _write(self, stream: str, sink: asyncio.StreamWriter) -> None:
        in_flight, meter = self._in_flight[stream], self._meters.sent[stream]
        while (chunk := await self._pipelines[stream].exit.get()) is not None:
            sink.write(chunk.data)
            await sink.drain()
            meter.inc(len(chunk.data))
            in_flight.done(len(chunk.data))
        if sink.can_write_eof():
            sink.write_eof()

    def _close(self) -> None:
        for pipeline in self._pipelines.values():
            pipeline.close()
        for _, sink in self._ends.values():
            sink.writer.close()
