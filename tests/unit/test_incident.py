"""Incident files become valid Chaos Toolkit experiments; bad ones are refused clearly."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from chaoslib.experiment import ensure_experiment_is_valid
from support.labs import ROOT

from gameday.contract import ConfigError
from gameday.engine.incident import FAULTS, is_incident, to_experiment

INCIDENTS = ROOT / "experiments" / "incidents"


def _incident(**fault: Any) -> dict[str, Any]:
    return {"incident": "INC-1", "title": "t", "fault": {"duration_s": 20, **fault},
            "promised": {"breaker_open_within_s": 4, "recovery_within_s": 15,
                         "sla": {"p95_latency_max_s": 0.5}}}


@pytest.mark.parametrize("path", sorted(INCIDENTS.glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_incident_files_are_valid_experiments(path: Any) -> None:
    document = yaml.safe_load(path.read_text())
    assert is_incident(document)
    ensure_experiment_is_valid(to_experiment(document))


@pytest.mark.parametrize("kind", sorted(FAULTS))
def test_every_fault_kind_replays(kind: str) -> None:
    experiment = to_experiment(_incident(kind=kind))
    ensure_experiment_is_valid(experiment)
    inject, opened, _, undo, closed = experiment["method"]
    assert inject["name"] == f"replay-{kind}"
    assert opened["provider"]["arguments"] == {"seconds": 4.0}
    assert opened["pauses"] == {"after": 16.0}
    assert closed["provider"]["arguments"] == {"seconds": 15.0}
    assert experiment["rollbacks"] == [undo]
    assert experiment["configuration"]["sla_p95_latency_max_s"] == 0.5


def test_fault_parameters_reach_the_action() -> None:
    experiment = to_experiment(_incident(kind="broker-errors", status=503, probability=0.5))
    assert experiment["method"][0]["provider"]["arguments"] == {
        "mode": "error", "status": 503, "probability": 0.5}


@pytest.mark.parametrize(("fault", "message"), [
    ({"kind": "dns"}, "valid are broker-link-down"),
    ({"kind": "broker-slow", "latency": 5}, r"fault fields \['latency'\] are unknown"),
    ({"kind": "broker-link-down", "status": 500}, "takes no status"),
    ({"kind": "broker-slow", "duration_s": 1}, r"valid is 5\.\.3600"),
    ({"kind": "broker-slow", "duration_s": "long"}, "is not a number"),
])
def test_bad_incidents_name_what_is_valid(fault: dict[str, Any], message: str) -> None:
    incident = _incident()
    incident["fault"] = {"duration_s": 20, **fault}
    with pytest.raises(ConfigError, match=message):
        to_experiment(incident)


def test_an_incident_needs_an_id() -> None:
    with pytest.raises(ConfigError, match="needs `incident:`"):
        to_experiment({"incident": "", "fault": {"kind": "broker-slow", "duration_s": 9}})


@pytest.mark.parametrize(("change", "message"), [
    ({"fault": "broker down"}, "fault must be a mapping with kind, duration_s"),
    ({"promised": 5}, "promised must be a mapping with breaker_open_within_s"),
    ({"promised": {"sla": [1]}}, "promised.sla must be a mapping with availability_min"),
    ({"promised": {"sla": {"p95_max": 1}}}, r"promised.sla fields \['p95_max'\] are unknown"),
    ({"promised": {"sla": {"availability_min": 99.5}}}, r"out of range: valid is 0\.\.1"),
    ({"promised": {"sla": {"p95_latency_max_s": "fast"}}}, "'fast' is not a number"),
    ({"promised": {"recover_within_s": 5}}, r"promised fields \['recover_within_s'\]"),
    ({"falt": {}}, r"fields \['falt'\] are unknown: valid are incident, title"),
    ({"incident": ["INC-1"]}, "needs `incident:`"),
])
def test_bad_incident_structures_name_what_is_valid(change: dict[str, Any],
                                                    message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        to_experiment({**_incident(kind="broker-errors"), **change})


def test_promised_sla_bounds_become_numbers_in_the_configuration() -> None:
    incident = _incident(kind="broker-errors")
    incident["promised"]["sla"] = {"availability_min": 0.9, "throughput_min_rps": 50}
    configuration = to_experiment(incident)["configuration"]
    assert configuration["sla_availability_min"] == 0.9
    assert configuration["sla_throughput_min_rps"] == 50.0
