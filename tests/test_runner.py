"""Runner logic that needs no lab: --var parsing, selection by tag, catalog order,
shared traffic and controls that would be skipped silently."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import ROOT

from gameday.errors import ConfigError
from gameday.runner import catalog, missing_controls, parse_var, select, shared_rate

CATALOG = ROOT / "experiments"


@pytest.mark.parametrize(("text", "expected"), [
    ("outage_s=20", ("outage_s", 20)),
    ("sla_p95_latency_max_s=0.5", ("sla_p95_latency_max_s", 0.5)),
    ("link=service-broker", ("link", "service-broker")), (" k =1", ("k", 1)),
])
def test_parse_var(text: str, expected: tuple[str, object]) -> None:
    assert parse_var(text) == expected


@pytest.mark.parametrize("text", ["novalue", "=3", "bad key=1", "a-b=1"])
def test_bad_vars_say_what_is_expected(text: str) -> None:
    with pytest.raises(ConfigError, match="expected key=value"):
        parse_var(text)


def test_catalog_order_and_every_file_is_an_experiment() -> None:
    names = [p.stem for p in catalog(CATALOG)]
    assert names[:3] == ["pod-kill", "replica-partition", "broker-down"]
    assert names[-1] == "pod-kill-majority"
    assert len(names) >= 9


def test_select_by_tag(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    pods = [p.stem for p in select([], ["pods"])]
    assert pods == ["pod-kill", "pod-kill-majority"]
    with pytest.raises(ConfigError, match="known tags are availability, broker"):
        select([], ["nope"])
    with pytest.raises(ConfigError, match="does not exist"):
        select([Path("experiments/missing.yaml")], [])


def test_bad_experiment_files_are_refused(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("title: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        select([broken], [])
    not_experiment = tmp_path / "list.yaml"
    not_experiment.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="not a Chaos Toolkit experiment"):
        select([not_experiment], [])


def test_the_catalog_shares_one_traffic_rate() -> None:
    assert shared_rate(catalog(CATALOG)) == 200.0


def test_a_control_that_cannot_be_imported_is_reported() -> None:
    experiment = {"controls": [
        {"name": "traffic", "provider": {"type": "python", "module": "gameday.traffic"}},
        {"name": "typo", "provider": {"type": "python", "module": "gameday.trafic"}},
    ]}
    assert missing_controls(experiment) == [
        "control typo: module 'gameday.trafic' cannot be imported, so Chaos Toolkit would "
        "skip it"]
