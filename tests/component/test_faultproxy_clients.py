"""The unchanged Toxiproxy clients against the fault proxy: chaostoolkit-toxiproxy
(`chaostoxi`) and toxiproxy-python (`toxiproxy`), for proxies and every toxic type,
each toxic's effect checked briefly over TCP (the precise measurements are in
test_faultproxy_toxics.py).
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import toxiproxy
from chaostoxi.proxy import actions as proxy_actions
from chaostoxi.proxy import probes as proxy_probes
from chaostoxi.toxic import actions as toxic_actions
from support.faultproxy import (
    FaultProxy,
    closed_by_peer,
    connect,
    echo,
    listen_port,
    recv_until_closed,
)
from toxiproxy.api import APIConsumer
from toxiproxy.exceptions import InvalidToxic, NotFound, ProxyExists

# --- what each toxic type does, briefly ----------------------------------------------


def _latency(sock: socket.socket) -> None:
    assert echo(sock) >= 0.05


def _bandwidth(sock: socket.socket) -> None:
    assert echo(sock, os.urandom(20_000)) >= 0.18  # 100 KB/s


def _slow_close(sock: socket.socket) -> None:
    echo(sock)
    started = time.perf_counter()
    sock.shutdown(socket.SHUT_WR)
    assert recv_until_closed(sock) == b""
    assert time.perf_counter() - started >= 0.2


def _timeout(sock: socket.socket) -> None:
    sock.sendall(b"dropped")
    started = time.perf_counter()
    assert recv_until_closed(sock) == b""
    assert time.perf_counter() - started >= 0.09


def _reset_peer(sock: socket.socket) -> None:
    sock.sendall(b"hello")
    with pytest.raises(ConnectionResetError):
        sock.recv(100)


def _slicer(sock: socket.socket) -> None:
    sock.sendall(b"x" * 80)
    sizes = []
    while sum(sizes) < 80:
        sizes.append(len(sock.recv(100)))
    assert len(sizes) >= 4 and all(size % 10 == 0 for size in sizes), sizes  # 10-byte pieces


def _limit_data(sock: socket.socket) -> None:
    sock.sendall(b"0123456789")
    assert recv_until_closed(sock) == b"01234"


EFFECTS: dict[str, tuple[dict[str, int], Callable[[socket.socket], None]]] = {
    "latency": ({"latency": 50, "jitter": 0}, _latency),
    "bandwidth": ({"rate": 100}, _bandwidth),
    "slow_close": ({"delay": 200}, _slow_close),
    "timeout": ({"timeout": 100}, _timeout),
    "reset_peer": ({"timeout": 0}, _reset_peer),
    "slicer": ({"average_size": 10, "size_variation": 0, "delay": 10_000}, _slicer),
    "limit_data": ({"bytes": 5}, _limit_data),
}
"""Attributes of each toxic type, and a check of its effect on a fresh connection."""


# --- chaostoolkit-toxiproxy ----------------------------------------------------------


@pytest.fixture
def ctk(fp: FaultProxy, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """chaostoxi configuration; create_proxy writes <name>_PORT to os.environ, restored."""
    for name in ("ctk_PORT", "other_PORT"):
        monkeypatch.setenv(name, "")
    return {"toxiproxy_host": "127.0.0.1", "toxiproxy_port": fp.port}


def _ctk_proxy(cfg: dict[str, Any], echo_port: int, name: str = "ctk") -> int:
    assert proxy_actions.create_proxy(
        proxy_name=name,
        upstream_host="127.0.0.1",
        upstream_port=echo_port,
        listen_host="127.0.0.1",
        listen_port=0,
        configuration=cfg,
    )
    return int(cfg[f"{name}_PORT"])


def _ctk_create(kind: str, attributes: dict[str, int], cfg: dict[str, Any]) -> bool:
    """The dedicated chaostoxi action of each type (reset_peer has only the generic one)."""
    common: dict[str, Any] = {"for_proxy": "ctk", "toxic_name": "t", "configuration": cfg}
    actions: dict[str, Callable[[], Any]] = {
        "latency": lambda: toxic_actions.create_latency_toxic(**common, **attributes),
        "bandwidth": lambda: toxic_actions.create_bandwith_degradation_toxic(
            **common, rate=attributes["rate"]
        ),
        "slow_close": lambda: toxic_actions.create_slow_connection_close_toxic(
            **common, delay=attributes["delay"]
        ),
        "timeout": lambda: toxic_actions.create_timeout_toxic(
            **common, timeout=attributes["timeout"]
        ),
        "slicer": lambda: toxic_actions.create_slicer_toxic(**common, **attributes),
        "limit_data": lambda: toxic_actions.create_limiter_toxic(
            **common, bytes_limit=attributes["bytes"]
        ),
        "reset_peer": lambda: toxic_actions.create_toxic(
            **common, toxic_type="reset_peer", attributes=attributes
        ),
    }
    return bool(actions[kind]())


def _listen_port_of(fp: FaultProxy, name: str) -> int:
    return listen_port(fp.call("GET", f"/proxies/{name}").json())


@pytest.mark.parametrize("kind", sorted(EFFECTS))
def test_chaostoolkit_toxiproxy_every_toxic(
    fp: FaultProxy, echo_port: int, ctk: dict[str, Any], kind: str
) -> None:
    attributes, effect = EFFECTS[kind]
    port = _ctk_proxy(ctk, echo_port)
    assert _ctk_create(kind, attributes, ctk)
    toxic = fp.call("GET", "/proxies/ctk/toxics/t").json()
    assert toxic == {
        "name": "t",
        "type": kind,
        "stream": "downstream",
        "toxicity": 1.0,
        "attributes": attributes,
    }
    with connect(port) as sock:
        effect(sock)
    assert toxic_actions.delete_toxic(for_proxy="ctk", toxic_name="t", configuration=ctk)
    assert fp.call("GET", "/proxies/ctk/toxics").json() == []
    with connect(port) as sock:
        echo(sock, b"clean again")


def test_chaostoolkit_toxiproxy_proxy_actions_and_probes(
    fp: FaultProxy, echo_port: int, ctk: dict[str, Any]
) -> None:
    port = _ctk_proxy(ctk, echo_port)
    assert proxy_probes.proxy_exist(proxy_name="ctk", configuration=ctk)
    assert not proxy_probes.proxy_exist(proxy_name="nope", configuration=ctk)
    assert proxy_probes.get_proxy_attribute("ctk", "enabled", configuration=ctk) is True
    with connect(port) as sock:
        echo(sock)
        assert proxy_actions.disable_proxy(proxy_name="ctk", configuration=ctk)
        assert closed_by_peer(sock)
    with pytest.raises(ConnectionRefusedError):
        connect(port)
    assert proxy_actions.enable_proxy(proxy_name="ctk", configuration=ctk)
    with connect(port) as sock:
        echo(sock)
    other = _ctk_proxy(ctk, echo_port, "other")
    assert proxy_actions.modify_proxy(
        proxy_name="ctk",
        upstream_address=f"127.0.0.1:{_listen_port_of(fp, 'other')}",
        configuration=ctk,
    )
    with connect(port) as sock:
        echo(sock)  # client -> ctk -> other -> echo
    assert _ctk_create("latency", EFFECTS["latency"][0], ctk)
    assert proxy_actions.disable_proxy(proxy_name="other", configuration=ctk)
    assert proxy_actions.reset(configuration=ctk)
    proxies = fp.call("GET", "/proxies").json()
    assert proxies["ctk"]["toxics"] == [] and proxies["other"]["enabled"] is True
    with connect(other) as sock:
        echo(sock)
    proxy_actions.delete_proxy(proxy_name="ctk", configuration=ctk)
    assert not proxy_probes.proxy_exist(proxy_name="ctk", configuration=ctk)


# --- toxiproxy-python ----------------------------------------------------------------


@pytest.fixture
def tp(fp: FaultProxy, monkeypatch: pytest.MonkeyPatch) -> Iterator[toxiproxy.Toxiproxy]:
    """toxiproxy-python pointed at the fault proxy (its address is class state: restored)."""
    monkeypatch.setattr(APIConsumer, "host", "127.0.0.1")
    monkeypatch.setattr(APIConsumer, "port", fp.port)
    yield toxiproxy.Toxiproxy()


@pytest.mark.parametrize("kind", sorted(EFFECTS))
def test_toxiproxy_python_every_toxic(tp: toxiproxy.Toxiproxy, echo_port: int, kind: str) -> None:
    attributes, effect = EFFECTS[kind]
    proxy = tp.create(upstream=f"127.0.0.1:{echo_port}", name="tp")
    proxy.add_toxic(type=kind, attributes=attributes)
    toxic = proxy.get_toxic(f"{kind}_downstream")
    assert (toxic.type, toxic.stream, toxic.toxicity) == (kind, "downstream", 1.0)
    assert toxic.attributes == attributes
    with connect(int(proxy.listen.rsplit(":", 1)[1])) as sock:
        effect(sock)
    assert proxy.destroy_toxic(f"{kind}_downstream")
    assert proxy.toxics() == {}


def test_toxiproxy_python_proxies(tp: toxiproxy.Toxiproxy, echo_port: int) -> None:
    assert tp.running() and tp.version()  # JSON here, plain text from Toxiproxy 2.5
    proxy = tp.create(upstream=f"127.0.0.1:{echo_port}", name="tp", listen="127.0.0.1:0")
    port = int(proxy.listen.rsplit(":", 1)[1])
    assert port > 0 and proxy.enabled is True
    with pytest.raises(ProxyExists):
        tp.create(upstream=f"127.0.0.1:{echo_port}", name="tp")
    assert set(tp.proxies()) == {"tp"} and tp.get_proxy("tp").upstream == proxy.upstream
    with proxy.down(), pytest.raises(ConnectionRefusedError):
        connect(port)
    with connect(port) as sock:
        echo(sock)
    proxy.add_toxic(type="latency", name="slow", stream="upstream", toxicity=0.5)
    with pytest.raises(InvalidToxic):
        proxy.add_toxic(type="nonsense")
    with pytest.raises(NotFound):
        proxy.destroy_toxic("nope")
    assert tp.reset() and proxy.toxics() == {}
    created = tp.populate([{"name": "more", "upstream": f"127.0.0.1:{echo_port}"}])
    assert [p.name for p in created] == ["more"]
    tp.destroy_all()
    assert tp.proxies() == {}
