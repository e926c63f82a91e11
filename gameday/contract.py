"""The contract every layer shares: metric names, SLA PromQL, link names, the admin token,
the error base. It imports nothing of this project, so the lab's processes (and any
service image) need only this module of ``gameday``.

The service's monitoring contract is documented for the people who implement it in
``docs/contract.md``; the names below are that document in code.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

__all__ = [
    "ADMIN_TOKEN_ENV",
    "BAD_STATUSES",
    "BREAKER_STATES",
    "CONTRACT_LABELS",
    "CONTRACT_METRICS",
    "DEFAULT_ORDER_BODY",
    "DEFAULT_SELECTOR",
    "GOOD_STATUSES",
    "LAB_RECORD_FILE",
    "LB_LINK_PREFIX",
    "METRIC_API_REQUEST_SECONDS",
    "METRIC_BREAKER_LAST_TRANSITION",
    "METRIC_BREAKER_STATE",
    "METRIC_BREAKER_TRANSITIONS",
    "METRIC_CONNECTION_STATUS",
    "METRIC_ORDERS_TOTAL",
    "METRIC_ORDER_SECONDS",
    "METRIC_SLIPPAGE_PIPS",
    "ORDER_PLACEHOLDERS",
    "ORDER_STATUSES",
    "ORDER_VALUES",
    "PACKET_LOSS_FAULT",
    "RECORDED_WINDOWS_S",
    "SERVICE_BROKER_LINK",
    "ConfigError",
    "GamedayError",
    "InjectionError",
    "MeasurementError",
    "MetricNaming",
    "admin_token",
    "fill_placeholders",
    "lb_link_name",
    "recording_rules",
    "sla_expressions",
    "window_selector",
]


# --- errors ------------------------------------------------------------------------------


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


# --- the service's metrics (docs/contract.md) ---------------------------------------------

METRIC_ORDERS_TOTAL = "broker_orders_total"
METRIC_ORDER_SECONDS = "broker_order_execution_seconds"
METRIC_SLIPPAGE_PIPS = "broker_slippage_pips"
METRIC_API_REQUEST_SECONDS = "broker_api_request_seconds"
METRIC_CONNECTION_STATUS = "broker_connection_status"
METRIC_BREAKER_STATE = "broker_circuit_breaker_state"
METRIC_BREAKER_TRANSITIONS = "broker_circuit_breaker_transitions_total"
METRIC_BREAKER_LAST_TRANSITION = "broker_circuit_breaker_last_transition_timestamp_seconds"

CONTRACT_METRICS = (METRIC_ORDERS_TOTAL, METRIC_ORDER_SECONDS, METRIC_SLIPPAGE_PIPS,
                    METRIC_API_REQUEST_SECONDS, METRIC_CONNECTION_STATUS, METRIC_BREAKER_STATE,
                    METRIC_BREAKER_TRANSITIONS, METRIC_BREAKER_LAST_TRANSITION)

ORDER_STATUSES = ("filled", "rejected", "failed", "circuit_open")
GOOD_STATUSES = "filled|rejected"
BAD_STATUSES = "failed|circuit_open"
BREAKER_STATES = ("closed", "open", "half_open")
DEFAULT_SELECTOR = 'job="broker-integration"'

CONTRACT_LABELS = ("status", "endpoint", "from_state", "to_state", METRIC_BREAKER_STATE)
HISTOGRAM_SUFFIXES = ("_bucket", "_count", "_sum", "_created")
_LABEL_LIST_KEYWORDS = frozenset({"by", "without", "on", "ignoring", "group_left",
                                  "group_right"})
_PROMQL_TOKEN = re.compile(
    r'(?P<string>"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`)'
    r"|(?P<number>[0-9][0-9a-zA-Z_.]*)"
    r"|(?P<ident>[a-zA-Z_:][a-zA-Z0-9_:]*)"
    r"|(?P<other>.)", re.DOTALL)


@dataclass(frozen=True)
class MetricNaming:
    """The service's names for the contract's metrics and labels, where they differ.

    Every query gameday writes uses the contract's names; a Prometheus client holding a
    naming rewrites each query into the service's names (:meth:`promql`) and the labels of
    each answer back into the contract's (:meth:`contract_labels`), so a service that
    calls ``broker_orders_total`` ``orders_total`` is measured by the same PromQL.
    """

    metrics: Mapping[str, str] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)

    @property
    def is_identity(self) -> bool:
        """True when the service uses every contract name as it is."""
        return all(k == v for k, v in (*self.metrics.items(), *self.labels.items()))

    def metric(self, contract_name: str) -> str:
        """The service's name of a contract metric, or of one of its histogram series."""
        if contract_name in self.metrics:
            return self.metrics[contract_name]
        for suffix in HISTOGRAM_SUFFIXES:
            base = contract_name.removesuffix(suffix)
            if base != contract_name and base in self.metrics:
                return self.metrics[base] + suffix
        return contract_name

    def label(self, contract_label: str) -> str:
        """The service's name of a contract label."""
        return self.labels.get(contract_label, contract_label)

    def promql(self, expr: str) -> str:
        """``expr`` with each contract metric and label name replaced by the service's
        (string literals, numbers, durations and functions are left alone; pure)."""
        if self.is_identity:
            return expr
        return "".join(new for _, new in self._rewrite(expr))

    def renames(self, expr: str) -> dict[str, str]:
        """The contract names in ``expr`` that the service calls otherwise, each with the
        service's name: what :meth:`promql` changes (pure; empty when nothing)."""
        if self.is_identity:
            return {}
        return {old: new for old, new in self._rewrite(expr) if old != new}

    def _rewrite(self, expr: str) -> Iterator[tuple[str, str]]:
        """Each token of ``expr`` with what it becomes in the service's names: a name in
        braces or in a ``by (...)``-like list is a label, any other name a metric."""
        braces = 0
        label_list = 0
        keyword = False
        for match in _PROMQL_TOKEN.finditer(expr):
            text = match.group()
            if match.lastgroup == "ident":
                in_labels = braces > 0 or label_list > 0
                yield text, self.label(text) if in_labels else self.metric(text)
                keyword = text in _LABEL_LIST_KEYWORDS
                continue
            if match.lastgroup == "other" and not text.isspace():
                braces += {"{": 1, "}": -1}.get(text, 0)
                if text == "(" and keyword:
                    label_list += 1
                elif text == ")" and label_list:
                    label_list -= 1
                keyword = False
            yield text, text

    def contract_metric(self, service_name: str) -> str:
        """The contract's name of the service's metric ``service_name``, or of one of its
        histogram series (``_bucket``, ``_count``, ...); other names are returned as they are."""
        names = {self.metric(name): name for name in CONTRACT_METRICS}
        if service_name in names:
            return names[service_name]
        for suffix in HISTOGRAM_SUFFIXES:
            base = service_name.removesuffix(suffix)
            if base != service_name and base in names:
                return names[base] + suffix
        return service_name

    def contract_labels(self, labels: Mapping[str, str]) -> dict[str, str]:
        """The labels of an answer, keyed by the contract's names again, and ``__name__``
        holding the contract's metric name (pure)."""
        if self.is_identity:
            return dict(labels)
        back = {service: contract for contract, service in self.labels.items()}
        named = {back.get(key, key): value for key, value in labels.items()}
        if "__name__" in named:
            named["__name__"] = self.contract_metric(named["__name__"])
        return named


# --- the order request (a service spec's ``order.body`` template) ----------------------

ORDER_PLACEHOLDERS = ("client_order_id", "instrument", "units", "price")
ORDER_VALUES: Mapping[str, Any] = MappingProxyType(
    {"instrument": "EUR_USD", "units": 1000, "price": 1.0842})
"""What the load generator orders, besides a new ``client_order_id`` each time."""
DEFAULT_ORDER_BODY: Mapping[str, Any] = MappingProxyType(
    {name: f"{{{name}}}" for name in ORDER_PLACEHOLDERS})
_ORDER_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")


def fill_placeholders(template: Any, values: Mapping[str, Any]) -> Any:
    """``template`` with each ``{placeholder}`` replaced by its value (pure): the one
    filler of service specs (commands, environment, order bodies) and the load generator.
    A string that is exactly one placeholder takes the value itself, with its JSON type;
    KeyError names a placeholder without a value."""
    if isinstance(template, str):
        whole = _ORDER_PLACEHOLDER.fullmatch(template)
        if whole:
            return values[whole.group(1)]
        return _ORDER_PLACEHOLDER.sub(lambda m: str(values[m.group(1)]), template)
    if isinstance(template, Mapping):
        return {key: fill_placeholders(item, values) for key, item in template.items()}
    if isinstance(template, list):
        return [fill_placeholders(item, values) for item in template]
    return template


# --- links: what a partition or a degradation acts on --------------------------------------

SERVICE_BROKER_LINK = "service-broker"
LB_LINK_PREFIX = "lb-replica-"

# --- pod kills: recorded as this kind in the record of injected faults ----------------------

KILL_FAULT = "kill"

# --- gray faults: on a replica's cgroups, where a target can offer them ----------------------

FREEZE_FAULT = "freeze"
CPU_THROTTLE_FAULT = "cpu-throttle"
MEMORY_LIMIT_FAULT = "memory-limit"
CGROUP_FAULTS = (FREEZE_FAULT, CPU_THROTTLE_FAULT, MEMORY_LIMIT_FAULT)

# A toxic on a load balancer -> replica link: only where the fault proxy sits on it.
REPLICA_LINK_DEGRADE_FAULT = "replica-link-degrade"

# Random packet drops on a link: only where the link runs through the kernel's iptables
# (the lab with GAMEDAY_LAB_NETNS=1).
PACKET_LOSS_FAULT = "packet-loss"


def lb_link_name(index: int) -> str:
    """Name of the load balancer → replica link of the ``index``-th replica (from 1)."""
    return f"{LB_LINK_PREFIX}{index}"


# --- the lab's record ----------------------------------------------------------------------

LAB_RECORD_FILE = "lab.json"
"""Written into its state directory by a lab that comes up (port base, replicas, netns);
how every command, probe and action finds a running lab's ports (gameday.settings)."""


# --- the admin token -----------------------------------------------------------------------

ADMIN_TOKEN_ENV = "GAMEDAY_ADMIN_TOKEN"
_TOKEN_CHARS = frozenset(chr(code) for code in range(0x21, 0x7F))  # visible ASCII


def admin_token(environ: Mapping[str, str] | None = None) -> str | None:
    """The admin token from ``GAMEDAY_ADMIN_TOKEN`` (surrounding blanks dropped), or None
    when it is unset or empty.

    ConfigError (which does not quote the token) when it holds anything but visible ASCII
    characters, since it could not travel in an HTTP header.
    """
    env = os.environ if environ is None else environ
    token = env.get(ADMIN_TOKEN_ENV, "").strip()
    if not token:
        return None
    if not set(token) <= _TOKEN_CHARS:
        raise ConfigError(f"{ADMIN_TOKEN_ENV} must be visible ASCII characters only "
                          "(no spaces or control characters)")
    return token


# --- SLA PromQL (probes and the recording rules compute the same thing) -------------------


def window_selector(window_s: float) -> str:
    """A PromQL range like ``10s`` for a window in seconds; ConfigError when out of range."""
    try:
        window_s = float(window_s)
    except (TypeError, ValueError):
        raise ConfigError(f"window_s={window_s!r} is not a number of seconds") from None
    if not 2 <= window_s <= 3600:
        raise ConfigError(f"window_s={window_s} is out of range: valid is 2..3600 seconds")
    return f"{int(window_s)}s"


def _orders_rate(selector: str, window: str, statuses: str | None = None) -> str:
    status = f',status=~"{statuses}"' if statuses else ""
    return f"sum(rate({METRIC_ORDERS_TOTAL}{{{selector}{status}}}[{window}]))"


def sla_expressions(selector: str, window_s: float) -> dict[str, str]:
    """PromQL of each SLA over a trailing window (pure): availability, error_rate,
    p95_latency_s, throughput_rps."""
    window = window_selector(window_s)
    total = _orders_rate(selector, window)
    buckets = f"{METRIC_ORDER_SECONDS}_bucket{{{selector}}}"
    return {
        "availability": f"{_orders_rate(selector, window, GOOD_STATUSES)} / {total}",
        "error_rate": f"{_orders_rate(selector, window, BAD_STATUSES)} / {total}",
        "p95_latency_s": f"histogram_quantile(0.95, sum by (le) (rate({buckets}[{window}])))",
        "throughput_rps": total,
    }


RECORDED_WINDOWS_S = (10, 30, 60)


def recording_rules(selector: str = DEFAULT_SELECTOR) -> dict[str, Any]:
    """Prometheus recording rules ``gameday:sla_<name>:<window>s`` for every SLA (pure)."""
    rules = [
        {"record": f"gameday:sla_{name}:{window}s", "expr": expr}
        for window in RECORDED_WINDOWS_S
        for name, expr in sla_expressions(selector, window).items()
    ]
    return {"groups": [{"name": "gameday-sla", "interval": "1s", "rules": rules}]}
