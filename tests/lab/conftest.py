"""The lab tier: whole labs, each on a port base of its own."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from support.labs import PortBases, RunningLab, running_lab


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory, port_bases: PortBases) -> Iterator[RunningLab]:
    """The whole lab (broker sim, fault proxy, 3 replicas, HAProxy, Prometheus), once per
    pytest worker that needs it."""
    with running_lab(tmp_path_factory.mktemp("lab"), port_bases.take()) as running:
        yield running
