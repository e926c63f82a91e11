"""The circuit breaker state machine, driven by a fake clock (no sleeping)."""

from __future__ import annotations

import pytest

from lab.service.breaker import BreakerSettings, BreakerState, CircuitBreaker
from lab.service.window import OutcomeWindow

CLOSED, OPEN, HALF_OPEN = BreakerState.CLOSED, BreakerState.OPEN, BreakerState.HALF_OPEN
Transition = tuple[BreakerState, BreakerState, float]


class FakeClock:
    """A clock that only moves when told to."""

    def __init__(self, now_s: float = 1000.0) -> None:
        self.now_s = now_s

    def __call__(self) -> float:
        return self.now_s

    def advance(self, seconds: float) -> None:
        self.now_s += seconds


def make(
    failure_threshold: int = 3,
    reset_timeout_s: float = 10.0,
    success_threshold: int = 2,
    half_open_max_calls: int = 1,
    **window: float,
) -> tuple[CircuitBreaker, FakeClock, list[Transition]]:
    clock = FakeClock()
    seen: list[Transition] = []
    settings = BreakerSettings(
        failure_threshold, reset_timeout_s, success_threshold, half_open_max_calls,
        **window,  # type: ignore[arg-type]
    )
    breaker = CircuitBreaker(settings, clock, [lambda f, t, at: seen.append((f, t, at))])
    return breaker, clock, seen


def fail(breaker: CircuitBreaker, times: int) -> None:
    for _ in range(times):
        assert breaker.allow()
        breaker.record_failure()


def succeed(breaker: CircuitBreaker, times: int) -> None:
    for _ in range(times):
        assert breaker.allow()
        breaker.record_success()


def trip(breaker: CircuitBreaker) -> None:
    fail(breaker, breaker.settings.failure_threshold)
    assert breaker.state is OPEN


def to_half_open(breaker: CircuitBreaker, clock: FakeClock) -> None:
    trip(breaker)
    clock.advance(breaker.settings.reset_timeout_s)


def test_starts_closed_and_allows_calls() -> None:
    breaker, _, seen = make()
    assert breaker.state is CLOSED
    assert all(breaker.allow() for _ in range(100))
    assert breaker.seconds_until_half_open() == 0.0
    assert seen == []


def test_opens_after_exactly_failure_threshold_consecutive_failures() -> None:
    breaker, clock, seen = make(failure_threshold=3)
    fail(breaker, 2)
    assert breaker.state is CLOSED
    fail(breaker, 1)
    assert breaker.state is OPEN
    assert seen == [(CLOSED, OPEN, clock.now_s)]


def test_threshold_of_one_opens_on_first_failure() -> None:
    breaker, _, _ = make(failure_threshold=1)
    fail(breaker, 1)
    assert breaker.state is OPEN


def test_a_success_resets_the_consecutive_failure_count() -> None:
    breaker, _, _ = make(failure_threshold=3)
    fail(breaker, 2)
    assert breaker.allow()
    breaker.record_success()
    fail(breaker, 2)
    assert breaker.state is CLOSED
    fail(breaker, 1)
    assert breaker.state is OPEN


def test_open_denies_calls_and_counts_down() -> None:
    breaker, clock, _ = make(reset_timeout_s=10.0)
    trip(breaker)
    assert not breaker.allow()
    assert breaker.seconds_until_half_open() == 10.0
    clock.advance(4.0)
    assert not breaker.allow()
    assert breaker.seconds_until_half_open() == pytest.approx(6.0)


def test_open_to_half_open_is_lazy_and_happens_at_exactly_reset_timeout() -> None:
    breaker, clock, seen = make(reset_timeout_s=10.0)
    trip(breaker)
    clock.advance(9.999)
    assert not breaker.allow()
    clock.advance(0.001)
    assert breaker.seconds_until_half_open() == 0.0
    assert breaker.state is OPEN, "state must not change until a call asks"
    clock.advance(5.0)
    assert breaker.allow()
    assert breaker.state is HALF_OPEN
    assert seen[-1] == (OPEN, HALF_OPEN, clock.now_s)


def test_half_open_lets_one_trial_at_a_time() -> None:
    breaker, clock, _ = make(success_threshold=3)
    to_half_open(breaker, clock)
    assert breaker.allow()
    assert not breaker.allow()
    breaker.record_success()
    assert breaker.state is HALF_OPEN
    assert breaker.allow()
    assert not breaker.allow()


def test_half_open_max_calls_limits_concurrent_trials() -> None:
    breaker, clock, _ = make(success_threshold=5, half_open_max_calls=2)
    to_half_open(breaker, clock)
    assert breaker.allow()
    assert breaker.allow()
    assert not breaker.allow()
    breaker.record_success()
    assert breaker.allow()


def test_success_threshold_trial_successes_close_it() -> None:
    breaker, clock, seen = make(success_threshold=2)
    to_half_open(breaker, clock)
    for _ in range(2):
        assert breaker.allow()
        breaker.record_success()
    assert breaker.state is CLOSED
    assert [(f, t) for f, t, _ in seen] == [
        (CLOSED, OPEN),
        (OPEN, HALF_OPEN),
        (HALF_OPEN, CLOSED),
    ]


def test_any_trial_failure_reopens_for_a_full_reset_timeout() -> None:
    breaker, clock, seen = make(success_threshold=3, reset_timeout_s=10.0)
    to_half_open(breaker, clock)
    assert breaker.allow()
    breaker.record_success()
    clock.advance(1.0)
    assert breaker.allow()
    breaker.record_failure()
    assert breaker.state is OPEN
    assert seen[-1] == (HALF_OPEN, OPEN, clock.now_s)
    assert breaker.seconds_until_half_open() == 10.0
    assert not breaker.allow()


def test_closing_starts_a_fresh_failure_count() -> None:
    breaker, clock, _ = make(failure_threshold=3, success_threshold=1)
    to_half_open(breaker, clock)
    assert breaker.allow()
    breaker.record_success()
    assert breaker.state is CLOSED
    fail(breaker, 2)
    assert breaker.state is CLOSED


def test_results_recorded_while_open_are_ignored() -> None:
    breaker, _, seen = make()
    trip(breaker)
    breaker.record_success()
    breaker.record_failure()
    assert breaker.state is OPEN
    assert len(seen) == 1


def test_reopening_after_half_open_needs_no_new_failure_streak() -> None:
    breaker, clock, _ = make(failure_threshold=5)
    to_half_open(breaker, clock)
    assert breaker.allow()
    breaker.record_failure()
    assert breaker.state is OPEN


def test_full_cycle_reports_every_transition_with_clock_time() -> None:
    breaker, clock, seen = make(failure_threshold=1, reset_timeout_s=2.0, success_threshold=1)
    start = clock.now_s
    fail(breaker, 1)
    clock.advance(2.0)
    assert breaker.allow()
    breaker.record_success()
    assert seen == [
        (CLOSED, OPEN, start),
        (OPEN, HALF_OPEN, start + 2.0),
        (HALF_OPEN, CLOSED, start + 2.0),
    ]


def test_add_listener_receives_later_transitions() -> None:
    breaker, _, _ = make(failure_threshold=1)
    late: list[Transition] = []
    breaker.add_listener(lambda f, t, at: late.append((f, t, at)))
    fail(breaker, 1)
    assert [(f, t) for f, t, _ in late] == [(CLOSED, OPEN)]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"failure_threshold": 0}, "failure_threshold"),
        ({"reset_timeout_s": 0.0}, "reset_timeout_s"),
        ({"reset_timeout_s": float("nan")}, "reset_timeout_s"),
        ({"success_threshold": 0}, "success_threshold"),
        ({"half_open_max_calls": 0}, "half_open_max_calls"),
        ({"failure_rate_threshold": 0.0}, "failure_rate_threshold"),
        ({"failure_rate_threshold": 1.01}, "failure_rate_threshold"),
        ({"window_s": 0.0}, "window_s"),
        ({"window_s": float("inf")}, "window_s"),
        ({"min_calls": 0}, "min_calls"),
    ],
)
def test_settings_reject_invalid_values(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        BreakerSettings(**kwargs)  # type: ignore[arg-type]


def test_state_values_are_the_metric_spellings() -> None:
    assert [s.value for s in BreakerState] == ["closed", "open", "half_open"]


# --- failure rate over a sliding window ----------------------------------------------


def rate_breaker(**window: float) -> tuple[CircuitBreaker, FakeClock, list[Transition]]:
    """A breaker that opens on its failure rate only (consecutive count out of reach)."""
    settings = {"failure_rate_threshold": 0.5, "window_s": 10.0, "min_calls": 10, **window}
    return make(failure_threshold=1000, **settings)


def test_window_counts_outcomes_younger_than_its_length() -> None:
    window = OutcomeWindow(10.0)
    window.add(0.0, failed=True)
    window.add(5.0, failed=False)
    window.add(9.0, failed=True)
    assert window.counts(9.99) == (3, 2)
    assert window.counts(10.0) == (2, 1), "an outcome exactly window_s old has left"
    assert window.counts(15.0) == (1, 1)
    assert window.counts(19.0) == (0, 0)
    window.add(20.0, failed=True)
    window.clear()
    assert window.counts(20.0) == (0, 0)
    with pytest.raises(ValueError, match="window_s"):
        OutcomeWindow(0.0)


def test_opens_when_the_failure_share_reaches_the_threshold() -> None:
    breaker, clock, seen = rate_breaker()
    for _ in range(4):
        succeed(breaker, 1)
        fail(breaker, 1)
    succeed(breaker, 1)
    assert breaker.state is CLOSED, "9 results: under min_calls"
    fail(breaker, 1)
    assert breaker.state is OPEN, "5 failures of 10 = 0.5"
    assert seen == [(CLOSED, OPEN, clock.now_s)]


def test_a_share_under_the_threshold_keeps_it_closed() -> None:
    breaker, _, _ = rate_breaker(failure_rate_threshold=0.3)
    for _ in range(20):
        succeed(breaker, 3)
        fail(breaker, 1)
    assert breaker.state is CLOSED, "0.25 < 0.3"
    fail(breaker, 2)
    assert breaker.state is CLOSED, "22 of 82"
    fail(breaker, 4)
    assert breaker.state is OPEN, "26 of 86 = 0.302"


def test_exact_decimal_thresholds_trip() -> None:
    breaker, _, _ = rate_breaker(failure_rate_threshold=0.3, min_calls=10)
    succeed(breaker, 7)
    fail(breaker, 3)
    assert breaker.state is OPEN


def test_min_calls_guards_against_small_samples() -> None:
    breaker, _, _ = rate_breaker(min_calls=10)
    fail(breaker, 9)
    assert breaker.state is CLOSED
    fail(breaker, 1)
    assert breaker.state is OPEN


def test_only_results_inside_the_window_count() -> None:
    breaker, clock, _ = rate_breaker(window_s=10.0, min_calls=10)
    fail(breaker, 9)
    clock.advance(10.0)
    succeed(breaker, 5)
    fail(breaker, 4)
    assert breaker.state is CLOSED, "the first 9 failures slid out: 9 results in the window"
    fail(breaker, 1)
    assert breaker.state is OPEN, "5 of 10"


def test_successes_never_trip_the_rate() -> None:
    breaker, _, _ = rate_breaker(min_calls=4)
    fail(breaker, 3)
    assert breaker.state is CLOSED, "3 results < min_calls"
    succeed(breaker, 1)
    assert breaker.state is CLOSED, "a success is not a reason to open"


def test_each_transition_empties_the_window() -> None:
    breaker, clock, _ = rate_breaker(min_calls=4, reset_timeout_s=1.0)
    fail(breaker, 4)
    clock.advance(1.0)
    succeed(breaker, 2)
    assert breaker.state is CLOSED
    succeed(breaker, 2)
    fail(breaker, 1)
    assert breaker.state is CLOSED, "1 failure of 3 since closing (the 4 before are gone)"
    fail(breaker, 1)
    assert breaker.state is OPEN, "2 of 4"


def test_consecutive_and_rate_rules_both_apply() -> None:
    breaker, _, _ = make(failure_threshold=3, failure_rate_threshold=0.9, min_calls=100)
    fail(breaker, 3)
    assert breaker.state is OPEN
