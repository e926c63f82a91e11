"""The admin token's pure parts: reading it from the environment, the admin APIs'
policy, keeping it out of reprs, and the search that proves it is written nowhere (the
lab itself with a token: tests/lab/test_security.py)."""

from __future__ import annotations

import base64
import secrets
from pathlib import Path
from typing import Any

import pytest
from support.secrets import files, holders, needles

from gameday.clients.http import admin_headers
from gameday.contract import ConfigError, admin_token
from lab.admin_auth import AdminAuth

# --- pure parts ----------------------------------------------------------------------


def test_admin_token_comes_from_the_environment() -> None:
    assert admin_token({}) is None
    assert admin_token({"GAMEDAY_ADMIN_TOKEN": ""}) is None
    assert admin_token({"GAMEDAY_ADMIN_TOKEN": "  "}) is None
    assert admin_token({"GAMEDAY_ADMIN_TOKEN": " s3cr=t/+~ "}) == "s3cr=t/+~"
    assert admin_headers({"GAMEDAY_ADMIN_TOKEN": "abc"}) == {"Authorization": "Bearer abc"}
    assert admin_headers({}) == {}


@pytest.mark.parametrize("bad", ["two words", "tab\there", "caf\u00e9", "nl\nx"])
def test_an_unusable_token_is_refused_without_quoting_it(bad: str) -> None:
    with pytest.raises(ConfigError) as caught:
        admin_token({"GAMEDAY_ADMIN_TOKEN": bad})
    assert bad.strip() not in str(caught.value)
    assert "GAMEDAY_ADMIN_TOKEN" in str(caught.value)


@pytest.mark.parametrize(
    ("method", "path", "authorization", "allowed"),
    [
        ("GET", "/proxies", "Bearer tok-1", True),
        ("POST", "/proxies", "bearer tok-1", True),
        ("POST", "/proxies", "Bearer  tok-1 ", True),
        ("GET", "/proxies", None, False),
        ("GET", "/proxies", "", False),
        ("GET", "/proxies", "Bearer", False),
        ("GET", "/proxies", "Bearer tok-2", False),
        ("GET", "/proxies", "Bearer tok-1x", False),
        ("GET", "/proxies", "Basic tok-1", False),
        ("GET", "/proxies", "tok-1", False),
        ("GET", "/proxies", "Bearer t\u00f6k-1", False),
        ("GET", "/proxies", "Bearer \udcff", False),
        ("GET", "/metrics", None, True),
        ("HEAD", "/version", None, True),
        ("POST", "/metrics", None, False),
        ("GET", "/metrics/x", None, False),
    ],
)
def test_policy(method: str, path: str, authorization: str | None, allowed: bool) -> None:
    auth = AdminAuth("tok-1", frozenset({"/metrics", "/version"}))
    assert auth.allows(method, path, authorization) is allowed
    assert AdminAuth(None).allows(method, path, authorization) is True


def test_the_token_is_not_in_a_repr() -> None:
    assert "tok-1" not in repr(AdminAuth("tok-1"))


@pytest.mark.parametrize("prefix", [b"", b"a", b"ab", b"Authorization: Bearer "])
@pytest.mark.parametrize("encode", [base64.b64encode, base64.urlsafe_b64encode])
def test_the_search_finds_the_token_in_any_form(tmp_path: Path, prefix: bytes,
                                                encode: Any) -> None:
    """The search itself works: plain, as a header, inside base64 at any alignment."""
    token = f"gdtok-{secrets.token_hex(20)}-Zq9"
    (tmp_path / "b64").write_bytes(b"junk " + encode(prefix + token.encode() + b"\n") + b" x")
    (tmp_path / "plain").write_bytes(b"Authorization: Bearer " + token.encode())
    (tmp_path / "clean").write_bytes(b"nothing here " + token.encode()[:-1])
    found = holders(files([tmp_path]), needles(token))
    assert {Path(line.split(" ")[0]).name for line in found} == {"b64", "plain"}


