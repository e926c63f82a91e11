"""Per-process memory of the lab: sampled from /proc, compared start to end.

Each lab process is named by its role (supervisord's program name, and ``supervisord``
itself). A sample holds RSS (what ``ps`` and ``top`` show), PSS (shared pages split
between the processes sharing them) and USS (private pages only: what a leak grows),
each the median of a few readings, in KiB, from ``/proc/PID/smaps_rollup``. The soak
samples at the start of its fault phase, in the middle and at the end: a leak grows in
both halves, a high-water mark (pools and buffers sized by the peak load) does not.

A process that was restarted between the samples (a killed replica comes back with a
new PID) is not comparable: its end figure is of a young process. It is shown but not
judged when a fault killed it; a restart that no fault explains is a failure (a crash).
Parsing and judging are pure; only :func:`sample` reads /proc.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = ["MemoryRow", "MemorySample", "Samples", "format_table", "growth_pct", "memory_rows",
           "parse_smaps_rollup", "sample"]

KIB_PER_MIB = 1024
_FIELDS = ("Rss", "Pss", "Private_Clean", "Private_Dirty")


@dataclass(frozen=True)
class MemorySample:
    """One process' memory: its PID and RSS, PSS, USS in KiB."""

    pid: int
    rss_kib: int
    pss_kib: int
    uss_kib: int


@dataclass(frozen=True)
class MemoryRow:
    """One role's start, middle and end samples (None: not running) and what was
    concluded. ``judged``: compared against the limit; ``ok``: passed (or not judged
    for a reason that is not a failure); ``note``: why, in words.
    """

    role: str
    start: MemorySample | None
    mid: MemorySample | None
    end: MemorySample | None
    growth_pct: float | None
    uss_growth_pct: float | None
    judged: bool
    ok: bool
    note: str


def parse_smaps_rollup(pid: int, text: str) -> MemorySample:
    """A sample from the text of ``/proc/PID/smaps_rollup`` (values in kB)."""
    values: dict[str, int] = {}
    for line in text.splitlines():
        name, _, rest = line.partition(":")
        if name in _FIELDS:
            values[name] = int(rest.split()[0])
    missing = [name for name in _FIELDS if name not in values]
    if missing:
        raise ValueError(f"smaps_rollup of PID {pid} lacks {', '.join(missing)}")
    uss = values["Private_Clean"] + values["Private_Dirty"]
    return MemorySample(pid, values["Rss"], values["Pss"], uss)


def growth_pct(start: float, end: float) -> float:
    """Growth from ``start`` to ``end`` in percent of ``start`` (negative: it shrank)."""
    if start <= 0:
        raise ValueError(f"a start figure must be > 0, got {start}")
    return 100.0 * (end - start) / start


@dataclass(frozen=True)
class Samples:
    """The three samples of the soak, each role -> sample: at the start of the fault
    phase, in its middle and at its end."""

    start: Mapping[str, MemorySample]
    mid: Mapping[str, MemorySample]
    end: Mapping[str, MemorySample]


def _row(role: str, samples: Samples, killed: int, limit_pct: float,
         not_judged: str) -> MemoryRow:
    start, mid, end = samples.start.get(role), samples.mid.get(role), samples.end.get(role)
    if start is None or end is None:
        when = "at the start" if start is None else "at the end"
        return MemoryRow(role, start, mid, end, None, None, False, False, f"not running {when}")
    growth = growth_pct(start.rss_kib, end.rss_kib)
    uss = growth_pct(start.uss_kib, end.uss_kib) if start.uss_kib else None
    if start.pid != end.pid:
        if killed:
            note = f"restarted (killed {killed}x by faults): young process, not judged"
            return MemoryRow(role, start, mid, end, growth, uss, False, True, note)
        note = "restarted but no fault killed it (a crash?)"
        return MemoryRow(role, start, mid, end, growth, uss, False, False, note)
    if not_judged:
        return MemoryRow(role, start, mid, end, growth, uss, False, True, not_judged)
    ok = growth < limit_pct
    note = f"RSS growth {'<' if ok else '>='} {limit_pct:g} %"
    return MemoryRow(role, start, mid, end, growth, uss, True, ok, note)


def memory_rows(samples: Samples, killed: Mapping[str, int], limit_pct: float,
                not_judged: Mapping[str, str] | None = None) -> list[MemoryRow]:
    """One row per role seen at the start or end, in start order: judged on RSS growth
    from start to end against ``limit_pct``, unless restarted (``killed`` counts the
    kills of each role) or named in ``not_judged`` (role -> the reason, shown)."""
    roles = list(samples.start) + [r for r in samples.end if r not in samples.start]
    reasons = not_judged or {}
    return [_row(role, samples, killed.get(role, 0), limit_pct, reasons.get(role, ""))
            for role in roles]


def _mib(sample: MemorySample | None, attr: str) -> str:
    return "-" if sample is None else f"{getattr(sample, attr) / KIB_PER_MIB:.1f}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:+.1f}"


def _pids(row: MemoryRow) -> str:
    start = str(row.start.pid) if row.start else "-"
    end = str(row.end.pid) if row.end else "-"
    return start if start == end else f"{start}->{end}"


def format_table(rows: Iterable[MemoryRow]) -> str:
    """The memory table: role, PIDs, RSS at start, middle and end in MiB, RSS and USS
    growth from start to end in %, verdict and note."""
    header = (f"{'process':<12} {'pid':>13} {'rss_start':>9} {'rss_mid':>8} {'rss_end':>8} "
              f"{'rss_%':>7} {'uss_%':>7}  verdict")
    lines = [header]
    for row in rows:
        verdict = ("PASS" if row.ok else "FAIL") if row.judged else ("-" if row.ok else "FAIL")
        lines.append(
            f"{row.role:<12} {_pids(row):>13} {_mib(row.start, 'rss_kib'):>9} "
            f"{_mib(row.mid, 'rss_kib'):>8} {_mib(row.end, 'rss_kib'):>8} "
            f"{_pct(row.growth_pct):>7} {_pct(row.uss_growth_pct):>7}  {verdict:<4} {row.note}")
    return "\n".join(lines)


def _read(pid: int) -> MemorySample | None:
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text(encoding="ascii")
    except OSError:
        return None  # gone (killed, restarting)
    return parse_smaps_rollup(pid, text)


def _median(samples: list[MemorySample]) -> MemorySample:
    return MemorySample(samples[-1].pid,
                        int(statistics.median(s.rss_kib for s in samples)),
                        int(statistics.median(s.pss_kib for s in samples)),
                        int(statistics.median(s.uss_kib for s in samples)))


def sample(pids: Mapping[str, int], readings: int = 3,
           interval_s: float = 1.0) -> dict[str, MemorySample]:
    """Each process' memory, the median of ``readings`` readings ``interval_s`` apart
    (under load a single reading catches bursts); processes gone meanwhile are left out."""
    taken: dict[str, list[MemorySample]] = {role: [] for role in pids}
    for index in range(readings):
        if index:
            time.sleep(interval_s)
        for role, pid in pids.items():
            reading = _read(pid)
            if reading is not None:
                taken[role].append(reading)
    return {role: _median(found) for role, found in taken.items() if found}
