"""Pre-flight: refuse a ``gameday run`` whose experiments cannot run, before anything starts.

Every selected experiment is checked as a whole and every problem is reported at once
(``gameday run`` then exits 2, with no lab started, no traffic sent, no fault injected):

- its shape: a title, a description, a method, activities and controls that are mappings;
- the arguments of every activity and control of gameday's own modules (``probes.*``,
  ``actions.*``, ``controls.*``, ``gameday.*``; see :mod:`gameday.engine.argcheck`), after
  substituting the configuration and the ``--var`` values;
- ``${key}`` references in pauses and tolerances that name no configuration key, and
  pauses that would not be a number of seconds;
- Chaos Toolkit's own validation (``ensure_experiment_is_valid``: activity fields,
  tolerances, providers of other modules), which ``chaos run`` would otherwise apply
  only when the experiment's turn comes;
- ``--var`` keys that no selected experiment has (Chaos Toolkit ignores those silently)
  and values of the wrong type for the key (a word where the experiment has a number).
"""

from __future__ import annotations

import difflib
import logging
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from chaoslib import substitute
from chaoslib.configuration import load_configuration
from chaoslib.exceptions import ChaosException
from chaoslib.experiment import ensure_experiment_is_valid

from gameday.contract import ConfigError, GamedayError
from gameday.engine.argcheck import (
    ArgContext,
    check_activity,
    check_control,
    is_own,
    placeholders,
    unknown_keys,
)
from gameday.engine.runner import load_experiment
from gameday.engine.verdict import VERDICT_KEYS
from gameday.targets import get_target

__all__ = ["checked_by_gameday", "ensure_runnable", "experiment_problems", "target_links",
           "target_unsupported", "variable_problems"]

Activity = Mapping[str, Any]
Checker = Callable[[Mapping[str, Any], ArgContext], list[str]]
SHOWN_CHARS = 60


def checked_by_gameday(**arguments: Any) -> None:
    """Stands in, for Chaos Toolkit's validation, for an activity gameday already found
    wrong (so that the same problem is not reported twice). Never run."""


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= SHOWN_CHARS else text[: SHOWN_CHARS - 1] + "…"


def _field_problems(experiment: Mapping[str, Any]) -> list[str]:
    """Top-level fields: title, description, tags, the catalog order."""
    problems = [f"needs a {key} (a non-empty string)" for key in ("title", "description")
                if not isinstance(experiment.get(key), str) or not experiment[key].strip()]
    tags = experiment.get("tags")
    if tags is not None and not (isinstance(tags, list) and all(
            isinstance(t, str) and t for t in tags)):
        problems.append(f"tags must be a list of non-empty strings, not {_short(tags)}")
    extensions = experiment.get("extensions")
    problems += [f"the order of the gameday extension must be a number, not {_short(order)}"
                 for e in (extensions if isinstance(extensions, list) else [])
                 if isinstance(e, Mapping) and e.get("name") == "gameday"
                 and (order := e.get("order")) is not None and not _is_number(order)]
    return problems


def _structure_problems(experiment: Mapping[str, Any]) -> list[str]:
    """Structures that must be right before the activities can be read."""
    problems = [] if isinstance(experiment.get("configuration") or {}, Mapping) else [
        f"configuration must be a mapping of key: value, not "
        f"{_short(experiment['configuration'])}"]
    for key, what in (("method", "activities"), ("rollbacks", "activities"),
                      ("controls", "controls")):
        if key == "method" or experiment.get(key) is not None:
            problems += _items_problems(key, experiment.get(key), what)
    hypothesis = experiment.get("steady-state-hypothesis")
    if hypothesis is not None and not isinstance(hypothesis, Mapping):
        problems.append(f"steady-state-hypothesis must be a mapping with a title and probes, "
                        f"not {_short(hypothesis)}")
    elif hypothesis is not None:
        problems += _items_problems("steady-state-hypothesis probes",
                                    hypothesis.get("probes") or [], "probes")
    if not problems:
        problems += [f"control {c.get('name')!r} needs a provider: a mapping with type: python "
                     "and a module" for c in experiment.get("controls") or []
                     if not isinstance(c.get("provider"), Mapping)]
    return problems


def _items_problems(where: str, value: Any, what: str) -> list[str]:
    if not isinstance(value, list):
        return [f"{where} must be a list of {what}, not {_short(value)}"]
    return [f"{where} item #{index} must be a mapping (one of the {what}), not {_short(item)}"
            for index, item in enumerate(value, 1) if not isinstance(item, Mapping)]


def _activities(experiment: Mapping[str, Any]) -> Iterator[tuple[str, Activity]]:
    """Every activity, with where it is in words (safeguard probes of controls too)."""
    hypothesis = experiment.get("steady-state-hypothesis") or {}
    for probe in hypothesis.get("probes") or []:
        yield f"steady-state probe {probe.get('name')!r}", probe
    for where in ("method", "rollbacks"):
        for activity in experiment.get(where) or []:
            kind = "rollback" if where == "rollbacks" else f"method {activity.get('type')}"
            yield f"{kind} {activity.get('name') or activity.get('ref')!r}", activity
    for control in experiment.get("controls") or []:
        arguments = (control.get("provider") or {}).get("arguments") or {}
        probes = arguments.get("probes") if isinstance(arguments, Mapping) else None
        for probe in probes if isinstance(probes, list) else []:
            if isinstance(probe, Mapping):
                yield f"control {control.get('name')!r} probe {probe.get('name')!r}", probe


def _context(experiment: Mapping[str, Any], variables: Mapping[str, Any],
             links: tuple[str, ...] | None) -> ArgContext:
    declared = dict(experiment.get("configuration") or {})
    try:
        configuration = load_configuration(declared, dict(variables))
    except ChaosException:  # an environment key is missing: Chaos Toolkit says so below
        configuration = {k: v for k, v in declared.items() if not isinstance(v, Mapping)}
    secrets = experiment.get("secrets")
    secret_keys = {key for scope in secrets.values() if isinstance(scope, Mapping)
                   for key in scope} if isinstance(secrets, Mapping) else set()
    return ArgContext(configuration, frozenset(declared) | secret_keys, links)


def _activity_problems(activity: Activity, context: ArgContext) -> list[str]:
    problems = []
    provider = activity.get("provider")
    if provider is not None and not isinstance(provider, Mapping):
        problems.append(f"provider must be a mapping (type, module, func, arguments), "
                        f"not {_short(provider)}")
    if isinstance(provider, Mapping) and provider.get("type") == "python" and is_own(
            provider.get("module")):
        problems += check_activity(provider, context)
    for part in ("pauses", "tolerance"):
        unknown = sorted(placeholders(activity.get(part)) - context.known_keys)
        if unknown:
            problems.append(f"{part}: {unknown_keys(unknown, context)}")
        elif part == "pauses":
            problems += _pause_problems(activity.get(part), context)
    return problems


def _pause_problems(pauses: Any, context: ArgContext) -> list[str]:
    """Pauses that would not be a number of seconds once substituted."""
    if not isinstance(pauses, Mapping):
        return [] if pauses is None else [f"pauses must be a mapping with before/after, "
                                          f"not {_short(pauses)}"]
    problems = []
    for when in ("before", "after"):
        raw = pauses.get(when)
        value = substitute(raw, dict(context.configuration), {})
        if raw is not None and not (_is_number(value) and 0 <= value < math.inf):
            shown = f"{value!r} (from {raw})" if raw != value else repr(value)
            problems.append(f"pauses {when}={shown} is not a number of seconds >= 0")
    return problems


def _control_problems(control: Mapping[str, Any], context: ArgContext) -> list[str]:
    """Problems of a control of gameday's own modules. Another control that cannot be
    imported is left to the verdict (``missing_controls``): it may be importable only
    where Chaos Toolkit runs, and the run fails when it left no mark."""
    provider = control["provider"]
    return check_control(provider, context) if is_own(provider.get("module")) else []


def _parts(experiment: Mapping[str, Any]) -> Iterator[tuple[str, Activity, Checker]]:
    """Every activity and control, where it is in words, and how to check it."""
    for where, activity in _activities(experiment):
        yield where, activity, _activity_problems
    for control in experiment.get("controls") or []:
        yield f"control {control.get('name')!r}", control, _control_problems


@contextmanager
def _quiet(name: str) -> Iterator[None]:
    """Silence a library's logger for a moment (Chaos Toolkit logs while it validates)."""
    logger = logging.getLogger(name)
    was = logger.disabled
    logger.disabled = True
    try:
        yield
    finally:
        logger.disabled = was


def _stand_ins(value: Any, flagged: set[int]) -> Any:
    """A copy of ``value`` where the flagged activities and controls call (or are)
    :func:`checked_by_gameday`'s module: Chaos Toolkit then neither repeats their problems
    nor imports a module gameday refused."""
    if isinstance(value, Mapping):
        if id(value) in flagged:
            return {**value, "provider": {"type": "python", "module": __name__,
                                          "func": checked_by_gameday.__name__}}
        return {k: _stand_ins(v, flagged) for k, v in value.items()}
    if isinstance(value, list):
        return [_stand_ins(v, flagged) for v in value]
    return value


def _chaos_problems(experiment: Mapping[str, Any], flagged: set[int]) -> list[str]:
    """Chaos Toolkit's own validation (it stops at the first problem it finds)."""
    try:
        with _quiet("chaostoolkit"):
            ensure_experiment_is_valid(_stand_ins(experiment, flagged))
    except ChaosException as exc:
        return [f"Chaos Toolkit: {exc}"]
    except Exception as exc:  # its validation assumes a well-formed document
        return [f"Chaos Toolkit cannot validate it: {type(exc).__name__}: {exc}"]
    return []


def experiment_problems(experiment: Mapping[str, Any], variables: Mapping[str, Any],
                        links: tuple[str, ...] | None = None) -> list[str]:
    """Every problem of one experiment, one line each (empty when it can run)."""
    fields, structure = _field_problems(experiment), _structure_problems(experiment)
    if structure:
        return fields + structure
    context = _context(experiment, variables, links)
    problems, flagged = [], set()
    for where, part, check in _parts(experiment):
        found = check(part, context)
        problems += [f"{where}: {problem}" for problem in found]
        if found:
            flagged.add(id(part))
    # Chaos Toolkit stops at the first problem: after gameday's own, it would repeat one.
    return fields + problems + ([] if fields else _chaos_problems(experiment, flagged))


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def variable_problems(experiments: Mapping[Path, Mapping[str, Any]],
                      variables: Mapping[str, Any]) -> list[str]:
    """``--var`` keys neither an experiment nor the judge has (:data:`VERDICT_KEYS`), and
    values of the wrong type for their key."""
    configs = {path: dict(config) for path, e in experiments.items()
               if isinstance(config := e.get("configuration") or {}, Mapping)}
    known = sorted({key for config in configs.values() for key in config} | set(VERDICT_KEYS))
    problems = []
    for key, value in variables.items():
        if key in VERDICT_KEYS and not _is_number(value):
            problems.append(f"--var {key}={value!r} is not a number (the judge's bound, "
                            f"default {VERDICT_KEYS[key]:g})")
            continue
        if key not in known:
            match = difflib.get_close_matches(key, known, n=1)
            hint = f" (did you mean {match[0]}?)" if match else ""
            problems.append(f"--var {key}: no selected experiment has this configuration key"
                            f"{hint}; known keys are {', '.join(known) or 'none'}")
            continue
        problems += [f"--var {key}={value!r} is not a number, but {path} has {key}: "
                     f"{config[key]!r}" for path, config in configs.items()
                     if _is_number(config.get(key)) and not _is_number(value)]
    return problems


def target_links(target: str) -> tuple[str, ...] | None:
    """The target's link names, or None when it cannot tell before the run."""
    try:
        return tuple(get_target(target).links())
    except GamedayError:
        return None


def target_unsupported(target: str) -> dict[str, str]:
    """The fault kinds the target cannot inject here, with why; empty when it cannot tell
    before the run (the run checks again)."""
    try:
        return get_target(target).unsupported_faults()
    except GamedayError:
        return {}


def target_without_traffic(target: str) -> str | None:
    """Why no traffic reaches the service on the target (a run then runs each
    experiment's control-plane cut only), or None; None too when it cannot tell before
    the run."""
    try:
        return get_target(target).no_traffic_reason()
    except GamedayError:
        return None


def ensure_runnable(paths: Sequence[Path], variables: Mapping[str, Any],
                    links: tuple[str, ...] | None = None) -> None:
    """Raise ConfigError listing every problem of the selected experiments and ``--var``
    values; return when all of them can run."""
    experiments = {path: load_experiment(path) for path in paths}
    problems = variable_problems(experiments, variables)
    for path, experiment in experiments.items():
        problems += [f"{path}: {p}" for p in experiment_problems(experiment, variables, links)]
    if problems:
        count = f"{len(problems)} problem" + ("s" if len(problems) > 1 else "")
        raise ConfigError(f"{count} found before the run; nothing was started:\n  "
                          + "\n  ".join(problems))
