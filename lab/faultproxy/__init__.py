"""The lab's TCP fault proxy, speaking Toxiproxy 2.x's HTTP API.

Run it with `python -m lab.faultproxy --host 127.0.0.1 --port 8474 [--config FILE]`;
it prints `listening http://HOST:PORT` once ready. Any Toxiproxy client (for example
chaostoolkit-toxiproxy or toxiproxy-python) can drive it, and a real Toxiproxy can
replace it. Toxics: latency, bandwidth, slow_close, timeout, reset_peer, slicer,
limit_data, each documented in its module under `faults/`.

Modules: `api` (HTTP routes), `schema` (request bodies), `collection` (all proxies),
`proxy` (one listener), `link` (one connection), `endpoint` (one of its sockets),
`pipeline` (one direction's chain of fault stages), `stream` (chunks, ends, channels,
the stub), `faults/` (one fault type per module), `metrics`, `settings`.

The fault contract
------------------
Every connection has two directions, `upstream` (client to server) and `downstream`
(server to client). Each direction is a chain: a reader, then one stage per toxic on
that stream in the order they were added, then a writer. A stage runs one fault's
`pipe(stub)` coroutine in its own task.

Getting and passing data: `await stub.receive()` returns the next `Chunk` (the bytes
of one socket read, up to 256 KiB, and `time_s`, the loop time they became available)
or None at the end of the stream, after which `pipe` returns and the end is passed on
for it. `stub.send(chunk)` passes a chunk on; it never blocks (back-pressure is
applied once per direction: reading stops while too many bytes are inside the stages
or the other socket cannot take more). A direction without stages forwards each read
at once (see `link`). A fault keeps order, holds at most what is left of the
chunk it last received (`stub.held`; after sending part of it, `stub.hold(rest)`),
and sets `time_s` of what it sends to when it released it, so chained delays add up.

How a direction ends: the end travels down the chain after the last chunk. EOF (the
peer shut down its side) is passed on as a half-close. A fault that calls
`stub.close()` ends the connection: once the bytes before the end are written, both
sockets are closed. After `stub.reset()` both sockets are aborted with a TCP RST. A
fault returns right after either call. A fault may delay an end (slow_close) but
never swallows one.

How a fault is interrupted: when its toxic is updated or removed, or the connection
closes, its task is cancelled at whatever it awaits. It must not catch the
cancellation. A held chunk is then passed on unchanged; a held end goes back to the
front of the stage's queue. On an update the new settings take over the same stub
(with a new toxicity roll), so per-connection state such as `stub.sent_bytes`
carries on, and queued chunks go through the new settings. On a removal, queued
chunks move on in order. Either way the change takes effect on open connections
without dropping a byte.

What a fault may drop: nothing, unless dropping is the fault, and then only through
`stub.drop()` (which also frees the bytes for the reader) or by closing or resetting
the connection. timeout drops everything, limit_data what is past its limit,
reset_peer what it holds when it resets. A fault that leaves a hole in the stream
sets `stub.close_when_removed`, and removing its toxic then closes the connections
it applied to instead of carrying on with a corrupted stream (timeout does, as in
Toxiproxy). When a fault closes or resets a connection, bytes still on their way in
the other direction are lost with it.

Toxicity: when a stage starts (and after each update), it rolls once; with
probability 1 - toxicity the stage passes that connection's data untouched.

Where this differs from Toxiproxy 2.x on purpose: a peer's EOF is passed on as a
half-close (Toxiproxy closes both sides); chained delays add up (Toxiproxy's latency
counts from when the proxy read the bytes, so a second latency toxic on a stream
adds only its excess); reset_peer also resets connections that were open before it
was added (Toxiproxy then only closes them); removing a timeout toxic leaves alone
the connections its toxicity roll spared; and input Toxiproxy would silently ignore
or crash on is a 400 naming the field: unknown attribute names, slicer average_size 0
or size_variation >= average_size, integers beyond int64, toxicity outside [0, 1],
proxy and toxic names `.` and `..`; a listen address in use is a 409 and one that cannot
be bound here a 400 (Toxiproxy: 500), and an update that cannot listen on its new
address leaves the proxy as it was (Toxiproxy leaves it disabled). With
`GAMEDAY_ADMIN_TOKEN` set, the API requires a bearer token (see `api`); Toxiproxy has
no authentication.
"""
