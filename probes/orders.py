"""Order probes: how many broker calls each order costs (retry storms).

Reconciliation of the client's outcomes against the broker's ledger comes with the
broker simulator's ledger.
"""

from typing import Any

from gameday.prometheus import Prometheus
from gameday.sla import DEFAULT_SELECTOR, window_selector
from gameday.targets import get_target

__all__ = ["broker_calls_per_order"]


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
    calls = f"sum(rate(broker_api_request_seconds_count{{{selector}}}[{window}]))"
    orders = f"sum(rate(broker_orders_total{{{selector}}}[{window}]))"
    return Prometheus(get_target().prometheus_url()).scalar(f"{calls} / {orders}")
