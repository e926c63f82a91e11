"""Reconciliation: what clients were told against what the broker's ledger holds (pure).

Every order a client got a 2xx fill for must be in the ledger exactly once; no client
order id may be filled twice; an order the client did not see filled but the broker
did fill is an *unknown outcome* (the client may place it again, or never learn of a
position it holds). Feed :func:`reconcile` the load generator's outcomes and the
broker's fills (``GET /fills`` on the broker API).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping
from datetime import datetime

__all__ = ["OUTCOMES", "reconcile", "unexplained_fills"]

OUTCOMES = ("ok", "failed", "unknown")


def _fills_by_order(
    fills: Iterable[Mapping[str, object]], ours: Mapping[str, str]
) -> dict[str, set[object]]:
    """Distinct fills per client order id, for our ids only (a fill listed twice, e.g.
    by overlapping reads, is one fill; fills without a ``fill_id`` count one each)."""
    by_order: dict[str, set[object]] = defaultdict(set)
    for index, fill in enumerate(fills):
        client_order_id = fill.get("client_order_id")
        if not isinstance(client_order_id, str):
            raise ValueError(f"fill #{index} has no client_order_id: {dict(fill)!r}")
        if client_order_id in ours:
            by_order[client_order_id].add(fill.get("fill_id", ("row", index)))
    return by_order


def _check(outcomes: Mapping[str, str]) -> None:
    for client_order_id, outcome in outcomes.items():
        if outcome not in OUTCOMES:
            raise ValueError(
                f"outcome {outcome!r} of {client_order_id!r} is not one of {', '.join(OUTCOMES)}"
            )


def reconcile(
    outcomes: Mapping[str, str], fills: Iterable[Mapping[str, object]]
) -> dict[str, int]:
    """Compare client outcomes with broker fills.

    Args:
        outcomes: client order id -> ``"ok"`` (the client got a 2xx fill), ``"failed"``
            (a definite error answer) or ``"unknown"`` (timeout or connection error).
        fills: the broker's fills, each a mapping with ``client_order_id`` and
            ``fill_id``; fills of ids not in ``outcomes`` (other clients) are ignored.

    Returns:
        ``{"acked", "filled", "lost", "duplicated", "unknown_outcome",
        "failed_but_filled", "unknown", "unknown_filled"}``, all counts of client order
        ids: acked = ``ok`` ids; filled = our ids with at least one fill; lost = ``ok``
        ids with no fill; duplicated = ids with more than one fill; unknown_outcome = ids
        not ``ok`` that the broker filled, of which failed_but_filled were answered as a
        definite failure (the client was told "not filled": a lie) and unknown_filled
        were answered "outcome unknown" (timeout, lost reply: resolvable by the id);
        unknown = ids whose outcome the client did not learn. A clean run has
        ``lost == 0`` and ``duplicated == 0`` (pair with ``tolerance: 0``);
        ``failed_but_filled`` is bounded by configuration (default 0).

    Raises:
        ValueError: an outcome other than ok/failed/unknown, or a fill without a
            ``client_order_id`` (reconciling is then impossible).
    """
    _check(outcomes)
    by_order = _fills_by_order(fills, outcomes)
    acked = {cid for cid, outcome in outcomes.items() if outcome == "ok"}
    filled = {cid for cid, found in by_order.items() if found}
    unknown = {cid for cid, outcome in outcomes.items() if outcome == "unknown"}
    return {
        "acked": len(acked),
        "filled": len(filled),
        "lost": len(acked - filled),
        "duplicated": sum(1 for found in by_order.values() if len(found) > 1),
        "unknown_outcome": len(filled - acked),
        "failed_but_filled": len(filled - acked - unknown),
        "unknown": len(unknown),
        "unknown_filled": len(filled & unknown),
    }


def _filled_at_unix(fill: Mapping[str, object]) -> float | None:
    value = fill.get("filled_at")
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        return None


def unexplained_fills(fills: Iterable[Mapping[str, object]], sent: Collection[str],
                      since_unix: float, until_unix: float) -> int:
    """Fills no client asked for under an id derived from one a client sent.

    A client order id ``ID`` is the client's; a fill under ``ID-r2`` (or any ``ID-...``)
    that the clients never sent means the service placed the order again under an id of
    its own, so the broker could not tell it was the same order: a duplicate that
    matching by id alone cannot see. Counts the fills booked between ``since_unix`` and
    ``until_unix`` (leave the orders still in flight out) whose id starts with one of
    ``sent`` plus ``-`` and is not itself in ``sent``; fills without a readable
    ``filled_at`` are left out. Fills of other clients (ids unlike ours) never count.
    """
    known = set(sent)
    count = 0
    for fill in fills:
        client_order_id, at = fill.get("client_order_id"), _filled_at_unix(fill)
        if not isinstance(client_order_id, str) or client_order_id in known or at is None:
            continue
        if since_unix <= at <= until_unix and _derived(client_order_id, known):
            count += 1
    return count


def _derived(client_order_id: str, known: set[str]) -> bool:
    """Whether ``client_order_id`` is a known id with a suffix (``ID-...``)."""
    head = client_order_id
    while "-" in head:
        head = head.rsplit("-", 1)[0]
        if head in known:
            return True
    return False
