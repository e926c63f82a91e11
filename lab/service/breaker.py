"""Circuit breaker: a small, pure state machine with an injected clock.

States and transitions (every threshold comes from :class:`BreakerSettings`)::

    closed    --failure_threshold consecutive failures,
                or, with at least min_calls results in the last window_s,
                a failure share >= failure_rate_threshold------------->  open
    open      --reset_timeout_s elapsed, on allow()-------------------->  half_open
    half_open --success_threshold trial successes---------------------->  closed
    half_open --any trial failure-------------------------------------->  open

The open -> half_open change is evaluated lazily, when a caller asks
:meth:`CircuitBreaker.allow`; :attr:`CircuitBreaker.state` never changes on its own.
In half_open at most ``half_open_max_calls`` trial calls are in flight at once;
every result recorded while half_open counts as a trial result. Results recorded
while open (calls that started before the breaker opened) are ignored. Every
transition starts a fresh failure count and an empty window.

What counts as a failure is the caller's choice (the service counts timeouts, connection
errors, 5xx and 429). The breaker does no I/O and never sleeps: time comes from the
``clock`` callable (seconds, monotonic), and every state change is reported to the
listeners as ``listener(from_state, to_state, at)`` with ``at`` read from that clock.

(purgatory, the maintained asyncio breaker, was considered: it has no failure-rate
window, closes after a single trial success, lets every half-open call through and
reads ``time.time()`` directly — so this module stays.)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum

from lab.service.window import OutcomeWindow

__all__ = ["BreakerSettings", "BreakerState", "CircuitBreaker", "Clock", "Listener"]


class BreakerState(StrEnum):
    """The three breaker states; the values are the metric/JSON spellings."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


Clock = Callable[[], float]
Listener = Callable[[BreakerState, BreakerState, float], None]


@dataclass(frozen=True)
class BreakerSettings:
    """Breaker tuning.

    failure_threshold: consecutive failures (closed) that open the breaker, >= 1.
    reset_timeout_s: seconds the breaker stays open before a trial call, > 0.
    success_threshold: trial successes (half_open) that close it, >= 1.
    half_open_max_calls: trial calls allowed in flight at once while half_open, >= 1.
    failure_rate_threshold: failure share (0 < r <= 1) over the window that opens it.
    window_s: length of the sliding window of results, seconds, > 0.
    min_calls: results the window must hold before its failure share counts, >= 1.

    With the defaults, when half the calls fail the breaker opens at the latest about
    ``window_s`` (3 s) into the fault, however few calls the load balancer sends this
    replica (see docs/contract.md, section 3).
    """

    failure_threshold: int = 5
    reset_timeout_s: float = 5.0
    success_threshold: int = 2
    half_open_max_calls: int = 1
    failure_rate_threshold: float = 0.25
    window_s: float = 3.0
    min_calls: int = 20

    def __post_init__(self) -> None:
        checks = (
            ("failure_threshold", self.failure_threshold >= 1, ">= 1"),
            ("reset_timeout_s", self.reset_timeout_s > 0, "> 0"),
            ("success_threshold", self.success_threshold >= 1, ">= 1"),
            ("half_open_max_calls", self.half_open_max_calls >= 1, ">= 1"),
            ("failure_rate_threshold", 0 < self.failure_rate_threshold <= 1, "in (0, 1]"),
            ("window_s", self.window_s > 0 and math.isfinite(self.window_s), "> 0"),
            ("min_calls", self.min_calls >= 1, ">= 1"),
        )
        for name, valid, rule in checks:
            if not valid:
                raise ValueError(f"{name} must be {rule}")


class CircuitBreaker:
    """Decides whether a call may go out, from the results of earlier calls.

    Usage: ``if breaker.allow(): ... breaker.record_success() / record_failure()``;
    every allowed call must record exactly one result.
    """

    def __init__(
        self,
        settings: BreakerSettings,
        clock: Clock,
        listeners: Iterable[Listener] = (),
    ) -> None:
        self._settings = settings
        self._clock = clock
        self._listeners: list[Listener] = list(listeners)
        self._state = BreakerState.CLOSED
        self._window = OutcomeWindow(settings.window_s)
        self._failures = 0
        self._successes = 0
        self._trials_in_flight = 0
        self._opened_at = 0.0

    @property
    def settings(self) -> BreakerSettings:
        """The settings this breaker was built with."""
        return self._settings

    @property
    def state(self) -> BreakerState:
        """The current state (open stays open until :meth:`allow` is asked)."""
        return self._state

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener(from_state, to_state, at)`` on every later transition."""
        self._listeners.append(listener)

    def allow(self) -> bool:
        """Ask permission for one call; True means the caller must record a result."""
        if self._state is BreakerState.OPEN and self.seconds_until_half_open() <= 0:
            self._transition(BreakerState.HALF_OPEN)
        if self._state is BreakerState.CLOSED:
            return True
        half_open = self._state is BreakerState.HALF_OPEN
        if half_open and self._trials_in_flight < self._settings.half_open_max_calls:
            self._trials_in_flight += 1
            return True
        return False

    def record_success(self) -> None:
        """Record that an allowed call succeeded."""
        if self._state is BreakerState.CLOSED:
            self._failures = 0
            self._window.add(self._clock(), failed=False)
        elif self._state is BreakerState.HALF_OPEN:
            self._end_trial()
            self._successes += 1
            if self._successes >= self._settings.success_threshold:
                self._transition(BreakerState.CLOSED)

    def record_failure(self) -> None:
        """Record that an allowed call failed."""
        if self._state is BreakerState.CLOSED:
            self._failures += 1
            self._window.add(self._clock(), failed=True)
            if self._should_trip():
                self._transition(BreakerState.OPEN)
        elif self._state is BreakerState.HALF_OPEN:
            self._end_trial()
            self._transition(BreakerState.OPEN)

    def seconds_until_half_open(self) -> float:
        """Seconds until an open breaker lets a trial call through; 0.0 if not open."""
        if self._state is not BreakerState.OPEN:
            return 0.0
        remaining = self._opened_at + self._settings.reset_timeout_s - self._clock()
        return max(0.0, remaining)

    def _should_trip(self) -> bool:
        settings = self._settings
        if self._failures >= settings.failure_threshold:
            return True
        calls, failures = self._window.counts(self._clock())
        return calls >= settings.min_calls and failures / calls >= settings.failure_rate_threshold

    def _end_trial(self) -> None:
        self._trials_in_flight = max(0, self._trials_in_flight - 1)

    def _transition(self, to_state: BreakerState) -> None:
        from_state, at = self._state, self._clock()
        self._state = to_state
        self._failures = 0
        self._successes = 0
        self._trials_in_flight = 0
        self._window.clear()
        if to_state is BreakerState.OPEN:
            self._opened_at = at
        for listener in self._listeners:
            listener(from_state, to_state, at)
