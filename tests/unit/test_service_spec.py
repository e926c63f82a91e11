"""Service specs: the shipped ones parse; a bad spec is refused naming every problem."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from support.labs import ROOT

from gameday.contract import METRIC_ORDERS_TOTAL, ConfigError
from gameday.service_spec import load_spec, parse_spec

EXAMPLES = sorted((ROOT / "examples" / "services").glob("*/service.yaml"))
GOOD: dict[str, Any] = yaml.safe_load((ROOT / "examples" / "services" / "node-opossum" /
                                       "service.yaml").read_text())


def _spec(tmp_path: Path, **changes: Any) -> dict[str, Any]:
    raw = {**GOOD, **changes}
    return {k: v for k, v in raw.items() if v is not None}


VARIANTS = sorted((ROOT / "examples" / "services").glob("*/service*.yaml"))


@pytest.mark.parametrize("path", VARIANTS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_the_example_specs_parse(path: Path) -> None:
    spec = load_spec(path)
    assert spec.name == path.parent.name + path.stem.removeprefix("service")
    assert spec.workdir == path.parent
    assert spec.replicas == 3
    values = {"host": "127.0.0.1", "port": "18021", "broker_url": "http://127.0.0.1:18010",
              "name": "replica-1"}
    command = spec.command_for(values)
    assert "18021" in command and "http://127.0.0.1:18010" in command
    assert spec.order.statuses["filled"] == (200,)
    assert spec.order.statuses["unknown"] == (502, 504)


def test_there_are_two_independent_examples_each_with_a_fixed_variant() -> None:
    assert [p.parent.name for p in EXAMPLES] == ["node-opossum", "python-fastapi"]
    assert [f"{p.parent.name}/{p.name}" for p in VARIANTS] == [
        "node-opossum/service-fixed.yaml", "node-opossum/service.yaml",
        "python-fastapi/service-fixed.yaml", "python-fastapi/service.yaml"]


def test_the_order_body_keeps_the_value_types() -> None:
    spec = parse_spec(GOOD, ROOT / "examples" / "services" / "node-opossum" / "service.yaml")
    body = spec.order.render({"client_order_id": "c-1", "instrument": "EUR_USD",
                              "units": 100, "price": 1.1})
    assert body == {"client_order_id": "c-1", "instrument": "EUR_USD", "units": 100,
                    "price": 1.1}


def test_renamed_metrics_and_labels_are_read_through_the_spec(tmp_path: Path) -> None:
    raw = _spec(tmp_path, workdir=str(tmp_path), metrics={METRIC_ORDERS_TOTAL: "orders_total"},
                labels={"status": "outcome"})
    spec = parse_spec(raw, tmp_path / "service.yaml")
    assert spec.metric(METRIC_ORDERS_TOTAL) == "orders_total"
    assert spec.metric("broker_slippage_pips") == "broker_slippage_pips"
    assert spec.label("status") == "outcome"


@pytest.mark.parametrize(("changes", "message"), [
    ({"name": "My Service"}, "name='My Service': valid is 1..40 lower-case"),
    ({"command": "node server.js"}, "command='node server.js': must be a list"),
    ({"command": ["node", "server.js", "--port", "{prot}", "--broker-url", "{broker_url}"]},
     "command: unknown placeholder {prot}: valid are {host}, {port}"),
    ({"command": ["node", "server.js", "--broker-url", "{broker_url}"]},
     "{port} appears in neither the command nor env"),
    ({"replicas": 0}, "replicas=0: valid is a whole number 1..9"),
    ({"paths": {"health": "health"}}, "paths health='health': must be a URL path"),
    ({"paths": {"live": "/live"}}, "paths: unknown key 'live'"),
    ({"order": {"method": "GET"}}, "order method='GET': valid are POST, PUT"),
    ({"order": {"body": {"id": "{order_id}"}}}, "unknown placeholder {order_id}"),
    ({"order": {"body": {"instrument": "{instrument}"}}}, "must carry {client_order_id}"),
    ({"order": {"statuses": {"filled": [200], "rejected": [200], "failed": [502],
                             "circuit_open": [503]}}}, "200 means both filled and rejected"),
    ({"order": {"statuses": {"filled": [200]}}}, "order statuses rejected=None"),
    ({"order": {"statuses": {"filled": [200], "rejected": [422], "failed": [500],
                             "circuit_open": [503], "unknown": []}}},
     "order statuses unknown=[]: must be a non-empty list"),
    ({"order": {"statuses": {"filled": [200], "rejected": [422], "failed": [500],
                             "circuit_open": [503], "unknown": [500]}}},
     "500 means both failed and unknown"),
    ({"order": {"statuses": {"filled": [200], "rejected": [422], "failed": [500],
                             "circuit_open": [503], "maybe": [502]}}},
     "unknown outcome 'maybe': valid are filled, rejected, failed, circuit_open, unknown"),
    ({"stop": {"signal": "SIGKILL"}}, "stop signal='SIGKILL': valid are SIGTERM"),
    ({"stop": {"grace_s": 0}}, "stop grace_s=0: valid is a number of seconds 0.1..120"),
    ({"metrics": {"orders_total": "x"}}, "'orders_total' is not a contract name"),
    ({"metrics": {METRIC_ORDERS_TOTAL: "bad name"}}, "not a valid Prometheus name"),
    ({"workdir": "nowhere"}, "workdir='nowhere':"),
    ({"colour": "blue"}, "unknown field 'colour'"),
])
def test_a_bad_spec_names_the_problem(tmp_path: Path, changes: dict[str, Any],
                                      message: str) -> None:
    raw = _spec(tmp_path, **{"workdir": str(tmp_path), **changes})
    with pytest.raises(ConfigError) as caught:
        parse_spec(raw, tmp_path / "service.yaml")
    assert message in str(caught.value)
    assert str(tmp_path / "service.yaml") in str(caught.value)


def test_every_problem_is_listed_at_once(tmp_path: Path) -> None:
    raw = _spec(tmp_path, workdir=str(tmp_path), name="X", replicas=99, stop={"signal": "NO"})
    with pytest.raises(ConfigError, match=r"has 3 problem\(s\)"):
        parse_spec(raw, tmp_path / "service.yaml")


def test_a_spec_that_is_not_yaml_or_not_a_mapping(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("name: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_spec(tmp_path / "bad.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n")
    with pytest.raises(ConfigError, match="must be a mapping of the fields"):
        load_spec(tmp_path / "list.yaml")
    with pytest.raises(ConfigError, match="cannot be read"):
        load_spec(tmp_path / "missing.yaml")
