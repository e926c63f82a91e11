"""What running one experiment yields: its verdict, journal, duration and key figures."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gameday.engine.verdict import Verdict

__all__ = ["ExperimentResult", "exit_code", "key_figures", "orders_cell"]

EXIT_FAILED, EXIT_INCONCLUSIVE = 1, 4

TIMING_PROBES = {"time_to_trip_s": "trip_s", "time_to_recover_s": "recover_s"}
ORDER_PROBLEMS = (("duplicated", "dup"), ("unexplained", "unexplained"), ("lost", "lost"),
                  ("failed_but_filled", "failed-but-filled"))


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
        orders = extension.get("orders") if isinstance(extension, dict) else None
        if isinstance(orders, dict):
            figures["orders"] = orders_cell(orders)
    return figures


def orders_cell(orders: Mapping[str, Any]) -> str:
    """An experiment's reconciliation in a few words: ``1998 ok`` when nothing is wrong,
    else the orders counted and what went wrong (``2000: 3 dup, 1 lost``)."""
    if orders.get("error"):
        return "not reconciled"
    problems = [f"{orders[key]} {word}" for key, word in ORDER_PROBLEMS if orders.get(key)]
    count = orders.get("orders", "?")
    return f"{count}: {', '.join(problems)}" if problems else f"{count} ok"


def exit_code(results: Sequence[ExperimentResult]) -> int:
    """1 when an experiment failed, else 4 when one was inconclusive, else 0."""
    kinds = {r.verdict.kind for r in results}
    return EXIT_FAILED if "FAIL" in kinds else EXIT_INCONCLUSIVE if "INCONCLUSIVE" in kinds else 0


def counts(results: Sequence[ExperimentResult]) -> str:
    """``10 passed, 1 failed, 1 inconclusive`` (inconclusive only when there is one)."""
    kinds = [r.verdict.kind for r in results]
    text = f"{kinds.count('PASS')} passed, {kinds.count('FAIL')} failed"
    inconclusive = kinds.count("INCONCLUSIVE")
    return text + (f", {inconclusive} inconclusive" if inconclusive else "")
