"""Judging a service's /metrics against the contract (pure): each contract metric present
under the spec's name, with its type and labels (docs/contract.md)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from gameday.contract import (
    BREAKER_STATES,
    METRIC_API_REQUEST_SECONDS,
    METRIC_BREAKER_LAST_TRANSITION,
    METRIC_BREAKER_STATE,
    METRIC_BREAKER_TRANSITIONS,
    METRIC_CONNECTION_STATUS,
    METRIC_ORDER_SECONDS,
    METRIC_ORDERS_TOTAL,
    METRIC_SLIPPAGE_PIPS,
    ORDER_STATUSES,
)
from gameday.service_spec import ServiceSpec

__all__ = ["EXPECTED", "Check", "breaker_state", "metric_checks"]


@dataclass(frozen=True)
class Check:
    """One conformance check: its name, whether it passed, and the evidence."""

    name: str
    passed: bool
    evidence: str


# contract metric -> (type, labels every sample must carry, {label: values that must appear})
EXPECTED: dict[str, tuple[str, tuple[str, ...], dict[str, tuple[str, ...]]]] = {
    METRIC_ORDERS_TOTAL: ("counter", ("status",), {"status": ORDER_STATUSES}),
    METRIC_ORDER_SECONDS: ("histogram", (), {}),
    METRIC_SLIPPAGE_PIPS: ("histogram", (), {}),
    METRIC_API_REQUEST_SECONDS: ("histogram", ("endpoint", "status"), {}),
    METRIC_CONNECTION_STATUS: ("gauge", (), {}),
    METRIC_BREAKER_STATE: ("gauge", (METRIC_BREAKER_STATE,),
                           {METRIC_BREAKER_STATE: BREAKER_STATES}),
    METRIC_BREAKER_TRANSITIONS: ("counter", ("from_state", "to_state"), {}),
    METRIC_BREAKER_LAST_TRANSITION: ("gauge", (), {}),
}


def _families(text: str) -> dict[str, Metric]:
    return {family.name: family for family in text_string_to_metric_families(text)}


def metric_checks(text: str, spec: ServiceSpec) -> list[Check]:
    """One check per contract metric: present (under the spec's name), of the contract's
    type, every sample with the contract's labels (spec names), required values seen."""
    families = _families(text)
    return [_check(families, contract, spec) for contract in EXPECTED]


def _check(families: dict[str, Metric], contract: str, spec: ServiceSpec) -> Check:
    name = spec.metric(contract)
    kind, labels, values = EXPECTED[contract]
    title = f"metric {name}"
    family = families.get(name.removesuffix("_total"))
    if family is None:
        return Check(title, False, f"missing from /metrics (the contract's {contract})")
    if family.type != kind:
        return Check(title, False, f"is a {family.type}, the contract wants a {kind}")
    problem = _label_problem(family.samples, [spec.label(lb) for lb in labels],
                             {spec.label(k): v for k, v in values.items()})
    if problem:
        return Check(title, False, problem)
    return Check(title, True, f"{kind}, {len(family.samples)} samples")


def _label_problem(samples: Iterable[object], labels: list[str],
                   values: dict[str, tuple[str, ...]]) -> str | None:
    seen: dict[str, set[str]] = {label: set() for label in labels}
    for sample in samples:
        sample_labels = getattr(sample, "labels", {})
        missing = [lb for lb in labels if lb not in sample_labels]
        if missing:
            return f"a sample lacks the label(s) {', '.join(missing)}"
        for label in labels:
            seen[label].add(sample_labels[label])
    for label, wanted in values.items():
        absent = [v for v in wanted if v not in seen.get(label, set())]
        if absent:
            return f"label {label} never has the value(s) {', '.join(absent)}"
    return None


def breaker_state(text: str, spec: ServiceSpec) -> str | None:
    """The breaker state whose series is 1 in a /metrics text; None when none is."""
    family = _families(text).get(spec.metric(METRIC_BREAKER_STATE))
    label = spec.label(METRIC_BREAKER_STATE)
    for sample in family.samples if family else []:
        if sample.value == 1 and label in sample.labels:
            return str(sample.labels[label])
    return None
