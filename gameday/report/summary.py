"""What a game day ends with (pure): a results table for people and JUnit XML for CI."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from typing import Any

from gameday.engine.results import ExperimentResult


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def table(results: Sequence[ExperimentResult]) -> str:
    """A plain-text table: one row per experiment with its verdict and key figures."""
    columns = ("trip_s", "recover_s", "sent", "client_error_rate", "client_p95_ms", "orders")
    header = ("experiment", "verdict", "time_s", *columns)
    rows = [(r.path.stem, r.verdict.kind, f"{r.duration_s:.0f}",
             *(_cell(r.figures.get(c)) for c in columns)) for r in results]
    widths = [max(len(str(row[i])) for row in (header, *rows)) for i in range(len(header))]
    lines = ["  ".join(str(cell).ljust(w) for cell, w in zip(row, widths, strict=True))
             for row in (header, *rows)]
    return "\n".join(line.rstrip() for line in lines)


def junit_xml(results: Sequence[ExperimentResult], suite: str = "gameday") -> str:
    """JUnit XML: one test case per experiment; a failure carries every reason, an
    inconclusive experiment is ``skipped`` with every reason its evidence fell short."""
    failures = sum(r.verdict.kind == "FAIL" for r in results)
    skipped = sum(r.verdict.kind == "INCONCLUSIVE" for r in results)
    total_s = sum(r.duration_s for r in results)
    root = ET.Element("testsuites", name=suite, tests=str(len(results)),
                      failures=str(failures), time=f"{total_s:.3f}")
    node = ET.SubElement(root, "testsuite", name=suite, tests=str(len(results)),
                         failures=str(failures), errors="0", skipped=str(skipped),
                         time=f"{total_s:.3f}")
    for result in results:
        case = ET.SubElement(node, "testcase", classname=f"{suite}.experiments",
                             name=result.path.stem, time=f"{result.duration_s:.3f}")
        if not result.verdict.passed:
            shown = result.verdict.shown
            element = "failure" if result.verdict.kind == "FAIL" else "skipped"
            message = shown[0] if element == "failure" else f"INCONCLUSIVE: {shown[0]}"
            failure = ET.SubElement(case, element, message=message)
            failure.text = "\n".join(shown)
        if result.journal_path:
            ET.SubElement(case, "system-out").text = f"journal: {result.journal_path}"
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"
