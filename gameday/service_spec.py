"""The service spec: how to run, reach and read a broker-integration service (pure).

One YAML file describes the service a game day puts under test (docs/contract.md says
what it must expose). Paths are relative to the file::

    name: python-fastapi                 # lower-case letters, digits, dashes
    description: FastAPI + httpx + ...
    setup: ["sh", "setup.sh"]            # optional: run once in workdir before the lab
    workdir: .
    command: [".venv/bin/python", "-m", "app", "--port", "{port}", "--broker-url", "{broker_url}"]
    env: {LOG_LEVEL: info}               # values may hold the placeholders too
    replicas: 3
    paths: {health: /health, ready: /ready, metrics: /metrics}
    order:
      method: POST
      path: /orders
      body: {client_order_id: "{client_order_id}", instrument: "{instrument}",
             units: "{units}", price: "{price}"}
      statuses: {filled: [200], rejected: [422], failed: [500], unknown: [502, 504],
                 circuit_open: [503]}
    stop: {signal: SIGTERM, grace_s: 10}
    metrics: {}                          # contract metric name -> the service's name
    labels: {}                           # contract label name -> the service's label

Placeholders: ``{host}``, ``{port}``, ``{broker_url}``, ``{name}``, ``{python}`` (the
Python running gameday) and ``{log_dir}`` (where the lab keeps its logs) in the command
and the environment; ``{client_order_id}``,
``{instrument}``, ``{units}``, ``{price}`` in the order body (a value that is exactly one
placeholder takes the value's JSON type).
:func:`parse_spec` checks everything and raises one ConfigError naming every problem.
"""

from __future__ import annotations

import re
import signal
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeGuard

import yaml

from gameday.contract import (
    CONTRACT_LABELS,
    CONTRACT_METRICS,
    DEFAULT_ORDER_BODY,
    ORDER_PLACEHOLDERS,
    ConfigError,
    MetricNaming,
    fill_placeholders,
)

__all__ = ["COMMAND_PLACEHOLDERS", "ORDER_PLACEHOLDERS", "OrderRequest", "ServiceSpec",
           "load_spec", "parse_spec"]

COMMAND_PLACEHOLDERS = ("host", "port", "broker_url", "name", "python", "log_dir")
OUTCOMES = ("filled", "rejected", "failed", "circuit_open")
OPTIONAL_OUTCOMES = ("unknown",)
STOP_SIGNALS = ("SIGTERM", "SIGINT", "SIGQUIT", "SIGHUP", "SIGUSR1", "SIGUSR2")
METHODS = ("POST", "PUT")
KEYS = ("name", "description", "setup", "workdir", "command", "env", "replicas", "paths",
        "order", "stop", "metrics", "labels")
MAX_REPLICAS = 9
_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


@dataclass(frozen=True)
class OrderRequest:
    """How the load generator places an order with the service.

    ``body`` is the JSON template; ``statuses`` maps each outcome (filled, rejected,
    failed, circuit_open, and optionally unknown) to the HTTP statuses that mean it.
    ``failed`` says the order was certainly not filled; ``unknown`` says the service
    cannot tell (its broker call timed out or lost its reply): the order may have been
    filled, and its fate is to be resolved by its client order id. Reconciliation holds
    the service to it: an order answered ``failed`` that the broker filled counts against
    the experiment, one answered ``unknown`` does not.
    """

    method: str = "POST"
    path: str = "/orders"
    body: Mapping[str, Any] = field(default_factory=lambda: dict(DEFAULT_ORDER_BODY))
    statuses: Mapping[str, tuple[int, ...]] = field(default_factory=lambda: {
        "filled": (200,), "rejected": (422,), "failed": (502, 504), "circuit_open": (503,)})

    def render(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """The body of one order: every placeholder replaced by its value (pure)."""
        return {key: fill_placeholders(value, values) for key, value in self.body.items()}


@dataclass(frozen=True)
class ServiceSpec:
    """A broker-integration service as a game day runs, reaches and reads it."""

    name: str
    command: tuple[str, ...]
    workdir: Path
    description: str = ""
    setup: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    replicas: int = 3
    health_path: str = "/health"
    ready_path: str = "/ready"
    metrics_path: str = "/metrics"
    order: OrderRequest = field(default_factory=OrderRequest)
    stop_signal: str = "SIGTERM"
    stop_grace_s: float = 10.0
    metric_names: Mapping[str, str] = field(default_factory=dict)
    label_names: Mapping[str, str] = field(default_factory=dict)
    path: Path | None = None

    def metric(self, contract_name: str) -> str:
        """The service's name for a contract metric (the contract's own by default)."""
        return self.metric_names.get(contract_name, contract_name)

    def label(self, contract_label: str) -> str:
        """The service's name for a contract label (the contract's own by default)."""
        return self.label_names.get(contract_label, contract_label)

    def naming(self) -> MetricNaming:
        """The metric and label mapping, for Prometheus queries (see MetricNaming)."""
        return MetricNaming(dict(self.metric_names), dict(self.label_names))

    def command_for(self, values: Mapping[str, str]) -> list[str]:
        """The command line of one replica: placeholders replaced (pure)."""
        return [str(fill_placeholders(part, values)) for part in self.command]

    def env_for(self, values: Mapping[str, str]) -> dict[str, str]:
        """The extra environment of one replica: placeholders replaced (pure)."""
        return {key: str(fill_placeholders(value, values)) for key, value in self.env.items()}


def load_spec(path: Path) -> ServiceSpec:
    """Read and check the spec at ``path``; ConfigError naming every problem."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"service spec {path}: cannot be read ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"service spec {path}: not valid YAML ({exc})") from None
    return parse_spec(raw, path)


def parse_spec(raw: object, path: Path) -> ServiceSpec:
    """Check a decoded spec (from the file at ``path``); ConfigError with one line per
    problem, each naming the field and what is valid."""
    problems: list[str] = []
    if not isinstance(raw, dict):
        raise ConfigError(f"service spec {path}: must be a mapping of the fields "
                          f"{', '.join(KEYS)}")
    problems += [f"unknown field {key!r}: valid are {', '.join(KEYS)}"
                 for key in raw if key not in KEYS]
    spec = _build(raw, path.resolve(), problems)
    if problems or spec is None:
        lines = "\n".join(f"  {path}: {problem}" for problem in problems)
        raise ConfigError(f"service spec {path} has {len(problems)} problem(s):\n{lines}")
    return spec


def _build(raw: Mapping[str, Any], path: Path, problems: list[str]) -> ServiceSpec | None:
    base = path.parent
    order = _order(raw.get("order", {}), problems)
    stop_signal, grace_s = _stop(raw.get("stop", {}), problems)
    paths = _paths(raw.get("paths", {}), problems)
    spec = ServiceSpec(
        name=_name(raw.get("name"), problems),
        command=_command(raw.get("command"), "command", problems, required=True),
        workdir=_workdir(raw.get("workdir", "."), base, problems),
        description=_text(raw.get("description", ""), "description", problems),
        setup=_command(raw.get("setup", []), "setup", problems, required=False),
        env=_env(raw.get("env", {}), problems),
        replicas=_replicas(raw.get("replicas", 3), problems),
        health_path=paths["health"], ready_path=paths["ready"], metrics_path=paths["metrics"],
        order=order, stop_signal=stop_signal, stop_grace_s=grace_s,
        metric_names=_renames(raw.get("metrics", {}), "metrics", CONTRACT_METRICS,
                              _METRIC_NAME, problems),
        label_names=_renames(raw.get("labels", {}), "labels", CONTRACT_LABELS, _LABEL_NAME,
                             problems),
        path=path,
    )
    _needs_placeholders(spec, problems)
    return None if problems else spec


def _name(value: object, problems: list[str]) -> str:
    if isinstance(value, str) and _NAME.match(value):
        return value
    problems.append(f"name={value!r}: valid is 1..40 lower-case letters, digits and dashes, "
                    "starting with a letter or digit")
    return "invalid"


def _text(value: object, where: str, problems: list[str]) -> str:
    if isinstance(value, str):
        return value
    problems.append(f"{where}={value!r}: must be a string")
    return ""


def _command(value: object, where: str, problems: list[str], required: bool) -> tuple[str, ...]:
    if isinstance(value, list) and all(isinstance(v, str) and v for v in value) and (
            value or not required):
        for part in value:
            _known_placeholders(part, COMMAND_PLACEHOLDERS, where, problems)
        return tuple(value)
    problems.append(f"{where}={value!r}: must be a list of non-empty strings (the program and "
                    f"its arguments, no shell){'' if required else ', or left out'}")
    return ()


def _known_placeholders(text: str, valid: tuple[str, ...], where: str,
                        problems: list[str]) -> None:
    for name in _PLACEHOLDER.findall(text):
        if name not in valid:
            problems.append(f"{where}: unknown placeholder {{{name}}}: valid are "
                            + ", ".join(f"{{{v}}}" for v in valid))


def _workdir(value: object, base: Path, problems: list[str]) -> Path:
    if not isinstance(value, str) or not value:
        problems.append(f"workdir={value!r}: must be a directory, relative to the spec file")
        return base
    workdir = (base / value).resolve()
    if not workdir.is_dir():
        problems.append(f"workdir={value!r}: {workdir} is not a directory")
    return workdir


def _env(value: object, problems: list[str]) -> dict[str, str]:
    if not isinstance(value, dict) or not all(
            isinstance(k, str) and _LABEL_NAME.match(k) and isinstance(v, str | int | float)
            and not isinstance(v, bool) for k, v in value.items()):
        problems.append(f"env={value!r}: must map variable names to strings or numbers")
        return {}
    env = {key: str(val) for key, val in value.items()}
    for key, val in env.items():
        _known_placeholders(val, COMMAND_PLACEHOLDERS, f"env {key}", problems)
    return env


def _replicas(value: object, problems: list[str]) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_REPLICAS:
        return value
    problems.append(f"replicas={value!r}: valid is a whole number 1..{MAX_REPLICAS}")
    return 1


def _paths(value: object, problems: list[str]) -> dict[str, str]:
    paths = {"health": "/health", "ready": "/ready", "metrics": "/metrics"}
    if not isinstance(value, dict):
        problems.append(f"paths={value!r}: must map health, ready, metrics to URL paths")
        return paths
    for key, path in value.items():
        if key not in paths:
            problems.append(f"paths: unknown key {key!r}: valid are health, ready, metrics")
        elif not isinstance(path, str) or not path.startswith("/") or " " in path:
            problems.append(f"paths {key}={path!r}: must be a URL path starting with /")
        else:
            paths[key] = path
    return paths


def _order(value: object, problems: list[str]) -> OrderRequest:
    default = OrderRequest()
    if not isinstance(value, dict):
        problems.append(f"order={value!r}: must be a mapping of method, path, body, statuses")
        return default
    problems += [f"order: unknown key {key!r}: valid are method, path, body, statuses"
                 for key in value if key not in ("method", "path", "body", "statuses")]
    method = value.get("method", default.method)
    if method not in METHODS:
        problems.append(f"order method={method!r}: valid are {', '.join(METHODS)}")
    path = value.get("path", default.path)
    if not isinstance(path, str) or not path.startswith("/"):
        problems.append(f"order path={path!r}: must be a URL path starting with /")
    body = _order_body(value.get("body", default.body), problems)
    statuses = _statuses(value.get("statuses", default.statuses), problems)
    return OrderRequest(str(method), str(path), body, statuses)


def _order_body(value: object, problems: list[str]) -> Mapping[str, Any]:
    if not isinstance(value, dict) or not value:
        problems.append(f"order body={value!r}: must be a JSON object template")
        return {}
    _body_placeholders(value, problems)
    if "{client_order_id}" not in repr(value):
        problems.append("order body: must carry {client_order_id} (the idempotency key every "
                        "reconciliation and duplicate check follows)")
    return value


def _body_placeholders(value: object, problems: list[str]) -> None:
    if isinstance(value, str):
        _known_placeholders(value, ORDER_PLACEHOLDERS, "order body", problems)
    elif isinstance(value, dict):
        for item in value.values():
            _body_placeholders(item, problems)
    elif isinstance(value, list):
        for item in value:
            _body_placeholders(item, problems)


def _status_list(codes: object) -> TypeGuard[list[int] | tuple[int, ...]]:
    return isinstance(codes, list | tuple) and bool(codes) and all(
        isinstance(c, int) and not isinstance(c, bool) and 100 <= c <= 599 for c in codes)


def _statuses(value: object, problems: list[str]) -> dict[str, tuple[int, ...]]:
    if not isinstance(value, Mapping):
        problems.append(f"order statuses={value!r}: must map {', '.join(OUTCOMES)} to lists "
                        "of HTTP statuses")
        return {}
    result: dict[str, tuple[int, ...]] = {}
    for outcome in OUTCOMES:
        codes = value.get(outcome)
        if not _status_list(codes):
            problems.append(f"order statuses {outcome}={codes!r}: must be a non-empty list of "
                            "HTTP statuses (100..599)")
            continue
        result[outcome] = tuple(codes)
    for outcome in OPTIONAL_OUTCOMES:
        if outcome in value:
            codes = value[outcome]
            if _status_list(codes):
                result[outcome] = tuple(codes)
            else:
                problems.append(f"order statuses {outcome}={codes!r}: must be a non-empty "
                                "list of HTTP statuses (100..599)")
    valid = (*OUTCOMES, *OPTIONAL_OUTCOMES)
    problems += [f"order statuses: unknown outcome {key!r}: valid are {', '.join(valid)}"
                 for key in value if key not in valid]
    seen: dict[int, str] = {}
    for outcome, codes in result.items():
        for code in codes:
            if code in seen:
                problems.append(f"order statuses: {code} means both {seen[code]} and {outcome}")
            seen[code] = outcome
    return result


def _stop(value: object, problems: list[str]) -> tuple[str, float]:
    if not isinstance(value, dict):
        problems.append(f"stop={value!r}: must be a mapping of signal and grace_s")
        return "SIGTERM", 10.0
    name = value.get("signal", "SIGTERM")
    if name not in STOP_SIGNALS or not hasattr(signal, str(name)):
        problems.append(f"stop signal={name!r}: valid are {', '.join(STOP_SIGNALS)}")
    grace = value.get("grace_s", 10)
    if isinstance(grace, bool) or not isinstance(grace, int | float) or not 0.1 <= grace <= 120:
        problems.append(f"stop grace_s={grace!r}: valid is a number of seconds 0.1..120")
        grace = 10.0
    return str(name), float(grace)


def _renames(value: object, where: str, valid: tuple[str, ...], pattern: re.Pattern[str],
             problems: list[str]) -> dict[str, str]:
    if not isinstance(value, dict):
        problems.append(f"{where}={value!r}: must map contract names to the service's names")
        return {}
    for key, name in value.items():
        if key not in valid:
            problems.append(f"{where}: {key!r} is not a contract name: valid are "
                            f"{', '.join(valid)}")
        if not isinstance(name, str) or not pattern.match(name):
            problems.append(f"{where} {key}={name!r}: not a valid Prometheus name")
    return {str(k): str(v) for k, v in value.items()}


def _needs_placeholders(spec: ServiceSpec, problems: list[str]) -> None:
    text = " ".join([*spec.command, *spec.env.values()])
    for name in ("port", "broker_url"):
        if f"{{{name}}}" not in text:
            problems.append(f"command: {{{name}}} appears in neither the command nor env: "
                            f"each replica needs its own port and the lab's broker URL")
