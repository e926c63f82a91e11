"""Reading Toxiproxy's JSON request bodies into settings; errors name the field."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from lab.faultproxy.errors import (
    ApiError,
    bad_request,
    invalid_stream,
    invalid_toxic_type,
    missing_field,
)
from lab.faultproxy.faults import FAULTS, Fault, FaultError
from lab.faultproxy.settings import Address, ProxySpec
from lab.faultproxy.toxics import STREAMS, Toxic

__all__ = [
    "DEFAULT_LISTEN",
    "decode",
    "parse_address",
    "parse_proxy",
    "parse_proxy_list",
    "parse_toxic",
    "parse_toxic_update",
]

DEFAULT_LISTEN = Address("127.0.0.1", 0)
"""Where a proxy listens when `listen` is not given: loopback, a free port."""


def decode(raw: bytes) -> Any:
    """The JSON value of a request body (400 when it is not JSON)."""
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise bad_request(str(error)) from error
    except RecursionError as error:
        raise bad_request("JSON nested too deeply") from error


def _object(body: object, what: str = "body") -> Mapping[str, Any]:
    if not isinstance(body, Mapping):
        raise bad_request(f"{what} must be a JSON object")
    return body


def _text(body: Mapping[str, Any], field: str, default: str | None = None) -> str:
    value = body.get(field, default)
    if value is None or value == "":
        raise missing_field(field)
    if not isinstance(value, str):
        raise bad_request(f"{field} must be a string")
    return value


def _name(body: Mapping[str, Any], default: str | None = None) -> str:
    """A proxy or toxic name; `.` and `..` are refused (a URL cannot address them)."""
    value = _text(body, "name", default)
    if value in (".", ".."):
        raise bad_request(f"name {value!r} cannot be used in a URL")
    return value


def _flag(body: Mapping[str, Any], field: str, default: bool) -> bool:
    value = body.get(field, default)
    if not isinstance(value, bool):
        raise bad_request(f"{field} must be true or false")
    return value


def parse_address(text: str, field: str) -> Address:
    """`host:port` or `[v6 host]:port` (400 naming `field` when malformed)."""
    host, sep, port = text.rpartition(":")
    bracketed = host.startswith("["), host.endswith("]")
    digits = port.isascii() and port.isdigit()  # "²".isdigit(), but int("²") fails
    if not sep or not digits or int(port) > 65535 or len(set(bracketed)) > 1:
        raise bad_request(f"{field} must be host:port, got {text!r}")
    return Address(host.removeprefix("[").removesuffix("]"), int(port))


def _address(body: Mapping[str, Any], field: str, default: Address | None = None) -> Address:
    if default is not None and field not in body:
        return default
    return parse_address(_text(body, field), field)


def parse_proxy(body: object) -> ProxySpec:
    """A new proxy: name and upstream required, listen defaults to 127.0.0.1:0."""
    fields = _object(body)
    return ProxySpec(
        name=_name(fields),
        listen=_address(fields, "listen", DEFAULT_LISTEN),
        upstream=_address(fields, "upstream"),
        enabled=_flag(fields, "enabled", True),
    )


def parse_proxy_list(body: object) -> list[ProxySpec]:
    """A populate body or config file: a JSON list of proxies."""
    if not isinstance(body, list):
        raise bad_request("expected a JSON list of proxies")
    return [_at(index, item) for index, item in enumerate(body, start=1)]


def _at(index: int, item: object) -> ProxySpec:
    try:
        return parse_proxy(item)
    except ApiError as error:
        raise ApiError(f"{error.message} at proxy {index}", error.status) from error


def parse_proxy_update(body: object, current: ProxySpec) -> ProxySpec:
    """A proxy update: fields absent keep their current values."""
    fields = _object(body)
    return ProxySpec(
        name=current.name,
        listen=_address(fields, "listen", current.listen),
        upstream=_address(fields, "upstream", current.upstream),
        enabled=_flag(fields, "enabled", current.enabled),
    )


FLOAT32_MAX = 3.4028234663852886e38
"""Toxiproxy keeps toxicity as a Go float32: a larger number is a 400 there too."""


def _toxicity(body: Mapping[str, Any], default: float) -> float:
    """Any number, as in Toxiproxy: the toxic applies to a connection when a random draw
    in [0, 1) is below it (so 1 or more: always; 0 or less: never)."""
    value = body.get("toxicity", default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or not (
        abs(value) <= FLOAT32_MAX
    ):
        raise bad_request(f"toxicity must be a number, got {value!r}")
    return float(value)


def _attributes(body: Mapping[str, Any]) -> Mapping[str, Any]:
    value = body.get("attributes")
    return {} if value is None else _object(value, "attributes")


def _fault(kind: str, attributes: Mapping[str, Any]) -> Fault:
    try:
        return FAULTS[kind](attributes)
    except FaultError as error:
        raise bad_request(str(error)) from error


def _stream(body: Mapping[str, Any]) -> str:
    """`upstream` or `downstream` (default) in any case, kept as written (as Toxiproxy
    does: ``UpStream`` is shown as such, and names the toxic ``<type>_UpStream``)."""
    value = body.get("stream")
    value = "downstream" if value is None else value
    if not isinstance(value, str) or value.lower() not in STREAMS:
        raise invalid_stream()
    return value


def _toxic_name(body: Mapping[str, Any], default: str) -> str:
    """The toxic's name; absent, null or empty gives `default` as in Toxiproxy."""
    value = body.get("name")
    return default if value is None or value == "" else _name(body)


def parse_toxic(body: object) -> Toxic:
    """A new toxic: type required; stream downstream, toxicity 1, name <type>_<stream>."""
    fields = _object(body)
    kind = fields.get("type")
    if not isinstance(kind, str) or kind not in FAULTS:
        raise invalid_toxic_type(kind, FAULTS)
    stream = _stream(fields)
    return Toxic(
        name=_toxic_name(fields, f"{kind}_{stream}"),
        type=kind,
        stream=stream,
        toxicity=_toxicity(fields, 1.0),
        fault=_fault(kind, _attributes(fields)),
    )


def parse_toxic_update(body: object, current: Toxic) -> Toxic:
    """New attributes (merged over the current ones; null keeps one) and toxicity."""
    fields = _object(body)
    given = {name: value for name, value in _attributes(fields).items() if value is not None}
    attributes = {**current.fault.attributes(), **given}
    return Toxic(
        name=current.name,
        type=current.type,
        stream=current.stream,
        toxicity=_toxicity(fields, current.toxicity),
        fault=_fault(current.type, attributes),
    )
