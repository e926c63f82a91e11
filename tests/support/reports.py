"""Recorded journals (tests/data/journals) and writing their reports."""

from __future__ import annotations

import shutil
from pathlib import Path

from gameday.report.write import ReportSettings, results_from_journals, write_reports

DATA = Path(__file__).resolve().parents[1] / "data" / "journals"
PASSING = DATA / "broker-down-20261127T143108.journal.json"
FAILING = DATA / "broker-down-20261127T153108.journal.json"
POD_KILL = DATA / "pod-kill-majority-20261127T143433.journal.json"
NO_PROMETHEUS = ReportSettings(prometheus_url="")


def write_report(tmp_path: Path, *journals: Path,
                 settings: ReportSettings = NO_PROMETHEUS) -> Path:
    """Copy ``journals`` into ``tmp_path``, write their reports to ``tmp_path/out``."""
    for journal in journals:
        shutil.copy(journal, tmp_path / journal.name)
    results = results_from_journals([tmp_path / j.name for j in journals])
    write_reports(results, tmp_path / "out", settings)
    return tmp_path / "out"
