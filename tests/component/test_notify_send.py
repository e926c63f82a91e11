"""``--notify``: messages reach a real HTTP receiver; a receiver that refuses, hangs or is
not there never fails the caller, and the webhook's secret path is never printed."""

from __future__ import annotations

import socket
import time

import pytest
from support.receiver import receiver

from gameday.engine.notify import Notifier


def test_a_message_is_posted_as_json() -> None:
    with receiver() as got:
        assert Notifier(got.url).send({"text": "hi", "gameday": {"event": "start"}})
    assert got.messages == [{"text": "hi", "gameday": {"event": "start"}}]
    assert got.paths == ["/services/T1/B2/hook-secret"]


def test_a_refusal_is_reported_and_returns(capsys: pytest.CaptureFixture[str]) -> None:
    with receiver() as got:
        got.status = 500
        assert not Notifier(got.url).send({"text": "x", "gameday": {"event": "end"}})
    err = capsys.readouterr().err
    assert "notification 'end' to http://127.0.0.1 was refused: HTTP 500" in err
    assert "hook-secret" not in err and "the game day goes on" in err


def test_nothing_listening_is_reported(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    assert not Notifier(f"http://127.0.0.1:{port}/hook-secret").send({"text": "x"})
    err = capsys.readouterr().err
    assert "notification '?' to http://127.0.0.1 failed" in err and "hook-secret" not in err


def test_a_hanging_receiver_costs_at_most_the_timeout(capsys: pytest.CaptureFixture[str]) -> None:
    with receiver() as got:
        got.delay_s = 3.0
        started = time.monotonic()
        assert not Notifier(got.url, timeout_s=0.5).send({"text": "x"})
        assert time.monotonic() - started < 2.5
    assert "failed" in capsys.readouterr().err
