"""Each experiment's own order reconciliation: its orders' outcomes against the ledger.

The traffic control calls :func:`reconcile_window` when an experiment ends. It reads the
outcomes of the orders that finished during the experiment (the part of the load
generator's outcome log written since the experiment started: under a shared game-day
load, each order belongs to the experiment during which it finished) and the broker's
fills (``GET /fills`` on the broker API), and counts, over those orders only (see
:func:`gameday.measurements.reconcile.reconcile`): acked, lost, duplicated,
failed-but-filled, unknown, unknown-filled — and ``unexplained``: fills under an id
derived from one the clients sent (``ID-r2``), booked during the experiment (a service
that retries under a new id fills the order twice, invisibly to matching by id; see
:func:`gameday.measurements.reconcile.unexplained_fills`). The verdict fails an
experiment with any order lost, filled twice or unexplained, or with more
failed-but-filled orders than configured.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from gameday.clients.http import HttpUnreachable, request_json
from gameday.contract import MeasurementError
from gameday.load.output import parse_outcomes
from gameday.measurements.reconcile import reconcile, unexplained_fills
from gameday.targets import Target

__all__ = ["ledger_fills", "reconcile_window", "window_outcomes"]

FILLS_SLACK_S = 60.0
IN_FLIGHT_S = 5.0
LEDGER_TIMEOUT_S = 30.0


def window_outcomes(path: Path, offset: int) -> tuple[dict[str, str], set[str]]:
    """The outcomes logged in ``path`` from byte ``offset`` on, and the ids of every order
    in the whole log (one read); an absent log means no order finished (both empty)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return {}, set()
    window = parse_outcomes(data[offset:].decode("utf-8", errors="replace"))
    return window, set(parse_outcomes(data.decode("utf-8", errors="replace")))


def ledger_fills(target: Target, since_unix: float) -> list[dict[str, Any]]:
    """The broker's fills since ``since_unix`` (less a slack for orders in flight);
    MeasurementError when the ledger cannot be read."""
    url = f"{target.broker_url()}/fills?since={since_unix - FILLS_SLACK_S:.3f}"
    try:
        response = request_json("GET", url, timeout_s=LEDGER_TIMEOUT_S)
    except HttpUnreachable as exc:
        raise MeasurementError(f"cannot read the broker's ledger: {exc}") from exc
    if response.status != 200 or not isinstance(response.body, dict):
        raise MeasurementError(f"the broker's ledger at {url} answered {response.status}: "
                               f"{str(response.body)[:200]}")
    return list(response.body.get("fills") or [])


def reconcile_window(target: Target, log: Path, offset: int, since_unix: float) -> dict[str, Any]:
    """The experiment's reconciliation: the counts of
    :func:`~gameday.measurements.reconcile.reconcile` plus ``orders`` (how many finished in
    the window), or ``{"error": why}`` when the ledger cannot be read or is malformed."""
    outcomes, sent = window_outcomes(log, offset)
    result: dict[str, Any] = {"orders": len(outcomes)}
    if not outcomes:
        return {**result, **reconcile({}, []), "unexplained": 0}
    try:
        fills = ledger_fills(target, since_unix)
        result.update(reconcile(outcomes, fills))
    except (MeasurementError, ValueError) as exc:
        return {"orders": len(outcomes), "error": str(exc)}
    result["unexplained"] = unexplained_fills(fills, sent, since_unix,
                                              time.time() - IN_FLIGHT_S)
    return result
