"""What flows through a link, and the stub a fault reads from and writes to.

A link direction is a chain: socket -> channel -> stage -> channel -> ... -> writer.
Channels are unbounded FIFO queues with a single consumer; back-pressure is applied
once per direction, by pausing the socket's reading (see `InFlight`), so sending
never blocks and the chain can be rewired between two awaits without losing or
reordering a chunk.
"""

from __future__ import annotations

import asyncio
import enum
import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Channel", "Chunk", "End", "InFlight", "Item", "Stub", "now_s"]


def now_s() -> float:
    """The faults' clock (seconds, monotonic): of `Chunk.time_s` and `Stub.sleep_until`.

    Not the event loop's `time()`: uvloop's counts whole milliseconds, which would
    make a delay up to a millisecond shorter than asked.
    """
    return time.monotonic()


@dataclass(frozen=True)
class Chunk:
    """Bytes read from one socket in one read, and when they became available.

    `time_s` is `now_s()` time (seconds): when the reader got the bytes, or when the
    previous fault released them (so chained delays add up).
    """

    data: bytes
    time_s: float

    def split(self, size_bytes: int) -> tuple[Chunk, Chunk]:
        """The first `size_bytes` and the rest, both with this chunk's time."""
        head, rest = self.data[:size_bytes], self.data[size_bytes:]
        return Chunk(head, self.time_s), Chunk(rest, self.time_s)


class End(enum.Enum):
    """How a direction ends; it travels down the chain after the last chunk.

    EOF: the sending peer shut down its side; the writer passes the half-close on.
    CLOSE: a fault closed the connection; once the bytes before it are written,
        both sockets are closed.
    RESET: a fault reset the connection; both sockets are aborted with a TCP RST.
    """

    EOF = "eof"
    CLOSE = "close"
    RESET = "reset"


Item = Chunk | End


class Channel:
    """Unbounded FIFO of chunks with one consumer; `get` is safe to cancel.

    `items` is the queue itself, oldest first: read it (the link tests it for
    emptiness on every socket read, where even a method call costs), change it only
    through the methods.
    """

    def __init__(self) -> None:
        self.items: deque[Item] = deque()
        self._ready = asyncio.Event()

    def __len__(self) -> int:
        return len(self.items)

    def put(self, item: Item) -> None:
        """Append an item (never blocks)."""
        self.items.append(item)
        self._ready.set()

    def put_front(self, item: Item) -> None:
        """Put an item back before every other (it is the next one `get` returns)."""
        self.items.appendleft(item)
        self._ready.set()

    async def get(self) -> Item:
        """Wait for and remove the oldest item; cancelling loses nothing."""
        while not self.items:
            self._ready.clear()
            await self._ready.wait()
        return self.items.popleft()

    def move_to(self, other: Channel) -> None:
        """Move every queued item, in order, to the end of `other`."""
        while self.items:
            other.put(self.items.popleft())


class InFlight:
    """Bytes inside a direction's fault stages (read, not yet written or dropped).

    `on_full(True)` is called when they reach the limit (the link then stops reading
    that direction), `on_full(False)` when they drop below it again.
    """

    def __init__(self, limit_bytes: int, on_full: Callable[[bool], None]) -> None:
        self._limit_bytes = limit_bytes
        self._on_full = on_full
        self._bytes = 0
        self.full = False

    def add(self, size_bytes: int) -> None:
        """Count bytes that entered the stages."""
        self._bytes += size_bytes
        self._update()

    def done(self, size_bytes: int) -> None:
        """Count bytes that left: written by the writer, or dropped by a fault."""
        self._bytes -= size_bytes
        self._update()

    def _update(self) -> None:
        full = self._bytes >= self._limit_bytes
        if full != self.full:
            self.full = full
            self._on_full(full)


class Stub:
    """A fault's view of one direction of one connection (one per stage, kept while
    the toxic stays on the connection, so it outlives updates of the toxic).

    `held` is what the fault took and has not passed on yet: the chunk `receive`
    returned (or the rest of it, see `hold`), or the end of the stream. When the fault
    is interrupted, `release_held` passes a held chunk on unchanged and puts a held end
    back in front of the inbox, so interrupting a fault drops nothing.

    `sent_bytes` counts what this stage passed on. A fault that damages the stream
    sets `close_when_removed`: removing its toxic then closes the connection.
    """

    def __init__(
        self, inbox: Channel, outbox: Channel, in_flight: InFlight, rng: random.Random
    ) -> None:
        self.inbox = inbox
        self.outbox = outbox
        self.rng = rng
        self.held: Item | None = None
        self.sent_bytes = 0
        self.close_when_removed = False
        self._in_flight = in_flight
        self._ending = End.EOF

    async def receive(self) -> Chunk | None:
        """Next chunk, or None at end of stream (the fault should then return)."""
        item = await self.inbox.get()
        self.held = item
        if isinstance(item, End):
            self._ending = item
            return None
        return item

    def send(self, chunk: Chunk) -> None:
        """Pass a chunk on to the next stage (never blocks); nothing is held after."""
        self.held = None
        self.sent_bytes += len(chunk.data)
        self.outbox.put(chunk)

    def hold(self, chunk: Chunk) -> None:
        """Declare `chunk` (what is left of the one received) as the held chunk."""
        self.held = chunk

    def drop(self, chunk: Chunk | None = None) -> None:
        """Lose bytes on purpose: `chunk` if given, else the held chunk."""
        lost = self.held if chunk is None else chunk
        if isinstance(lost, Chunk):
            self._in_flight.done(len(lost.data))
        self.held = None

    def close(self) -> None:
        """End the connection (FIN on both sides) after what was sent; drops the held chunk.

        The fault returns right after calling it.
        """
        self.drop()
        self._ending = End.CLOSE

    def reset(self) -> None:
        """Reset the connection (RST on both sides); drops the held chunk.

        The fault returns right after calling it.
        """
        self.drop()
        self._ending = End.RESET

    def now_s(self) -> float:
        """The time now on the clock of `Chunk.time_s` (see `now_s`)."""
        return now_s()

    async def sleep_until(self, time_s: float) -> None:
        """Sleep until `now_s()` reaches `time_s`, never less (returns at once if it
        has passed; sleeps again if the event loop's timer, which may be rounded to
        the millisecond, woke it early)."""
        while (delay_s := time_s - now_s()) > 0:
            await asyncio.sleep(delay_s)

    async def sleep(self, duration_s: float) -> None:
        """Sleep for `duration_s`, never less (returns at once if it is <= 0)."""
        await self.sleep_until(now_s() + duration_s)

    async def stall(self) -> None:
        """Wait until interrupted (for faults that hold data until they are changed)."""
        await asyncio.get_running_loop().create_future()

    def finish(self) -> None:
        """After the fault returned: pass on what it still held, then the end."""
        if isinstance(self.held, Chunk):
            self.send(self.held)
        self.held = None
        self.outbox.put(self._ending)

    def release_held(self) -> None:
        """After the fault was interrupted: a held chunk moves on, a held end goes back."""
        held, self.held = self.held, None
        if isinstance(held, Chunk):
            self.send(held)
        elif held is not None:
            self.inbox.put_front(held)
