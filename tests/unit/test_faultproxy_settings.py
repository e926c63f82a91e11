"""Fault settings: Toxiproxy's attributes, their defaults, and what is refused."""

from __future__ import annotations

import random
from typing import Any

import pytest

from lab.faultproxy.faults import FAULTS, FaultError
from lab.faultproxy.faults.slicer import Slicer


@pytest.mark.parametrize(
    ("kind", "attributes", "mentions"),
    [
        ("latency", {"latency": 1.5}, "latency"),
        ("bandwidth", {"rate": True}, "rate"),
        ("slow_close", {"delay": "1"}, "delay"),
        ("timeout", {"timeout": 2**63}, "timeout"),
        ("limit_data", {"bytes": -(2**63) - 1}, "bytes"),
        ("slicer", {"average_size": [1]}, "average_size"),
    ],
)
def test_attributes_that_are_not_int64_are_refused(
    kind: str, attributes: dict[str, Any], mentions: str
) -> None:
    with pytest.raises(FaultError, match=mentions):
        FAULTS[kind](attributes)


@pytest.mark.parametrize(
    ("kind", "attributes", "shown"),
    [
        ("latency", {"latency": -1, "latncy": 100}, {"latency": -1, "jitter": 0}),
        ("bandwidth", {"rate": -1}, {"rate": -1}),
        ("reset_peer", {"timeout": None}, {"timeout": 0}),
        ("slicer", {}, {"average_size": 0, "size_variation": 0, "delay": 0}),
        ("slicer", {"average_size": 10, "size_variation": 10, "delay": -5},
         {"average_size": 10, "size_variation": 10, "delay": -5}),
        ("limit_data", {"bytes": -1}, {"bytes": -1}),
    ],
)
def test_odd_attributes_are_taken_as_toxiproxy_takes_them(
    kind: str, attributes: dict[str, Any], shown: dict[str, int]
) -> None:
    """Toxiproxy ignores unknown names, takes null as absent, and any int64."""
    assert FAULTS[kind](attributes).attributes() == shown


@pytest.mark.parametrize(
    ("average", "variation"), [(0, 0), (-5, 0), (1, 10), (10, 10), (10, 400), (5, -3)]
)
def test_slicer_pieces_stay_whole_where_toxiproxy_would_crash(
    average: int, variation: int
) -> None:
    rng = random.Random(average * 1000 + variation)
    for total in [1, 2, 3, 17, 800, 4097]:
        sizes = Slicer(average, variation, 0).sizes(total, rng)
        assert sum(sizes) == total and min(sizes) >= 1, sizes


def test_absent_attributes_are_zero_like_toxiproxy() -> None:
    expected = {
        "latency": {"latency": 0, "jitter": 0},
        "bandwidth": {"rate": 0},
        "slow_close": {"delay": 0},
        "timeout": {"timeout": 0},
        "reset_peer": {"timeout": 0},
        "limit_data": {"bytes": 0},
    }
    for kind, attributes in expected.items():
        assert FAULTS[kind]({}).attributes() == attributes
    assert FAULTS["slicer"]({"average_size": 5}).attributes() == {
        "average_size": 5,
        "size_variation": 0,
        "delay": 0,
    }


@pytest.mark.parametrize("average", [1, 2, 7, 100, 1000])
@pytest.mark.parametrize("variation_share", [0.0, 0.5, 0.99])
def test_slicer_sizes_add_up_and_stay_in_bounds(average: int, variation_share: float) -> None:
    variation = int(average * variation_share)
    slicer = Slicer(average, variation, 0)
    rng = random.Random(average)
    for total in [1, 2, 3, average, average + variation + 1, 4097, 65536]:
        sizes = slicer.sizes(total, rng)
        assert sum(sizes) == total
        assert all(1 <= size <= average + variation for size in sizes)


def test_slicer_halves_evenly_without_variation() -> None:
    assert Slicer(100, 0, 0).sizes(800, random.Random(1)) == [100] * 8
    assert Slicer(100, 0, 0).sizes(100, random.Random(1)) == [100]
