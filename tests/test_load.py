"""The open-model load generator on real sockets (a plain aiohttp server on port 0)."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest
from aiohttp import web

from gameday.load import LoadSettings, run_load


async def _start(handler: Any) -> tuple[web.AppRunner, str]:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, f"http://127.0.0.1:{port}"


async def _status_by_path(request: web.Request) -> web.Response:
    status = int(request.path.strip("/") or 200)
    return web.json_response({}, status=status)




def _run(settings: LoadSettings) -> dict[str, Any]:
    return asyncio.run(run_load(settings))


def test_rate_and_ok_classification() -> None:
    async def scenario() -> dict[str, Any]:
        runner, url = await _start(_status_by_path)
        try:
            return await run_load(LoadSettings(url=f"{url}/200", rate_rps=100, duration_s=2))
        finally:
            await runner.cleanup()

    summary = asyncio.run(scenario())
    assert summary["sent"] == 200
    assert summary["ok"] == 200
    assert summary["errors"] == {"5xx": 0, "timeout": 0, "connection": 0}
    assert 90 <= summary["achieved_rps"] <= 105
    assert len(summary["timeline"]) == 2
    assert summary["latency_ms"]["p95"] < 200


def test_5xx_and_4xx_are_classified() -> None:
    async def scenario() -> tuple[dict[str, Any], dict[str, Any]]:
        runner, url = await _start(_status_by_path)
        try:
            bad = await run_load(LoadSettings(url=f"{url}/503", rate_rps=50, duration_s=1))
            rejected = await run_load(LoadSettings(url=f"{url}/422", rate_rps=50, duration_s=1))
            return bad, rejected
        finally:
            await runner.cleanup()

    bad, rejected = asyncio.run(scenario())
    assert bad["errors"]["5xx"] == 50 and bad["ok"] == 0 and bad["error_rate"] == 1.0
    assert rejected["ok"] == 50 and rejected["error_rate"] == 0.0


def test_refused_connections_are_classified() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    summary = _run(LoadSettings(url=f"http://127.0.0.1:{port}/", rate_rps=20, duration_s=1))
    assert summary["errors"]["connection"] == 20


def test_a_stalled_server_shows_as_latency_not_as_missing_requests() -> None:
    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(0.5)
        return web.json_response({})

    async def scenario() -> dict[str, Any]:
        runner, url = await _start(slow)
        try:
            return await run_load(LoadSettings(url=url, rate_rps=50, duration_s=2))
        finally:
            await runner.cleanup()

    summary = asyncio.run(scenario())
    assert summary["sent"] == 100
    assert summary["latency_ms"]["p50"] >= 480


def test_timeouts_are_classified() -> None:
    async def hang(request: web.Request) -> web.Response:
        await asyncio.sleep(5)
        return web.json_response({})

    async def scenario() -> dict[str, Any]:
        runner, url = await _start(hang)
        try:
            settings = LoadSettings(url=url, rate_rps=10, duration_s=1, timeout_s=0.3)
            return await run_load(settings)
        finally:
            await runner.cleanup()

    summary = asyncio.run(scenario())
    assert summary["errors"]["timeout"] == 10


@pytest.mark.parametrize("kwargs", [{"rate_rps": 0}, {"duration_s": -1}, {"method": "PUT"}])
def test_bad_settings_are_refused(kwargs: dict[str, Any]) -> None:
    base: dict[str, Any] = {"url": "http://127.0.0.1:1/", "rate_rps": 1, "duration_s": 1}
    with pytest.raises(ValueError):
        LoadSettings(**{**base, **kwargs})
