"""Kubernetes API plumbing of the kubernetes target: clients, error words, deadlines."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from typing import NoReturn, TypeVar

import urllib3
from chaosk8s import create_k8s_api_client
from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException
from pydantic import ValidationError

from gameday.contract import ConfigError, GamedayError

__all__ = ["API_ERRORS", "api_client", "call_with_deadline", "describe", "raise_as"]

T = TypeVar("T")

# What a Kubernetes API call raises: an HTTP error status, no connection (urllib3 after
# its retries) or an answer that is not the expected object.
API_ERRORS = (ApiException, urllib3.exceptions.HTTPError, ValidationError)


@contextlib.contextmanager
def api_client() -> Iterator[ApiClient]:
    """An API client with the credentials chaostoolkit-kubernetes would use."""
    api = create_k8s_api_client()
    try:
        yield api
    finally:
        api.close()


def describe(exc: BaseException) -> str:
    """A one-line account of a failed API call."""
    if isinstance(exc, ApiException):
        return f"HTTP {exc.status} {exc.reason}: {(exc.body or '').strip()[:300]}"
    return f"{type(exc).__name__}: {exc}"


def raise_as(error: type[GamedayError], what: str, exc: BaseException) -> NoReturn:
    """Raise ``error`` for ``exc``; a 400 or 422 (bad selector or body) is a ConfigError."""
    if isinstance(exc, ApiException) and exc.status in (400, 422):
        raise ConfigError(f"{what}: the API server refused it: {describe(exc)}") from exc
    raise error(f"{what}: {describe(exc)}") from exc


def call_with_deadline(call: Callable[[], T], timeout_s: float, what: str) -> T:
    """Run ``call`` (which has no timeout of its own) and wait at most ``timeout_s``.

    The call runs in a daemon thread; if it is late, TimeoutError is raised and the
    thread is abandoned (it cannot be cancelled).
    """
    outcome: list[T] = []
    failure: list[BaseException] = []

    def run() -> None:
        try:
            outcome.append(call())
        except BaseException as exc:
            failure.append(exc)

    thread = threading.Thread(target=run, name=f"gameday-{what}", daemon=True)
    thread.start()
    thread.join(timeout_s)
    if failure:
        raise failure[0]
    if not outcome:
        raise TimeoutError(f"{what} did not finish within {timeout_s:g} s (it may still complete)")
    return outcome[0]
