"""Trends across runs: ``reports/history.jsonl`` and the regressions it reveals.

One JSON line per experiment run::

    {"experiment": "broker-down", "started": "2026-11-27T14:31:10+00:00",
     "started_unix": 1795789870.5, "passed": true, "reasons": [],
     "trip_s": 0.166, "recover_s": 1.037, "p95_ms": 61.7, "worst_p95_ms": 135.5,
     "budget_burned": 127.7, "journal": "reports/broker-down-….journal.json",
     "bounds": {"trip_s": 5, "recover_s": 20, "p95_ms": 1000.0}}

A run regresses when its time to trip, time to recover or client p95 is over its
recorded bound (the experiment's own ``breaker_open_within_s``,
``breaker_close_within_s``, ``sla_p95_latency_max_s``), or worse than the last passing
earlier run of the same experiment by more than the policy's margin.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gameday.report.data import ExperimentData

__all__ = ["RegressionPolicy", "append_history", "history_entry", "read_history",
           "regressions"]

METRICS = {"trip_s": ("time to trip", "s"), "recover_s": ("time to recover", "s"),
           "p95_ms": ("client p95", "ms")}
BOUND_KEYS = {"trip_s": "breaker_open_within_s", "recover_s": "breaker_close_within_s"}


@dataclass(frozen=True)
class RegressionPolicy:
    """How much worse than before counts as a regression.

    With ``min_runs`` (3) or more earlier passing runs of the experiment, against their
    run-to-run noise: worse than the median of the last ``runs`` (10) by more than
    ``noise_k`` (3) times their robust spread (1.4826 x the median absolute deviation),
    and by more than the floor. With fewer, against the last passing run: more than
    ``margin`` (0.25 = 25 %) worse, and by more than the floor. The floor (``min_delta_s``
    0.5 s, ``min_delta_ms`` 20 ms) keeps small values from flagging on jitter.
    """

    margin: float = 0.25
    min_delta_s: float = 0.5
    min_delta_ms: float = 20.0
    noise_k: float = 3.0
    min_runs: int = 3
    runs: int = 10

    def floor(self, metric: str) -> float:
        """The smallest change in ``metric`` that can count."""
        return self.min_delta_ms if metric.endswith("_ms") else self.min_delta_s

    def worse(self, metric: str, value: float, baseline: float) -> bool:
        """True when ``value`` is worse than ``baseline`` beyond the margin and floor."""
        return value > baseline * (1 + self.margin) and value - baseline > self.floor(metric)


@dataclass(frozen=True)
class Noise:
    """The earlier runs' level (median) and run-to-run noise (robust sigma) of a figure."""

    median: float
    sigma: float
    runs: int


def noise_of(values: Sequence[float]) -> Noise:
    """Median and robust spread (1.4826 x median absolute deviation) of ``values``."""
    ordered = sorted(values)
    median = _median(ordered)
    return Noise(median, 1.4826 * _median(sorted(abs(v - median) for v in ordered)),
                 len(ordered))


def _median(ordered: Sequence[float]) -> float:
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def _bounds(data: ExperimentData) -> dict[str, float]:
    bounds = {"p95_ms": data.targets.p95_latency_max_s * 1000}
    for metric, key in BOUND_KEYS.items():
        try:
            bounds[metric] = float(data.configuration[key])
        except (KeyError, TypeError, ValueError):
            continue
    return bounds


def history_entry(data: ExperimentData, journal_path: Path | None) -> dict[str, Any]:
    """The history line of one experiment run (pure)."""
    card = data.scorecard
    return {
        "experiment": data.name,
        "started": datetime.fromtimestamp(data.start_unix, UTC).isoformat(timespec="seconds"),
        "started_unix": round(data.start_unix, 3), "passed": data.verdict.passed,
        "verdict": data.verdict.kind, "reasons": list(data.verdict.shown),
        "orders": dict(data.scorecard.orders), "trip_s": card.trip_s,
        "recover_s": card.recover_s, "p95_ms": card.client_p95_ms,
        "worst_p95_ms": card.worst_p95_ms,
        "budget_burned": None if card.budget_burned is None else round(card.budget_burned, 4),
        "journal": str(journal_path) if journal_path else None, "bounds": _bounds(data),
    }


def read_history(path: Path) -> list[dict[str, Any]]:
    """Every readable line of a history file (none when it does not exist)."""
    if not path.exists():
        return []
    entries = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and "experiment" in entry:
            entries.append(entry)
    return entries


def _key(entry: Mapping[str, Any]) -> tuple[str, float]:
    return str(entry["experiment"]), float(entry.get("started_unix") or 0)


def append_history(path: Path, entries: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Add the runs not yet recorded (a run is its experiment and start time); return
    the whole history, oldest first."""
    history = read_history(path)
    known = {_key(e) for e in history}
    new = [dict(e) for e in entries if _key(e) not in known]
    if new:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as out:
            out.writelines(json.dumps(e, sort_keys=True) + "\n" for e in new)
    return sorted([*history, *new], key=lambda e: float(e.get("started_unix") or 0))


def last_passing(entry: Mapping[str, Any],
                 history: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The latest passing run of the same experiment that started before ``entry``."""
    name, started = _key(entry)
    earlier = [e for e in history if _key(e)[0] == name and _key(e)[1] < started
               and e.get("passed")]
    return max(earlier, key=lambda e: _key(e)[1], default=None)


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) else None


def regressions(entry: Mapping[str, Any], history: Sequence[Mapping[str, Any]],
                policy: RegressionPolicy) -> list[str]:
    """Why this run is a regression (empty when it is not): a figure over its bound, or
    worse than before beyond the run-to-run noise (see :class:`RegressionPolicy`)."""
    base = last_passing(entry, history)
    earlier = passing_before(entry, history)[-policy.runs:]
    found = []
    for metric, (label, unit) in METRICS.items():
        value = _number(entry.get(metric))
        if value is None:
            continue
        bound = _number((entry.get("bounds") or {}).get(metric))
        if bound is not None and value > bound:
            found.append(f"{label} {value:.3g} {unit} is over its bound {bound:g} {unit}")
        values = [v for v in (_number(e.get(metric)) for e in earlier) if v is not None]
        if len(values) >= policy.min_runs:
            found += _beyond_noise(metric, value, noise_of(values), policy)
            continue
        baseline = _number(base.get(metric)) if base else None
        if base and baseline is not None and policy.worse(metric, value, baseline):
            found.append(f"{label} {value:.3g} {unit} vs {baseline:.3g} {unit} in the last "
                         f"passing run ({base.get('started')}): more than "
                         f"{policy.margin:.0%} worse")
    return found


def _beyond_noise(metric: str, value: float, noise: Noise,
                  policy: RegressionPolicy) -> list[str]:
    label, unit = METRICS[metric]
    delta = value - noise.median
    allowed = max(policy.noise_k * noise.sigma, policy.floor(metric))
    if delta <= allowed:
        return []
    times = f"{delta / noise.sigma:.1f}x" if noise.sigma > 0 else "far beyond"
    return [f"{label} {value:.3g} {unit} vs a median of {noise.median:.3g} {unit} over the "
            f"last {noise.runs} passing runs: +{delta:.3g} {unit}, {times} their run-to-run "
            f"noise ({noise.sigma:.2g} {unit}); allowed +{allowed:.2g} {unit}"]


def passing_before(entry: Mapping[str, Any],
                   history: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The passing runs of the same experiment that started before ``entry``, oldest
    first."""
    name, started = _key(entry)
    return sorted((e for e in history if _key(e)[0] == name and _key(e)[1] < started
                   and e.get("passed")), key=lambda e: _key(e)[1])


def trend(entry: Mapping[str, Any], history: Sequence[Mapping[str, Any]], metric: str,
          runs: int = 10) -> list[tuple[float, bool]]:
    """The last ``runs`` values of ``metric`` for this experiment up to ``entry``,
    each with whether that run passed (oldest first)."""
    name, started = _key(entry)
    mine = [e for e in history if _key(e)[0] == name and _key(e)[1] <= started]
    values = [(_number(e.get(metric)), bool(e.get("passed"))) for e in mine]
    return [(v, ok) for v, ok in values if v is not None][-runs:]
