"""``gameday run``: run experiments through Chaos Toolkit, then judge each journal strictly.

Each experiment runs as ``chaos run --rollback-strategy always`` in its own process,
with its journal and log under the reports directory; its verdict includes a cleanup
check of the target (nothing may be left injected).
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from gameday.errors import ConfigError, MeasurementError
from gameday.incident import is_incident, to_experiment
from gameday.summary import ExperimentResult, key_figures
from gameday.targets import get_target
from gameday.traffic import EXTENSION_NAME
from gameday.verdict import Verdict, judge

CATALOG_DIR = Path("experiments")
INTERRUPT_GRACE_S = 60.0


@dataclass(frozen=True)
class RunSettings:
    """One ``gameday run``: experiment files, ``--var`` overrides, target, report paths."""

    experiments: tuple[Path, ...]
    variables: Mapping[str, Any]
    reports_dir: Path
    target: str = "lab"


def parse_var(text: str) -> tuple[str, Any]:
    """``key=value`` → (key, value), the value as int or float when it reads as one."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip() or not key.strip().isidentifier():
        raise ConfigError(f"--var {text!r} is invalid: expected key=value, e.g. "
                          "--var sla_p95_latency_max_s=0.5")
    value: Any = raw
    for cast in (int, float):
        try:
            value = cast(raw)
            break
        except ValueError:
            continue
    return key.strip(), value


def _chaos_var(key: str, value: Any) -> str:
    kind = {int: ":int", float: ":float"}.get(type(value), "")
    return f"{key}{kind}={value}"


def _read(path: Path) -> Any:
    if not path.is_file():
        raise ConfigError(f"experiment {path} does not exist")
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"experiment {path} is not valid YAML/JSON: {exc}") from None


def load_experiment(path: Path) -> dict[str, Any]:
    """Read an experiment (or incident) file, or raise ConfigError saying what is wrong."""
    data = _read(path)
    if isinstance(data, dict) and is_incident(data):
        return to_experiment(data)
    if not isinstance(data, dict) or "method" not in data:
        raise ConfigError(f"experiment {path} is not a Chaos Toolkit experiment (no method) "
                          "nor an incident file (no incident:)")
    return data


def _chaos_source(path: Path, experiment: Mapping[str, Any], reports_dir: Path,
                  stamp: str) -> Path:
    """The file to hand to ``chaos run``: the experiment itself, or the experiment an
    incident file was turned into (written next to the reports)."""
    raw = _read(path)
    if not (isinstance(raw, dict) and is_incident(raw)):
        return path
    generated = reports_dir / f"{path.stem}-{stamp}.experiment.json"
    generated.write_text(json.dumps(experiment, indent=2), encoding="utf-8")
    return generated


def required_controls(experiment: Mapping[str, Any]) -> list[str]:
    """Names of the experiment's controls that must leave a mark in the journal."""
    modules = [c.get("provider", {}).get("module") for c in experiment.get("controls") or []]
    return [EXTENSION_NAME] if "gameday.traffic" in modules else []


def missing_controls(experiment: Mapping[str, Any]) -> list[str]:
    """Controls whose module cannot be imported: Chaos Toolkit would skip them silently."""
    missing = []
    for control in experiment.get("controls") or []:
        module = str(control.get("provider", {}).get("module", ""))
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            missing.append(f"control {control.get('name')}: module {module!r} cannot be "
                           "imported, so Chaos Toolkit would skip it")
    return missing


def traffic_rate(experiment: Mapping[str, Any]) -> float | None:
    """The rate the experiment's traffic control asks for (None without one)."""
    for control in experiment.get("controls") or []:
        provider = control.get("provider", {})
        if provider.get("module") == "gameday.traffic":
            arguments = provider.get("arguments") or {}
            if int(arguments.get("workers", 1)) != 1:
                return None
            return float(arguments.get("rate_rps", 200.0))
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
        extensions = load_experiment(path).get("extensions") or []
        marks = [e.get("order") for e in extensions
                 if isinstance(e, dict) and e.get("name") == "gameday"]
        return (float(marks[0]) if marks and marks[0] is not None else 1e9, path.name)

    return tuple(sorted(directory.glob("*.yaml"), key=order))


def select(paths: Sequence[Path], tags: Sequence[str]) -> tuple[Path, ...]:
    """The experiments to run (the catalog when none given), keeping those with any of
    ``tags``; raises on a bad file or when nothing is left."""
    chosen = tuple(paths) or catalog()
    if not chosen:
        raise ConfigError(f"no experiments given and none found in {CATALOG_DIR}/")
    experiments = {path: load_experiment(path) for path in chosen}
    if tags:
        chosen = tuple(p for p in chosen if set(tags) & set(experiments[p].get("tags") or []))
        if not chosen:
            known = sorted({t for e in experiments.values() for t in e.get("tags") or []})
            raise ConfigError(f"no experiment has tag {', '.join(tags)}: known tags are "
                              f"{', '.join(known)}")
    return chosen


def _chaos_command(path: Path, journal: Path, log: Path, variables: Mapping[str, Any]) -> list[str]:
    chaos = str(Path(sys.executable).parent / "chaos")
    command = [chaos, "--no-version-check", "--log-file", str(log), "run",
               "--rollback-strategy", "always", "--journal-path", str(journal)]
    for key, value in variables.items():
        command += ["--var", _chaos_var(key, value)]
    return [*command, str(path)]


def _run_chaos(command: list[str], env: Mapping[str, str]) -> int:
    """Run ``chaos``; on Ctrl-C/SIGTERM pass SIGINT on so that its rollbacks run."""
    process = subprocess.Popen(command, env=dict(env))
    try:
        return process.wait()
    except KeyboardInterrupt:
        process.send_signal(signal.SIGINT)
        try:
            return process.wait(timeout=INTERRUPT_GRACE_S)
        except subprocess.TimeoutExpired:
            process.kill()
            return process.wait()


def run_one(path: Path, settings: RunSettings) -> ExperimentResult:
    """Run one experiment through Chaos Toolkit and judge its journal."""
    experiment = load_experiment(path)
    started = time.monotonic()
    stamp = time.strftime("%Y%m%dT%H%M%S")
    settings.reports_dir.mkdir(parents=True, exist_ok=True)
    journal_path = settings.reports_dir / f"{path.stem}-{stamp}.journal.json"
    log_path = settings.reports_dir / f"{path.stem}-{stamp}.chaos.log"
    env = {**os.environ, "GAMEDAY_RUN_DIR": str(settings.reports_dir),
           "GAMEDAY_TARGET": settings.target}
    source = _chaos_source(path, experiment, settings.reports_dir, stamp)
    _run_chaos(_chaos_command(source, journal_path, log_path, settings.variables), env)
    leftovers = _leftovers(settings.target)
    duration_s = time.monotonic() - started
    if not journal_path.exists():
        reasons = (f"chaos run wrote no journal; see {log_path}",
                   *(f"left injected after the run: {item}" for item in leftovers))
        return ExperimentResult(path, Verdict(str(experiment.get("title", path)), reasons),
                                None, duration_s)
    journal = json.loads(journal_path.read_text(encoding="utf-8"))
    verdict = judge(journal, settings.variables, required_controls(experiment), leftovers)
    missing = tuple(missing_controls(experiment))
    if missing:
        verdict = Verdict(verdict.title, verdict.reasons + missing)
    return ExperimentResult(path, verdict, journal_path, duration_s, key_figures(journal))


def _leftovers(target: str) -> list[str]:
    try:
        return get_target(target).leftovers()
    except MeasurementError as exc:
        return [f"the cleanup check could not run: {exc}"]


def print_verdict(result: ExperimentResult) -> None:
    """One line per experiment, then one indented line per reason."""
    verdict = result.verdict
    word = "PASS" if verdict.passed else "FAIL"
    print(f"{word}  {result.path}  — {verdict.title} ({result.duration_s:.0f} s)", flush=True)
    for reason in verdict.reasons:
        print(f"      {reason}", flush=True)


def run_all(settings: RunSettings) -> list[ExperimentResult]:
    """Run every experiment in order; returns their results."""
    results = []
    for path in settings.experiments:
        print(f"running {path} ...", flush=True)
        result = run_one(path, settings)
        print_verdict(result)
        results.append(result)
    return results
