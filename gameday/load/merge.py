"""Merging the figures of several load workers into one run's (pure).

Workers share the run's second 0 and each sends a slice of the requests, so their
timelines line up second by second: counts add, and the per-second HDR histograms
add exactly, so merged percentiles equal those of one histogram fed every latency.
"""

from __future__ import annotations

import json
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

__all__ = ["LiveMerger", "ShardError", "documents", "merge_entries", "merge_shards",
           "merge_summaries", "merge_timelines"]

COUNT_KEYS = ("due", "sent", "late_starts", "in_time")


class ShardError(ValueError):
    """The shards given cannot be merged into one run (says why)."""


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


def documents(text: str) -> tuple[list[dict[str, Any]], int]:
    """The JSON objects in ``text``, one after another (``kubectl logs`` of several pods:
    each printed one), and how many other lines were skipped (a log line of a pod)."""
    decoder = json.JSONDecoder()
    found: list[dict[str, Any]] = []
    skipped, position = 0, 0
    while position < len(text):
        start = len(text) - len(text[position:].lstrip())
        if start >= len(text):
            break
        if text[start] == "{":
            try:
                value, position = decoder.raw_decode(text, start)
            except ValueError:
                value = None
            if isinstance(value, dict):
                found.append(value)
                continue
        end = text.find("\n", start)
        position = len(text) if end < 0 else end + 1
        skipped += 1
    return found, skipped


@dataclass(frozen=True)
class ShardFacts:
    """Which shard of which run a summary is (``gameday load --shard I/N --start-at``)."""

    index: int
    count: int
    start_unix: float
    rate_rps: float


def shard_facts(document: Mapping[str, Any]) -> ShardFacts:
    """The shard facts of a summary; ShardError when it is no shard's full summary."""
    shard = document.get("shard")
    if not isinstance(shard, Mapping) or "histograms" not in document:
        raise ShardError("a document is not the summary of a `gameday load --shard I/N` "
                         "(no shard or no histograms): only shards' summaries merge exactly")
    try:
        return ShardFacts(int(shard["index"]), int(shard["count"]),
                          float(shard["start_unix"]), float(shard["rate_rps"]))
    except (KeyError, TypeError, ValueError):
        raise ShardError(f"a shard summary has a bad shard field: {dict(shard)}") from None


def merge_shards(shards: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The run of N shards (``gameday load --shard I/N``, e.g. the pods of an Indexed
    Job): the same start, rate and N, each index 0..N-1 exactly once; merged as
    ``--workers`` merges its processes (counts add, HDR histograms add). ShardError
    says what is missing or does not match."""
    if not shards:
        raise ShardError("no shard summaries found")
    facts = [shard_facts(document) for document in shards]
    runs = {(fact.count, fact.start_unix, fact.rate_rps) for fact in facts}
    if len(runs) > 1:
        raise ShardError("the shards are of different runs (count, start_unix, rate_rps): "
                         + "; ".join(str(run) for run in sorted(runs)))
    count, _, rate = runs.pop()
    indices = Counter(fact.index for fact in facts)
    missing = sorted(set(range(count)) - set(indices))
    extra = sorted(index for index, seen in indices.items() if seen > 1 or index >= count)
    if missing or extra:
        raise ShardError(f"not the {count} shards of one run: missing {missing or 'none'}, "
                         f"more than once or out of range {extra or 'none'}")
    merged = merge_summaries(shards, rate)
    merged["shards"] = count
    return merged
