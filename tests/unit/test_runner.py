"""Runner logic that needs no lab: --var parsing, selection by tag, catalog order,
shared traffic, controls that would be skipped silently, and the pre-flight checks."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.labs import ROOT

from gameday.contract import ConfigError
from gameday.engine.argcheck import ArgContext, check_activity
from gameday.engine.preflight import experiment_problems, variable_problems
from gameday.engine.runner import (
    catalog,
    load_experiment,
    missing_controls,
    parse_var,
    select,
    shared_rate,
)

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
    assert names[-8:] == ["pod-kill-majority", "broker-reply-lost", "broker-error-after-fill",
                          "replica-freeze", "replica-cpu-starved", "slow-replica", "replica-oom",
                          "broker-packet-loss"]
    assert len(names) >= 16


def test_select_by_tag(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    pods = [p.stem for p in select([], ["pods"])]
    assert pods == ["pod-kill", "pod-kill-majority", "replica-oom"]
    with pytest.raises(ConfigError, match="known tags are availability, broker"):
        select([], ["nope"])
    with pytest.raises(ConfigError, match="does not exist"):
        select([Path("experiments/missing.yaml")], [])


def test_skip_tags_leave_experiments_out(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    everything = [p.stem for p in select([], [])]
    lab = [p.stem for p in select([], [], ["netns"])]
    assert "broker-packet-loss" in everything and "broker-packet-loss" not in lab
    assert len(lab) == len(everything) - len(select([], ["netns"]))
    assert [p.stem for p in select([], ["gray"], ["netns"])] == [
        "replica-freeze", "replica-cpu-starved", "slow-replica", "replica-oom"]
    with pytest.raises(ConfigError, match=r"no experiment has tag netnss \(--skip-tag\)"):
        select([], [], ["netnss"])
    with pytest.raises(ConfigError, match="--skip-tag netns leaves no experiment"):
        select([], ["netns"], ["netns"])


def test_bad_experiment_files_are_refused(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("title: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        select([broken], [])
    not_experiment = tmp_path / "list.yaml"
    not_experiment.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="is a list with no method: expected a Chaos Toolkit"):
        select([not_experiment], [])


def test_the_catalog_shares_one_traffic_rate() -> None:
    assert shared_rate(catalog(CATALOG)) == 200.0


def test_a_control_that_cannot_be_imported_is_reported() -> None:
    experiment = {"controls": [
        {"name": "traffic", "provider": {"type": "python", "module": "controls.traffic"}},
        {"name": "typo", "provider": {"type": "python", "module": "gameday.trafic"}},
    ]}
    assert missing_controls(experiment) == [
        "control typo: module 'gameday.trafic' cannot be imported, so Chaos Toolkit would "
        "skip it"]


@pytest.mark.parametrize(("text", "message"), [
    ("x=", "has no value"), ("x= ", "has no value"), ("1x=2", "expected key=value")])
def test_bad_var_values_are_refused(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_var(text)


@pytest.mark.parametrize("text", ["x=nan", "x=inf", "x=-inf", "x=1e999"])
def test_a_var_that_is_no_finite_number_stays_a_string(text: str) -> None:
    assert parse_var(text) == ("x", text[2:])


def test_every_shipped_experiment_passes_the_preflight() -> None:
    paths = [*catalog(CATALOG), *sorted((CATALOG / "incidents").glob("*.yaml"))]
    links = ("service-broker", "lb-replica-1", "lb-replica-2", "lb-replica-3")
    for path in paths:
        assert experiment_problems(load_experiment(path), {}, links) == [], path


def _kill(**arguments: object) -> dict[str, object]:
    return {"type": "python", "module": "actions.pods", "func": "kill", "arguments": arguments}


@pytest.mark.parametrize(("arguments", "expected"), [
    ({"qty": "many"}, ["actions.pods.kill: argument qty='many' is not a number"]),
    ({"qty": True}, ["actions.pods.kill: argument qty=True is not a number"]),
    ({"qty": "${kill_qty}"}, ["actions.pods.kill: argument qty='x' (from ${kill_qty}) is not "
                              "a number"]),
    ({"qty": 1.5}, ["actions.pods.kill: qty=1.5 is invalid for mode fixed: valid is a whole "
                    "number >= 1"]),
    ({"qty": 150, "mode": "percentage"}, ["actions.pods.kill: qty=150 is invalid for mode "
                                          "percentage: valid is 0 < qty <= 100"]),
    ({"mode": "all"}, ["actions.pods.kill: unknown mode 'all': valid are fixed, percentage"]),
    ({"count": 2}, ["actions.pods.kill: unknown argument 'count': valid are selector, qty, "
                    "mode"]),
    ({"qty": 2, "selector": "name=replica-1"}, []),
])
def test_arguments_of_our_actions_are_checked_by_type_and_value(
        arguments: dict[str, object], expected: list[str]) -> None:
    context = ArgContext({"kill_qty": "x"}, frozenset({"kill_qty"}))
    assert check_activity(_kill(**arguments), context) == expected


def test_var_keys_and_types_are_checked_against_the_configurations() -> None:
    experiments = {Path("a.yaml"): {"configuration": {"window_s": 10, "link": "x"}},
                   Path("b.yaml"): {"configuration": {"settle_s": 5}}}
    assert variable_problems(experiments, {"window_s": 5, "link": "y", "settle_s": 1.5}) == []
    assert variable_problems(experiments, {"windw_s": 5, "settle_s": "soon"}) == [
        "--var windw_s: no selected experiment has this configuration key (did you mean "
        "window_s?); known keys are link, load_late_share_max, machine_busy_share_max, "
        "machine_others_share_max, orders_failed_but_filled_max, settle_s, window_s",
        "--var settle_s='soon' is not a number, but b.yaml has settle_s: 5"]


def test_the_judges_bounds_are_var_keys_of_every_experiment() -> None:
    experiments = {Path("a.yaml"): {"configuration": {"window_s": 10}}}
    assert variable_problems(experiments, {"orders_failed_but_filled_max": 3,
                                           "machine_busy_share_max": 0.99}) == []
    assert variable_problems(experiments, {"load_late_share_max": "lots"}) == [
        "--var load_late_share_max='lots' is not a number (the judge's bound, default 0.1)"]
