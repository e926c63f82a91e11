"""What experiments see of gameday's probes and actions: how they fail, and discovery.

Every exported probe and action is wrapped by :func:`activity`: an error gameday raises
(a probe that cannot measure, bad input, an action that cannot inject) leaves it as one of
Chaos Toolkit's :class:`~chaoslib.exceptions.ActivityFailed` family that is also the
gameday error it was (:class:`ActivityMeasurementError` is a ``MeasurementError``...), so
Chaos Toolkit, other tools and gameday's own code all recognise it.

``chaos discover --no-install gameday`` lists every probe and action through
:func:`discover` (exported by the ``actions`` and ``probes`` packages).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from chaoslib.discovery.discover import discover_activities, initialize_discovery_result
from chaoslib.exceptions import ActivityFailed
from chaoslib.types import Discovery

from gameday.contract import ConfigError, GamedayError, InjectionError, MeasurementError

__all__ = ["ACTIVITY_MODULES", "ActivityConfigError", "ActivityGamedayError",
           "ActivityInjectionError", "ActivityMeasurementError", "activity", "discover"]

ACTIVITY_MODULES = {
    "probes.sla": "probe", "probes.breaker": "probe", "probes.replicas": "probe",
    "probes.orders": "probe", "probes.network": "probe", "probes.broker": "probe",
    "actions.network": "action", "actions.broker": "action", "actions.pods": "action",
}

P = ParamSpec("P")
R = TypeVar("R")


class ActivityGamedayError(GamedayError, ActivityFailed):  # type: ignore[misc]
    """A gameday error, as Chaos Toolkit's ActivityFailed."""


class ActivityMeasurementError(MeasurementError, ActivityFailed):  # type: ignore[misc]
    """A probe could not measure (see MeasurementError), as ActivityFailed."""


class ActivityConfigError(ConfigError, ActivityFailed):  # type: ignore[misc]
    """Bad input to a probe or action (see ConfigError), as ActivityFailed."""


class ActivityInjectionError(InjectionError, ActivityFailed):  # type: ignore[misc]
    """An action could not inject or undo a fault (see InjectionError), as ActivityFailed."""


def _as_activity_failed(exc: GamedayError) -> ActivityFailed:
    for kind, wrapped in ((MeasurementError, ActivityMeasurementError),
                          (ConfigError, ActivityConfigError),
                          (InjectionError, ActivityInjectionError)):
        if isinstance(exc, kind):
            return wrapped(str(exc))
    return ActivityGamedayError(str(exc))


def activity(func: Callable[P, R]) -> Callable[P, R]:
    """Make ``func`` a Chaos Toolkit activity: gameday errors leave it as ActivityFailed
    (their class and message kept); its signature, annotations and docstring are kept for
    discovery and argument checks."""

    @functools.wraps(func)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except ActivityFailed:
            raise
        except GamedayError as exc:
            raise _as_activity_failed(exc) from exc

    return run


def discover(discover_system: bool = True) -> Discovery:
    """Chaos Toolkit discovery: every probe and action gameday offers experiments."""
    discovery: Discovery = initialize_discovery_result("gameday", _version(), "gameday")
    for module, kind in ACTIVITY_MODULES.items():
        discovery["activities"].extend(discover_activities(module, kind))
    return discovery


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version  # noqa: PLC0415

    try:
        return version("gameday")
    except PackageNotFoundError:
        return "unknown"


