"""Merging the figures of several load workers into one run's (pure).

Workers share the run's second 0 and each sends a slice of the requests, so their
timelines line up second by second: counts add, and the per-second HDR histograms
add exactly, so merged percentiles equal those of one histogram fed every latency.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from gameday.load.output import LiveHeader, live_document
from gameday.load.stats import (
    ERROR_CLASSES,
    STATUS_CLASSES,
    RunFacts,
    build_summary,
    merged_histogram,
    timeline_entry,
)

__all__ = ["LiveMerger", "merge_entries", "merge_summaries", "merge_timelines"]

COUNT_KEYS = ("due", "sent", "late_starts", "in_time")


def merge_entries(t: int, entries: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """One timeline entry for second ``t`` from the workers' entries of that second."""
    counts: Counter[str] = Counter()
    classes: Counter[str] = Counter()
    for entry in entries:
        counts.update({k: int(entry[k]) for k in COUNT_KEYS})
        classes.update({c: int(entry["status"][c]) for c in STATUS_CLASSES})
        classes.update({c: int(entry["errors"][c]) for c in ERROR_CLASSES if c != "5xx"})
    histogram = merged_histogram(e.get("hist") for e in entries)
    return timeline_entry(t, counts, classes, histogram)


def merge_timelines(timelines: Sequence[Sequence[Mapping[str, Any]]]) -> list[dict[str, Any]]:
    """The workers' timelines merged second by second (a second missing counts as empty)."""
    by_t: defaultdict[int, list[Mapping[str, Any]]] = defaultdict(list)
    for timeline in timelines:
        for entry in timeline:
            by_t[int(entry["t"])].append(entry)
    last = max(by_t, default=-1)
    return [merge_entries(t, by_t.get(t, [])) for t in range(last + 1)]


def merge_summaries(
    summaries: Sequence[Mapping[str, Any]], target_rps: float, outcomes_path: str | None = None,
) -> dict[str, Any]:
    """One run's summary from its workers' full summaries (with ``histograms`` and ``hist``)."""
    outcomes: Counter[str] = Counter()
    for summary in summaries:
        outcomes.update(summary["outcomes"])
    facts = RunFacts(
        target_rps=target_rps,
        elapsed_s=max((float(s["elapsed_s"]) for s in summaries), default=0.0),
        last_start_s=max((_last_start_s(s) for s in summaries), default=0.0),
        workers=len(summaries), outcomes=dict(outcomes), outcomes_path=outcomes_path,
    )
    latency = merged_histogram(s["histograms"]["latency"] for s in summaries)
    lag = merged_histogram(s["histograms"]["lag"] for s in summaries)
    timeline = merge_timelines([s["timeline"] for s in summaries])
    return build_summary(timeline, latency, lag, facts)


def _last_start_s(summary: Mapping[str, Any]) -> float:
    """When a worker started its last request (seconds after the run's second 0)."""
    if not summary["sent"]:
        return 0.0
    return float(summary["send_window_s"]) - 1 / float(summary["target_rps"])


def _finished_through(live: Mapping[str, Any] | None) -> float:
    """Seconds below this are finished in this worker's live document (all when done)."""
    if live is None:
        return 0
    if live.get("done"):
        return float("inf")
    return _last_t(live) + 1


def _last_t(live: Mapping[str, Any]) -> int:
    timeline = live["timeline"]
    return int(timeline[-1]["t"]) if timeline else -1


@dataclass
class LiveMerger:
    """Merges the workers' live documents into the run's, each second merged once."""

    header: LiveHeader
    merged: list[dict[str, Any]] = field(default_factory=list)
    next_t: int = 0

    def update(self, lives: Sequence[Mapping[str, Any] | None], now_unix: float) -> dict[str, Any]:
        """The run's live document: the seconds every worker has finished, merged.

        ``lives`` has one item per worker: its latest live document, or None when it
        has written none yet. Seconds older than a worker's kept window count as empty.
        """
        present = [live for live in lives if live is not None]
        done = bool(lives) and len(present) == len(lives) and all(
            live.get("done") for live in present)
        if done:
            through = max((_last_t(live) for live in present), default=-1) + 1
        else:
            through = int(min((_finished_through(live) for live in lives), default=0))
        by_t: defaultdict[int, list[Mapping[str, Any]]] = defaultdict(list)
        for live in present:
            for entry in live["timeline"]:
                by_t[int(entry["t"])].append(entry)
        self.merged.extend(merge_entries(t, by_t.get(t, [])) for t in range(self.next_t, through))
        self.next_t = max(self.next_t, through)
        del self.merged[:-self.header.keep_s]
        return live_document(self.header, self.merged, now_unix, done)
