"""The load generator sends the service spec's order body."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from gameday.cli.main import build_parser
from gameday.contract import fill_placeholders
from gameday.load.generator import LoadSettings, body_maker, new_order
from gameday.load.workers import order_template_args


def test_the_default_order_is_the_contracts() -> None:
    assert new_order("o-1") == {"client_order_id": "o-1", "instrument": "EUR_USD",
                                "units": 1000, "price": 1.0842}


def test_a_template_shapes_the_order_and_keeps_value_types() -> None:
    template = {"clOrdId": "{client_order_id}", "order": {"symbol": "{instrument}",
                "qty": "{units}", "limit": "{price}", "note": "id {client_order_id}"},
                "tags": ["{instrument}", 7]}
    assert new_order("o-2", template) == {
        "clOrdId": "o-2", "order": {"symbol": "EUR_USD", "qty": 1000, "limit": 1.0842,
                                    "note": "id o-2"}, "tags": ["EUR_USD", 7]}


def test_the_template_reaches_the_workers_command_line() -> None:
    assert order_template_args(None) == []
    assert order_template_args({"id": "{client_order_id}"}) == [
        "--order-template", '{"id": "{client_order_id}"}']


def test_put_is_a_method_and_others_are_refused() -> None:
    assert LoadSettings("http://127.0.0.1:1/o", 1, 1, method="PUT").method == "PUT"
    with pytest.raises(ValueError, match="GET, POST, PUT"):
        LoadSettings("http://127.0.0.1:1/o", 1, 1, method="DELETE")


def test_an_unknown_placeholder_is_a_key_error() -> None:
    with pytest.raises(KeyError):
        fill_placeholders({"x": "{side}"}, {"client_order_id": "1"})


@pytest.mark.parametrize(("template", "message"), [
    ("{", "not JSON"),
    ('{"id": "fixed"}', "carrying"),
    ('{"id": "{client_order_id}", "s": "{side}"}', r"unknown placeholder \{side\}"),
])
def test_a_bad_order_template_exits_2_naming_it(template: str, message: str,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(["load", "--url", "http://127.0.0.1:9/orders", "--rate",
                                   "1", "--duration", "1", "--order-template", template])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "--order-template" in err
    assert re.search(message, err), err


@pytest.mark.parametrize("template", [
    None, {"id": "{client_order_id}", "note": "x {client_order_id} y", "qty": "{units}",
           "tags": ["{instrument}"]}])
def test_the_bodies_sent_are_the_orders_as_json(template: dict[str, Any] | None) -> None:
    body = body_maker(template)
    for order_id in ("gd-1-abc-0", 'quote"and\\back', "ünï"):
        assert json.loads(body(order_id)) == new_order(order_id, template)
