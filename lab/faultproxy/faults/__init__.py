"""Fault types by their Toxiproxy `type` name; one module per fault.

To add a fault: write `faults/<name>.py` with a frozen settings dataclass that has
`from_attributes`, `attributes` and `pipe` (see `base.Fault` and the contract in
`lab.faultproxy`), then add it to `FAULTS` below.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from lab.faultproxy.faults.base import Fault, FaultError, FaultFactory
from lab.faultproxy.faults.latency import Latency

__all__ = ["FAULTS", "Fault", "FaultError", "FaultFactory"]

FAULTS: Mapping[str, FaultFactory] = MappingProxyType(
    {
        "latency": Latency.from_attributes,
    }
)
"""Every fault type this proxy implements, by Toxiproxy type name (read-only)."""
