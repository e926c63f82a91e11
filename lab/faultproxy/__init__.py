"""The lab's TCP fault proxy, speaking Toxiproxy 2.x's HTTP API.

Run it with `python -m lab.faultproxy --host 127.0.0.1 --port 8474 [--config FILE]`;
it prints `listening http://HOST:PORT` once ready. Any Toxiproxy client (for example
chaostoolkit-toxiproxy) can drive it, and a real Toxiproxy can replace it.

Modules: `api` (HTTP routes), `schema` (request bodies), `collection` (all proxies),
`proxy` (one listener), `link` (one connection, its pipelines), `stream` (chunks,
channels, the stub), `faults/` (one fault type per module), `metrics`, `settings`.

The fault contract
------------------
Every connection has two directions, `upstream` (client to server) and `downstream`
(server to client). Each direction is a chain: a reader, then one stage per toxic on
that stream in the order they were added, then a writer. A stage runs one fault's
`pipe(stub)` coroutine in its own task.

How a fault gets chunks: `await stub.receive()` returns the next `Chunk` (the bytes of
one socket read, up to 64 KiB, and `time_s`, the loop time they became available) or
None at end of stream, after which `pipe` must return (end of stream is then passed
on for it). `stub.send(chunk)` passes a chunk on; it never blocks (back-pressure is
applied once, at the reader). A fault keeps order, may hold at most the one chunk it
last received (`stub.held`), and should set `time_s` of what it sends to when it
released it, so delays of chained faults add up.

How a fault is interrupted: when its toxic is removed or updated, or the connection
closes, its task is cancelled at whatever it awaits. It must not catch the
cancellation. The chunk it held is then passed on unchanged, and chunks still queued
for it move on (removal) or go to its replacement (update), in order; the change
takes effect on open connections without dropping a byte.

What a fault may drop: nothing, unless dropping is the fault (a blackhole, say), and
then only by calling `stub.drop()` explicitly. `latency` drops nothing.

Toxicity: when a stage starts, it rolls once; with probability 1 - toxicity the
stage passes that connection's chunks through untouched.
"""
