"""Reconciliation of client outcomes against broker fills (pure)."""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime

import pytest

from gameday.measurements.reconcile import OUTCOMES, reconcile, unexplained_fills

CLEAN = {"acked": 0, "filled": 0, "lost": 0, "duplicated": 0, "unknown_outcome": 0,
         "failed_but_filled": 0, "unknown": 0, "unknown_filled": 0}


def fill(client_order_id: str, fill_id: str) -> dict[str, object]:
    return {"fill_id": fill_id, "client_order_id": client_order_id, "instrument": "EUR_USD",
            "units": 1, "fill_price": 1.1, "filled_at": "2024-01-01T00:00:00.000+00:00"}


def test_nothing_to_reconcile() -> None:
    assert reconcile({}, []) == CLEAN


def test_a_clean_run() -> None:
    outcomes = {"a": "ok", "b": "ok", "c": "failed", "d": "unknown"}
    assert reconcile(outcomes, [fill("a", "1"), fill("b", "2")]) == {
        **CLEAN, "acked": 2, "filled": 2, "unknown": 1
    }  # fmt: skip


def test_an_acked_order_missing_from_the_ledger_is_lost() -> None:
    assert reconcile({"a": "ok", "b": "ok"}, [fill("b", "1")]) == {
        **CLEAN, "acked": 2, "filled": 1, "lost": 1
    }  # fmt: skip


def test_two_fills_of_one_id_are_a_duplicate() -> None:
    fills = [fill("a", "1"), fill("a", "2"), fill("a", "3"), fill("b", "4")]
    assert reconcile({"a": "ok", "b": "ok"}, fills) == {
        **CLEAN, "acked": 2, "filled": 2, "duplicated": 1
    }  # fmt: skip


def test_the_same_fill_listed_twice_is_not_a_duplicate() -> None:
    assert reconcile({"a": "ok"}, [fill("a", "1"), fill("a", "1")])["duplicated"] == 0


def test_fills_without_a_fill_id_count_one_each() -> None:
    fills = [{"client_order_id": "a"}, {"client_order_id": "a"}]
    assert reconcile({"a": "ok"}, fills)["duplicated"] == 1


def test_a_fill_of_an_order_the_client_was_told_had_failed_is_failed_but_filled() -> None:
    assert reconcile({"a": "failed"}, [fill("a", "1")]) == {
        **CLEAN, "filled": 1, "unknown_outcome": 1, "failed_but_filled": 1
    }  # fmt: skip


def test_a_fill_of_an_order_of_unknown_outcome_is_unknown_filled() -> None:
    assert reconcile({"a": "unknown"}, [fill("a", "1")]) == {
        **CLEAN, "filled": 1, "unknown_outcome": 1, "unknown": 1, "unknown_filled": 1
    }  # fmt: skip


def test_unknown_outcome_and_duplicate_together() -> None:
    assert reconcile({"a": "unknown"}, [fill("a", "1"), fill("a", "2")]) == {
        **CLEAN, "filled": 1, "duplicated": 1, "unknown_outcome": 1, "unknown": 1,
        "unknown_filled": 1,
    }  # fmt: skip


def test_fills_of_other_clients_are_ignored() -> None:
    assert reconcile({"a": "ok"}, [fill("a", "1"), fill("zz", "2"), fill("zz", "3")]) == {
        **CLEAN, "acked": 1, "filled": 1
    }  # fmt: skip


def test_fills_may_be_any_iterable_read_once() -> None:
    fills = (fill(cid, str(i)) for i, cid in enumerate(["a", "b"]))
    assert reconcile({"a": "ok", "b": "failed"}, fills)["unknown_outcome"] == 1


def test_invalid_inputs_raise() -> None:
    with pytest.raises(ValueError, match="not one of ok, failed, unknown"):
        reconcile({"a": "filled"}, [])
    with pytest.raises(ValueError, match="no client_order_id"):
        reconcile({"a": "ok"}, [{"fill_id": "1"}])


@pytest.mark.parametrize(
    ("outcome", "fill_count"), list(itertools.product(OUTCOMES, range(3)))
)
def test_every_outcome_with_every_fill_count(outcome: str, fill_count: int) -> None:
    fills = [fill("a", str(i)) for i in range(fill_count)]
    result = reconcile({"a": outcome}, fills)
    assert result == {
        "acked": int(outcome == "ok"),
        "filled": int(fill_count > 0),
        "lost": int(outcome == "ok" and fill_count == 0),
        "duplicated": int(fill_count > 1),
        "unknown_outcome": int(outcome != "ok" and fill_count > 0),
        "failed_but_filled": int(outcome == "failed" and fill_count > 0),
        "unknown": int(outcome == "unknown"),
        "unknown_filled": int(outcome == "unknown" and fill_count > 0),
    }


def test_counts_add_up_on_random_runs() -> None:
    rng = random.Random(5)
    for _ in range(200):
        outcomes = {f"o{i}": rng.choice(OUTCOMES) for i in range(rng.randrange(30))}
        fills = [fill(rng.choice([*outcomes, "x"]), str(n)) for n in range(rng.randrange(40))]
        result = reconcile(outcomes, fills)
        acked_filled = result["acked"] - result["lost"]
        assert result["filled"] == acked_filled + result["unknown_outcome"]
        assert result["duplicated"] <= result["filled"] <= len(outcomes)
        assert result["unknown_outcome"] == result["failed_but_filled"] + result["unknown_filled"]
        assert all(value >= 0 for value in result.values())


def _at(client_order_id: str, at_unix: float) -> dict[str, object]:
    stamp = datetime.fromtimestamp(at_unix, UTC).isoformat(timespec="milliseconds")
    return {"fill_id": client_order_id, "client_order_id": client_order_id, "filled_at": stamp}


def test_a_fill_under_an_id_derived_from_a_clients_is_unexplained() -> None:
    sent = {"gd-1-ab-57", "gd-1-ab-58"}
    fills = [_at("gd-1-ab-57", 100.0), _at("gd-1-ab-57-r2", 101.0), _at("gd-1-ab-58", 102.0)]
    assert unexplained_fills(fills, sent, 90.0, 200.0) == 1


def test_fills_of_other_clients_in_flight_or_outside_the_window_are_not_unexplained() -> None:
    sent = {"gd-1-ab-57"}
    fills = [_at("someone-else-1", 100.0),  # another client's id
             _at("gd-1-ab-570", 100.0),  # our order still in flight, not derived
             _at("gd-1-ab-57-r2", 80.0),  # before the window
             _at("gd-1-ab-57-r3", 300.0),  # after it (in flight)
             {"client_order_id": "gd-1-ab-57-r4", "filled_at": "not a time"}]
    assert unexplained_fills(fills, sent, 90.0, 200.0) == 0
