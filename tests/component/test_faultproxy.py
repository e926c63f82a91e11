"""The fault proxy's API and proxies, driven through its Toxiproxy API (real process).

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
    stop_proxy,
)


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


def test_update_upstream_and_delete(fp: FaultProxy, echo_port: int, http_port: int) -> None:
    proxy = fp.create("p", echo_port)
    moved = fp.call("PATCH", "/proxies/p", {"upstream": f"127.0.0.1:{http_port}"}).json()
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
        "name": "timeout_upstream",
        "type": "timeout",
        "stream": "upstream",
        "toxicity": 1.0,
        "attributes": {"timeout": 0},
    }


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
        ("POST", "/proxies", {"name": "q", "upstream": "nowhere"}, 400, "upstream"),
        ("POST", "/proxies", {"name": "q", "upstream": "h:1", "listen": "x"}, 400, "listen"),
        ("POST", "/proxies", {"name": "q", "upstream": "h:1", "enabled": 1}, 400, "enabled"),
        ("POST", "/proxies/p/toxics", {"type": "bogus"}, 400, "latency"),
        ("POST", "/proxies/p/toxics", {"type": "latency", "stream": "sideways"}, 400, "stream"),
        ("POST", "/proxies/p/toxics", {"type": "latency", "toxicity": 2}, 400, "toxicity"),
        (
            "POST",
            "/proxies/p/toxics",
            {"type": "latency", "attributes": {"latency": -1}},
            400,
            "latency",
        ),
        ("POST", "/proxies/p/toxics", {"type": "latency", "toxicity": -0.1}, 400, "toxicity"),
        ("POST", "/proxies/p/toxics", {"type": "latency", "stream": 3}, 400, "stream"),
        ("POST", "/proxies/p/toxics", {"type": "bandwidth", "attributes": {"rat": 1}}, 400, "rat"),
        ("POST", "/proxies/p/toxics", {"type": "slicer"}, 400, "average_size"),
        ("POST", "/proxies/p/toxics", {"type": "latency", "attributes": [1]}, 400, "object"),
        ("POST", "/proxies/p/toxics", [], 400, "object"),
        ("POST", "/proxies/p/toxics/t", {"attributes": {"jitter": -2}}, 400, "jitter"),
        ("POST", "/proxies/nope/toxics", {"type": "latency"}, 404, "proxy not found"),
        ("POST", "/proxies", {"name": "..", "upstream": "h:1"}, 400, "name"),
    ],
)
def test_errors(fp: FaultProxy, echo_port: int, case: tuple[str, str, Any, int, str]) -> None:
    method, path, body, status, mentions = case
    fp.create("p", echo_port)
    assert _latency(fp, "p", 0, name="t").ok
    response = fp.call(method, path, body)
    assert response.status_code == status
    assert response.json()["status"] == status and mentions in response.json()["error"]


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


def test_version_and_metrics(fp: FaultProxy, echo_port: int) -> None:
    assert "version" in fp.call("GET", "/version").json()
    with connect(listen_port(fp.create("m", echo_port))) as sock:
        echo(sock, b"x" * 1000)
    _latency(fp, "m", 10)
    text = fp.call("GET", "/metrics").text
    assert 'faultproxy_active_toxics{proxy="m"} 1.0' in text
    assert 'faultproxy_proxy_enabled{proxy="m"} 1.0' in text
    for metric in ("received", "sent"):
        for direction in ("upstream", "downstream"):
            line = next(
                x
                for x in text.splitlines()
                if x.startswith(f"toxiproxy_proxy_{metric}_bytes_total{{")
                and f'direction="{direction}"' in x
                and 'proxy="m"' in x
            )
            assert line.endswith(" 1000.0")


def test_browsers_are_refused(fp: FaultProxy) -> None:
    response = fp.http.get(fp.url + "/proxies", headers={"User-Agent": "Mozilla/5.0"})
    assert response.status_code == 403


# --- start-up config -----------------------------------------------------------------


def test_config_file_creates_proxies(tmp_path: Path, echo_port: int) -> None:
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
    proxies = {p["name"]: p for p in response.json()["proxies"]}
    assert proxies["keep"] == existing and proxies["new"]["enabled"] is True
    with connect(listen_port(proxies["new"])) as sock:
        echo(sock)
    assert fp.call("POST", "/populate", [{"name": "x"}]).status_code == 400
