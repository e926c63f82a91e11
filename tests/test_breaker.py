"""The circuit breaker state machine, driven by a fake clock (no sleeping)."""

from __future__ import annotations

import pytest

from lab.service.breaker import BreakerSettings, BreakerState, CircuitBreaker

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
) -> tuple[CircuitBreaker, FakeClock, list[Transition]]:
    clock = FakeClock()
    seen: list[Transition] = []
    settings = BreakerSettings(
        failure_threshold, reset_timeout_s, success_threshold, half_open_max_calls
    )
    breaker = CircuitBreaker(settings, clock, [lambda f, t, at: seen.append((f, t, at))])
    return breaker, clock, seen


def fail(breaker: CircuitBreaker, times: int) -> None:
    for _ in range(times):
        assert breaker.allow()
        breaker.record_failure()


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
    ],
)
def test_settings_reject_invalid_values(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        BreakerSettings(**kwargs)  # type: ignore[arg-type]


def test_state_values_are_the_metric_spellings() -> None:
    assert [s.value for s in BreakerState] == ["closed", "open", "half_open"]
