"""Fault evidence (pure): a counter's exact increase, and the mode_hits probe's arguments
checked before a run."""

from __future__ import annotations

import pytest

from gameday.engine.argcheck import ArgContext, check_activity
from gameday.measurements.evidence import counter_increase, sample_step_s


@pytest.mark.parametrize(("points", "expected"), [
    ([], 0),
    ([(100.0, 7.0)], 0),
    ([(100.0, 7.0), (101.0, 9.0), (102.0, 12.0)], 5),
    ([(100.0, 7.0), (101.0, 9.0), (102.0, 1.0), (103.0, 4.0)], 2 + 1 + 3),  # a restart
    ([(103.0, 0.0), (104.0, 2.0)], 2),  # appeared at 0 after the start
    ([(103.0, 2.0), (104.0, 5.0)], 5),  # appeared after the start, already counting
    ([(100.0, 0.0), (101.0, 0.0)], 0),
])
def test_counter_increase_is_exact_and_survives_a_restart(
        points: list[tuple[float, float]], expected: int) -> None:
    assert counter_increase(points, 100.0) == expected


def test_the_sampling_step_covers_the_window_at_both_ends() -> None:
    assert sample_step_s(30.0) == 1.0
    assert sample_step_s(0.4) == 0.4
    assert sample_step_s(3600.0) == 3.6
    assert sample_step_s(25.5) == pytest.approx(25.5 / 26)


def _mode_hits(**arguments: object) -> dict[str, object]:
    return {"type": "python", "module": "probes.broker", "func": "mode_hits",
            "arguments": arguments}


@pytest.mark.parametrize(("arguments", "expected"), [
    ({"mode": "reply_lost"}, []),
    ({"mode": "error_after_fill", "since": 1700000000}, []),
    ({"mode": "reply-lost"}, ["probes.broker.mode_hits: unknown broker simulator mode "
                              "'reply-lost' (did you mean reply_lost?): valid are error, "
                              "rate_limit, slow, hang, flap, maintenance, duplicate, "
                              "reply_lost, error_after_fill"]),
    ({}, ["probes.broker.mode_hits: argument 'mode' is required"]),
])
def test_mode_hits_arguments_are_checked_before_the_run(
        arguments: dict[str, object], expected: list[str]) -> None:
    problems = check_activity(_mode_hits(**arguments), ArgContext({}, frozenset()))
    assert problems == expected
