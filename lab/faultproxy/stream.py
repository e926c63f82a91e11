"""What flows through a link, and the stub a fault reads from and writes to.

A link direction is a chain: reader -> channel -> stage -> channel -> ... -> writer.
Channels are unbounded FIFO queues with a single consumer; back-pressure is applied
once per direction by the reader (see `InFlight`), so sending never blocks and the
chain can be rewired between two awaits without losing or reordering a chunk.
"""

from __future__ import annotations

import asyncio
import random
from collections import deque
from dataclasses import dataclass

__all__ = ["EOF", "Channel", "Chunk", "InFlight", "Item", "Stub"]


@dataclass(frozen=True)
class Chunk:
    """Bytes read from one socket in one read, and when they became available.

    `time_s` is event-loop time (seconds): when the reader got the bytes, or when the
    previous fault released them (so chained delays add up).
    """

    data: bytes
    time_s: float


EOF = None
"""Marks the end of a direction: the sending peer closed its side."""

Item = Chunk | None


class Channel:
    """Unbounded FIFO of chunks with one consumer; `get` is safe to cancel."""

    def __init__(self) -> None:
        self._items: deque[Item] = deque()
        self._ready = asyncio.Event()

    def __len__(self) -> int:
        return len(self._items)

    def put(self, item: Item) -> None:
        """Append an item (never blocks)."""
        self._items.append(item)
        self._ready.set()

    async def get(self) -> Item:
        """Wait for and remove the oldest item; cancelling loses nothing."""
        while not self._items:
            self._ready.clear()
            await self._ready.wait()
        return self._items.popleft()

    def move_to(self, other: Channel) -> None:
        """Move every queued item, in order, to the end of `other`."""
        while self._items:
            other.put(self._items.popleft())


class Stub:
    """A fault's view of one direction of one connection.

    `receive` hands over the next chunk and remembers it as `held` until `send`
    passes a chunk on. When the fault is interrupted (cancelled) the held chunk is
    passed on unchanged by `release_held`, so interrupting a fault drops nothing.
    """

    def __init__(self, inbox: Channel, outbox: Channel, rng: random.Random) -> None:
        self.inbox = inbox
        self.outbox = outbox
        self.rng = rng
        self.held: Chunk | None = None

    async def receive(self) -> Chunk | None:
        """Next chunk, or None at end of stream."""
        item = await self.inbox.get()
        self.held = item
        return item

    def send(self, chunk: Chunk) -> None:
        """Pass a chunk on to the next stage (never blocks)."""
        self.held = None
        self.outbox.put(chunk)

    def drop(self) -> None:
        """Forget the held chunk on purpose (for faults that lose data)."""
        self.held = None

    async def sleep_until(self, time_s: float) -> None:
        """Sleep until event-loop time `time_s` (returns at once if it has passed)."""
        delay_s = time_s - asyncio.get_running_loop().time()
        if delay_s > 0:
            await asyncio.sleep(delay_s)

    def release_held(self) -> None:
        """Pass on the held chunk unchanged; used after the fault was interrupted."""
        if self.held is not None:
            self.send(self.held)


class InFlight:
    """Bytes read but not yet written in one direction; the reader waits when full."""

    def __init__(self, limit_bytes: int) -> None:
        self._limit_bytes = limit_bytes
        self._bytes = 0
        self._room = asyncio.Event()
        self._room.set()

    def add(self, size_bytes: int) -> None:
        """Count bytes the reader has just read."""
        self._bytes += size_bytes
        if self._bytes >= self._limit_bytes:
            self._room.clear()

    def done(self, size_bytes: int) -> None:
        """Count bytes the writer has just written."""
        self._bytes -= size_bytes
        if self._bytes < self._limit_bytes:
            self._room.set()

    async def wait_for_room(self) -> None:
        """Wait until fewer than the limit of bytes are in flight."""
        await self._room.wait()
