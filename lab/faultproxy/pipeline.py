"""One direction of one connection: a chain of fault stages between reader and writer.

    reader -> entry channel -> stage -> channel -> ... -> stage -> exit channel -> writer

Adding, updating or removing a toxic rewires the chain synchronously (no await in
between), so no chunk is lost or reordered while faults come and go.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable

from lab.faultproxy.stream import Channel, End, InFlight, Stub
from lab.faultproxy.toxics import Toxic

__all__ = ["Pipeline", "Stage"]

log = logging.getLogger(__name__)


async def _pass_through(stub: Stub) -> None:
    """What a stage does when its toxic's toxicity roll says "not this connection"."""
    while (chunk := await stub.receive()) is not None:
        stub.send(chunk)


class Stage:
    """One toxic running on one direction of one connection, in its own task."""

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
        """Roll the toxicity once per run, as Toxiproxy does, then pipe until the end."""
        if self.stub.rng.random() < self.toxic.toxicity:
            await self.toxic.fault.pipe(self.stub)
        else:
            await _pass_through(self.stub)
        self.stub.finish()

    def _check(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("fault %s failed", self.toxic.name, exc_info=task.exception())
            self._on_failure()

    def interrupt(self) -> bool:
        """Stop the fault now, releasing what it held; False if it had already ended."""
        if self._task.done():
            return False
        self._task.cancel()
        self.stub.release_held()
        return True

    def restart(self, toxic: Toxic) -> None:
        """Swap in new settings; the held end and queued chunks go to the new fault.

        A stage whose fault has ended (the stream ended or the fault closed the
        connection) stays ended, as in Toxiproxy.
        """
        self.toxic = toxic
        if self.interrupt():
            self._task = self._start()

    def cancel(self) -> None:
        """Stop the fault for good (the connection is closing)."""
        self._task.cancel()


class Pipeline:
    """The stages of one direction; `entry` is fed by the reader, `exit` drained by the writer."""

    def __init__(
        self,
        toxics: list[Toxic],
        in_flight: InFlight,
        rng: random.Random,
        on_failure: Callable[[], None],
    ) -> None:
        self.exit = Channel()
        self.entry = self.exit
        self._in_flight = in_flight
        self._rng = rng
        self._on_failure = on_failure
        self._stages: list[Stage] = []
        for toxic in toxics:
            self.add(toxic)

    def add(self, toxic: Toxic) -> None:
        """Append a stage at the end of the chain (nearest the writer)."""
        stub = Stub(Channel(), self.exit, self._in_flight, self._rng)
        self._stages.append(Stage(toxic, stub, self._on_failure))
        self._rewire()

    def update(self, toxic: Toxic) -> None:
        """Restart the stage of the toxic with the same name with new settings."""
        self._find(toxic.name).restart(toxic)

    def remove(self, name: str) -> None:
        """Take a stage out; what it held and what waited for it move on, in order.

        If its fault damaged the stream (`Stub.close_when_removed`), the connection
        is closed instead, after what the stage had already passed on.
        """
        stage = self._find(name)
        self._stages.remove(stage)
        stage.interrupt()
        if stage.stub.close_when_removed:
            stage.stub.outbox.put(End.CLOSE)
        else:
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
