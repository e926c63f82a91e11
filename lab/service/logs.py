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
per order.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

__all__ = ["JsonLines", "configure_json_logs", "json_handler"]

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


def json_handler(replica: str, to: TextIO | Path) -> logging.Handler:
    """A handler writing JSON lines stamped with ``replica`` to a stream or a file."""
    handler: logging.Handler
    if isinstance(to, Path):
        handler = logging.handlers.RotatingFileHandler(
            to, maxBytes=MAX_FILE_BYTES, backupCount=KEPT_FILES, encoding="utf-8"
        )
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
