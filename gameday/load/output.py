"""Where a load run's figures go while it runs: the outcome log, the live file, a progress line.

Live file (``gameday load --live PATH``), rewritten atomically once per second::

    {"t0_unix": 1767000000.0,      # wall-clock time of second 0 of the run
     "updated_unix": 1767000012.3, # when this was written; stale after 3 s = generator gone
     "rate_rps": 200.0, "in_time_s": 1.0, "timeout_s": 2.0,
     "done": false,                # true in the last write, once the run has ended
     "timeline": [ {timeline entry}, ... ]}   # finished seconds only, the last 300

Each timeline entry is described in :func:`gameday.load.stats.timeline_entry`; it includes
``hist``, the second's latency histogram (base64 HDR), so that percentiles over any run
of seconds are exact. :func:`gameday.measurements.client_sla.client_sla` computes the SLA from it.

Outcome log (``PATH.outcomes.jsonl`` next to ``--json PATH``): one line per order,
``{"id": client_order_id, "outcome": "ok" | "failed" | "unknown"}``, written as each
order ends.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from gameday.load.stats import decode_histogram, new_histogram

__all__ = ["LiveHeader", "LiveSink", "OutcomeLog", "Progress", "live_document", "write_atomic"]

LIVE_KEEP_S = 300
RATE_WINDOW_S = 5


def write_atomic(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` so that a reader never sees a partial file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


class OutcomeLog:
    """Streams one JSON line per order to ``stream`` (when given) and counts outcomes."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream
        self.counts: Counter[str] = Counter()

    def write(self, order_id: str, outcome: str) -> None:
        """Order ``order_id`` ended as ``outcome`` (ok, failed or unknown)."""
        self.counts[outcome] += 1
        if self.stream is not None:
            # as json.dumps({"id": ..., "outcome": ...}) writes it, at a third of the cost
            self.stream.write(f'{{"id": {json.dumps(order_id)}, "outcome": "{outcome}"}}\n')

    def flush(self) -> None:
        """Push the lines written so far to the file."""
        if self.stream is not None:
            self.stream.flush()


def read_outcomes(path: Path) -> dict[str, str]:
    """Every order's outcome (id → ok, failed or unknown) from an outcome log written by
    :class:`OutcomeLog`; lines that cannot be read (one cut short, say) are skipped."""
    return parse_outcomes(path.read_text(encoding="utf-8"))


def parse_outcomes(text: str) -> dict[str, str]:
    """The outcomes in the text of (part of) an outcome log; see :func:`read_outcomes`."""
    outcomes = {}
    for line in text.splitlines():
        try:
            entry = json.loads(line)
            outcomes[str(entry["id"])] = str(entry["outcome"])
        except (ValueError, KeyError, TypeError):
            continue
    return outcomes


@dataclass(frozen=True)
class LiveHeader:
    """The fixed part of the live file (see the module doc); ``keep_s`` seconds are kept."""

    t0_unix: float
    rate_rps: float
    in_time_s: float
    timeout_s: float
    keep_s: int = LIVE_KEEP_S


def live_document(
    header: LiveHeader, timeline: Sequence[Mapping[str, Any]], now_unix: float, done: bool,
) -> dict[str, Any]:
    """The live file's JSON object: the header, ``updated_unix``, the last finished seconds."""
    return {
        "t0_unix": header.t0_unix, "updated_unix": now_unix, "rate_rps": header.rate_rps,
        "in_time_s": header.in_time_s, "timeout_s": header.timeout_s, "done": done,
        "timeline": list(timeline[-header.keep_s:]),
    }


class Progress:
    """A one-line progress display: rate, requests, errors and p95 latency so far."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.last_t = -1
        self.sent = 0
        self.errors = 0
        self.histogram = new_histogram()

    def _take(self, entry: Mapping[str, Any]) -> None:
        self.last_t = int(entry["t"])
        self.sent += int(entry["sent"])
        self.errors += sum(int(v) for v in entry["errors"].values())
        if entry.get("hist"):
            self.histogram.add(decode_histogram(entry["hist"]))

    def update(self, live: Mapping[str, Any]) -> None:
        """Show the figures of a live document (only its new seconds are added)."""
        timeline = live["timeline"]
        for entry in timeline:
            if entry["t"] > self.last_t:
                self._take(entry)
        recent = timeline[-RATE_WINDOW_S:]
        rate = sum(e["sent"] for e in recent) / len(recent) if recent else 0.0
        p95 = self.histogram.get_value_at_percentile(95) / 1000 if self.sent else 0.0
        self.stream.write(
            f"\r{self.last_t + 1:>5} s  {rate:8.1f} req/s (target {live['rate_rps']:g})"
            f"  sent {self.sent}  errors {self.errors}  p95 {p95:.1f} ms ")
        self.stream.flush()

    def close(self) -> None:
        """End the line."""
        self.stream.write("\n")
        self.stream.flush()


@dataclass(frozen=True)
class LiveSink:
    """Takes each second's live document: writes it to ``path``, shows it on ``progress``."""

    path: Path | None = None
    progress: Progress | None = None

    def __call__(self, live: dict[str, Any]) -> None:
        """Write and show one live document."""
        if self.path is not None:
            write_atomic(self.path, json.dumps(live, separators=(",", ":")))
        if self.progress is not None:
            self.progress.update(live)
