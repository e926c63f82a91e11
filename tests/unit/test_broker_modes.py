"""The broker simulator's modes that fill first (reply_lost, error_after_fill): parsing
and the per-order decision (pure)."""

from __future__ import annotations

import random

import pytest

from lab.broker.modeparse import MODES, InvalidMode, parse_mode
from lab.broker.modes import ErrorAfterFillMode, ReplyLostMode, Verdict, decide


def test_the_modes_that_fill_first_are_registered_with_their_defaults() -> None:
    assert {"reply_lost", "error_after_fill"} <= set(MODES)
    assert parse_mode({"mode": "reply_lost"}) == ReplyLostMode(1.0)
    assert parse_mode({"mode": "error_after_fill"}) == ErrorAfterFillMode(500, 1.0)
    assert parse_mode({"mode": "error_after_fill", "status": 599, "probability": 0.1}) == (
        ErrorAfterFillMode(599, 0.1))
    assert parse_mode({"mode": "error_after_fill"}).to_json() == {
        "mode": "error_after_fill", "status": 500, "probability": 1.0}


@pytest.mark.parametrize("status", [499, 404, 600, 200, "500", 500.0, True])
def test_error_after_fill_refuses_a_status_outside_5xx(status: object) -> None:
    with pytest.raises(InvalidMode, match=r"^status must be an integer HTTP error status, "
                                          r"500\.\.599$"):
        parse_mode({"mode": "error_after_fill", "status": status})


def test_error_keeps_its_wider_status_range() -> None:
    assert parse_mode({"mode": "error", "status": 429}).to_json()["status"] == 429


@pytest.mark.parametrize(("body", "says"), [
    ({"mode": "reply_lost", "status": 500}, "not a parameter of mode reply_lost; "
                                            "valid: probability"),
    ({"mode": "reply_lost", "probability": 2}, "between 0 and 1"),
    ({"mode": "error_after_fill", "latency_ms": 5}, "valid: status, probability"),
    ({"mode": "reply-lost"}, "valid modes: .*reply_lost, error_after_fill"),
])
def test_bad_input_names_what_is_valid(body: object, says: str) -> None:
    with pytest.raises(InvalidMode, match=says):
        parse_mode(body)


def test_the_verdicts_book_first() -> None:
    rng = random.Random(1)
    assert decide(ReplyLostMode(), rng) == Verdict(book_first=True, drop_reply=True)
    assert decide(ErrorAfterFillMode(503), rng) == Verdict(
        error_status=503, error="broker_error", book_first=True)
    assert all(decide(ReplyLostMode(0.0), rng) == Verdict() for _ in range(100))
    lost = sum(decide(ReplyLostMode(0.1), rng).drop_reply for _ in range(2000))
    assert 140 < lost < 260
