"""Order probes: no order lost or filled twice, and no retry storm.

``reconcile`` compares what the clients of the experiment's traffic were told (the load
generator's log of every order's outcome) with the broker's ledger (``GET /fills``).
"""

import json
from pathlib import Path
from typing import Any

from gameday.contract import (
    DEFAULT_SELECTOR,
    METRIC_API_REQUEST_SECONDS,
    METRIC_ORDERS_TOTAL,
    MeasurementError,
    window_selector,
)
from gameday.engine.activity import activity
from gameday.engine.orders import FILLS_SLACK_S, ledger_fills
from gameday.engine.traffic import current_files, outcomes_path
from gameday.load.output import read_outcomes
from gameday.measurements.reconcile import reconcile as reconcile_orders
from gameday.targets import get_target

__all__ = ["broker_calls_per_order", "reconcile"]



def _outcomes(path: Path) -> dict[str, str]:
    if not path.exists():
        raise MeasurementError(f"no order outcomes at {path}: is the traffic control running?")
    outcomes = read_outcomes(path)
    if not outcomes:
        raise MeasurementError(f"{path} holds no order outcome yet")
    return outcomes


def _traffic_start(live: Path) -> float:
    """When the traffic started, so the ledger is read from there on (less a slack)."""
    try:
        return float(json.loads(live.read_text(encoding="utf-8"))["t0_unix"])
    except (OSError, ValueError, KeyError):
        return FILLS_SLACK_S


@activity
def reconcile() -> dict[str, Any]:
    """Reconcile the experiment's orders with the broker's ledger.

    Every order a client got a 2xx fill for must be in the ledger exactly once; no order
    may be filled twice; an order the client saw fail (or time out) but the broker filled
    is an *unknown outcome*. Orders still in flight are left out.

    Returns ``{acked, filled, lost, duplicated, unknown_outcome, ok}`` (``ok``: nothing
    lost or duplicated). Pair it with ``{type: jsonpath, path: "$.ok", expect: true}``,
    or a jsonpath on ``$.unknown_outcome`` with a bound.
    """
    files = current_files()
    outcomes = _outcomes(outcomes_path(files))
    fills = ledger_fills(get_target(), _traffic_start(files.live))
    result = dict(reconcile_orders(outcomes, fills))
    result["ok"] = result["lost"] == 0 and result["duplicated"] == 0
    return result


@activity
def broker_calls_per_order(window_s: float = 10,
                           configuration: dict[str, Any] | None = None) -> float:
    """Broker API calls the service made per order it answered, over a trailing window.

    Args:
        window_s: the window, in seconds (2..3600).

    Returns a ratio: 1.0 = one call per order; above it, retries; while the breaker is
    open it falls towards 0. A retry storm shows as a high ratio. Pair it with a range
    tolerance, e.g. ``[0, 1.5]``.
    """
    config = configuration or {}
    selector = str(config.get("prometheus_service_selector", DEFAULT_SELECTOR))
    window = window_selector(window_s)
    calls = f"sum(rate({METRIC_API_REQUEST_SECONDS}_count{{{selector}}}[{window}]))"
    orders = f"sum(rate({METRIC_ORDERS_TOTAL}{{{selector}}}[{window}]))"
    return get_target().prometheus().scalar(f"{calls} / {orders}")
