"""The fault proxy's admin side: the API on 127.0.0.1, the admin token, and bad input
that used to be a 500 (listen addresses that cannot be bound, odd port digits).

Real processes on 127.0.0.1, as in test_faultproxy.py.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from support.faultproxy import (
    ROOT,
    TIMEOUT_S,
    FaultProxy,
    connect,
    echo,
    listen_port,
    proxy_env,
    start_proxy,
    stop_proxy,
)

from lab.faultproxy.__main__ import _parse_args
from lab.faultproxy.settings import Address, ServerSettings

TOKEN = "fp-test-token-4c1d"


@pytest.fixture
def fp(own_fp: FaultProxy) -> FaultProxy:
    """lab.faultproxy only: this file checks what it does beyond Toxiproxy (a token;
    listen addresses it cannot use are a 4xx and change nothing, where Toxiproxy
    answers 500 and may leave the proxy disabled)."""
    return own_fp


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FaultProxy]:
    """A fault proxy started with an admin token; its session sends the token."""
    proxy = start_proxy(tmp_path_factory.mktemp("secured") / "stderr.log", token=TOKEN)
    yield proxy
    stop_proxy(proxy)


def _bare(method: str, url: str, headers: dict[str, str] | None = None,
          body: Any = None) -> requests.Response:
    """A request without the secured session's token."""
    return requests.request(method, url, headers=headers, json=body, timeout=TIMEOUT_S)


# --- where it listens, and its settings ------------------------------------------------


def test_api_defaults_to_loopback() -> None:
    settings, _ = _parse_args([])
    assert settings.api == Address("127.0.0.1", 8474)


def test_settings_never_show_the_token() -> None:
    settings = ServerSettings(api=Address("127.0.0.1", 0), admin_token="hush-123")
    assert "hush-123" not in repr(settings) and "hush-123" not in str(settings)


def test_an_unusable_token_stops_it_with_exit_2() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "lab.faultproxy", "--port", "0"], cwd=ROOT,
        env=proxy_env("two words"), capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert done.returncode == 2 and "GAMEDAY_ADMIN_TOKEN" in done.stderr
    assert "two words" not in done.stderr + done.stdout


# --- the admin token ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [("GET", "/proxies", None), ("POST", "/proxies", {"name": "x", "upstream": "h:1"}),
     ("POST", "/populate", []), ("POST", "/reset", None), ("GET", "/proxies/x", None),
     ("DELETE", "/proxies/x", None), ("POST", "/proxies/x/toxics", {"type": "latency"}),
     ("GET", "/nowhere", None), ("POST", "/version", None)],
)  # fmt: skip
def test_token_required(secured: FaultProxy, method: str, path: str, body: Any) -> None:
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": TOKEN}):
        response = _bare(method, secured.url + path, headers, body)
        assert response.status_code == 401, response.text
        assert response.headers["WWW-Authenticate"].startswith('Bearer realm="gameday"')
        answer = response.json()
        assert answer["status"] == 401 and "GAMEDAY_ADMIN_TOKEN" in answer["error"]
        assert "nope" not in response.text and TOKEN not in response.text
    assert secured.call("GET", "/proxies").json() == {}, "nothing was created"


def test_the_token_opens_the_api(secured: FaultProxy, echo_port: int) -> None:
    proxy = secured.create("p", echo_port)
    assert secured.toxic("p", "latency", attributes={"latency": 1})["name"] == "latency_downstream"
    with connect(listen_port(proxy)) as sock:
        echo(sock)
    assert secured.call("POST", "/reset").status_code == 204
    assert secured.call("DELETE", "/proxies/p").status_code == 204


def test_version_and_metrics_need_no_token(secured: FaultProxy) -> None:
    assert _bare("GET", secured.url + "/version").status_code == 200
    assert _bare("HEAD", secured.url + "/metrics").status_code == 200
    assert "faultproxy" in _bare("GET", secured.url + "/metrics").text


def test_chaostoolkit_toxiproxy_is_refused_with_a_token(secured: FaultProxy,
                                                        echo_port: int) -> None:
    """chaostoolkit-toxiproxy sends no Authorization header, so with a token set it
    cannot see or change anything (the project's own actions send the token)."""
    from chaostoxi.proxy.probes import proxy_exist  # noqa: PLC0415

    secured.create("seen", echo_port)
    try:
        configuration = {"toxiproxy_host": "127.0.0.1", "toxiproxy_port": str(secured.port)}
        assert proxy_exist("seen", configuration) is False
    finally:
        assert secured.call("DELETE", "/proxies/seen").status_code == 204


# --- bad input that used to be a 500 ------------------------------------------------------


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A port something else listens on."""
    with socket.create_server(("127.0.0.1", 0)) as sock:
        yield sock.getsockname()[1]


@pytest.mark.parametrize(
    "case",
    [("BUSY", 409, "in use"), ("192.0.2.1:4000", 400, "assign"),
     ("127.0.0.1:\u00b2", 400, "listen"), ("127.0.0.1:\u0663", 400, "listen"),
     ("[::1:4000", 400, "listen"), ("::1]:4000", 400, "listen")],
)  # fmt: skip
def test_unusable_listen_addresses_are_4xx(
    fp: FaultProxy, echo_port: int, busy_port: int, case: tuple[str, int, str]
) -> None:
    listen, status, mentions = case
    listen = listen.replace("BUSY", f"127.0.0.1:{busy_port}")
    body = {"name": "q", "listen": listen, "upstream": f"127.0.0.1:{echo_port}"}
    response = fp.call("POST", "/proxies", body)
    assert response.status_code == status, response.text
    assert response.json()["status"] == status and mentions in response.json()["error"]
    assert fp.call("GET", "/proxies/q").status_code == 404


def test_a_failed_update_leaves_the_proxy_as_it_was(
    fp: FaultProxy, echo_port: int, busy_port: int
) -> None:
    before = fp.create("p", echo_port)
    with connect(listen_port(before)) as sock:
        echo(sock)
        moved = fp.call("POST", "/proxies/p", {"listen": f"127.0.0.1:{busy_port}"})
        assert moved.status_code == 409, moved.text
    assert fp.call("GET", "/proxies/p").json() == before
    with connect(listen_port(before)) as sock:
        echo(sock)


def test_populate_with_a_busy_port_is_a_409_and_keeps_the_proxy(
    fp: FaultProxy, echo_port: int, busy_port: int
) -> None:
    before = fp.create("z", echo_port)
    secured_toxic = fp.toxic("z", "latency", attributes={"latency": 1})
    body = [{"name": "z", "listen": f"127.0.0.1:{busy_port}",
             "upstream": f"127.0.0.1:{echo_port}"}]  # fmt: skip
    assert fp.call("POST", "/populate", body).status_code == 409
    assert fp.call("GET", "/proxies/z").json() == {**before, "toxics": [secured_toxic]}
    with connect(listen_port(before)) as sock:
        echo(sock)


def test_a_config_file_with_a_busy_port_is_exit_2(tmp_path: Path, echo_port: int,
                                                  busy_port: int) -> None:
    config = tmp_path / "proxies.json"
    config.write_text(f'[{{"name": "a", "listen": "127.0.0.1:{busy_port}", '
                      f'"upstream": "127.0.0.1:{echo_port}"}}]')
    done = subprocess.run(
        [sys.executable, "-m", "lab.faultproxy", "--port", "0", "--config", str(config)],
        cwd=ROOT, env=proxy_env(), capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert done.returncode == 2 and "in use" in done.stderr
