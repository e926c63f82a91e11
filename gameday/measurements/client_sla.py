"""Client-side SLA figures from the load generator's live file (pure, plus one reader).

The load generator (``gameday load --live PATH``, as the traffic control runs it)
rewrites its live file every second with the seconds whose requests have all ended
(format: :mod:`gameday.load.output`). Over the last ``window_s`` of those seconds the SLA
of docs/contract.md is computed exactly, from the client's side:

- availability = requests answered in time (≤ ``in_time_s``, 1 s by default) with a
  non-5xx status / requests due;
- p95_latency_s = 95th percentile of latency from the due time, over every request due
  in the window (timeouts and errors included), from the merged HDR histograms;
- error_rate = requests ended in a 5xx, a timeout or a connection error / requests due;
- throughput_rps = requests answered (any HTTP status) per second.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from gameday.contract import ConfigError, MeasurementError
from gameday.load.stats import merged_histogram

__all__ = ["STALE_S", "client_sla", "connect_failures", "figures", "read_live",
           "seconds_between"]

STALE_S = 3.0


def read_live(path: Path) -> dict[str, Any]:
    """The live file at ``path``; MeasurementError when it is missing or unreadable."""
    try:
        live = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise MeasurementError(f"no live load figures at {path}: is the traffic running?") \
            from None
    except (OSError, ValueError) as exc:
        raise MeasurementError(f"cannot read the live load figures {path}: {exc}") from None
    if not isinstance(live, dict) or not isinstance(live.get("timeline"), list):
        raise MeasurementError(f"{path} is not a live load file (no timeline)")
    return live


def _check_fresh(live: Mapping[str, Any], now_unix: float) -> None:
    age_s = now_unix - float(live["updated_unix"])
    if age_s > STALE_S:
        raise MeasurementError(
            f"the live load figures are {age_s:.1f} s old (over {STALE_S:g} s): the load "
            "generator has stopped or died")


def _window(live: Mapping[str, Any], window_s: float, now_unix: float) -> list[Any]:
    """The finished seconds t with t > newest - window_s; raises when there are none."""
    timeline: Sequence[Mapping[str, Any]] = live["timeline"]
    if not timeline:
        raise MeasurementError("no finished second yet in the live load figures")
    newest = int(timeline[-1]["t"])
    ended_unix = float(live["t0_unix"]) + newest + 1
    max_lag_s = float(live.get("timeout_s", 0)) + STALE_S + 1
    if now_unix - ended_unix > max_lag_s:
        raise MeasurementError(
            f"no second finished in the last {max_lag_s:g} s (newest ended "
            f"{now_unix - ended_unix:.1f} s ago): the load generator is stuck")
    window = [e for e in timeline if int(e["t"]) > newest - window_s]
    if not any(int(e["due"]) for e in window):
        raise MeasurementError(f"no request was due in the last {window_s:g} finished seconds")
    return window


def figures(window: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The SLA over some finished seconds of a live timeline (pure); they must hold at
    least one due request."""
    due = sum(int(e["due"]) for e in window)
    if not due:
        raise MeasurementError("no request was due in the seconds to measure")
    errors = sum(int(v) for e in window for v in e["errors"].values())
    histogram = merged_histogram(e.get("hist") for e in window)
    return {
        "availability": round(sum(int(e["in_time"]) for e in window) / due, 6),
        "p95_latency_s": histogram.get_value_at_percentile(95) / 1e6,
        "error_rate": round(errors / due, 6),
        "throughput_rps": round(sum(int(e["answered"]) for e in window) / len(window), 3),
        "seconds": len(window),
        "requests": due,
    }


def connect_failures(live: Mapping[str, Any], window_s: float,
                     now_unix: float) -> tuple[int, int]:
    """(requests due, requests that could not connect) over the last ``window_s``
    finished seconds (pure); raises like :func:`client_sla` when it cannot tell."""
    _check_fresh(live, now_unix)
    window = _window(live, window_s, now_unix)
    return (sum(int(e["due"]) for e in window),
            sum(int(e["errors"]["connection"]) for e in window))


def seconds_between(live: Mapping[str, Any], start_unix: float,
                    end_unix: float) -> list[Mapping[str, Any]]:
    """The finished seconds that lie wholly between two unix times (pure)."""
    t0 = float(live["t0_unix"])
    return [e for e in live["timeline"]
            if t0 + int(e["t"]) >= start_unix and t0 + int(e["t"]) + 1 <= end_unix]


def client_sla(live: Mapping[str, Any], window_s: float, now_unix: float) -> dict[str, Any]:
    """The SLA over the last ``window_s`` finished seconds of a live document.

    Args:
        live: the live file's JSON object (see :func:`read_live`).
        window_s: how many of the newest finished seconds to cover, in seconds (> 0).
        now_unix: the current unix time, to tell a dead or stuck load generator.

    Returns:
        ``{"availability", "p95_latency_s", "error_rate", "throughput_rps", "seconds",
        "requests"}``: ratios 0..1, seconds, requests/s, how many seconds and requests
        were covered. Pair with ``gameday.measurements.sla.sla_report`` or plain tolerances.

    Raises:
        MeasurementError: the file is stale (not updated for over 3 s), no second has
            finished lately, or no request was due in the window.
    """
    if not window_s > 0:
        raise ConfigError(f"window_s={window_s} is invalid: it must be > 0 seconds")
    _check_fresh(live, now_unix)
    return figures(_window(live, window_s, now_unix))
