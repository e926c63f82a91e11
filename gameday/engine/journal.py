"""Reading a Chaos Toolkit journal file, refusing clearly whatever is not one.

``gameday judge`` and ``gameday report`` take journals from the command line; the judge
(:mod:`gameday.engine.verdict`) and the reports expect the shape ``chaos run`` writes. This
checks that shape first, so a wrong file is an error that names it, not a crash.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from gameday.contract import ConfigError

__all__ = ["journal_problems", "read_journal"]

_LISTS = ("run", "rollbacks", "extensions")


def _mappings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, Mapping) for item in value)


def _is_time(value: Any) -> bool:
    """An ISO 8601 time, as Chaos Toolkit writes ``start`` and ``end`` (or absent)."""
    if value is None:
        return True
    try:
        datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return False
    return True


def _runs(value: Any) -> bool:
    return _mappings(value) and all(
        isinstance(run.get("activity", {}), Mapping) and _is_time(run.get("start"))
        and _is_time(run.get("end")) for run in value)


def _steady_states(value: Any) -> bool:
    if not isinstance(value, Mapping):
        return False
    phases = [value.get("before"), value.get("after"), *(value.get("during") or [])]
    return isinstance(value.get("during") or [], list) and all(
        phase is None or (isinstance(phase, Mapping) and _runs(phase.get("probes") or []))
        for phase in phases)


def journal_problems(journal: Any) -> list[str]:
    """What keeps ``journal`` from being a Chaos Toolkit journal (empty when it is one)."""
    if not isinstance(journal, Mapping):
        return [f"it holds a {type(journal).__name__}, not a mapping"]
    problems = []
    if not isinstance(journal.get("experiment"), Mapping):
        problems.append("experiment must be the experiment (a mapping)")
    if not isinstance(journal.get("status"), str):
        problems.append("status must be a string (completed, failed, aborted, ...)")
    problems += [f"{key} must be a list of mappings (with ISO 8601 start and end times)"
                 for key in _LISTS
                 if journal.get(key) is not None and not _runs(journal[key])]
    problems += [f"{key} must be an ISO 8601 time, not {journal[key]!r}"
                 for key in ("start", "end") if not _is_time(journal.get(key))]
    if journal.get("steady_states") is not None and not _steady_states(
            journal["steady_states"]):
        problems.append("steady_states must map before/after/during to probe runs")
    return problems


def read_journal(path: Path) -> dict[str, Any]:
    """The journal in ``path``; ConfigError naming the file and what is wrong with it."""
    try:
        journal = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read journal {path}: {exc}") from None
    problems = journal_problems(journal)
    if problems:
        raise ConfigError(f"{path} is not a Chaos Toolkit journal: {'; '.join(problems)}")
    return dict(journal)
