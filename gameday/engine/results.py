"""What running one experiment yields: its verdict, journal, duration and key figures."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gameday.engine.verdict import Verdict

__all__ = ["ExperimentResult", "key_figures"]

TIMING_PROBES = {"time_to_trip_s": "trip_s", "time_to_recover_s": "recover_s"}


@dataclass(frozen=True)
class ExperimentResult:
    """One experiment's verdict, where its journal is, how long it took, key figures, and
    whether a Ctrl-C/SIGTERM/SIGHUP cut it short."""

    path: Path
    verdict: Verdict
    journal_path: Path | None
    duration_s: float
    figures: Mapping[str, Any] = field(default_factory=dict)
    interrupted: bool = False


def key_figures(journal: Mapping[str, Any]) -> dict[str, Any]:
    """Time to trip and recover (from the breaker probes) and the client-side traffic
    figures (from the traffic control), when the journal has them."""
    figures: dict[str, Any] = {}
    for run in journal.get("run") or []:
        func = run.get("activity", {}).get("provider", {}).get("func")
        if func in TIMING_PROBES and isinstance(run.get("output"), (int, float)):
            figures[TIMING_PROBES[func]] = round(float(run["output"]), 3)
    for extension in journal.get("extensions") or []:
        summary = extension.get("summary") if isinstance(extension, dict) else None
        if isinstance(summary, dict):
            figures["sent"] = summary.get("sent")
            figures["client_error_rate"] = summary.get("error_rate")
            figures["client_p95_ms"] = (summary.get("latency_ms") or {}).get("p95")
    return figures
