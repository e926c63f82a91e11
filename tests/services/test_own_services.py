"""Your own service in the lab, proven on two independent implementations.

Each example service of ``examples/services`` passes ``gameday lab check-service``, and the
README's results table (experiment x service) is what the catalog really finds: every
FAIL in it is run and must fail naming its probe, and the same experiment must pass
against the fixed variant of that service.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from support.labs import ROOT, PortBases
from support.own_service import (
    EXAMPLES,
    SPECS,
    check_cell,
    results_table,
    service_lab,
    to_run,
    verdict_of,
)


@pytest.mark.parametrize("service", ["python-fastapi", "node-opossum"])
def test_the_example_passes_check_service(service: str, tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "gameday", "lab", "check-service", str(SPECS[service]),
         "--work-dir", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=900, check=False)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert f"{service}: 15 passed, 0 failed" in done.stdout


@pytest.mark.parametrize("service", EXAMPLES)
def test_the_readme_results_hold(service: str, tmp_path: Path, port_bases: PortBases) -> None:
    table = results_table()
    experiments = to_run(table, service)
    assert experiments
    mismatches = []
    with service_lab(tmp_path, port_bases.take(), service) as lab:
        for name in experiments:
            verdict = verdict_of(lab, name, tmp_path / "reports")
            try:
                check_cell(verdict, table[name][service], f"{name} x {service}")
            except AssertionError as exc:
                mismatches.append(str(exc))
    assert not mismatches, "\n\n".join(mismatches)
