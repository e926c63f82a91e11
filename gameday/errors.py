"""The closed set of errors gameday raises to its users."""

from __future__ import annotations


class GamedayError(Exception):
    """Base of every error gameday reports to a person (no traceback needed)."""


class MeasurementError(GamedayError):
    """A probe could not measure: no data, an unknown metric, an unreachable source.

    Probes raise this instead of returning a value they did not measure.
    """


class InjectionError(GamedayError):
    """An action could not inject or undo a fault."""


class ConfigError(GamedayError):
    """Bad input: an unknown target, argument or setting; the message names what is valid."""
