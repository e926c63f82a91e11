"""`chaos discover` metadata: every exported probe and action is documented and typed."""

from __future__ import annotations

import importlib
import types
import typing
from typing import Any

import pytest
from chaoslib.discovery.discover import discover_activities

from gameday.engine.activity import ACTIVITY_MODULES as MODULES

JSON_TYPES = (bool, int, float, str, dict, list, type(None), typing.Any)


def _json_friendly(hint: Any) -> bool:
    origin = typing.get_origin(hint)
    if origin in (types.UnionType, typing.Union):
        return all(_json_friendly(arg) for arg in typing.get_args(hint))
    if origin in (dict, list):
        return all(_json_friendly(arg) for arg in typing.get_args(hint))
    return hint in JSON_TYPES


@pytest.mark.parametrize(("module_name", "kind"), sorted(MODULES.items()))
def test_every_export_is_discoverable_documented_and_typed(module_name: str, kind: str) -> None:
    module = importlib.import_module(module_name)
    discovered = {a["name"]: a for a in discover_activities(module_name, kind)}
    assert set(discovered) == set(module.__all__), "exports and discovery disagree"
    for name, activity in discovered.items():
        doc = activity["doc"] or ""
        assert doc and doc.splitlines()[0].endswith("."), f"{name}: one-line summary"
        says_return = "return" in doc.lower() or "true when" in doc.lower()
        assert says_return, f"{name}: says what it returns"
        if kind == "probe":
            assert "pair" in doc.lower(), f"{name}: names the tolerance to pair it with"
        hints = typing.get_type_hints(getattr(module, name))
        for argument in activity["arguments"]:
            arg = argument["name"]
            assert arg in hints, f"{name}({arg}) is not annotated"
            assert _json_friendly(hints[arg]), f"{name}({arg}: {hints[arg]}) is not JSON"
            if arg not in ("configuration", "secrets"):
                assert arg in doc or len(activity["arguments"]) <= 2, f"{name}: documents {arg}"
        assert _json_friendly(hints["return"]), f"{name} returns {hints['return']}"


