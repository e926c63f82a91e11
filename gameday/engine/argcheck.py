"""The arguments experiments pass to gameday's own probes, actions and controls, checked
before anything runs.

Chaos Toolkit checks only the *names* of a Python activity's arguments, and only once it
runs the experiment; a wrong type or value (``qty: many``, a link that does not exist)
fails the activity in the middle of the experiment, after the faults before it were
injected. Here every argument of a ``probes.*``, ``actions.*``, ``controls.*`` or
``gameday.*`` function is substituted from the configuration (with the ``--var``
overrides), bound to the function's signature, checked against its annotation, and then
given to the value checks of :mod:`gameday.engine.argvalues`. Pure apart from importing
the functions.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import math
import pkgutil
import re
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from chaoslib import substitute

from gameday.contract import ConfigError
from gameday.engine.argvalues import VALUE_CHECKS

__all__ = ["OWN_PACKAGES", "ArgContext", "check_activity", "check_control", "is_own",
           "placeholders", "unknown_keys"]

OWN_PACKAGES = ("probes", "actions", "controls", "gameday")
# What Chaos Toolkit passes to a function itself, never from an experiment's arguments.
CHAOS_SUPPLIED = frozenset({"configuration", "secrets", "context", "state", "experiment",
                            "extensions", "settings"})
PLACEHOLDER = re.compile(r"\$\{(\w+)\}")
TYPE_WORDS = {float: "a number", int: "a whole number", str: "a string",
              bool: "true or false", dict: "a mapping", list: "a list",
              type(None): "null"}


@dataclass(frozen=True)
class ArgContext:
    """What the checks need to know besides the arguments.

    Attributes:
        configuration: the experiment's configuration with the ``--var`` overrides.
        known_keys: every key a ``${...}`` may name (configuration and secrets).
        links: the target's link names; None when they cannot be known before the run.
    """

    configuration: Mapping[str, Any]
    known_keys: frozenset[str]
    links: tuple[str, ...] | None = None


@dataclass(frozen=True)
class _Param:
    annotation: Any
    required: bool


def is_own(module: object) -> bool:
    """True when a provider's module is one of gameday's (``probes.*``, ``actions.*``,
    ``controls.*``, ``gameday.*``)."""
    return isinstance(module, str) and module.split(".")[0] in OWN_PACKAGES


def unknown_keys(names: Sequence[str], context: ArgContext) -> str:
    """``${...}`` names that are no configuration key, in words (with a likely match)."""
    hints = [f"{name}{_close(name, sorted(context.known_keys))}" for name in names]
    return f"no configuration key {', '.join(hints)}"


def placeholders(value: Any) -> set[str]:
    """Every ``${key}`` named anywhere in a value (strings, lists, mappings)."""
    if isinstance(value, str):
        return set(PLACEHOLDER.findall(value))
    if isinstance(value, Mapping):
        return set().union(*(placeholders(v) for v in value.values()))
    if isinstance(value, list):
        return set().union(*(placeholders(v) for v in value))
    return set()


def _import(module: str) -> types.ModuleType:
    """Import one of gameday's public modules (never a private one such as ``__main__``,
    which would run the command line)."""
    package = module.split(".", maxsplit=1)[0]
    known = _submodules(package)
    if any(part.startswith("_") for part in module.split(".")):
        raise ConfigError(f"module {module!r} is private: experiments may name only "
                          "gameday's public modules")
    try:
        return importlib.import_module(module)
    except ImportError:
        listed = f": {package} modules are {', '.join(known)}" if package != "gameday" else ""
        raise ConfigError(f"module {module!r} does not exist{_close(module, known)}{listed}"
                          ) from None


def _submodules(package: str) -> list[str]:
    found = importlib.import_module(package)
    return [f"{package}.{info.name}" for info in pkgutil.iter_modules(found.__path__)
            if not info.name.startswith("_")]


def _function(module: str, name: object) -> Callable[..., Any]:
    found = _import(module)
    public = list(getattr(found, "__all__", []))
    if not isinstance(name, str) or name not in public or not callable(getattr(found, name)):
        raise ConfigError(f"{module} has no function {name!r}{_close(name, public)}: "
                          f"valid are {', '.join(public) or 'none'}")
    return typing.cast(Callable[..., Any], getattr(found, name))


def _close(name: object, valid: Sequence[str]) -> str:
    match = difflib.get_close_matches(str(name), valid, n=1)
    return f" (did you mean {match[0]}?)" if match else ""


def _parameters(*functions: Callable[..., Any]) -> dict[str, _Param]:
    params: dict[str, _Param] = {}
    for func in functions:
        try:
            hints = typing.get_type_hints(func)
        except (NameError, TypeError):
            hints = {}
        for name, param in inspect.signature(func).parameters.items():
            if name in CHAOS_SUPPLIED or name in params or param.kind in (
                    param.VAR_KEYWORD, param.VAR_POSITIONAL):
                continue
            params[name] = _Param(hints.get(name, Any), param.default is param.empty)
    return params


def _expected(value: Any, annotation: Any) -> str | None:
    """None when ``value`` fits ``annotation``; else what was expected, in words."""
    options = typing.get_args(annotation) if typing.get_origin(annotation) in (
        typing.Union, types.UnionType) else (annotation,)
    kinds = [typing.get_origin(o) or o for o in options]
    if Any in kinds or any(_fits(value, kind) for kind in kinds):
        return None
    words = [TYPE_WORDS.get(kind, getattr(kind, "__name__", str(kind))) for kind in kinds]
    return " or ".join(words)


def _fits(value: Any, kind: Any) -> bool:
    if kind is float:
        return (isinstance(value, int | float) and not isinstance(value, bool)
                and math.isfinite(value))
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(kind, type):
        return isinstance(value, kind)
    return True


def _shown(raw: Any, value: Any) -> str:
    return f"{value!r} (from {raw})" if raw != value else repr(value)


def _argument_problems(params: Mapping[str, _Param], raw: Mapping[str, Any],
                       context: ArgContext) -> tuple[list[str], dict[str, Any]]:
    """Unknown, missing, unresolved and wrongly typed arguments; and the values."""
    problems = [f"unknown argument {name!r}{_close(name, list(params))}: valid are "
                f"{', '.join(params) or 'none'}" for name in raw if name not in params]
    problems += [f"argument {name!r} is required" for name, param in params.items()
                 if param.required and name not in raw]
    values = {}
    for name, given in raw.items():
        if name not in params:
            continue
        unknown = sorted(placeholders(given) - context.known_keys)
        if unknown:
            problems.append(f"argument {name}={given!r}: {unknown_keys(unknown, context)}")
            continue
        value = substitute(given, dict(context.configuration), {})
        expected = _expected(value, params[name].annotation)
        if expected:
            problems.append(f"argument {name}={_shown(given, value)} is not {expected}")
        values[name] = value
    return problems, values


def _checked(qualified: str, params: Mapping[str, _Param], raw: object,
             defaults: Mapping[str, Any], context: ArgContext) -> list[str]:
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        return [f"arguments must be a mapping of name: value, not {raw!r}"]
    problems, values = _argument_problems(params, raw, context)
    validate = VALUE_CHECKS.get(qualified)
    if problems or validate is None:
        return problems
    try:
        validate({**defaults, **values}, context.links)
    except ConfigError as exc:
        return [str(exc)]
    return []


def _defaults(func: Callable[..., Any]) -> dict[str, Any]:
    return {name: p.default for name, p in inspect.signature(func).parameters.items()
            if p.default is not p.empty}


def check_activity(provider: Mapping[str, Any], context: ArgContext) -> list[str]:
    """Every problem of a Python provider naming one of gameday's functions, in words."""
    module, name = str(provider.get("module")), provider.get("func")
    try:
        func = _function(module, name)
    except ConfigError as exc:
        return [str(exc)]
    return [f"{module}.{name}: {problem}" for problem in _checked(
        f"{module}.{name}", _parameters(func), provider.get("arguments"), _defaults(func),
        context)]


def check_control(provider: Mapping[str, Any], context: ArgContext) -> list[str]:
    """Every problem of a control provider naming one of gameday's modules, in words: its
    arguments go to each of the module's ``*_control`` functions."""
    module = str(provider.get("module"))
    try:
        found = _import(module)
    except ConfigError as exc:
        return [str(exc)]
    hooks = [getattr(found, n) for n in dir(found) if n.endswith("_control")]
    if not hooks:
        return [f"module {module} is not a Chaos Toolkit control (no *_control function)"]
    defaults = {k: v for hook in reversed(hooks) for k, v in _defaults(hook).items()}
    return [f"{module}: {problem}" for problem in _checked(
        module, _parameters(*hooks), provider.get("arguments"), defaults, context)]
