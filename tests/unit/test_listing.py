"""`gameday list`: the catalog with the failure each experiment stands for and what must
hold, from the files themselves; the README's table says the same."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.labs import ROOT

from gameday.cli.main import main
from gameday.engine.listing import NONE, entries, entry, table


@pytest.fixture(autouse=True)
def _in_the_repository(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)


def _readme_rows() -> list[tuple[str, str, str]]:
    section = (ROOT / "README.md").read_text(encoding="utf-8").split("## Experiments", 1)[1]
    lines = [line for line in section.split("SLA bounds", 1)[0].splitlines()
             if line.startswith("| `")]
    cells = [[cell.strip() for cell in line.strip().strip("|").split("|")] for line in lines]
    return [(row[0].strip("`"), row[1], row[2]) for row in cells]


def test_every_experiment_says_what_it_stands_for_and_what_must_hold() -> None:
    experiments = [e for e in entries() if e.kind == "experiment"]
    assert len(experiments) == len(list((ROOT / "experiments").glob("*.yaml")))
    assert all(NONE not in (e.stands_for, e.must_hold) for e in experiments)
    assert [(e.name, e.stands_for, e.must_hold) for e in experiments] == _readme_rows()


def test_incident_replays_are_listed_in_their_own_words() -> None:
    incidents = [e for e in entries() if e.kind == "incident"]
    assert [e.name for e in incidents] == ["INC-2041-broker-api-outage"]
    assert "replayed: broker-blackhole for 25 s" in incidents[0].stands_for
    assert incidents[0].must_hold == ("breaker open ≤ 5 s; recovered ≤ 20 s after the fault; "
                                      "p95 ≤ 1.0 s")


def test_an_experiment_without_the_fields_shows_its_title_and_a_dash(tmp_path: Path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text("title: Mine\ndescription: d\nmethod: [{type: probe, name: p, provider: "
                    "{type: python, module: m, func: f}}]\n", encoding="utf-8")
    mine = entry(path)
    assert (mine.name, mine.title, mine.stands_for, mine.must_hold) == ("mine", "Mine", NONE,
                                                                         NONE)
    text = table([mine, *entries()[:1]])
    lines = text.splitlines()
    assert lines[0].startswith("name ") and len({line.index("experiment") for line in
                                                 lines[1:]}) == 1


def test_list_prints_json_and_filters_by_tag(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list", "--tag", "pods", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [e["name"] for e in listed] == ["pod-kill", "pod-kill-majority", "replica-oom"]
    assert listed[0]["tags"] == ["pods", "availability", "quick"]


def test_an_unknown_tag_exits_2_naming_the_known_ones(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list", "--tag", "nope"]) == 2
    assert "no entry has tag nope: known tags are INC-2041, availability" in \
        capsys.readouterr().err
