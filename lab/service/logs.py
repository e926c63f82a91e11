"""Structured logs of a service replica: one JSON object per line, on stderr or in a file.

Every line has ``timestamp`` (ISO 8601 UTC, ms), ``level``, ``logger``, ``message`` and
``replica``, plus the fields of the event (passed as ``extra={"fields": {...}}``).
The events:

- ``order``: one per order outcome — ``client_order_id`` (null when invalid),
  ``status`` (filled, rejected, failed, circuit_open, invalid), ``http_status``,
  ``attempts`` (broker calls), ``broker_status`` (last call's status label or null),
  ``latency_ms``, ``detail``;
- ``breaker_transition``: ``from_state``, ``to_state`` (WARNING when it opens);
- ``draining``: SIGTERM received; ``delay_s`` until the listener closes.

A file (``--log-file``) is rotated at 20 MB, keeping 3 old ones; writing it directly is
much cheaper than a pipe to a supervisor that copies every line (measured: the pipe
cost a replica about a fifth of its CPU). The formatter is this module's own, not
python-json-logger's: a line costs ~30 µs instead of ~80 µs, and a replica writes one
per order. So is the file handler (:class:`RotatingJsonFile`): the standard library's
stats the path twice, seeks and formats every record a second time to decide on
rotation (measured: 8 % of a replica's CPU at 500 orders/s); this one formats once and
counts the bytes it wrote.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

__all__ = ["JsonLines", "RotatingJsonFile", "configure_json_logs", "json_handler"]

MAX_FILE_BYTES = 20 * 1024 * 1024
KEPT_FILES = 3


class JsonLines(logging.Formatter):
    """Formats a record as one JSON object (see the module doc), stamped with ``replica``."""

    def __init__(self, replica: str) -> None:
        super().__init__()
        self._replica = replica

    def format(self, record: logging.LogRecord) -> str:
        """The record as a JSON line (without the newline)."""
        line = {
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "replica": self._replica,
            **getattr(record, "fields", {}),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


class RotatingJsonFile(logging.handlers.RotatingFileHandler):
    """Appends each record as one line to a file, flushed at once; when the next line
    would take the file to ``max_bytes`` or more, the file is rotated first (``PATH.1``
    … ``PATH.{kept}``, as the standard library's handler names them). The size is the
    file's at opening plus what this handler wrote (ASCII lines: characters are bytes)."""

    def __init__(self, path: Path, max_bytes: int, kept: int) -> None:
        super().__init__(path, maxBytes=max_bytes, backupCount=kept, encoding="utf-8")
        self._size = path.stat().st_size

    def emit(self, record: logging.LogRecord) -> None:
        """Write ``record``'s line, rotating first if it would not fit."""
        try:
            line = self.format(record) + self.terminator
            if self._size and self._size + len(line) >= self.maxBytes:
                self.doRollover()
                self._size = 0
            stream = self.stream or self._open()  # None only after a failed rollover
            self.stream = stream
            stream.write(line)
            stream.flush()
            self._size += len(line)
        except Exception:  # as logging's own handlers: never raise
            self.handleError(record)


def json_handler(replica: str, to: TextIO | Path) -> logging.Handler:
    """A handler writing JSON lines stamped with ``replica`` to a stream or a file."""
    handler: logging.Handler
    if isinstance(to, Path):
        handler = RotatingJsonFile(to, MAX_FILE_BYTES, KEPT_FILES)
    else:
        handler = logging.StreamHandler(to)
    handler.setFormatter(JsonLines(replica))
    return handler


def configure_json_logs(replica: str, to: TextIO | Path = sys.stderr) -> None:
    """Send every log record of this process, INFO and up, as JSON lines to ``to``
    (a stream, or a file path: appended to, rotated)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.addHandler(json_handler(replica, to))
    root.setLevel(logging.INFO)
