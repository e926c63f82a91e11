"""Random payloads at the API (hypothesis): every answer is a 2xx or a 4xx with a
message, and the fault proxy keeps carrying traffic afterwards.

Listen addresses are drawn from a fixed set: a random host name would make the proxy
resolve it (DNS is off limits for the tests), and a random low port would bind it.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.faultproxy import (
    TIMEOUT_S,
    FaultProxy,
    connect,
    echo,
    listen_port,
)

from lab.faultproxy.faults import FAULTS


@pytest.fixture
def fp(own_fp: FaultProxy) -> FaultProxy:
    """lab.faultproxy only: Toxiproxy answers some random input (a listen address it
    cannot bind) with a 500, which this file counts as a failure."""
    return own_fp


FUZZ = settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)

_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
)
_json = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=8,
)
_attribute_names = st.sampled_from(
    ["latency", "jitter", "rate", "delay", "timeout", "average_size", "size_variation", "bytes"]
)
_valid_toxic = st.fixed_dictionaries(
    {"type": st.sampled_from(list(FAULTS))},
    optional={
        "name": st.text(alphabet="abc_", min_size=1, max_size=6),
        "stream": st.sampled_from(["upstream", "downstream", "UpStream"]),
        "toxicity": st.floats(min_value=0, max_value=1),
        "attributes": st.dictionaries(_attribute_names, st.integers(0, 10**6), max_size=3),
    },
)
_random_toxic = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from([*FAULTS, "bogus", "LATENCY"]) | _json,
        "name": st.text(max_size=10) | _json,
        "stream": st.sampled_from(["upstream", "downstream", "sideways", ""]) | _json,
        "toxicity": st.floats(min_value=-1, max_value=2) | _json,
        "attributes": st.dictionaries(
            _attribute_names | st.text(max_size=6),
            st.integers(min_value=-5, max_value=2**64) | _json,
            max_size=4,
        )
        | _json,
    },
)
_toxic = _valid_toxic | _random_toxic | _json
_listen = st.sampled_from(
    ["127.0.0.1:0", "127.0.0.1", "127.0.0.1:99999", "", ":", "[::1]x", "127.0.0.1:\u00b2",
     "127.0.0.1:\u0663", "[127.0.0.1:0", "192.0.2.1:0"]
)  # unicode digits, unbalanced brackets, an address that is not local: all 4xx
_valid_proxy = st.fixed_dictionaries(
    {
        "name": st.text(min_size=1, max_size=10),
        "upstream": st.integers(1, 65535).map(lambda port: f"127.0.0.1:{port}"),
    },
    optional={"listen": _listen, "enabled": st.booleans()},
)
_random_proxy = st.fixed_dictionaries(
    {},
    optional={
        "name": st.text(max_size=10) | _json,
        "upstream": st.text(max_size=20) | _json,
        "listen": _listen | st.integers() | st.none(),
        "enabled": st.booleans() | _json,
    },
)
_proxy = _valid_proxy | _random_proxy | _json


def _check(response: requests.Response) -> None:
    """A 2xx, or a 4xx whose body is Toxiproxy's error JSON."""
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        body = response.json()
        assert body["status"] == response.status_code and body["error"]


def _post(fp: FaultProxy, path: str, body: Any) -> requests.Response:
    """POST `body` as JSON, NaN and Infinity included (Python's json reads them)."""
    raw = json.dumps(body, allow_nan=True).encode()
    response = fp.http.post(fp.url + path, data=raw, timeout=TIMEOUT_S)
    _check(response)
    return response


def _still_carries_traffic(fp: FaultProxy, echo_port: int) -> None:
    assert fp.call("POST", "/reset").status_code == 204
    port = listen_port(fp.create("after", echo_port))
    with connect(port) as sock:
        assert echo(sock, b"still here" * 1000) < 1.0


def test_random_toxics(fp: FaultProxy, echo_port: int) -> None:
    fp.create("p", echo_port)

    @FUZZ
    @given(body=_toxic, update=_toxic)
    def attempt(body: Any, update: Any) -> None:
        created = _post(fp, "/proxies/p/toxics", body)
        if created.status_code == 200:
            name = quote(created.json()["name"], safe="")
            _post(fp, f"/proxies/p/toxics/{name}", update)
            assert fp.call("DELETE", f"/proxies/p/toxics/{name}").status_code == 204

    attempt()
    _still_carries_traffic(fp, echo_port)


def test_random_proxies_and_updates(fp: FaultProxy, echo_port: int) -> None:
    @FUZZ
    @given(body=_proxy, update=_proxy, populate=st.lists(_proxy, max_size=3) | _json)
    def attempt(body: Any, update: Any, populate: Any) -> None:
        created = _post(fp, "/proxies", body)
        if created.status_code == 201:
            name = quote(created.json()["name"], safe="")
            _post(fp, f"/proxies/{name}", update)
        _post(fp, "/populate", populate)
        for existing in fp.call("GET", "/proxies").json():
            assert fp.call("DELETE", f"/proxies/{quote(existing, safe='')}").status_code == 204

    attempt()
    _still_carries_traffic(fp, echo_port)


def test_random_bytes_and_names(fp: FaultProxy, echo_port: int) -> None:
    fp.create("p", echo_port)

    @FUZZ
    @given(raw=st.binary(max_size=64), name=st.text(min_size=1, max_size=10))
    def attempt(raw: bytes, name: str) -> None:
        for path in ("/proxies", "/populate", "/proxies/p", "/proxies/p/toxics"):
            _check(fp.http.post(fp.url + path, data=raw, timeout=TIMEOUT_S))
        for path in (
            f"/proxies/{quote(name, safe='')}",
            f"/proxies/p/toxics/{quote(name, safe='')}",
        ):
            _check(fp.call("GET", path))
            _check(fp.call("DELETE", path))

    attempt()
    deep = b"[" * 100_000 + b"]" * 100_000
    _check(fp.http.post(fp.url + "/proxies", data=deep, timeout=TIMEOUT_S))
    _still_carries_traffic(fp, echo_port)
