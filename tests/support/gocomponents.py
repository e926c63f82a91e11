"""The Go programs of lab/gocomponents.py in the tests: the built program, or a skip (a
failure under ``make test``) naming why it is missing."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import pytest

from lab.gocomponents import (
    GoComponent,
    binary_path,
    is_present,
    missing_reason,
    recorded_error,
    required,
)


def absent_outcome(component: GoComponent, env: Mapping[str, str]) -> tuple[bool, str]:
    """For a component whose program is missing: (fail rather than skip, the reason)."""
    return required(env), missing_reason(component, env, recorded_error(component, env))


def go_program(component: GoComponent) -> Path:
    """The component's built program (or fetched file); when it is missing, the calling
    test is skipped with the reason, or fails with it when ``GAMEDAY_REQUIRE_GO_COMPONENTS=1``."""
    path = binary_path(component, os.environ)
    if is_present(component, path):
        return path
    fail, reason = absent_outcome(component, os.environ)
    if fail:
        pytest.fail(f"{reason} (GAMEDAY_REQUIRE_GO_COMPONENTS=1: it must be there)",
                    pytrace=False)
    pytest.skip(reason)
