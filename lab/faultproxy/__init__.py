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
of one socket read, up to 256 KiB, and `time_s`, the `stub.now_s()` time they became available)
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

Toxicity: when a stage starts (and after each update), it rolls once; the stage
applies to that connection when a random draw in [0, 1) is below the toxicity (any
number is accepted, as in Toxiproxy: 1 or more always, 0 or less never).

Toxiproxy 2.5 is the oracle: the differential tests (``fp`` in tests/component) run
against both and must agree. As in Toxiproxy, a toxic's attributes may be any
int64: unknown names are ignored, null is absent, and a negative value does what
Toxiproxy does with it (each fault's module says; where Toxiproxy's server would
crash, as with a slicer's average_size 0, the fault does something safe instead);
the stream is kept as written (``UpStream``, and the default name ``latency_UpStream``).

Where this differs from Toxiproxy 2.5 on purpose: a peer's EOF is passed on as a
half-close (Toxiproxy closes both sides); chained delays add up (Toxiproxy's latency
counts from when the proxy read the bytes, so a second latency toxic on a stream
adds only its excess); reset_peer also resets connections that were open before it
was added (Toxiproxy then only closes them); removing a timeout toxic leaves alone
the connections its toxicity roll spared; a direction stops reading while too much
is inside its stages (Toxiproxy buffers up to 1024 chunks in a latency toxic); the
byte counters count bytes as they pass (Toxiproxy adds a connection's bytes when it
ends); ``PATCH /proxies/{name}`` works (Toxiproxy 2.6 and later; 2.5 answers 405);
``/version`` answers JSON (as releases after 2.5 do; 2.5 plain text); a proxy without ``listen``
listens on 127.0.0.1 (Toxiproxy: every interface). Input Toxiproxy accepts but cannot
serve is a 400 naming the field: an upstream or listen address that is not
``host:port`` (Toxiproxy: 201 then failing connections, or 500), proxy and toxic
names `.` and `..` (Toxiproxy creates them, and no URL reaches them then); a listen
address in use is a 409 and one that cannot be bound here a 400 (Toxiproxy: 500), and
an update that cannot listen on its new address leaves the proxy as it was
(Toxiproxy leaves it disabled); ``/populate`` answers a proxy it kept as it runs
(Toxiproxy: with an unused copy, ``enabled`` false). With `GAMEDAY_ADMIN_TOKEN` set,
the API requires a bearer token (see `api`); Toxiproxy has no authentication.
"""
