"""The fault proxy's API and proxies, driven through its Toxiproxy API (real process).

Differential: a test taking ``fp`` runs against lab.faultproxy and against Toxiproxy's
own server (tests/component/conftest.py), and both must pass it; ``own_fp`` tests what
only lab.faultproxy does (PATCH, stricter addresses, its gauges).

The other files: test_faultproxy_traffic.py (traffic, toxics changed mid-stream,
back-pressure), test_faultproxy_toxics.py (each toxic's effect measured over TCP),
test_faultproxy_clients.py (chaostoolkit-toxiproxy and toxiproxy-python),
test_faultproxy_fuzz.py (random bad input), test_faultproxy_faults.py and
test_faultproxy_settings.py (fault logic in memory), tests/support/faultproxy.py
(shared fixtures).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
import requests
from support.faultproxy import (
    TIMEOUT_S,
    FaultProxy,
    closed_by_peer,
    connect,
    echo,
    get_times_ms,
    listen_port,
    start_proxy,
    start_toxiproxy,
    stop_proxy,
)
from support.gocomponents import go_program

from lab.gocomponents import TOXIPROXY

IMPLEMENTATIONS = ("faultproxy", "toxiproxy")


def _latency(fp: FaultProxy, proxy: str, latency_ms: int, **fields: Any) -> requests.Response:
    body = {"type": "latency", "attributes": {"latency": latency_ms}, **fields}
    return fp.call("POST", f"/proxies/{proxy}/toxics", body)


# --- proxies -------------------------------------------------------------------------


def test_traffic_flows_through_a_new_proxy(fp: FaultProxy, echo_port: int) -> None:
    proxy = fp.create("echo", echo_port)
    assert proxy["enabled"] is True and proxy["toxics"] == []
    assert proxy["upstream"] == f"127.0.0.1:{echo_port}" and listen_port(proxy) > 0
    assert fp.call("GET", "/proxies").json() == {"echo": proxy}
    assert fp.call("GET", "/proxies/echo").json() == proxy
    with connect(listen_port(proxy)) as sock:
        echo(sock, os.urandom(300_000))


def test_disable_refuses_and_closes_then_enable_restores(fp: FaultProxy, echo_port: int) -> None:
    proxy = fp.create("echo", echo_port)
    port = listen_port(proxy)
    with connect(port) as open_sock:
        echo(open_sock)
        down = fp.call("POST", "/proxies/echo", {"enabled": False})
        assert down.status_code == 200 and down.json()["enabled"] is False
        assert closed_by_peer(open_sock)
    with pytest.raises(ConnectionRefusedError):
        connect(port)
    up = fp.call("POST", "/proxies/echo", {"enabled": True}).json()
    assert up["enabled"] is True and up["listen"] == proxy["listen"]
    with connect(port) as sock:
        echo(sock)


@pytest.mark.parametrize("method", ["POST", "PATCH"])
def test_update_upstream_and_delete(
    fp: FaultProxy, echo_port: int, http_port: int, method: str
) -> None:
    """PATCH came with Toxiproxy 2.6; the 2.5 server answers it 405, the fault proxy
    takes both."""
    if method == "PATCH" and fp.kind == "toxiproxy":
        assert fp.call("PATCH", "/proxies/nope", {}).status_code == 405
        return
    proxy = fp.create("p", echo_port)
    moved = fp.call(method, "/proxies/p", {"upstream": f"127.0.0.1:{http_port}"}).json()
    assert moved["upstream"] == f"127.0.0.1:{http_port}" and moved["enabled"] is True
    assert get_times_ms(listen_port(proxy), 1)
    assert fp.call("DELETE", "/proxies/p").status_code == 204
    assert fp.call("GET", "/proxies/p").status_code == 404
    with pytest.raises(ConnectionRefusedError):
        connect(listen_port(proxy))


def test_created_disabled_does_not_listen(fp: FaultProxy, echo_port: int) -> None:
    proxy = fp.create("off", echo_port, enabled=False)
    assert proxy["enabled"] is False
    on = fp.call("POST", "/proxies/off", {"enabled": True}).json()
    with connect(listen_port(on)) as sock:
        echo(sock)


# --- toxics through the API -----------------------------------------------------------


def test_toxic_show_update_list(fp: FaultProxy, echo_port: int) -> None:
    fp.create("p", echo_port)
    _latency(fp, "p", 10, stream="upstream", name="a", toxicity=0.5)
    _latency(fp, "p", 20, name="b")
    names = [t["name"] for t in fp.call("GET", "/proxies/p/toxics").json()]
    assert names == ["a", "b"]
    updated = fp.call("POST", "/proxies/p/toxics/a", {"attributes": {"jitter": 5}}).json()
    assert updated["attributes"] == {"latency": 10, "jitter": 5} and updated["toxicity"] == 0.5
    assert fp.call("GET", "/proxies/p/toxics/a").json() == updated
    assert fp.call("GET", "/proxies/p").json()["toxics"][0] == updated


def test_toxic_defaults_follow_toxiproxy(fp: FaultProxy, echo_port: int) -> None:
    fp.create("p", echo_port)
    body = {"type": "timeout", "name": "", "stream": "UpStream", "attributes": None}
    toxic = fp.call("POST", "/proxies/p/toxics", body).json()
    assert toxic == {
        "name": "timeout_UpStream",  # the stream as written, as Toxiproxy keeps it
        "type": "timeout",
        "stream": "UpStream",
        "toxicity": 1.0,
        "attributes": {"timeout": 0},
    }
    assert fp.call("GET", "/proxies/p/toxics/timeout_UpStream").json() == toxic


@pytest.mark.parametrize(
    ("body", "attributes", "toxicity"),
    [
        ({"type": "latency", "toxicity": 2}, {"latency": 0, "jitter": 0}, 2),
        ({"type": "latency", "toxicity": -0.1}, {"latency": 0, "jitter": 0}, -0.1),
        ({"type": "latency", "attributes": {"latency": -1, "jitter": None}},
         {"latency": -1, "jitter": 0}, 1),
        ({"type": "bandwidth", "attributes": {"rat": 1}}, {"rate": 0}, 1),
        ({"type": "slicer"}, {"average_size": 0, "size_variation": 0, "delay": 0}, 1),
        ({"type": "slicer", "attributes": {"average_size": 10, "size_variation": 20,
                                           "delay": -5}},
         {"average_size": 10, "size_variation": 20, "delay": -5}, 1),
        ({"type": "limit_data", "attributes": {"bytes": -3, "extra": "x"}}, {"bytes": -3}, 1),
    ],
)
def test_odd_toxics_are_taken_as_toxiproxy_takes_them(
    fp: FaultProxy, echo_port: int, body: dict[str, Any], attributes: dict[str, int],
    toxicity: float,
) -> None:
    """Any toxicity, negative integers, null values and unknown attribute names (dropped)
    are accepted; the answer shows what the toxic will use."""
    fp.create("p", echo_port)
    response = fp.call("POST", "/proxies/p/toxics", body)
    assert response.status_code == 200, response.text
    toxic = response.json()
    assert toxic["attributes"] == attributes
    assert toxic["toxicity"] == pytest.approx(toxicity)


def test_an_update_ignores_unknown_names_and_keeps_what_is_null(
    fp: FaultProxy, echo_port: int
) -> None:
    fp.create("p", echo_port)
    _latency(fp, "p", 10, name="t")
    body = {"attributes": {"jitter": -2, "latency": None, "bogus": 1}, "toxicity": None}
    updated = fp.call("POST", "/proxies/p/toxics/t", body)
    assert updated.status_code == 200, updated.text
    assert updated.json()["attributes"] == {"latency": 10, "jitter": -2}
    assert updated.json()["toxicity"] == 1


# --- errors, reset, version, metrics -------------------------------------------------


@pytest.mark.parametrize(
    "case",
    [
        ("GET", "/proxies/nope", None, 404, "proxy not found"),
        ("POST", "/proxies/nope", {"enabled": False}, 404, "proxy not found"),
        ("DELETE", "/proxies/nope", None, 404, "proxy not found"),
        ("GET", "/proxies/p/toxics/nope", None, 404, "toxic not found"),
        ("DELETE", "/proxies/p/toxics/nope", None, 404, "toxic not found"),
        ("POST", "/proxies", {"name": "p", "upstream": "127.0.0.1:1"}, 409, "already exists"),
        ("POST", "/proxies/p/toxics", {"type": "latency", "name": "t"}, 409, "already exists"),
        ("POST", "/proxies", {"name": "q"}, 400, "upstream"),
        ("POST", "/proxies", {"upstream": "127.0.0.1:1"}, 400, "name"),
        ("POST", "/proxies", {"name": "q", "upstream": "h:1", "enabled": 1}, 400, "enabled"),
        ("POST", "/proxies", [], 400, "bad request body"),
        ("POST", "/proxies/p", {"enabled": "yes"}, 400, "enabled"),
        ("POST", "/proxies/p/toxics", {"type": "bogus"}, 400, "invalid toxic type"),
        ("POST", "/proxies/p/toxics", {}, 400, "invalid toxic type"),
        ("POST", "/proxies/p/toxics", {"type": "latency", "stream": "sideways"}, 400, "stream"),
        ("POST", "/proxies/p/toxics", {"type": "latency", "stream": 3}, 400, "stream"),
        ("POST", "/proxies/p/toxics", {"type": "latency", "toxicity": True}, 400, "toxicity"),
        ("POST", "/proxies/p/toxics", {"type": "latency", "name": 5}, 400, "name"),
        ("POST", "/proxies/p/toxics", {"type": "latency", "attributes": [1]}, 400, "attributes"),
        (
            "POST",
            "/proxies/p/toxics",
            {"type": "latency", "attributes": {"latency": 1.5}},
            400,
            "latency",
        ),
        (
            "POST",
            "/proxies/p/toxics",
            {"type": "slicer", "attributes": {"delay": 2**63}},
            400,
            "delay",
        ),
        ("POST", "/proxies/p/toxics", [], 400, "bad request body"),
        ("POST", "/proxies/p/toxics/t", {"attributes": {"jitter": "2"}}, 400, "jitter"),
        ("POST", "/proxies/nope/toxics", {"type": "latency"}, 404, "proxy not found"),
    ],
)
def test_errors(fp: FaultProxy, echo_port: int, case: tuple[str, str, Any, int, str]) -> None:
    """The status of each; the message names what Toxiproxy's names too (the rest of
    the wording differs: Toxiproxy quotes Go's JSON decoder)."""
    method, path, body, status, mentions = case
    fp.create("p", echo_port)
    assert _latency(fp, "p", 0, name="t").ok
    response = fp.call(method, path, body)
    assert response.status_code == status
    assert response.json()["status"] == status and mentions in response.json()["error"]


@pytest.mark.parametrize(
    "case",
    [
        ({"name": "q", "upstream": "nowhere"}, "upstream"),  # Toxiproxy: 201, fails later
        ({"name": "q", "upstream": "h:1", "listen": "x"}, "listen"),  # Toxiproxy: 500
        ({"name": "..", "upstream": "h:1"}, "name"),  # Toxiproxy: 201, then unreachable
    ],
)
def test_addresses_and_names_toxiproxy_takes_are_a_400(
    own_fp: FaultProxy, case: tuple[Any, str]
) -> None:
    """Where the fault proxy stays stricter than Toxiproxy (docs in lab.faultproxy)."""
    body, mentions = case
    response = own_fp.call("POST", "/proxies", body)
    assert response.status_code == 400 and mentions in response.json()["error"]


def test_bad_json_is_a_400(fp: FaultProxy) -> None:
    response = fp.http.post(fp.url + "/proxies", data=b"{nope", timeout=TIMEOUT_S)
    assert response.status_code == 400 and "bad request body" in response.json()["error"]


def test_reset_enables_all_and_removes_toxics(fp: FaultProxy, echo_port: int) -> None:
    fp.create("a", echo_port, enabled=False)
    fp.create("b", echo_port)
    _latency(fp, "b", 100)
    assert fp.call("POST", "/reset").status_code == 204
    proxies = fp.call("GET", "/proxies").json()
    assert all(p["enabled"] and p["toxics"] == [] for p in proxies.values())
    with connect(listen_port(proxies["a"])) as sock:
        echo(sock)


def _link_bytes(fp: FaultProxy, proxy: str, upstream_port: int) -> dict[str, float]:
    """Toxiproxy's byte counters of one proxy by ``<received|sent>/<direction>``, with
    the labels Toxiproxy gives them."""
    found = {}
    for line in fp.call("GET", "/metrics").text.splitlines():
        for metric in ("received", "sent"):
            for direction in ("upstream", "downstream"):
                if (line.startswith(f"toxiproxy_proxy_{metric}_bytes_total{{")
                        and f'direction="{direction}"' in line and f'proxy="{proxy}"' in line
                        and 'listener="127.0.0.1:' in line
                        and f'upstream="127.0.0.1:{upstream_port}"' in line):
                    found[f"{metric}/{direction}"] = float(line.rsplit(" ", 1)[1])
    return found


def test_version_and_metrics(fp: FaultProxy, echo_port: int) -> None:
    """Toxiproxy's byte counters, which probes.network.link_traffic reads, under the
    same names and labels, once a connection has ended (Toxiproxy 2.5 adds a
    connection's bytes only then). Toxiproxy 2.5 answers /version in plain text, the
    fault proxy in JSON, as releases after 2.5 do."""
    assert fp.call("GET", "/version").status_code == 200
    with connect(listen_port(fp.create("m", echo_port))) as sock:
        echo(sock, b"x" * 1000)
    expected = {f"{m}/{d}": 1000.0 for m in ("received", "sent")
                for d in ("upstream", "downstream")}
    deadline = time.monotonic() + 2.0
    while (found := _link_bytes(fp, "m", echo_port)) != expected:
        assert time.monotonic() < deadline, found
        time.sleep(0.05)


def test_bytes_count_while_the_connection_is_open(own_fp: FaultProxy, echo_port: int) -> None:
    """The fault proxy counts bytes as they pass (Toxiproxy 2.5: only at the end)."""
    with connect(listen_port(own_fp.create("live", echo_port))) as sock:
        echo(sock, b"x" * 1000)
        assert _link_bytes(own_fp, "live", echo_port)["sent/downstream"] == 1000


def test_own_gauges_and_json_version(own_fp: FaultProxy, echo_port: int) -> None:
    assert "version" in own_fp.call("GET", "/version").json()
    own_fp.create("m", echo_port)
    _latency(own_fp, "m", 10)
    text = own_fp.call("GET", "/metrics").text
    assert 'faultproxy_active_toxics{proxy="m"} 1.0' in text
    assert 'faultproxy_proxy_enabled{proxy="m"} 1.0' in text


def test_browsers_are_refused(fp: FaultProxy) -> None:
    response = fp.http.get(fp.url + "/proxies", headers={"User-Agent": "Mozilla/5.0"})
    assert response.status_code == 403


# --- start-up config -----------------------------------------------------------------


@pytest.mark.parametrize("kind", IMPLEMENTATIONS)
def test_config_file_creates_proxies(tmp_path: Path, echo_port: int, kind: str) -> None:
    """The file the lab writes (proxies.json) starts either implementation."""
    config = [
        {"name": "on", "listen": "127.0.0.1:0", "upstream": f"127.0.0.1:{echo_port}"},
        {
            "name": "off",
            "listen": "127.0.0.1:0",
            "upstream": f"127.0.0.1:{echo_port}",
            "enabled": False,
        },
    ]
    path = tmp_path / "proxies.json"
    path.write_text(json.dumps(config))
    if kind == "toxiproxy":
        other = start_toxiproxy(tmp_path / "stderr.log", go_program(TOXIPROXY),
                                "-config", str(path))
    else:
        other = start_proxy(tmp_path / "stderr.log", "--config", str(path))
    try:
        proxies = other.call("GET", "/proxies").json()
        assert proxies["on"]["enabled"] is True and proxies["off"]["enabled"] is False
        with connect(listen_port(proxies["on"])) as sock:
            echo(sock)
    finally:
        stop_proxy(other)


def test_populate_creates_and_keeps_matching_proxies(fp: FaultProxy, echo_port: int) -> None:
    existing = fp.create("keep", echo_port)
    body = [
        {"name": "keep", "listen": existing["listen"], "upstream": existing["upstream"]},
        {"name": "new", "upstream": f"127.0.0.1:{echo_port}"},
    ]
    response = fp.call("POST", "/populate", body)
    assert response.status_code == 201
    answered = {p["name"]: p for p in response.json()["proxies"]}
    assert answered["new"]["enabled"] is True
    # Toxiproxy answers a kept proxy with the copy it did not use (enabled false);
    # what counts is what runs:
    proxies = fp.call("GET", "/proxies").json()
    assert proxies["keep"] == existing and proxies["new"] == answered["new"]
    with connect(listen_port(proxies["new"])) as sock:
        echo(sock)
    assert fp.call("POST", "/populate", [{"name": "x"}]).status_code == 400
