"""Fixtures every tier shares, and the tiers themselves.

The tests are in three tiers, one folder each, marked automatically:

- ``unit/``: no process, no socket (enforced by ``unit/conftest.py``); seconds.
- ``component/``: one real process (or a few) on 127.0.0.1, ports picked by the kernel.
- ``lab/``: whole labs, each on a port base of its own (``port_bases``).
- ``services/``: labs running the example services of ``examples/services`` through the
  catalog, checking the README's results table; one lab at a time (their verdicts are
  measurements: a second lab beside them would starve them of CPU).

``make check`` runs unit and component; ``make test`` runs all four, the labs side by
side (pytest-xdist with ``--dist loadgroup``: a lab module's tests stay on one worker,
unless they name an ``xdist_group`` of their own or the module, whose every test starts
labs of its own, says ``LAB_PER_TEST = True``), then the services alone. Every test
has a timeout (pytest-timeout): 120 s for unit and component tests, 900 s for lab tests,
1800 s for services tests.
"""

from __future__ import annotations

import importlib
import os
import random
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from support.labs import PortBases

# tier -> timeout of each test, s
TIERS = {"unit": 120, "component": 120, "lab": 900, "services": 1800}


def pytest_configure(config: pytest.Config) -> None:
    """Settings every process of the session shares (pytest-xdist workers inherit them
    from the controller, which configures first):

    - ``XDG_STATE_HOME``: the user's note of their default lab (see gameday.settings)
      stays out of the tests, and the tests' labs out of it;
    - ``GAMEDAY_INTERRUPT_SEED``: one random draw of interruptions for every worker
      (set it to repeat a run).
    """
    if "PYTEST_XDIST_WORKER" in os.environ:
        return
    os.environ["XDG_STATE_HOME"] = tempfile.mkdtemp(prefix="gameday-tests-state-")
    os.environ.setdefault("GAMEDAY_INTERRUPT_SEED", str(random.SystemRandom().randrange(10**6)))


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the groups (--dist loadgroup)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark each test with its tier (its folder) and give it that tier's timeout."""
    for item in items:
        tier = Path(str(item.path)).parent.name
        if tier not in TIERS:
            raise pytest.UsageError(f"{item.nodeid}: tests live in tests/unit, "
                                    "tests/component, tests/lab or tests/services")
        item.add_marker(getattr(pytest.mark, tier))
        if tier == "lab" and item.get_closest_marker("xdist_group") is None:
            # A module's lab tests share its labs: keep them on one pytest-xdist worker,
            # unless each starts labs of its own (the module says LAB_PER_TEST = True).
            group = Path(str(item.path)).stem
            if getattr(getattr(item, "module", None), "LAB_PER_TEST", False):
                group = f"{group}.{getattr(item, 'originalname', item.name)}"
            item.add_marker(pytest.mark.xdist_group(group))
        if item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(TIERS[tier]))


def pytest_runtest_setup(item: pytest.Item) -> None:
    """With ``--dist loadgroup``, a test in a group must carry it in its node id
    (``...@group``): otherwise the scheduler spreads a lab module over workers, each
    starting the module's labs again and running its tests out of their order."""
    grouped = getattr(item.config.option, "loadgroup", False)
    if grouped and item.get_closest_marker("xdist_group") and "@" not in item.nodeid:
        pytest.fail("pytest-xdist did not keep this test's xdist_group: this pytest and "
                    "pytest-xdist do not work together for --dist loadgroup; use the "
                    "versions pinned in pyproject.toml", pytrace=False)


@pytest.fixture(scope="session")
def port_bases(worker_id: str) -> PortBases:
    """Port bases for the labs this pytest worker starts."""
    return PortBases.for_worker(worker_id)


@pytest.fixture(scope="module")
def soak() -> Iterator[SimpleNamespace]:
    """The bench.soak* modules (bench/ is not installed: imported from the repository,
    and forgotten again afterwards)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(Path(__file__).resolve().parents[1]))
        yield SimpleNamespace(**{name: importlib.import_module(f"bench.soak_{name}")
                                 for name in ("plan", "memory", "faults")},
                              main=importlib.import_module("bench.soak"))
        for name in [n for n in sys.modules if n == "bench" or n.startswith("bench.")]:
            del sys.modules[name]
