"""Each fault's logic, in memory: chunks through a real `Pipeline`, no sockets.

Checks what goes out, in what order, how the direction ends, and what an update or
removal does to a connection in the middle of a fault.
"""

from __future__ import annotations

import asyncio
import itertools
import random
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from lab.faultproxy.faults import FAULTS
from lab.faultproxy.pipeline import Pipeline
from lab.faultproxy.stream import Chunk, End, InFlight, Item
from lab.faultproxy.toxics import Toxic

WAIT_S = 2.0


def _toxic(kind: str, name: str = "t", toxicity: float = 1.0, **attributes: Any) -> Toxic:
    return Toxic(name, kind, "downstream", toxicity, FAULTS[kind](attributes))


class Line:
    """A pipeline of toxics with a feeder and a collector, inside a running loop."""

    def __init__(self, *toxics: Toxic, limit_bytes: int = 1 << 30) -> None:
        self.in_flight = InFlight(limit_bytes, lambda full: None)
        self.failed = False
        self.pipeline = Pipeline(list(toxics), self.in_flight, random.Random(7), self._fail)
        self.loop = asyncio.get_running_loop()

    def _fail(self) -> None:
        self.failed = True

    def put(self, *items: bytes | End) -> None:
        for item in items:
            chunk = Chunk(item, self.loop.time()) if isinstance(item, bytes) else item
            if isinstance(chunk, Chunk):
                self.in_flight.add(len(chunk.data))
            self.pipeline.entry.put(chunk)

    async def take(self, timeout_s: float = WAIT_S) -> Item:
        async with asyncio.timeout(timeout_s):
            item = await self.pipeline.exit.get()
        if isinstance(item, Chunk):
            self.in_flight.done(len(item.data))
        return item

    async def take_all(self, timeout_s: float = WAIT_S) -> tuple[bytes, End]:
        """Concatenated data up to the end, and the end."""
        data = bytearray()
        while isinstance(item := await self.take(timeout_s), Chunk):
            data += item.data
        return bytes(data), item

    async def nothing_for(self, seconds: float) -> bool:
        try:
            await self.take(seconds)
        except TimeoutError:
            return True
        return False

    def room(self) -> bool:
        """True when the reader may read (nothing lost is counted as in flight)."""
        return not self.in_flight.full


def run(test: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(test())


# --- each fault ----------------------------------------------------------------------


def test_limit_data_cuts_at_exactly_the_limit_then_closes() -> None:
    async def scenario() -> None:
        line = Line(_toxic("limit_data", bytes=100))
        line.put(b"a" * 60, b"b" * 60, b"c" * 10)
        assert await line.take_all() == (b"a" * 60 + b"b" * 40, End.CLOSE)
        assert line.room()

    run(scenario)


def test_limit_data_zero_closes_on_first_data_and_passes_a_peer_eof() -> None:
    async def scenario() -> None:
        line = Line(_toxic("limit_data", bytes=0))
        line.put(b"x")
        assert await line.take_all() == (b"", End.CLOSE)
        line = Line(_toxic("limit_data", bytes=10))
        line.put(b"12345", End.EOF)
        assert await line.take_all() == (b"12345", End.EOF)

    run(scenario)


def test_limit_data_counts_across_updates() -> None:
    async def scenario() -> None:
        line = Line(_toxic("limit_data", bytes=100))
        line.put(b"a" * 80)
        assert await line.take() == Chunk(b"a" * 80, pytest.approx(line.loop.time(), abs=1))
        line.pipeline.update(_toxic("limit_data", bytes=200))
        line.put(b"b" * 100, b"c" * 50)
        assert await line.take_all() == (b"b" * 100 + b"c" * 20, End.CLOSE)

    run(scenario)


def test_timeout_drops_and_closes_after_idle_time() -> None:
    async def scenario() -> None:
        line = Line(_toxic("timeout", timeout=150), limit_bytes=100)
        started = line.loop.time()
        line.put(b"x" * 500)
        await asyncio.sleep(0.1)
        assert line.room(), "dropped bytes still count as in flight"
        line.put(b"y")  # restarts the wait, as in Toxiproxy
        assert await line.take_all() == (b"", End.CLOSE)
        assert 0.25 <= line.loop.time() - started <= 0.45

    run(scenario)


def test_timeout_zero_holds_until_removed_then_closes() -> None:
    async def scenario() -> None:
        line = Line(_toxic("timeout", timeout=0))
        line.put(b"lost")
        assert await line.nothing_for(0.3)
        line.pipeline.update(_toxic("timeout", timeout=0))
        line.put(b"lost too")
        assert await line.nothing_for(0.1)
        line.pipeline.remove("t")
        line.put(b"after")
        assert await line.take() is End.CLOSE

    run(scenario)


def test_timeout_closes_at_end_of_stream() -> None:
    async def scenario() -> None:
        line = Line(_toxic("timeout", timeout=0))
        line.put(b"lost", End.EOF)
        assert await line.take_all() == (b"", End.CLOSE)

    run(scenario)


def test_reset_peer_holds_from_first_data_then_resets() -> None:
    async def scenario() -> None:
        line = Line(_toxic("reset_peer", timeout=100))
        await asyncio.sleep(0.15)  # no data yet: no reset
        assert await line.nothing_for(0.01)
        started = line.loop.time()
        line.put(b"first", b"second")
        assert await line.take_all() == (b"", End.RESET)
        assert 0.1 <= line.loop.time() - started <= 0.25

    run(scenario)


def test_reset_peer_removed_in_time_passes_everything() -> None:
    async def scenario() -> None:
        line = Line(_toxic("reset_peer", timeout=1000))
        line.put(b"first", b"second")
        await asyncio.sleep(0.05)
        line.pipeline.remove("t")
        line.put(b"third", End.EOF)
        assert await line.take_all() == (b"firstsecondthird", End.EOF)

    run(scenario)


def test_slow_close_delays_the_end_and_an_update_waits_anew() -> None:
    async def scenario() -> None:
        line = Line(_toxic("slow_close", delay=200))
        started = line.loop.time()
        line.put(b"data", End.EOF)
        assert await line.take() == Chunk(b"data", pytest.approx(started, abs=0.05))
        await asyncio.sleep(0.1)
        line.pipeline.update(_toxic("slow_close", delay=50))
        assert await line.take() is End.EOF
        assert 0.15 <= line.loop.time() - started <= 0.3

    run(scenario)


def test_slow_close_removed_while_waiting_ends_at_once() -> None:
    async def scenario() -> None:
        line = Line(_toxic("slow_close", delay=5000))
        line.put(End.CLOSE)
        await asyncio.sleep(0.05)
        line.pipeline.remove("t")
        assert await line.take(0.1) is End.CLOSE

    run(scenario)


def test_bandwidth_releases_pieces_at_the_rate() -> None:
    async def scenario() -> None:
        line = Line(_toxic("bandwidth", rate=100))  # 100 KB/s: 10 000 bytes per 100 ms
        started = line.loop.time()
        line.put(b"a" * 25_000)
        pieces = [await line.take() for _ in range(3)]
        assert [len(p.data) for p in pieces if isinstance(p, Chunk)] == [10_000, 10_000, 5_000]
        times = [p.time_s - started for p in pieces if isinstance(p, Chunk)]
        # Spaced exactly at the rate; the first one a piece's time after the later of
        # the chunk's arrival and the toxic's start (later on a busy machine).
        assert [b - a for a, b in itertools.pairwise(times)] == pytest.approx([0.1, 0.05])
        assert 0.1 <= times[0] <= 0.3
        assert times[-1] <= line.loop.time() - started <= times[-1] + 0.3

    run(scenario)


def test_bandwidth_zero_stalls_and_removal_releases_in_order() -> None:
    async def scenario() -> None:
        line = Line(_toxic("bandwidth", rate=0))
        line.put(b"one", b"two")
        assert await line.nothing_for(0.2)
        line.pipeline.remove("t")
        line.put(b"three", End.EOF)
        assert await line.take_all() == (b"onetwothree", End.EOF)

    run(scenario)


def test_bandwidth_update_mid_chunk_loses_nothing() -> None:
    async def scenario() -> None:
        line = Line(_toxic("bandwidth", rate=10))
        payload = bytes(range(256)) * 40
        line.put(payload, End.EOF)
        await asyncio.sleep(0.25)
        line.pipeline.update(_toxic("bandwidth", rate=10_000))
        assert await line.take_all() == (payload, End.EOF)

    run(scenario)


def test_slicer_pieces_rebuild_the_stream_even_when_removed_midway() -> None:
    async def scenario() -> None:
        line = Line(_toxic("slicer", average_size=10, size_variation=3, delay=2000))
        payload = bytes(range(256)) * 4
        line.put(payload)
        first = await line.take()
        assert isinstance(first, Chunk) and 1 <= len(first.data) <= 13
        await asyncio.sleep(0.02)
        line.pipeline.remove("t")
        line.put(b"tail", End.EOF)
        rest, end = await line.take_all()
        assert first.data + rest == payload + b"tail" and end is End.EOF

    run(scenario)


def test_latency_removed_mid_delay_releases_in_order() -> None:
    async def scenario() -> None:
        line = Line(_toxic("latency", latency=5000))
        line.put(b"one", b"two")
        await asyncio.sleep(0.05)
        line.pipeline.remove("t")
        line.put(b"three", End.EOF)
        assert await line.take_all(0.2) == (b"onetwothree", End.EOF)

    run(scenario)


# --- chains and toxicity -------------------------------------------------------------


def test_toxics_apply_in_the_order_they_were_added() -> None:
    async def scenario() -> None:
        line = Line(_toxic("limit_data", "limit", bytes=30), _toxic("slicer", "s", average_size=8))
        line.put(b"z" * 100)
        sizes = []
        while isinstance(item := await line.take(), Chunk):
            sizes.append(len(item.data))
        assert sum(sizes) == 30 and max(sizes) <= 8 and item is End.CLOSE

    run(scenario)


def test_chained_delays_add_up() -> None:
    async def scenario() -> None:
        line = Line(_toxic("latency", "a", latency=60), _toxic("latency", "b", latency=40))
        started = line.loop.time()
        line.put(b"x")
        await line.take()
        assert 0.1 <= line.loop.time() - started < 1.0  # the sum (0.1 s), not the max (0.06)

    run(scenario)


def test_toxicity_zero_passes_everything_untouched() -> None:
    async def scenario() -> None:
        line = Line(_toxic("timeout", toxicity=0.0, timeout=0))
        line.put(b"kept", End.EOF)
        assert await line.take_all() == (b"kept", End.EOF)
        line.pipeline.remove("t")  # spared connections are not closed on removal

    run(scenario)


def test_a_failing_fault_aborts_the_connection() -> None:
    class Broken:
        def attributes(self) -> dict[str, Any]:
            return {}

        async def pipe(self, stub: Any) -> None:
            raise RuntimeError("bug")

    async def scenario() -> None:
        line = Line(Toxic("b", "broken", "downstream", 1.0, Broken()))
        await asyncio.sleep(0.01)
        assert line.failed

    run(scenario)
