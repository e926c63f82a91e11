"""Broker failures at the HTTP level, through the broker simulator's admin API.

``fail`` switches a failure mode on; ``recover`` (the idempotent undo, use it as the
rollback) switches the simulator back to normal. Only where a broker simulator runs
(the lab); on a real cluster use ``actions.network`` on the broker link instead.
"""


from typing import Any

from gameday.engine.activity import activity
from gameday.faults import inject
from gameday.targets import get_target

__all__ = ["fail", "recover"]


@activity
def fail(mode: str = "error", status: int | None = None, probability: float | None = None,
         latency_ms: float | None = None, retry_after_s: float | None = None,
         up_s: float | None = None, down_s: float | None = None) -> Any:
    """Make the broker fail in one of the simulator's modes.

    Args:
        mode: ``error`` (answer ``status``, e.g. 500 or 503), ``rate_limit`` (429 with a
            ``Retry-After`` of ``retry_after_s``), ``slow`` (add ``latency_ms``), ``hang``
            (accept, never answer), ``flap`` (up ``up_s`` seconds, down ``down_s``),
            ``maintenance`` (503 on everything), ``reply_lost`` (fill, then drop the
            connection unanswered), ``error_after_fill`` (fill, then answer ``status``,
            500..599). The simulator lists the valid modes and fields when it refuses
            one.
        status: HTTP status for ``error`` and ``error_after_fill``.
        probability: share (0..1) of orders affected, where the mode takes one.
        latency_ms: added latency for ``slow``, in milliseconds.
        retry_after_s: ``Retry-After`` for ``rate_limit``, in seconds.
        up_s: seconds up per ``flap`` period.
        down_s: seconds down per ``flap`` period.

    Returns the simulator's new mode. Undo with ``recover()``.
    """
    fields = {"mode": mode, "status": status, "probability": probability,
              "latency_ms": latency_ms, "retry_after_s": retry_after_s, "up_s": up_s,
              "down_s": down_s}
    return inject.broker_fail(get_target(), {k: v for k, v in fields.items() if v is not None})


@activity
def recover() -> Any:
    """Put the broker back to normal.

    Safe to call when it already is: use it as the rollback. Returns the new mode.
    """
    return inject.broker_recover(get_target())
