"""Fault types by their Toxiproxy `type` name; one module per fault.

To add a fault: write `faults/<name>.py` with a frozen settings dataclass that has
`from_attributes`, `attributes` and `pipe` (see `base.Fault` and the contract in
`lab.faultproxy`), then add it to `FAULTS` below.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from lab.faultproxy.faults.bandwidth import Bandwidth
from lab.faultproxy.faults.base import Fault, FaultError, FaultFactory
from lab.faultproxy.faults.latency import Latency
from lab.faultproxy.faults.limit_data import LimitData
from lab.faultproxy.faults.reset_peer import ResetPeer
from lab.faultproxy.faults.slicer import Slicer
from lab.faultproxy.faults.slow_close import SlowClose
from lab.faultproxy.faults.timeout import Timeout

__all__ = ["FAULTS", "Fault", "FaultError", "FaultFactory"]

FAULTS: Mapping[str, FaultFactory] = MappingProxyType(
    {
        "latency": Latency.from_attributes,
        "bandwidth": Bandwidth.from_attributes,
        "slow_close": SlowClose.from_attributes,
        "timeout": Timeout.from_attributes,
        "reset_peer": ResetPeer.from_attributes,
        "slicer": Slicer.from_attributes,
        "limit_data": LimitData.from_attributes,
    }
)
"""Every fault type this proxy implements, by Toxiproxy type name (read-only)."""
