"""A real local HTTP receiver for webhook messages (what a chat's incoming webhook is):
listens on 127.0.0.1, port 0, records every JSON body POSTed to it."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Receiver:
    """What the receiver got, and how it answers (``status``, after ``delay_s``)."""

    url: str = ""
    status: int = 200
    delay_s: float = 0.0
    messages: list[dict[str, Any]] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)

    def events(self) -> list[str]:
        """The ``gameday.event`` of each message, in order."""
        return [m.get("gameday", {}).get("event", "?") for m in self.messages]


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            receiver.paths.append(self.path)
            receiver.messages.append(json.loads(body))
            time.sleep(receiver.delay_s)
            try:
                self.send_response(receiver.status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")
            except OSError:
                pass  # the sender gave up waiting (its timeout): nothing to answer

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@contextmanager
def receiver(path: str = "/services/T1/B2/hook-secret") -> Iterator[Receiver]:
    """A running receiver; its ``url`` ends in ``path`` (a webhook's secret part)."""
    got = Receiver()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(got))
    server.daemon_threads = True
    got.url = f"http://127.0.0.1:{server.server_address[1]}{path}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield got
    finally:
        server.shutdown()
        server.server_close()
