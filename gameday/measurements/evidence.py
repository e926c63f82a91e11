"""Fault evidence: how many times a fault acted, from a counter's samples (pure).

A fault that affected nothing proves nothing: an experiment that injects one should show
that it landed. The evidence is a counter the faulty part exports (the broker
simulator's ``broker_sim_mode_hits_total{mode}``); :func:`counter_increase` is its
exact increase over a window of samples, with no extrapolation, across restarts.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

__all__ = ["MAX_POINTS", "counter_increase", "sample_step_s"]

MAX_POINTS = 1000
APPEARED_AFTER_S = 0.001


def counter_increase(points: Sequence[tuple[float, float]], start_unix: float) -> int:
    """How much a counter rose from ``start_unix`` over ``points`` ((unix time, value),
    oldest first, sampled from ``start_unix`` on).

    A drop is a reset (the process restarted, its counter from 0): the value after it
    counts in full. A counter first seen after ``start_unix`` appeared in the window and
    counts from 0 (the broker simulator exports its series at 0 from the start).
    """
    values = [value for _, value in points]
    if points and points[0][0] > start_unix + APPEARED_AFTER_S:
        values.insert(0, 0.0)
    total = 0.0
    for before, after in itertools.pairwise(values):
        total += after - before if after >= before else after
    return round(total)


def sample_step_s(window_s: float, max_points: int = MAX_POINTS) -> float:
    """The step that samples a window of ``window_s`` seconds at both ends, every second
    or less often, in at most ``max_points`` + 1 points."""
    steps = min(max(1, math.ceil(window_s)), max_points)
    return window_s / steps
