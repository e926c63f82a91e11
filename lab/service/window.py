"""A time-based sliding window of call outcomes (pure; time is passed in)."""

from __future__ import annotations

from collections import deque

__all__ = ["OutcomeWindow"]


class OutcomeWindow:
    """Outcomes of the last ``window_s`` seconds: an outcome added at ``t`` counts
    while ``now - t < window_s``. Adding and counting are amortised O(1)."""

    def __init__(self, window_s: float) -> None:
        if not window_s > 0:
            raise ValueError("window_s must be > 0")
        self._window_s = window_s
        self._outcomes: deque[tuple[float, bool]] = deque()
        self._failures = 0

    def add(self, at: float, *, failed: bool) -> None:
        """Record one outcome at time ``at`` (times must not go backwards)."""
        self._expire(at)
        self._outcomes.append((at, failed))
        self._failures += failed

    def counts(self, now: float) -> tuple[int, int]:
        """``(calls, failures)`` within the window ending at ``now``."""
        self._expire(now)
        return len(self._outcomes), self._failures

    def clear(self) -> None:
        """Forget every outcome."""
        self._outcomes.clear()
        self._failures = 0

    def _expire(self, now: float) -> None:
        horizon = now - self._window_s
        while self._outcomes and self._outcomes[0][0] <= horizon:
            _, failed = self._outcomes.popleft()
            self._failures -= failed
