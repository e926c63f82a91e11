"""``gameday run``: run experiments through Chaos Toolkit, then judge each journal strictly.

Each experiment runs as ``chaos run --rollback-strategy always`` in its own process,
with its journal and log under the reports directory; its verdict includes a cleanup
check of the target (nothing may be left injected).
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from gameday.contract import ConfigError, GamedayError, MeasurementError
from gameday.engine.chaosproc import run_chaos
from gameday.engine.controlplane import ControlPlaneCut, control_plane_cut, control_plane_verdict
from gameday.engine.incident import is_incident, to_experiment
from gameday.engine.results import ExperimentResult, key_figures
from gameday.engine.traffic import EXTENSION_NAME
from gameday.engine.verdict import Verdict, judge, recorded_verdict, run_record
from gameday.faults import inject
from gameday.targets import get_target

CATALOG_DIR = Path("experiments")
TYPE_WORDS = {list: "a list", str: "a string", int: "a number", float: "a number",
              bool: "true/false"}
INTERRUPT_GRACE_S = 60.0


@dataclass(frozen=True)
class RunSettings:
    """One ``gameday run``: experiment files, ``--var`` overrides, target, report paths."""

    experiments: tuple[Path, ...]
    variables: Mapping[str, Any]
    reports_dir: Path
    target: str = "lab"
    console_logs: bool = False  # Chaos Toolkit's console to files (the live view is on)


def parse_var(text: str) -> tuple[str, Any]:
    """``key=value`` → (key, value), the value as int or float when it reads as a finite
    number; ConfigError for a missing key, a key that is no name, or an empty value."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip().isidentifier():
        raise ConfigError(f"--var {text!r} is invalid: expected key=value, e.g. "
                          "--var sla_p95_latency_max_s=0.5")
    if not raw.strip():
        raise ConfigError(f"--var {text!r} has no value: expected key=value, e.g. "
                          "--var sla_p95_latency_max_s=0.5")
    return key.strip(), _typed(raw)


def _typed(raw: str) -> Any:
    """An int or a finite float when ``raw`` reads as one, else the string itself."""
    try:
        return int(raw)
    except ValueError:
        pass
    try:
        number = float(raw)
    except ValueError:
        return raw
    return number if math.isfinite(number) else raw


def _chaos_var(key: str, value: Any) -> str:
    kind = {int: ":int", float: ":float"}.get(type(value), "")
    return f"{key}{kind}={value}"


def _read(path: Path) -> Any:
    if path.is_dir():
        raise ConfigError(f"experiment {path} is a directory: name the experiment files in "
                          f"it, e.g. {path}/*.yaml")
    if not path.is_file():
        raise ConfigError(f"experiment {path} does not exist")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"experiment {path} cannot be read: {exc}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"experiment {path} is not valid YAML/JSON: {_yaml_problem(exc)}"
                          ) from None


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """A YAML error in one line: where, and what."""
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        return f"line {mark.line + 1}, column {mark.column + 1}: {exc.problem}"
    return " ".join(str(exc).split())


def load_experiment(path: Path) -> dict[str, Any]:
    """Read an experiment (or incident) file, or raise ConfigError saying what is wrong."""
    data = _read(path)
    if isinstance(data, dict) and is_incident(data):
        try:
            return to_experiment(data)
        except ConfigError as exc:
            raise ConfigError(f"incident file {path}: {exc}") from None
    if data is None:
        raise ConfigError(f"experiment {path} is empty")
    if not isinstance(data, dict) or "method" not in data:
        found = "a mapping" if isinstance(data, dict) else TYPE_WORDS.get(
            type(data), f"a {type(data).__name__}")
        raise ConfigError(f"experiment {path} is {found} with no method: expected a Chaos "
                          "Toolkit experiment (a mapping with title, description, method) or "
                          "an incident file (a mapping with incident:)")
    return data


def _chaos_source(path: Path, experiment: Mapping[str, Any], reports_dir: Path,
                  stamp: str, cut: ControlPlaneCut | None = None) -> Path:
    """The file to hand to ``chaos run``: the experiment itself, the experiment an
    incident file was turned into, or its control-plane cut (both written next to the
    reports)."""
    if cut is not None:
        generated = reports_dir / f"{path.stem}-{stamp}.control-plane.json"
        generated.write_text(json.dumps(cut.experiment, indent=2), encoding="utf-8")
        return generated
    raw = _read(path)
    if not (isinstance(raw, dict) and is_incident(raw)):
        return path
    generated = reports_dir / f"{path.stem}-{stamp}.experiment.json"
    generated.write_text(json.dumps(experiment, indent=2), encoding="utf-8")
    return generated


def _control_modules(experiment: Mapping[str, Any]) -> list[tuple[Any, str]]:
    """(name, module) of every control that has a provider."""
    controls = [c for c in experiment.get("controls") or [] if isinstance(c, Mapping)]
    return [(c.get("name"), str(c["provider"].get("module", ""))) for c in controls
            if isinstance(c.get("provider"), Mapping)]


def required_controls(experiment: Mapping[str, Any]) -> list[str]:
    """Names of the experiment's controls that must leave a mark in the journal."""
    modules = [module for _, module in _control_modules(experiment)]
    return [EXTENSION_NAME] if "controls.traffic" in modules else []


def missing_controls(experiment: Mapping[str, Any]) -> list[str]:
    """Controls whose module cannot be imported: Chaos Toolkit would skip them silently."""
    missing = []
    for name, module in _control_modules(experiment):
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            missing.append(f"control {name}: module {module!r} cannot be "
                           "imported, so Chaos Toolkit would skip it")
    return missing


def traffic_rate(experiment: Mapping[str, Any]) -> float | None:
    """The rate the experiment's traffic control asks for (None without one)."""
    for control in experiment.get("controls") or []:
        provider = control.get("provider", {})
        if provider.get("module") == "controls.traffic":
            arguments = provider.get("arguments") or {}
            try:
                workers = int(arguments.get("workers", 1))
                rate = float(arguments.get("rate_rps", 200.0))
            except (TypeError, ValueError):  # a ${key}: the control itself substitutes it
                return None
            return rate if workers == 1 else None
    return None


def shared_rate(paths: Sequence[Path]) -> float | None:
    """The one traffic rate every experiment asks for, when they all agree; else None
    (then each experiment runs its own traffic)."""
    rates = {traffic_rate(load_experiment(path)) for path in paths}
    return rates.pop() if len(rates) == 1 and None not in rates else None


def catalog(directory: Path = CATALOG_DIR) -> tuple[Path, ...]:
    """Every experiment of the catalog, in its order: by ``x-gameday-order`` in the file's
    ``extensions`` list when given (lower first), then by name."""
    def order(path: Path) -> tuple[float, str]:
        extensions = load_experiment(path).get("extensions")
        marks = [e.get("order") for e in extensions if isinstance(e, dict)
                 and e.get("name") == "gameday"] if isinstance(extensions, list) else []
        try:
            return (float(marks[0]) if marks and marks[0] is not None else 1e9, path.name)
        except (TypeError, ValueError):
            raise ConfigError(f"experiment {path}: the order of its gameday extension, "
                              f"{marks[0]!r}, is not a number") from None

    return tuple(sorted(directory.glob("*.yaml"), key=order))


def select(paths: Sequence[Path], tags: Sequence[str],
           skip_tags: Sequence[str] = ()) -> tuple[Path, ...]:
    """The experiments to run (the catalog when none given), keeping those with any of
    ``tags`` and none of ``skip_tags``; raises on a bad file, an unknown tag, or when
    nothing is left."""
    chosen = tuple(paths) or catalog()
    if not chosen:
        raise ConfigError(f"no experiments given and none found in {CATALOG_DIR}/")
    experiments = {path: _tags(load_experiment(path)) for path in chosen}
    known = sorted(set().union(*experiments.values()))
    unknown = sorted(set(skip_tags) - set(known))
    if unknown:
        raise ConfigError(f"no experiment has tag {', '.join(unknown)} (--skip-tag): known "
                          f"tags are {', '.join(known)}")
    if tags:
        chosen = tuple(p for p in chosen if set(tags) & experiments[p])
        if not chosen:
            raise ConfigError(f"no experiment has tag {', '.join(tags)}: known tags are "
                              f"{', '.join(known)}")
    chosen = tuple(p for p in chosen if not set(skip_tags) & experiments[p])
    if not chosen:
        raise ConfigError(f"--skip-tag {', '.join(skip_tags)} leaves no experiment")
    return chosen


def _tags(experiment: Mapping[str, Any]) -> set[str]:
    tags = experiment.get("tags")
    return {str(t) for t in tags} if isinstance(tags, list) else set()


def _chaos_arguments(path: Path, journal: Path, log: Path,
                     variables: Mapping[str, Any]) -> list[str]:
    command = ["--no-version-check", "--log-file", str(log), "run",
               "--rollback-strategy", "always", "--journal-path", str(journal)]
    for key, value in variables.items():
        command += ["--var", _chaos_var(key, value)]
    return [*command, str(path)]


def not_runnable(experiment: Mapping[str, Any], unsupported: Mapping[str, str]) -> list[str]:
    """Why the experiment cannot run on a target that cannot inject the fault kinds of
    ``unsupported`` here (kind → why), one line per fault its method injects (pure)."""
    reasons = []
    for activity in experiment.get("method") or []:
        provider = activity.get("provider") if isinstance(activity, Mapping) else None
        if not isinstance(provider, Mapping):
            continue
        kind = inject.fault_kind(provider)
        if kind in unsupported:
            reasons.append(f"not runnable here: {activity.get('name')} needs the {kind} "
                           f"fault: {unsupported[str(kind)]}")
    return reasons


def unsupported_faults(target: str) -> dict[str, str]:
    """The fault kinds the target cannot inject here, with why (see
    ``Target.unsupported_faults``)."""
    return get_target(target).unsupported_faults()


def no_traffic_reason(target: str) -> str | None:
    """Why no traffic flows through the service on the target (see
    ``Target.no_traffic_reason``), or None."""
    return get_target(target).no_traffic_reason()


def _cut(experiment: Mapping[str, Any], target: str) -> ControlPlaneCut | None:
    """The experiment's control-plane cut on a target without traffic, else None."""
    why = no_traffic_reason(target)
    return None if why is None else control_plane_cut(experiment, why)


def run_one(path: Path, settings: RunSettings) -> ExperimentResult:
    """Run one experiment through Chaos Toolkit and judge its journal; an experiment
    whose faults the target cannot inject here is not run, and INCONCLUSIVE. On a target
    without traffic only its control-plane cut runs (``gameday.engine.controlplane``)."""
    experiment = load_experiment(path)
    cut = _cut(experiment, settings.target)
    blocked = not_runnable(experiment, unsupported_faults(settings.target)) + list(
        cut.blocked if cut else ())
    if blocked:
        return ExperimentResult(path, Verdict(str(experiment.get("title", path)),
                                              inconclusive=tuple(blocked)), None, 0.0)
    started = time.monotonic()
    stamp = time.strftime("%Y%m%dT%H%M%S")
    settings.reports_dir.mkdir(parents=True, exist_ok=True)
    journal_path = settings.reports_dir / f"{path.stem}-{stamp}.journal.json"
    log_path = settings.reports_dir / f"{path.stem}-{stamp}.chaos.log"
    env = {**os.environ, "GAMEDAY_RUN_DIR": str(settings.reports_dir),
           "GAMEDAY_TARGET": settings.target}
    source = _chaos_source(path, experiment, settings.reports_dir, stamp, cut)
    console = log_path.with_name(f"{path.stem}-{stamp}.console.log") \
        if settings.console_logs else None
    ended = run_chaos(_chaos_arguments(source, journal_path, log_path, settings.variables), env,
                      INTERRUPT_GRACE_S, console)
    leftovers = _leftovers(settings.target)
    notes = _undo_recorded(settings.target) if leftovers else []
    if ended.interrupted:
        notes.insert(0, "stopped by the operator (Ctrl-C, SIGTERM or SIGHUP): the "
                         "rollbacks ran and the game day ends here")
    duration_s = time.monotonic() - started
    if not journal_path.exists():
        reasons = (f"chaos run wrote no journal; see {log_path}",
                   *(f"left injected after the run: {item}" for item in leftovers), *notes)
        return ExperimentResult(path, Verdict(str(experiment.get("title", path)), reasons),
                                None, duration_s, interrupted=ended.interrupted)
    journal = json.loads(journal_path.read_text(encoding="utf-8"))
    ran = experiment if cut is None else cut.experiment
    verdict = judge(journal, settings.variables, required_controls(ran), leftovers)
    extra = (*missing_controls(ran), *notes)
    if extra:
        verdict = replace(verdict, reasons=verdict.reasons + extra)
    if cut is not None:
        verdict = control_plane_verdict(verdict, cut)
    _record_verdict(journal_path, journal, run_record(verdict, settings.variables))
    return ExperimentResult(path, verdict, journal_path, duration_s, key_figures(journal),
                            interrupted=ended.interrupted)


def _record_verdict(path: Path, journal: dict[str, Any], record: dict[str, Any]) -> None:
    """Add the run's verdict to its journal file (replaced whole, never half-written)."""
    journal.setdefault("extensions", []).append(record)
    scratch = path.with_name(f".{path.name}.tmp")
    scratch.write_text(json.dumps(journal, indent=2, ensure_ascii=False), encoding="utf-8")
    scratch.replace(path)


def journal_verdict(journal: Mapping[str, Any]) -> Verdict:
    """A journal's verdict when read back later: the one ``gameday run`` recorded in it,
    else (a plain ``chaos run``) judged from the journal alone, its traffic control
    required when the experiment declares one. The cleanup check of the target cannot be
    repeated then; ``gameday run`` did it."""
    recorded = recorded_verdict(journal)
    if recorded is not None:
        return recorded
    return judge(journal, required_controls=required_controls(journal.get("experiment") or {}))


def _leftovers(target: str) -> list[str]:
    try:
        return get_target(target).leftovers()
    except MeasurementError as exc:
        return [f"the cleanup check could not run: {exc}"]


def _undo_recorded(target: str) -> list[str]:
    """Undo the faults still recorded as injected after an experiment, so that the next
    one starts clean; says what it undid (or why it could not)."""
    try:
        return [f"undone by gameday after the run: {item}"
                for item in inject.cleanup(get_target(target))]
    except GamedayError as exc:
        return [f"gameday could not undo what is left: {exc}; run `gameday cleanup`"]


def print_verdict(result: ExperimentResult) -> None:
    """One line per experiment, then one indented line per reason."""
    verdict = result.verdict
    print(f"{verdict.kind}  {result.path}  — {verdict.title} ({result.duration_s:.0f} s)",
          flush=True)
    for reason in verdict.shown:
        print(f"      {reason}", flush=True)


def run_all(settings: RunSettings,
            on_result: Callable[[ExperimentResult], object] | None = None,
            on_start: Callable[[Path], object] | None = None,
            ) -> list[ExperimentResult]:
    """Run every experiment in order and return their results; an interrupted experiment
    (Ctrl-C, SIGTERM, SIGHUP) is the last one. ``on_start`` sees each experiment as it
    starts, ``on_result`` each result as it comes."""
    results = []
    for path in settings.experiments:
        print(f"running {path} ...", flush=True)
        if on_start is not None:
            on_start(path)
        result = run_one(path, settings)
        print_verdict(result)
        if on_result is not None:
            on_result(result)
        results.append(result)
        if result.interrupted:
            break
    return results
