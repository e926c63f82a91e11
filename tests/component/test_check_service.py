"""`gameday lab check-service`: the reference service passes every check; a service that
lacks a metric, has no working readiness path or does not pass the client's order id on
fails, each naming the cause."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from support.labs import ROOT

REFERENCE = ROOT / "lab" / "service" / "service.yaml"


def _check(spec: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gameday", "lab", "check-service", str(spec),
                           "--work-dir", str(tmp_path / "work")], cwd=ROOT,
                          capture_output=True, text=True, timeout=180, check=False)


def _variant(tmp_path: Path, **changes: Any) -> Path:
    raw = yaml.safe_load(REFERENCE.read_text())
    raw.update(changes)
    raw["workdir"] = str(ROOT)
    path = tmp_path / "service.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _lines(output: str) -> dict[str, str]:
    """Each check's line by its name (verdict first)."""
    return {line[6:].split("  ")[0].strip(): line for line in output.splitlines()
            if line.startswith(("PASS  ", "FAIL  "))}


def test_the_reference_service_passes_every_check(tmp_path: Path) -> None:
    done = _check(REFERENCE, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = _lines(done.stdout)
    assert len(lines) == 15 and all(v.startswith("PASS") for v in lines.values()), done.stdout
    assert "open " in lines["breaker opens and closes"]
    assert "reference: 15 passed, 0 failed" in done.stdout


@pytest.mark.parametrize(("changes", "check", "evidence"), [
    ({"metrics": {"broker_slippage_pips": "broker_slippage_points"}},
     "metric broker_slippage_points", "missing from /metrics (the contract's "
     "broker_slippage_pips)"),
    ({"paths": {"health": "/health", "ready": "/readyz", "metrics": "/metrics"}},
     "ready", "GET /readyz answered 404"),
    ({"order": {"method": "POST", "path": "/orders",
                "body": {"client_order_id": "svc-{client_order_id}", "instrument":
                         "{instrument}", "units": "{units}", "price": "{price}"},
                "statuses": {"filled": [200], "rejected": [422], "failed": [502, 504],
                             "circuit_open": [503]}}},
     "the order reaches this broker with its client order id", "holds 0 fill(s)"),
])
def test_a_broken_service_fails_naming_the_cause(tmp_path: Path, changes: dict[str, Any],
                                                  check: str, evidence: str) -> None:
    done = _check(_variant(tmp_path, **changes), tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    line = _lines(done.stdout)[check]
    assert line.startswith("FAIL") and evidence in line, done.stdout


def test_a_bad_spec_exits_2_naming_each_problem(tmp_path: Path) -> None:
    done = _check(_variant(tmp_path, replicas=0, name="Bad Name"), tmp_path)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "replicas=0: valid is a whole number 1..9" in done.stderr
    assert "name='Bad Name'" in done.stderr
    assert "Traceback" not in done.stderr
