"""The README's results table (experiment x service) is complete and well-formed; the
services tier (tests/services) checks it against real runs."""

from __future__ import annotations

import pytest
from support.labs import ROOT
from support.own_service import EXAMPLES, SPECS, results_table, to_run


def test_the_table_covers_the_catalog_and_every_service() -> None:
    table = results_table()
    assert sorted(table) == sorted(p.stem for p in (ROOT / "experiments").glob("*.yaml"))
    for row in table.values():
        assert list(row) == ["reference", *EXAMPLES]
    assert all(row["reference"].verdict == "PASS" for row in table.values())
    assert all(path.is_file() for path in SPECS.values())


@pytest.mark.parametrize("service", ["python-fastapi", "node-opossum"])
def test_each_example_shows_a_finding_and_its_fix_removes_it(service: str) -> None:
    table = results_table()
    failing = [name for name, row in table.items() if row[service].verdict == "FAIL"]
    assert failing, f"{service}: the table shows no finding"
    assert all(table[name][f"{service}-fixed"].verdict == "PASS" for name in failing)
    assert to_run(table, f"{service}-fixed") == failing


def test_a_malformed_cell_is_named() -> None:
    text = ("<!-- results:begin -->\n| experiment | reference |\n|---|---|\n"
            "| `pod-kill` | FAILED somehow |\n<!-- results:end -->\n")
    with pytest.raises(AssertionError, match="FAILED somehow"):
        results_table(text)


def test_a_cell_not_run_is_nothing_to_check() -> None:
    text = ("<!-- results:begin -->\n| experiment | reference | x |\n|---|---|---|\n"
            "| `pod-kill` | PASS | not run |\n<!-- results:end -->\n")
    table = results_table(text)
    assert table["pod-kill"]["x"].verdict == "not run"
    assert to_run(table, "x") == []
