"""A real Prometheus scraping a service that names the contract's metrics and labels its
own way: gameday's queries, written with the contract's names, are answered through the
service's names, and the answers come back in the contract's names.

The service is a tiny exporter on 127.0.0.1 (port 0) serving steadily growing counters;
Prometheus (the Debian package the lab uses) listens on a port of the kernel's choosing.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import ThreadingHTTPServer
from typing import TypeVar

import pytest
from support.promserver import ExpositionHandler, needs_prometheus, running_prometheus

from gameday.clients.prometheus import Prometheus
from gameday.contract import (
    METRIC_API_REQUEST_SECONDS,
    METRIC_BREAKER_LAST_TRANSITION,
    METRIC_BREAKER_STATE,
    METRIC_ORDER_SECONDS,
    METRIC_ORDERS_TOTAL,
    METRIC_SLIPPAGE_PIPS,
    MeasurementError,
    MetricNaming,
    sla_expressions,
)
from gameday.measurements.breaker import BreakerView
from gameday.report.prom import fetch_server_series

NAMING = MetricNaming(
    metrics={METRIC_ORDERS_TOTAL: "orders_total", METRIC_ORDER_SECONDS: "order_seconds",
             METRIC_API_REQUEST_SECONDS: "api_seconds", METRIC_BREAKER_STATE: "cb_state",
             METRIC_BREAKER_LAST_TRANSITION: "cb_changed_at",
             METRIC_SLIPPAGE_PIPS: "slippage"},  # not exposed: its queries find nothing
    labels={"status": "outcome", "endpoint": "path", METRIC_BREAKER_STATE: "state"})
SELECTOR = 'job="svc"'
WINDOW_S = 5
CHANGED_AT = 1700000000
T = TypeVar("T")

pytestmark = needs_prometheus


def exposition(elapsed_s: float) -> str:
    """The service's /metrics after ``elapsed_s``: 100 orders/s (90 filled, 10 rejected),
    all answered within 50..100 ms, 1.2 broker calls per order, breaker closed."""
    def n(per_s: float) -> int:
        return int(per_s * elapsed_s)
    return f"""# TYPE orders_total counter
orders_total{{outcome="filled"}} {n(90)}
orders_total{{outcome="rejected"}} {n(10)}
orders_total{{outcome="failed"}} 0
orders_total{{outcome="circuit_open"}} 0
# TYPE order_seconds histogram
order_seconds_bucket{{le="0.05"}} 0
order_seconds_bucket{{le="0.1"}} {n(100)}
order_seconds_bucket{{le="+Inf"}} {n(100)}
order_seconds_count {n(100)}
order_seconds_sum {n(100) * 0.075}
# TYPE api_seconds histogram
api_seconds_bucket{{path="/orders",outcome="200",le="+Inf"}} {n(120)}
api_seconds_count{{path="/orders",outcome="200"}} {n(120)}
api_seconds_sum{{path="/orders",outcome="200"}} {n(120) * 0.05}
# TYPE cb_state gauge
cb_state{{state="closed"}} 1
cb_state{{state="open"}} 0
cb_state{{state="half_open"}} 0
# TYPE cb_changed_at gauge
cb_changed_at {CHANGED_AT}
"""


class _Exporter(ThreadingHTTPServer):
    started = time.monotonic()


class _Metrics(ExpositionHandler):
    server: _Exporter

    def exposition(self) -> str:
        return exposition(time.monotonic() - self.server.started)


@dataclass(frozen=True)
class Scraped:
    """Prometheus at ``url`` scraping the exporter at ``instance`` under job ``svc``."""

    url: str
    instance: str

    def client(self, naming: MetricNaming = NAMING) -> Prometheus:
        return Prometheus(self.url, naming=naming)


def _until(deadline_s: float, attempt: Callable[[], T]) -> T:
    """The first answer of ``attempt`` that does not raise MeasurementError."""
    deadline = time.monotonic() + deadline_s
    while True:
        try:
            return attempt()
        except MeasurementError:
            if time.monotonic() > deadline:
                raise
        time.sleep(0.25)


@pytest.fixture(scope="module")
def exporter() -> Iterator[str]:
    server = _Exporter(("127.0.0.1", 0), _Metrics)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.fixture(scope="module")
def scraped(exporter: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scraped]:
    with running_prometheus(tmp_path_factory.mktemp("prometheus"), "svc", [exporter]) as url:
        # a whole window of scrapes, so that every rate sees the exporter's steady pace
        full = f"count_over_time(up{{{SELECTOR}}}[{WINDOW_S}s]) >= {WINDOW_S}"
        _until(60, lambda: Prometheus(url).scalar(full))
        yield Scraped(url, exporter)


def test_the_exporter_really_uses_its_own_names(scraped: Scraped) -> None:
    with urllib.request.urlopen(f"http://{scraped.instance}/metrics", timeout=5) as answer:
        text = answer.read().decode()
    assert "orders_total{outcome=" in text and METRIC_ORDERS_TOTAL not in text


def test_every_sla_query_is_answered_through_the_service_names(scraped: Scraped) -> None:
    client = scraped.client()
    sla = {name: client.scalar(expr)
           for name, expr in sla_expressions(SELECTOR, WINDOW_S).items()}

    assert sla["availability"] == 1.0
    assert sla["error_rate"] == 0.0
    assert sla["p95_latency_s"] == pytest.approx(0.05 + 0.05 * 0.95)
    assert 80 <= sla["throughput_rps"] <= 120


def test_broker_calls_per_order_reads_the_renamed_histogram_count(scraped: Scraped) -> None:
    calls = f"sum(rate({METRIC_API_REQUEST_SECONDS}_count{{{SELECTOR}}}[{WINDOW_S}s]))"
    orders = f"sum(rate({METRIC_ORDERS_TOTAL}{{{SELECTOR}}}[{WINDOW_S}s]))"
    assert scraped.client().scalar(f"{calls} / {orders}") == pytest.approx(1.2, abs=0.1)


def test_answers_carry_the_contract_label_and_metric_names(scraped: Scraped) -> None:
    client = scraped.client()

    samples = client.vector(f"{METRIC_BREAKER_STATE}{{{SELECTOR}}}")
    assert sorted((s.labels, s.value) for s in samples
                  if s.labels[METRIC_BREAKER_STATE] == "closed") == [
        ({"__name__": METRIC_BREAKER_STATE, METRIC_BREAKER_STATE: "closed", "job": "svc",
          "instance": scraped.instance}, 1.0)]
    by_status = client.vector(f'sum by (status) ({METRIC_ORDERS_TOTAL}{{{SELECTOR}}})')
    assert {s.labels["status"] for s in by_status} == {"filled", "rejected", "failed",
                                                       "circuit_open"}
    buckets = client.vector(f'{METRIC_ORDER_SECONDS}_bucket{{{SELECTOR},le="0.1"}}')
    assert [s.labels["__name__"] for s in buckets] == [f"{METRIC_ORDER_SECONDS}_bucket"]
    calls = client.vector(f'{METRIC_API_REQUEST_SECONDS}_count{{endpoint="/orders"}}')
    assert [(s.labels["endpoint"], s.labels["status"]) for s in calls] == [("/orders", "200")]


def test_matrix_keys_and_range_series_carry_the_contract_names(scraped: Scraped) -> None:
    client = scraped.client()

    matrix = client.matrix(f'{METRIC_ORDERS_TOTAL}{{{SELECTOR},status="filled"}}[{WINDOW_S}s]')
    assert [json.loads(key) for key in matrix] == [
        {"__name__": METRIC_ORDERS_TOTAL, "status": "filled", "job": "svc",
         "instance": scraped.instance}]
    now = time.time()
    series = client.query_range(f"sum by ({METRIC_BREAKER_STATE}) "
                                f"({METRIC_BREAKER_STATE}{{{SELECTOR}}})", now - 3, now)
    assert sorted(s.labels[METRIC_BREAKER_STATE] for s in series) == ["closed", "half_open",
                                                                      "open"]
    assert all(len(s.points) >= 3 for s in series)


def test_the_breaker_view_and_the_report_read_the_renamed_service(scraped: Scraped) -> None:
    view = BreakerView(scraped.client(), SELECTOR)
    assert view.states() == {scraped.instance: "closed"}
    assert view.last_transitions() == {scraped.instance: CHANGED_AT}

    now = time.time()
    server = fetch_server_series(scraped.client(), now - 4, now - 2, selector=SELECTOR,
                                 window_s=WINDOW_S)
    assert server.problem is None, server.problem
    assert set(server.lines) == {"throughput_rps", "error_rate", "p95_latency_s", "ready"}
    assert {state for _, state in server.breaker} == {"closed"}


def test_without_the_naming_the_contract_query_finds_nothing(scraped: Scraped) -> None:
    throughput = sla_expressions(SELECTOR, WINDOW_S)["throughput_rps"]
    with pytest.raises(MeasurementError, match=r"no data for 'sum\(rate\(broker_orders_total"):
        scraped.client(MetricNaming()).scalar(throughput)


def test_a_missing_renamed_metric_is_named_in_the_error(scraped: Scraped) -> None:
    with pytest.raises(MeasurementError) as raised:
        scraped.client().vector(f"{METRIC_SLIPPAGE_PIPS}_count{{{SELECTOR}}}")
    assert str(raised.value).startswith(
        f"""no data for 'slippage_count{{job="svc"}}' (the service's names from its spec: """
        f"{METRIC_SLIPPAGE_PIPS}_count -> slippage_count) at {scraped.url}: the metric is "
        "missing")


def test_a_rejected_query_quotes_it_as_sent(scraped: Scraped) -> None:
    with pytest.raises(MeasurementError, match=r"Prometheus rejected 'rate\(orders_total\)' "
                                               r"\(the service's names from its spec: "
                                               r"broker_orders_total -> orders_total\)"):
        scraped.client().vector(f"rate({METRIC_ORDERS_TOTAL})")
