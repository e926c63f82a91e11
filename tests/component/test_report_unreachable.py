"""Reports when Prometheus cannot be reached: said plainly, nothing drawn."""

from __future__ import annotations

from pathlib import Path

from support.reports import PASSING, write_report

from gameday.report.write import (
    ReportSettings,
)


def test_unreachable_prometheus_is_said_plainly_and_nothing_is_drawn(tmp_path: Path) -> None:
    out = write_report(tmp_path, PASSING,
                  settings=ReportSettings(prometheus_url="http://127.0.0.1:9"))
    html = (out / "broker-down-20261127T143108.html").read_text()
    assert 'data-problem="prometheus"' in html and "could not be queried" in html
    assert 'data-series="Prometheus' not in html
    assert 'data-chart="breaker"' not in html
    assert html.count('data-series="client (load generator)"') == 3


