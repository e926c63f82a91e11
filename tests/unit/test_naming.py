"""MetricNaming: every query gameday writes, rewritten into a service's own metric and
label names, and the answers' labels read back in the contract's names."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from gameday.clients.prometheus import Prometheus, Sample, Series
from gameday.contract import (
    CONTRACT_LABELS,
    CONTRACT_METRICS,
    DEFAULT_SELECTOR,
    METRIC_API_REQUEST_SECONDS,
    METRIC_BREAKER_LAST_TRANSITION,
    METRIC_BREAKER_STATE,
    METRIC_BREAKER_TRANSITIONS,
    METRIC_CONNECTION_STATUS,
    METRIC_ORDER_SECONDS,
    METRIC_ORDERS_TOTAL,
    METRIC_SLIPPAGE_PIPS,
    MetricNaming,
    recording_rules,
    sla_expressions,
)
from gameday.measurements.breaker import BreakerView
from gameday.report.prom import breaker_band, matrix_points
from gameday.report.write import ReportSettings, _prometheus

RENAMED = MetricNaming(
    metrics={METRIC_ORDERS_TOTAL: "orders_total", METRIC_ORDER_SECONDS: "order_seconds",
             METRIC_SLIPPAGE_PIPS: "slippage", METRIC_API_REQUEST_SECONDS: "api_seconds",
             METRIC_CONNECTION_STATUS: "connected", METRIC_BREAKER_STATE: "cb_state",
             METRIC_BREAKER_TRANSITIONS: "cb_transitions_total",
             METRIC_BREAKER_LAST_TRANSITION: "cb_changed_at"},
    labels={"status": "outcome", "endpoint": "path", "from_state": "src", "to_state": "dst",
            METRIC_BREAKER_STATE: "state"})
SEL = 'job="svc"'
IDENT = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")


def _outside_strings(expr: str) -> set[str]:
    """The names in ``expr`` that are not inside a string literal."""
    return set(IDENT.findall(re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)))


def _no_contract_name_left(expr: str) -> None:
    names = _outside_strings(expr)
    left = {n for n in names for m in CONTRACT_METRICS if n == m or n.startswith(m + "_")}
    assert not left, expr
    assert not names & {"status", "endpoint", "from_state", "to_state"}, expr


# --- sla_expressions and recording_rules -------------------------------------------------


def test_every_sla_expression_is_rewritten_exactly() -> None:
    rewritten = {k: RENAMED.promql(v) for k, v in sla_expressions(SEL, 10).items()}

    assert rewritten == {
        "availability": 'sum(rate(orders_total{job="svc",outcome=~"filled|rejected"}[10s])) / '
                        'sum(rate(orders_total{job="svc"}[10s]))',
        "error_rate": 'sum(rate(orders_total{job="svc",outcome=~"failed|circuit_open"}[10s])) '
                      '/ sum(rate(orders_total{job="svc"}[10s]))',
        "p95_latency_s": "histogram_quantile(0.95, sum by (le) (rate(order_seconds_bucket"
                         '{job="svc"}[10s])))',
        "throughput_rps": 'sum(rate(orders_total{job="svc"}[10s]))',
    }


@pytest.mark.parametrize("window_s", [2, 10, 30, 60, 3600])
def test_sla_expressions_of_any_window_keep_no_contract_name(window_s: int) -> None:
    for name, expr in sla_expressions(DEFAULT_SELECTOR, window_s).items():
        sent = RENAMED.promql(expr)
        _no_contract_name_left(sent)
        assert f"[{window_s}s]" in sent, name
        assert 'job="broker-integration"' in sent, name


def test_every_recording_rule_expression_is_rewritten_like_the_probes_query() -> None:
    rules = recording_rules()["groups"][0]["rules"]
    assert len(rules) == 12
    for rule in rules:
        window = int(rule["record"].rsplit(":", 1)[1].removesuffix("s"))
        name = rule["record"].split(":")[1].removeprefix("sla_")
        sent = RENAMED.promql(rule["expr"])
        assert sent == RENAMED.promql(sla_expressions(DEFAULT_SELECTOR, window)[name])
        _no_contract_name_left(sent)
        # a query of the recorded series itself names no contract metric: untouched
        assert RENAMED.promql(rule["record"]) == rule["record"]


# --- the breaker's queries (as BreakerView writes them) -----------------------------------


@dataclass
class _Recorder:
    """Stands in for Prometheus: records each query, answers one closed replica."""

    queries: list[str] = field(default_factory=list)

    def vector(self, promql: str) -> list[Sample]:
        self.queries.append(promql)
        return [Sample({"replica": "r1", METRIC_BREAKER_STATE: "closed"}, 1.0)]

    def matrix(self, promql: str) -> dict[str, list[tuple[float, float]]]:
        self.queries.append(promql)
        return {'{"replica": "r1"}': [(1.0, 5.0)]}


def test_every_breaker_query_is_rewritten() -> None:
    recorder = _Recorder()
    view = BreakerView(recorder, SEL)  # type: ignore[arg-type]
    view.states()
    view.last_transitions()
    view.transition_history(100.0, 110.0)
    view.transitions(30)

    assert [RENAMED.promql(q) for q in recorder.queries] == [
        'up{job="svc"}',
        'cb_state{job="svc"} == 1',
        'cb_changed_at{job="svc"}',
        'cb_changed_at{job="svc"}[13s]',
        'sum by (instance, replica, pod) (increase(cb_transitions_total{job="svc"}[30s]))',
    ]


def test_the_report_breaker_query_renames_the_state_label_and_the_metric_apart() -> None:
    expr = (f"sum by ({METRIC_BREAKER_STATE}) ({METRIC_BREAKER_STATE}"
            f'{{{SEL},{METRIC_BREAKER_STATE}="open"}})')
    assert RENAMED.promql(expr) == 'sum by (state) (cb_state{job="svc",state="open"})'


def test_the_broker_calls_per_order_query_is_rewritten() -> None:
    expr = (f"sum(rate({METRIC_API_REQUEST_SECONDS}_count{{{SEL}}}[10s])) / "
            f"sum(rate({METRIC_ORDERS_TOTAL}{{{SEL}}}[10s]))")
    assert RENAMED.promql(expr) == ('sum(rate(api_seconds_count{job="svc"}[10s])) / '
                                    'sum(rate(orders_total{job="svc"}[10s]))')


# --- metric names ---------------------------------------------------------------------


@pytest.mark.parametrize(("contract", "service"), [
    (f"{METRIC_ORDER_SECONDS}_bucket", "order_seconds_bucket"),
    (f"{METRIC_ORDER_SECONDS}_count", "order_seconds_count"),
    (f"{METRIC_ORDER_SECONDS}_sum", "order_seconds_sum"),
    (f"{METRIC_API_REQUEST_SECONDS}_count", "api_seconds_count"),
    (f"{METRIC_SLIPPAGE_PIPS}_bucket", "slippage_bucket"),
    (f"{METRIC_SLIPPAGE_PIPS}_created", "slippage_created"),
    (METRIC_ORDERS_TOTAL, "orders_total"),
    (METRIC_CONNECTION_STATUS, "connected"),
])
def test_histogram_series_and_plain_metrics(contract: str, service: str) -> None:
    assert RENAMED.promql(f"{contract}{{{SEL}}}") == f"{service}{{{SEL}}}"
    assert RENAMED.contract_metric(service) == contract


@pytest.mark.parametrize("expr", [
    f"{METRIC_ORDERS_TOTAL}_bogus",  # not a histogram suffix
    f"{METRIC_ORDER_SECONDS}_buckets",
    f"my_{METRIC_ORDERS_TOTAL}",
    "up", "rate", "histogram_quantile", "gameday:sla_availability:10s",
])
def test_names_that_only_look_like_contract_names_are_untouched(expr: str) -> None:
    assert RENAMED.promql(expr) == expr


def test_functions_numbers_durations_and_modifiers_are_untouched() -> None:
    expr = (f"max_over_time(rate({METRIC_ORDERS_TOTAL}[5m:1m] offset 1h)[1h30m:]) > bool 1e3 "
            f"unless {METRIC_ORDERS_TOTAL} @ 1609746000 or vector(0x1F)")
    assert RENAMED.promql(expr) == (
        "max_over_time(rate(orders_total[5m:1m] offset 1h)[1h30m:]) > bool 1e3 "
        "unless orders_total @ 1609746000 or vector(0x1F)")


# --- label names ---------------------------------------------------------------------


@pytest.mark.parametrize(("expr", "expected"), [
    (f'{METRIC_ORDERS_TOTAL}{{status="filled"}}', 'orders_total{outcome="filled"}'),
    (f'{METRIC_ORDERS_TOTAL}{{ status != "x" , job=~"a|b" }}',
     'orders_total{ outcome != "x" , job=~"a|b" }'),
    (f"sum by (status) ({METRIC_ORDERS_TOTAL})", "sum by (outcome) (orders_total)"),
    (f"sum by(status, job)({METRIC_ORDERS_TOTAL})", "sum by(outcome, job)(orders_total)"),
    (f"sum({METRIC_ORDERS_TOTAL}) by (status)", "sum(orders_total) by (outcome)"),
    (f"sum without (status) ({METRIC_ORDERS_TOTAL})", "sum without (outcome) (orders_total)"),
    (f"count without(endpoint)({METRIC_API_REQUEST_SECONDS}_count)",
     "count without(path)(api_seconds_count)"),
    (f"{METRIC_BREAKER_TRANSITIONS} / on (from_state, to_state) group_left (status) x",
     "cb_transitions_total / on (src, dst) group_left (outcome) x"),
    (f"a / ignoring(status) group_right(to_state) {METRIC_ORDERS_TOTAL}",
     "a / ignoring(outcome) group_right(dst) orders_total"),
    (f"{METRIC_BREAKER_STATE}{{{METRIC_BREAKER_STATE}=\"open\"}} == 1",
     'cb_state{state="open"} == 1'),
])
def test_labels_in_braces_and_in_label_lists(expr: str, expected: str) -> None:
    assert RENAMED.promql(expr) == expected


def test_a_label_list_ends_at_its_parenthesis() -> None:
    # after `by (status)`, the next parenthesis holds an expression again: its names are
    # metrics, and `status` there would be a metric name (untouched: not a contract metric)
    expr = f"sum by (status) (rate({METRIC_ORDERS_TOTAL}{{status=\"x\"}}[1m])) + status"
    assert RENAMED.promql(expr) == 'sum by (outcome) (rate(orders_total{outcome="x"}[1m])) + status'


# --- string literals ----------------------------------------------------------------------


@pytest.mark.parametrize("literal", [
    f'"{METRIC_ORDERS_TOTAL}"', f"'{METRIC_ORDERS_TOTAL}'", f"`{METRIC_ORDERS_TOTAL}`",
    '"status"', r'"a \"broker_orders_total\" b"', f'"{{{METRIC_ORDERS_TOTAL}}}"',
    '"sum by (status)"',
])
def test_string_literals_are_left_alone(literal: str) -> None:
    expr = (f'label_replace({METRIC_ORDERS_TOTAL}{{job={literal}}}, "dst", {literal}, '
            '"status", "(.*)")')
    assert RENAMED.promql(expr) == (
        f'label_replace(orders_total{{job={literal}}}, "dst", {literal}, "status", "(.*)")')


def test_a_name_matcher_is_a_string_and_is_left_alone() -> None:
    expr = f'{{__name__="{METRIC_ORDERS_TOTAL}", status="filled"}}'
    assert RENAMED.promql(expr) == f'{{__name__="{METRIC_ORDERS_TOTAL}", outcome="filled"}}'


# --- answers: labels back in the contract's names -----------------------------------------


def test_answer_labels_are_mapped_back() -> None:
    labels = {"__name__": "cb_state", "state": "open", "pod": "p-1", "job": "svc"}
    assert RENAMED.contract_labels(labels) == {
        "__name__": METRIC_BREAKER_STATE, METRIC_BREAKER_STATE: "open", "pod": "p-1",
        "job": "svc"}
    assert RENAMED.contract_labels({"outcome": "filled", "path": "/orders", "src": "closed",
                                    "dst": "open"}) == {
        "status": "filled", "endpoint": "/orders", "from_state": "closed", "to_state": "open"}


@pytest.mark.parametrize(("service", "contract"), [
    ("orders_total", METRIC_ORDERS_TOTAL),
    ("order_seconds_bucket", f"{METRIC_ORDER_SECONDS}_bucket"),
    ("order_seconds_count", f"{METRIC_ORDER_SECONDS}_count"),
    ("order_seconds_sum", f"{METRIC_ORDER_SECONDS}_sum"),
    ("cb_changed_at", METRIC_BREAKER_LAST_TRANSITION),
    ("up", "up"),
    ("orders_total_bogus", "orders_total_bogus"),
])
def test_name_label_is_mapped_back_with_histogram_suffixes(service: str, contract: str) -> None:
    assert RENAMED.contract_labels({"__name__": service, "le": "0.5"}) == {
        "__name__": contract, "le": "0.5"}


def test_every_contract_name_round_trips() -> None:
    for name in CONTRACT_METRICS:
        assert RENAMED.contract_metric(RENAMED.metric(name)) == name
    back = RENAMED.contract_labels({RENAMED.label(name): "v" for name in CONTRACT_LABELS})
    assert back == dict.fromkeys(CONTRACT_LABELS, "v")


# --- identity -------------------------------------------------------------------------------


@pytest.mark.parametrize("naming", [
    MetricNaming(),
    MetricNaming({METRIC_ORDERS_TOTAL: METRIC_ORDERS_TOTAL}, {"status": "status"}),
])
def test_identity_leaves_queries_and_answers_untouched(naming: MetricNaming) -> None:
    assert naming.is_identity
    assert not RENAMED.is_identity
    for expr in [*sla_expressions(SEL, 10).values(), "sum by (status) (x)", ""]:
        assert naming.promql(expr) == expr
        assert naming.renames(expr) == {}
    labels = {"__name__": METRIC_ORDERS_TOTAL, "status": "filled"}
    assert naming.contract_labels(labels) == labels


def test_a_partial_naming_renames_only_what_it_names() -> None:
    naming = MetricNaming({METRIC_ORDER_SECONDS: "latency_seconds"})
    expr = sla_expressions(SEL, 10)["p95_latency_s"]
    assert naming.promql(expr) == expr.replace(METRIC_ORDER_SECONDS, "latency_seconds")
    assert naming.promql(sla_expressions(SEL, 10)["availability"]) == (
        sla_expressions(SEL, 10)["availability"])


# --- what an error message says ------------------------------------------------------------


def test_renames_names_what_a_query_uses() -> None:
    expr = sla_expressions(SEL, 10)["availability"]
    assert RENAMED.renames(expr) == {METRIC_ORDERS_TOTAL: "orders_total", "status": "outcome"}
    assert RENAMED.renames('up{job="svc"}') == {}


def test_the_client_quotes_the_query_as_sent_and_the_names_it_used() -> None:
    expr = sla_expressions(SEL, 10)["throughput_rps"]
    renamed = Prometheus("http://127.0.0.1:9", naming=RENAMED)
    assert renamed.quote(expr) == (
        """'sum(rate(orders_total{job="svc"}[10s]))' (the service's names from its spec: """
        f"{METRIC_ORDERS_TOTAL} -> orders_total)")
    assert Prometheus("http://127.0.0.1:9").quote(expr) == repr(expr)
    assert renamed.quote('up{job="svc"}') == repr('up{job="svc"}')


# --- the report reads the contract's labels -------------------------------------------------


def test_report_series_are_read_by_contract_labels() -> None:
    series = [Series({METRIC_BREAKER_STATE: "closed"}, ((100.0, 3.0), (101.0, 2.0))),
              Series({METRIC_BREAKER_STATE: "open"}, ((100.0, 0.0), (101.0, 1.0)))]
    assert breaker_band(series, 100.0) == ((0.0, "closed"), (1.0, "open"))
    assert matrix_points(series, 100.0) == ((0.0, 3.0), (1.0, 2.0))
    assert matrix_points([Series({}, ((100.0, float("nan")), (102.0, 1.0)))], 100.0) == (
        (2.0, 1.0),)
    assert matrix_points([], 100.0) == ()


def test_a_report_from_a_named_prometheus_reads_gameday_service_names(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = tmp_path / "service.yaml"
    spec.write_text('name: renamed\ncommand: ["svc", "{port}", "{broker_url}"]\n'
                    "metrics: {broker_orders_total: orders_total}\nlabels: {status: outcome}\n")
    monkeypatch.setenv("GAMEDAY_LAB_DIR", str(tmp_path / "no-lab"))
    monkeypatch.setenv("GAMEDAY_SERVICE", str(spec))
    naming = MetricNaming({METRIC_ORDERS_TOTAL: "orders_total"}, {"status": "outcome"})

    assert _prometheus(ReportSettings(prometheus_url="http://prom:9090")) == Prometheus(
        "http://prom:9090", naming=naming)
    assert _prometheus(ReportSettings(prometheus_url="http://prom:9090",
                                      naming=MetricNaming())) == Prometheus("http://prom:9090")
    assert _prometheus(ReportSettings(prometheus_url="")) == "not asked for"
    monkeypatch.delenv("GAMEDAY_SERVICE")
    assert _prometheus(ReportSettings(prometheus_url="http://prom:9090")) == Prometheus(
        "http://prom:9090")
