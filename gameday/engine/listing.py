"""What the catalog holds, for ``gameday list``: each experiment and incident replay with
its tags, the failure it stands for and what must hold.

An experiment says the last two in its ``gameday`` extension (``stands_for``,
``must_hold``); an incident file says them in its own words (``title``, ``fault``,
``promised``). A file that says neither is listed with its title and a dash.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from gameday.engine.incident import is_incident
from gameday.engine.runner import CATALOG_DIR, catalog, load_experiment

__all__ = ["CatalogEntry", "entries", "entry", "table"]

INCIDENTS = "incidents"
TEMPLATE = "TEMPLATE.yaml"
NONE = "—"
PROMISE_WORDS = {"breaker_open_within_s": "breaker open ≤ {} s",
                 "recovery_within_s": "recovered ≤ {} s after the fault",
                 "availability_min": "availability ≥ {}", "p95_latency_max_s": "p95 ≤ {} s",
                 "error_rate_max": "error rate ≤ {}", "throughput_min_rps": "throughput ≥ {}/s"}


@dataclass(frozen=True)
class CatalogEntry:
    """One runnable file: ``kind`` is ``experiment`` or ``incident``."""

    name: str
    kind: str
    tags: tuple[str, ...]
    title: str
    stands_for: str
    must_hold: str
    path: str

    def as_json(self) -> dict[str, Any]:
        """A plain JSON object (tags as a list)."""
        data = asdict(self)
        data["tags"] = list(self.tags)
        return data


def entries(directory: Path = CATALOG_DIR) -> list[CatalogEntry]:
    """The catalog in its run order, then the incident replays (not the template)."""
    incidents = sorted(p for p in (directory / INCIDENTS).glob("*.yaml") if p.name != TEMPLATE)
    return [entry(path) for path in (*catalog(directory), *incidents)]


def entry(path: Path) -> CatalogEntry:
    """One file's entry; ConfigError (from the loader) when it is not runnable."""
    experiment = load_experiment(path)
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    tags = tuple(str(t) for t in experiment.get("tags") or [])
    title = str(experiment.get("title", path.stem))
    if isinstance(raw, Mapping) and is_incident(raw):
        return CatalogEntry(path.stem, "incident", tags, title, _fault_words(raw),
                            _promise_words(raw.get("promised")), str(path))
    marks = _gameday_extension(experiment)
    return CatalogEntry(path.stem, "experiment", tags, title,
                        str(marks.get("stands_for") or NONE),
                        str(marks.get("must_hold") or NONE), str(path))


def _gameday_extension(experiment: Mapping[str, Any]) -> Mapping[str, Any]:
    for extension in experiment.get("extensions") or []:
        if isinstance(extension, Mapping) and extension.get("name") == "gameday":
            return extension
    return {}


def _fault_words(incident: Mapping[str, Any]) -> str:
    fault = _mapping(incident.get("fault"))
    kind, duration = fault.get("kind", "?"), fault.get("duration_s")
    return f"{incident.get('title', NONE)} (replayed: {kind}" + (
        f" for {duration} s)" if duration is not None else ")")


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _promise_words(promised: Any) -> str:
    if not isinstance(promised, Mapping):
        return NONE
    flat = {**{k: v for k, v in promised.items() if k != "sla"},
            **_mapping(promised.get("sla"))}
    words = [PROMISE_WORDS.get(str(k), f"{k} {{}}").format(v) for k, v in flat.items()]
    return "; ".join(words) or NONE


def table(rows: Sequence[CatalogEntry]) -> str:
    """The entries as an aligned plain-text table (pure)."""
    header = ("name", "kind", "tags", "stands for", "must hold")
    cells = [header, *((r.name, r.kind, ",".join(r.tags), r.stands_for, r.must_hold)
                       for r in rows)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header) - 1)]
    return "\n".join(_line(row, widths) for row in cells)


def _line(row: Iterable[str], widths: Sequence[int]) -> str:
    values = list(row)
    padded = [value.ljust(width) for value, width in zip(values, widths, strict=False)]
    return "  ".join([*padded, values[-1]]).rstrip()
