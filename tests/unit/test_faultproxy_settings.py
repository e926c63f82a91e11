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
        ("latency", {"latency": -1}, "latency"),
        ("latency", {"latency": 1.5}, "latency"),
        ("latency", {"latncy": 100}, "latncy"),
        ("bandwidth", {"rate": -1}, "rate"),
        ("bandwidth", {"rate": True}, "rate"),
        ("slow_close", {"delay": "1"}, "delay"),
        ("timeout", {"timeout": 2**63}, "timeout"),
        ("reset_peer", {"timeout": None}, "timeout"),
        ("slicer", {}, "average_size"),
        ("slicer", {"average_size": 0}, "average_size"),
        ("slicer", {"average_size": 10, "size_variation": 10}, "size_variation"),
        ("slicer", {"average_size": 10, "delay": -5}, "delay"),
        ("limit_data", {"bytes": -1}, "bytes"),
    ],
)
def test_invalid_attributes_are_refused(
    kind: str, attributes: dict[str, Any], mentions: str
) -> None:
    with pytest.raises(FaultError, match=mentions):
        FAULTS[kind](attributes)


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
