"""Chaos Mesh objects in the service's namespace through the API server (I/O): whether
Chaos Mesh is served, create, delete and list gameday's objects. The objects themselves
are built by :mod:`gameday.targets.kubernetes.chaosmesh` (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kubernetes.client import ApiClient, CustomObjectsApi

from gameday.contract import ConfigError, GamedayError, InjectionError
from gameday.targets.kubernetes import chaosmesh as cm
from gameday.targets.kubernetes.api import API_ERRORS, describe, raise_as

__all__ = ["ChaosObjects"]


def _status(exc: BaseException) -> int | None:
    return getattr(exc, "status", None)


@dataclass(frozen=True)
class ChaosObjects:
    """gameday's Chaos Mesh objects in ``namespace``; every call times out after
    ``timeout_s``."""

    api: ApiClient
    namespace: str
    timeout_s: float

    @property
    def _custom(self) -> CustomObjectsApi:
        return CustomObjectsApi(self.api)

    def _discover(self) -> tuple[set[str], str]:
        """The ``chaos-mesh.org/v1alpha1`` resources the API server serves (none when it
        answers 404: the group is not served), and why it could not tell ('' if it could)."""
        try:
            answer = self._custom.get_api_resources(cm.GROUP, cm.VERSION,
                                                    _request_timeout=self.timeout_s)
        except API_ERRORS as exc:
            if _status(exc) == 404:
                return set(), ""
            return set(), f"API discovery of {cm.API_VERSION} failed: {describe(exc)}"
        return {r.name for r in answer.resources or []}, ""

    def unsupported(self) -> dict[str, str]:
        """The faults Chaos Mesh cannot inject here, with why (API discovery)."""
        served, why = self._discover()
        return cm.unsupported(served, why)

    def _absent(self, exc: BaseException, plural: str) -> bool:
        """Whether a failed call on ``plural`` means there is nothing of it: a 404, or a
        403 (a Role from before Chaos Mesh support) where Chaos Mesh is not installed."""
        if _status(exc) == 403:
            served, why = self._discover()
            return not why and plural not in served
        return _status(exc) == 404

    def create(self, body: dict[str, Any], *, exists_ok: bool) -> None:
        """Create ``body``; when one of its name is there already, nothing (``exists_ok``)
        or ConfigError saying to undo it first."""
        plural = cm.plural(body)
        name = body["metadata"]["name"]
        try:
            self._custom.create_namespaced_custom_object(
                cm.GROUP, cm.VERSION, self.namespace, plural, body,
                _request_timeout=self.timeout_s)
        except API_ERRORS as exc:
            if _status(exc) != 409:
                raise_as(InjectionError, f"cannot create {body['kind']} {name} in "
                                         f"{self.namespace}", exc)
            if not exists_ok:
                raise ConfigError(f"{body['kind']} {name} is in place already: undo that "
                                  "fault first") from exc

    def delete(self, plural: str, name: str) -> bool:
        """Delete the object ``name``; False when it was not there (or Chaos Mesh is not
        installed: nothing of it can be there)."""
        try:
            self._custom.delete_namespaced_custom_object(
                cm.GROUP, cm.VERSION, self.namespace, plural, name,
                _request_timeout=self.timeout_s)
        except API_ERRORS as exc:
            if self._absent(exc, plural):
                return False
            raise_as(InjectionError, f"cannot delete {plural} {name} in {self.namespace}", exc)
        return True

    def listed(self, plural: str, error: type[GamedayError]) -> list[dict[str, Any]]:
        """gameday's objects of ``plural`` (by the fault label); none when Chaos Mesh is
        not installed."""
        try:
            answer = self._custom.list_namespaced_custom_object(
                cm.GROUP, cm.VERSION, self.namespace, plural, label_selector=cm.FAULT_LABEL,
                _request_timeout=self.timeout_s)
        except API_ERRORS as exc:
            if self._absent(exc, plural):
                return []
            raise_as(error, f"cannot list {plural} in {self.namespace}", exc)
        return list(answer.get("items") or []) if isinstance(answer, dict) else []

    def named(self, plural: str, name: str, error: type[GamedayError]) -> dict[str, Any] | None:
        """gameday's object ``name`` of ``plural``, with its status; None when it is not
        there (found by listing: the runner's Role lists, it does not get)."""
        return next((item for item in self.listed(plural, error)
                     if (item.get("metadata") or {}).get("name") == name), None)

    def everything(self, error: type[GamedayError]) -> list[dict[str, Any]]:
        """Every gameday Chaos Mesh object in the namespace, of every kind it creates."""
        return [item for plural in cm.PLURALS for item in self.listed(plural, error)]
