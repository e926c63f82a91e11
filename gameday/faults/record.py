"""The record of injected faults: written *before* injecting, so that a later cleanup can
undo a fault even after the runner was killed.

One JSON object per line in ``injected.jsonl`` under the target's state directory:
``{"event": "injected", "id", "kind", "params", "at_unix"}`` and, once undone,
``{"event": "undone", "id", "kind", "at_unix"}``. Kinds with no undo (a killed replica comes back
by itself) are recorded with ``"undoable": false`` and are never pending.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gameday.contract import ConfigError, MeasurementError

FILE_NAME = "injected.jsonl"


@dataclass(frozen=True)
class Injection:
    """One recorded fault: its id, kind, parameters and time of injection."""

    id: str
    kind: str
    params: dict[str, Any]
    at_unix: float
    undoable: bool = True


@dataclass(frozen=True)
class InjectionLog:
    """The append-only record in ``state_dir``."""

    state_dir: Path

    @property
    def path(self) -> Path:
        """The record's file."""
        return self.state_dir / FILE_NAME

    def _append(self, entry: dict[str, Any]) -> None:
        """Append one line; a line cut short by a kill is closed first, so it cannot swallow
        this one (the cut line is skipped when read)."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        line = json.dumps(entry, sort_keys=True) + "\n"
        with self.path.open("ab+") as handle:
            if handle.seek(0, os.SEEK_END) > 0:
                handle.seek(-1, os.SEEK_END)
                if handle.read(1) != b"\n":
                    line = "\n" + line
            handle.write(line.encode("utf-8"))
            handle.flush()
            os.fsync(handle.fileno())

    def record(self, kind: str, params: dict[str, Any], undoable: bool = True) -> Injection:
        """Record a fault about to be injected; returns its entry."""
        injection = Injection(uuid.uuid4().hex[:12], kind, params, time.time(), undoable)
        self._append({"event": "injected", "id": injection.id, "kind": kind, "params": params,
                      "at_unix": injection.at_unix, "undoable": undoable})
        return injection

    def entries(self) -> list[dict[str, Any]]:
        """Every line of the record, oldest first (unreadable lines skipped)."""
        if not self.path.exists():
            return []
        lines = self.path.read_text(encoding="utf-8").splitlines()
        return [entry for entry in map(_parse, lines) if entry is not None]

    def pending(self) -> list[Injection]:
        """Faults injected and not yet undone, oldest first."""
        injected: dict[str, Injection] = {}
        for entry in self.entries():
            if entry.get("event") == "injected" and entry.get("undoable", True):
                injection = _injection(entry)
                if injection is not None:
                    injected[injection.id] = injection
            elif entry.get("event") == "undone":
                injected.pop(entry.get("id", ""), None)
        return list(injected.values())

    def resolve(self, matches: Callable[[Injection], bool]) -> list[Injection]:
        """Mark every pending fault that ``matches`` as undone; returns them."""
        done = [i for i in self.pending() if matches(i)]
        for injection in done:
            self._append({"event": "undone", "id": injection.id, "kind": injection.kind,
                          "at_unix": time.time()})
        return done

    def last(self, kinds: tuple[str, ...] = (), event: str = "injected") -> float | None:
        """Unix time of the newest ``event`` (of one of ``kinds``, if given), or None."""
        times = [e["at_unix"] for e in self.entries()
                 if e.get("event") == event and (not kinds or e.get("kind") in kinds)]
        return max(times) if times else None


def fault_time(since: float | None, state_dir: Callable[[], Path],
               kinds: tuple[str, ...] = (), event: str = "injected") -> float:
    """The moment a probe measures from: ``since`` (unix seconds) when given, else when
    the newest ``event`` (of one of ``kinds``, if given) was recorded in the log of
    ``state_dir()`` (only called then). ConfigError when ``since`` is not a number;
    MeasurementError when nothing was recorded."""
    if since is not None:
        try:
            return float(since)
        except (TypeError, ValueError):
            raise ConfigError(f"since={since!r} is not a number (unix seconds)") from None
    recorded = InjectionLog(state_dir()).last(kinds, event=event)
    if recorded is None:
        what = f"{' or '.join(kinds)} fault" if kinds else "fault"
        raise MeasurementError(f"no {what} was {event} by gameday's actions: pass "
                               "`since` (unix seconds) to say when the fault "
                               f"{'ended' if event == 'undone' else 'began'}")
    return recorded


def _injection(entry: dict[str, Any]) -> Injection | None:
    """The fault an "injected" line records, or None when the line lacks a field (a
    hand-edited record, say); such a line is skipped like an unreadable one."""
    try:
        return Injection(str(entry["id"]), str(entry["kind"]), dict(entry["params"]),
                         float(entry.get("at_unix", 0.0)))
    except (KeyError, TypeError, ValueError):
        return None


def _parse(line: str) -> dict[str, Any] | None:
    try:
        entry = json.loads(line)
    except ValueError:
        return None
    return entry if isinstance(entry, dict) else None
