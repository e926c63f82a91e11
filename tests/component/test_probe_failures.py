"""`chaos discover` metadata: every exported probe and action is documented and typed."""

from __future__ import annotations

from pathlib import Path

import pytest
from chaoslib.exceptions import ActivityFailed

from gameday.contract import MeasurementError


def test_a_probe_that_cannot_measure_raises_activity_failed_and_measurement_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from probes import replicas  # noqa: PLC0415

    monkeypatch.setenv("GAMEDAY_LAB_DIR", str(tmp_path / "nothing-here"))
    with pytest.raises(ActivityFailed) as caught:
        replicas.ready_count()
    assert isinstance(caught.value, MeasurementError)
    assert "no lab is running" in str(caught.value)
