"""Regression beyond noise, on real runs: two runs of the same service are not flagged
against each other, and a service whose breaker reset time was doubled is (time to
recover), naming the figure and by how much."""

from __future__ import annotations

from pathlib import Path

import yaml
from support.labs import ROOT, PortBases, RunningLab, lab_env

# a 3 s blip, shorter than the breaker's reset time: the time to recover is that reset
# time less the blip in every run (about 2 s here, 7 s with the reset doubled to 10 s)
EXPERIMENT = "experiments/broker-blip.yaml"


def _run(lab: RunningLab, reports: Path, codes: tuple[int, ...] = (0,)) -> str:
    result = lab.gameday("run", EXPERIMENT, "--reports", str(reports), timeout_s=300)
    assert result.returncode in codes, result.stdout[-3000:] + result.stderr[-3000:]
    return (reports / "index.html").read_text()


def test_a_doubled_breaker_reset_is_flagged_and_a_rerun_is_not(
    lab: RunningLab, tmp_path: Path, port_bases: PortBases
) -> None:
    reports = tmp_path / "reports"
    _run(lab, reports)
    again = _run(lab, reports)
    assert "with a regression" not in again, again[again.find("regression") - 300:][:600]
    spec = yaml.safe_load((ROOT / "lab" / "service" / "service.yaml").read_text())
    spec.update(name="reference-slow-reset", workdir=str(ROOT),
                command=[*spec["command"], "--reset-timeout-s", "10"])
    (tmp_path / "service.yaml").write_text(yaml.safe_dump(spec))
    slow = RunningLab(lab_env(tmp_path / "state", port_bases.take(), tmp_path / "run"),
                      tmp_path / "state")
    up = slow.gameday("lab", "up", "--service", str(tmp_path / "service.yaml"), timeout_s=120)
    assert up.returncode == 0, up.stdout + up.stderr
    try:
        # 7 s may pass or fail the blip's 8 s bound: the regression is flagged either way
        flagged = _run(slow, reports, codes=(0, 1))
    finally:
        slow.gameday("lab", "down", timeout_s=60)
    assert "1 with a regression" in flagged, flagged[:3000]
    assert "time to recover" in flagged and "in the last passing run" in flagged, flagged
