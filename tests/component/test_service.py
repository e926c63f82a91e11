"""The reference service as a real process, in front of a real broker simulator;
its retry policy and placement loop as pure functions."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from support.procs import (
    ORDER,
    Proc,
    closed_port_url,
    http,
    json_lines,
    metric,
    order,
    start_broker,
    start_service,
    stop,
)

from lab.service.__main__ import parse_args
from lab.service.breaker import BreakerSettings, CircuitBreaker
from lab.service.broker_client import BrokerReply, classify, parse_retry_after
from lab.service.placing import place
from lab.service.retry import RetrySettings, attempt_timeout_s, retry_delay_s

CONTRACT = {  # name -> type in the text exposition (an Enum shows as a gauge)
    "broker_orders_total": "counter",
    "broker_order_execution_seconds": "histogram",
    "broker_slippage_pips": "histogram",
    "broker_api_request_seconds": "histogram",
    "broker_connection_status": "gauge",
    "broker_circuit_breaker_state": "gauge",
    "broker_circuit_breaker_transitions_total": "counter",
    "broker_circuit_breaker_last_transition_timestamp_seconds": "gauge",
}
FILLED = BrokerReply("filled", "200", True)
DOWN = BrokerReply("unavailable", "503", True)
TIMEOUT = BrokerReply("timeout", "timeout", False)
REFUSED = BrokerReply("unavailable", "connection_error", False)

# --- pure: classifying, retry policy, placement loop ---------------------------------


def test_classify_broker_answers() -> None:
    fill = {"fill_price": 1.1}
    assert classify(200, fill) == BrokerReply("filled", "200", True, fill=fill)
    assert classify(200, {}).kind == "lost", "an unreadable fill may still be a fill"
    assert classify(200, {}).ambiguous and not classify(429, None).ambiguous
    assert classify(503, None).ambiguous, "a 5xx does not say the broker did nothing"
    rejected = classify(422, {"error": "rejected", "reason": "unknown_instrument"})
    assert (rejected.kind, rejected.detail) == ("rejected", "unknown_instrument")
    assert classify(400, {"error": "broker_error"}).detail == "broker_error"
    limited = classify(429, {"error": "rate_limited"}, 2.0)
    assert (limited.kind, limited.retry_after_s) == ("unavailable", 2.0)
    assert classify(503, None).detail == "broker answered 503"


@pytest.mark.parametrize(
    ("header", "seconds"),
    [(None, None), ("3", 3.0), (" 0 ", 0.0), ("1.5", None), ("-1", None), ("99999", 3600.0),
     ("Wed, 21 Oct 2015 07:28:00 GMT", None)],
)  # fmt: skip
def test_parse_retry_after(header: str | None, seconds: float | None) -> None:
    assert parse_retry_after(header) == seconds


def test_retry_delay_policy() -> None:
    policy = RetrySettings(max_attempts=3, budget_s=1.0, backoff_s=0.1, min_attempt_s=0.05)
    assert retry_delay_s(FILLED, 1, 0.0, policy) is None
    assert retry_delay_s(BrokerReply("rejected", "422", True), 1, 0.0, policy) is None
    assert retry_delay_s(DOWN, 1, 0.0, policy) == 0.1
    assert retry_delay_s(TIMEOUT, 2, 0.5, policy) == 0.2, "doubling backoff"
    assert retry_delay_s(DOWN, 3, 0.0, policy) is None, "max_attempts reached"
    assert retry_delay_s(DOWN, 1, 0.85, policy) == 0.1, "0.85 + 0.1 + 0.05 fits in 1.0"
    assert retry_delay_s(DOWN, 1, 0.86, policy) is None, "over budget"
    limited = BrokerReply("unavailable", "429", True, retry_after_s=0.5)
    assert retry_delay_s(limited, 1, 0.0, policy) == 0.5
    assert retry_delay_s(limited, 1, 0.5, policy) is None, "Retry-After past the budget"
    assert retry_delay_s(DOWN, 1, 0.0, RetrySettings(max_attempts=1)) is None
    storm = RetrySettings(max_attempts=3, budget_s=1.0, backoff_s=0.1, min_attempt_s=0.05,
                          honour_retry_after=False)
    assert retry_delay_s(limited, 1, 0.0, storm) == 0.1, "sabotage ignores Retry-After"


def test_default_policy_retries_fast_failures_but_not_timeouts() -> None:
    assert retry_delay_s(DOWN, 1, 0.01, RetrySettings()) == 0.025
    assert retry_delay_s(TIMEOUT, 1, 0.8, RetrySettings()) is None, "a slow broker gets no more"


def test_attempt_timeout_is_cut_to_the_budget_left() -> None:
    assert attempt_timeout_s(0.8, 0.9, 0.0) == 0.8
    assert attempt_timeout_s(0.8, 0.9, 0.5) == pytest.approx(0.4)
    assert attempt_timeout_s(0.8, 0.9, 1.0) == 0.0


@pytest.mark.parametrize(
    "kwargs", [{"max_attempts": 0}, {"budget_s": 0.0}, {"backoff_s": -1.0},
               {"min_attempt_s": -0.1}],
)  # fmt: skip
def test_retry_settings_reject_invalid_values(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        RetrySettings(**kwargs)  # type: ignore[arg-type]


def run_place(replies: list[BrokerReply], breaker: CircuitBreaker,
              retry: RetrySettings) -> tuple[Any, list[float]]:  # fmt: skip
    timeouts: list[float] = []

    async def attempt(timeout_s: float) -> BrokerReply:
        timeouts.append(timeout_s)
        return replies.pop(0)

    return asyncio.run(place(attempt, breaker, retry, 0.8)), timeouts


def test_place_retries_failures_until_a_fill() -> None:
    breaker = CircuitBreaker(BreakerSettings(failure_threshold=5), time.monotonic)
    retry = RetrySettings(max_attempts=3, budget_s=5.0, backoff_s=0.0)
    placement, timeouts = run_place([TIMEOUT, DOWN, FILLED], breaker, retry)
    assert (placement.reply, placement.attempts) == (FILLED, 3)
    assert timeouts == [0.8, 0.8, 0.8]


def test_an_unknown_outcome_stays_unknown_after_a_definite_failure() -> None:
    breaker = CircuitBreaker(BreakerSettings(failure_threshold=5), time.monotonic)
    retry = RetrySettings(max_attempts=2, budget_s=5.0, backoff_s=0.0)
    placement, _ = run_place([TIMEOUT, REFUSED], breaker, retry)
    assert (placement.reply, placement.unknown, placement.attempts) == (REFUSED, TIMEOUT, 2)
    clean, _ = run_place([REFUSED, REFUSED], breaker, retry)
    assert clean.unknown is None


def test_place_stops_when_the_breaker_opens_mid_order() -> None:
    breaker = CircuitBreaker(BreakerSettings(failure_threshold=2), time.monotonic)
    retry = RetrySettings(max_attempts=5, budget_s=5.0, backoff_s=0.0)
    placement, _ = run_place([DOWN, DOWN, FILLED], breaker, retry)
    assert (placement.reply, placement.attempts) == (DOWN, 2)
    refused, _ = run_place([FILLED], breaker, retry)
    assert (refused.reply, refused.attempts) == (None, 0)


def test_place_records_a_cancelled_attempt_as_a_failure() -> None:
    breaker = CircuitBreaker(BreakerSettings(failure_threshold=1), time.monotonic)

    async def cancelled(timeout_s: float) -> BrokerReply:
        raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        asyncio.run(place(cancelled, breaker, RetrySettings(), 0.8))
    assert breaker.state.value == "open"


def test_cli_defaults_and_errors() -> None:
    settings = parse_args(["--broker-url", "http://b", "--name", "n", "--timeout-s", "2"])
    assert (settings.timeout_s, settings.retry.budget_s, settings.retry.max_attempts) == (
        2.0, 2.0, 2
    )  # fmt: skip
    assert settings.breaker == BreakerSettings()
    assert (settings.breaker_leaks, settings.ambiguous_status) == (False, None)
    sabotaged = parse_args(["--broker-url", "http://b", "--name", "n", "--breaker-leaks",
                            "--ambiguous-status", "500"])  # fmt: skip
    assert (sabotaged.breaker_leaks, sabotaged.ambiguous_status) == (True, 500)
    for bad in (["--broker-url", "b"], ["--min-calls", "0"], ["--max-attempts", "0"],
                ["--drain-delay-s", "-1"], ["--ambiguous-status", "99"]):  # fmt: skip
        with pytest.raises(SystemExit):
            parse_args(["--broker-url", "http://b", "--name", "n", *bad])


# --- fixtures for the real processes -------------------------------------------------


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proc]:
    started = start_broker(tmp_path_factory.mktemp("broker") / "stderr.log", "--latency-ms", "1")
    yield started
    assert stop(started.proc) == 0


@pytest.fixture
def normal_mode(broker: Proc) -> Iterator[None]:
    yield
    http("POST", broker.admin_url + "/admin/reset")


StartService = Callable[..., Proc]


@pytest.fixture
def service(tmp_path: Path, normal_mode: None) -> Iterator[StartService]:
    """``service(broker_url, "--failure-threshold", "3", ...)`` -> running Proc."""
    started: list[Proc] = []

    def start(broker_url: str, *args: str) -> Proc:
        stderr = tmp_path / f"service-{len(started)}.log"
        started.append(start_service(stderr, broker_url, "--drain-delay-s", "0", *args))
        return started[-1]

    yield start
    for proc in started:
        assert stop(proc.proc) == 0


def set_mode(broker: Proc, **mode: object) -> None:
    assert http("POST", broker.admin_url + "/admin/mode", mode)[0] == 200


def place_order(service: Proc, client_order_id: str, **changes: object) -> Any:
    return http("POST", service.url + "/orders", order(client_order_id, **changes))


def broker_calls(broker: Proc) -> float:
    results = ("filled", "replayed", "rejected", "invalid", "failed", "rate_limited", "hung")
    return sum(metric(broker.url, "broker_sim_orders_total", result=r) for r in results)


def ledger(broker: Proc, client_order_id: str) -> list[dict[str, Any]]:
    return list(http("GET", f"{broker.url}/fills?client_order_id={client_order_id}")[2]["fills"])


def orders(service: Proc, status: str) -> float:
    return metric(service.url, "broker_orders_total", status=status)


def transitions(service: Proc, from_state: str, to_state: str) -> float:
    name = "broker_circuit_breaker_transitions_total"
    return metric(service.url, name, from_state=from_state, to_state=to_state)


def api_calls(service: Proc, status: str) -> float:
    name = "broker_api_request_seconds_count"
    return metric(service.url, name, endpoint="/orders", status=status)


def events(service: Proc, event: str) -> list[dict[str, Any]]:
    return [line for line in json_lines(service.stderr_path) if line.get("event") == event]


# --- the real processes --------------------------------------------------------------


def test_health_and_ready_do_not_depend_on_the_broker(service: StartService) -> None:
    svc = service(closed_port_url())
    status, _, body = http("GET", svc.url + "/health")
    assert (status, body) == (200, {"status": "ok", "name": "svc-a", "breaker": "closed"})
    assert http("GET", svc.url + "/ready")[::2] == (200, {"status": "ready", "name": "svc-a"})


def test_metrics_carry_the_whole_contract_from_start(service: StartService) -> None:
    before = time.time()
    svc = service(closed_port_url())
    status, headers, text = http("GET", svc.url + "/metrics")
    assert status == 200
    assert headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    for name, kind in CONTRACT.items():
        assert f"# TYPE {name} {kind}\n" in text
    for status_label in ("filled", "rejected", "failed", "circuit_open"):
        assert f'broker_orders_total{{status="{status_label}"}} 0.0' in text
    for from_state, to_state in (("closed", "open"), ("open", "half_open"),
                                 ("half_open", "closed"), ("half_open", "open")):  # fmt: skip
        assert (f'broker_circuit_breaker_transitions_total{{from_state="{from_state}",'
                f'to_state="{to_state}"}} 0.0') in text  # fmt: skip
    for state, value in (("closed", 1.0), ("open", 0.0), ("half_open", 0.0)):
        assert metric(svc.url, "broker_circuit_breaker_state",
                      broker_circuit_breaker_state=state) == value  # fmt: skip
    started_at = metric(svc.url, "broker_circuit_breaker_last_transition_timestamp_seconds")
    assert before - 1 <= started_at <= time.time()
    assert "_created" not in text


def test_order_is_filled_through_the_broker(broker: Proc, service: StartService) -> None:
    svc = service(broker.url)
    calls = broker_calls(broker)
    status, _, body = place_order(svc, "fill-1")
    assert status == 200
    assert body["status"] == "filled"
    assert body["client_order_id"] == "fill-1"
    assert {"fill_id", "fill_price", "filled_at", "instrument", "units"} <= set(body)
    assert broker_calls(broker) == calls + 1
    assert orders(svc, "filled") == 1
    assert metric(svc.url, "broker_order_execution_seconds_count") == 1
    assert metric(svc.url, "broker_slippage_pips_count") == 1
    assert api_calls(svc, "200") == 1
    assert metric(svc.url, "broker_connection_status") == 1
    [logged] = events(svc, "order")
    assert logged["client_order_id"] == "fill-1"
    assert (logged["status"], logged["http_status"], logged["attempts"]) == ("filled", 200, 1)
    assert (logged["replica"], logged["broker_status"]) == ("svc-a", "200")
    assert logged["latency_ms"] > 0


BAD_ORDERS = [
    ({k: v for k, v in ORDER.items() if k != "instrument"}, "instrument"),
    ({**ORDER, "client_order_id": "x" * 129}, "client_order_id"),
    ({**ORDER, "units": 0}, "units"), ({**ORDER, "units": "10"}, "units"),
    ({**ORDER, "price": "x"}, "price"), ({**ORDER, "price": 0}, "price"),
    ([ORDER], None), ("not json", None),
]  # fmt: skip


def test_each_kind_of_bad_order_is_400_and_never_sent(
    broker: Proc, service: StartService
) -> None:
    svc = service(broker.url)
    calls = broker_calls(broker)
    for body, field in BAD_ORDERS:
        raw = body.encode() if isinstance(body, str) else None
        status, _, answer = http("POST", svc.url + "/orders", body, raw=raw)
        assert (status, answer["field"]) == (400, field), body
    assert broker_calls(broker) == calls
    assert [e["status"] for e in events(svc, "order")] == ["invalid"] * len(BAD_ORDERS)
    assert sum(orders(svc, status) for status in ("filled", "rejected", "failed")) == 0


def test_broker_rejections_are_422_and_keep_the_breaker_closed(
    broker: Proc, service: StartService
) -> None:
    svc = service(broker.url, "--failure-threshold", "2")
    assert place_order(svc, "rej-1", instrument="GOLD")[::2] == (
        422, {"status": "rejected", "reason": "unknown_instrument"}
    )  # fmt: skip
    set_mode(broker, mode="error", status=400)
    for i in range(3):
        assert place_order(svc, f"rej-{i}")[::2] == (
            422, {"status": "rejected", "reason": "broker_error"}
        )  # fmt: skip
    assert orders(svc, "rejected") == 4
    assert api_calls(svc, "400") == 3, "a rejection is never retried"
    assert http("GET", svc.url + "/health")[2]["breaker"] == "closed"


def test_breaker_opens_within_failure_threshold_and_stops_calling(
    broker: Proc, service: StartService
) -> None:
    svc = service(broker.url, "--failure-threshold", "3", "--reset-timeout-s", "30")
    set_mode(broker, mode="error", status=503)
    calls = broker_calls(broker)
    for i in range(2):  # 2 attempts, then 1 attempt whose retry the open breaker refuses
        status, _, body = place_order(svc, f"down-{i}")
        assert (status, body["error"]) == (502, "broker_unavailable")
    assert broker_calls(broker) == calls + 3, "opened on exactly the 3rd failure"
    for i in range(5):
        status, headers, body = place_order(svc, f"open-{i}")
        assert (status, body) == (503, {"error": "circuit_open"})
        assert 1 <= int(headers["Retry-After"]) <= 30
    assert broker_calls(broker) == calls + 3, "no call reaches the broker while open"
    assert (orders(svc, "failed"), orders(svc, "circuit_open")) == (2, 5)
    assert transitions(svc, "closed", "open") == 1
    assert metric(svc.url, "broker_circuit_breaker_state",
                  broker_circuit_breaker_state="open") == 1  # fmt: skip
    assert http("GET", svc.url + "/health")[::2] == (
        200, {"status": "ok", "name": "svc-a", "breaker": "open"}
    )  # fmt: skip
    [opened] = events(svc, "breaker_transition")
    assert (opened["from_state"], opened["to_state"], opened["level"]) == (
        "closed", "open", "WARNING"
    )  # fmt: skip
    assert [e["status"] for e in events(svc, "order")] == ["failed"] * 2 + ["circuit_open"] * 5


def test_timeouts_count_as_failures(broker: Proc, service: StartService) -> None:
    args = ("--failure-threshold", "2", "--timeout-s", "0.2", "--max-attempts", "1",
            "--reset-timeout-s", "30")  # fmt: skip
    svc = service(broker.url, *args)
    set_mode(broker, mode="hang")
    assert [place_order(svc, f"hung-{i}")[0] for i in range(3)] == [504, 504, 503]
    assert api_calls(svc, "timeout") == 2
    assert transitions(svc, "closed", "open") == 1


def test_breaker_opens_on_the_failure_rate(broker: Proc, service: StartService) -> None:
    args = ("--failure-threshold", "100", "--failure-rate-threshold", "0.5",
            "--min-calls", "6", "--max-attempts", "1")  # fmt: skip
    svc = service(broker.url, *args)
    for i in range(3):  # F S F S F S: 3 of 6 failed, but the last result is a success
        set_mode(broker, mode="error", status=500)
        assert place_order(svc, f"rate-f{i}")[0] == 502
        http("POST", broker.admin_url + "/admin/reset")
        assert place_order(svc, f"rate-s{i}")[0] == 200
    assert http("GET", svc.url + "/health")[2]["breaker"] == "closed"
    set_mode(broker, mode="error", status=500)
    assert place_order(svc, "rate-f3")[0] == 502
    assert http("GET", svc.url + "/health")[2]["breaker"] == "open", "4 of 7 failed"


def test_breaker_half_opens_trials_and_closes(broker: Proc, service: StartService) -> None:
    args = ("--failure-threshold", "2", "--reset-timeout-s", "0.5", "--success-threshold", "2")
    svc = service(broker.url, *args)
    set_mode(broker, mode="error", status=500)
    assert [place_order(svc, f"r-{i}")[0] for i in range(2)] == [502, 503]
    http("POST", broker.admin_url + "/admin/reset")
    time.sleep(0.55)
    calls = broker_calls(broker)
    assert [place_order(svc, f"ok-{i}")[0] for i in range(2)] == [200, 200]
    assert broker_calls(broker) == calls + 2
    assert http("GET", svc.url + "/health")[2]["breaker"] == "closed"
    for from_state, to_state in (("closed", "open"), ("open", "half_open"),
                                 ("half_open", "closed")):  # fmt: skip
        assert transitions(svc, from_state, to_state) == 1
    moves = [(e["from_state"], e["to_state"]) for e in events(svc, "breaker_transition")]
    assert moves == [("closed", "open"), ("open", "half_open"), ("half_open", "closed")]


def test_a_failed_trial_reopens_the_breaker(broker: Proc, service: StartService) -> None:
    svc = service(broker.url, "--failure-threshold", "1", "--reset-timeout-s", "0.3")
    set_mode(broker, mode="error", status=503)
    assert place_order(svc, "t-0")[0] == 502
    time.sleep(0.35)
    calls = broker_calls(broker)
    assert [place_order(svc, f"t-{i}")[0] for i in (1, 2)] == [502, 503]
    assert broker_calls(broker) == calls + 1, "one trial, not retried"
    assert transitions(svc, "half_open", "open") == 1


def test_429_is_retried_after_retry_after_within_the_budget(
    broker: Proc, service: StartService
) -> None:
    svc = service(broker.url, "--failure-threshold", "10", "--budget-s", "3")
    set_mode(broker, mode="rate_limit", retry_after_s=1)
    started = time.monotonic()
    status, headers, body = place_order(svc, "busy-1")
    assert time.monotonic() - started >= 1.0, "waited Retry-After before the retry"
    assert (status, body["error"], headers["Retry-After"]) == (500, "broker_failed", "1")
    assert api_calls(svc, "429") == 2


def test_429_past_the_budget_fails_at_once(broker: Proc, service: StartService) -> None:
    svc = service(broker.url, "--failure-threshold", "1")
    set_mode(broker, mode="rate_limit", retry_after_s=5)
    started = time.monotonic()
    status, headers, _ = place_order(svc, "busy-2")
    assert (status, headers["Retry-After"]) == (500, "5")
    assert time.monotonic() - started < 0.5
    assert (api_calls(svc, "429"), place_order(svc, "busy-3")[0]) == (1, 503)


def test_unreachable_broker_is_500_a_definite_failure(service: StartService) -> None:
    svc = service(closed_port_url(), "--max-attempts", "1")
    status, _, body = place_order(svc, "gone-1")
    assert (status, body["error"]) == (500, "broker_failed"), "never sent: surely not filled"
    assert body["detail"]
    assert orders(svc, "failed") == 1
    assert metric(svc.url, "broker_connection_status") == 0
    assert api_calls(svc, "connection_error") == 1


def test_slow_broker_is_504_within_the_budget(broker: Proc, service: StartService) -> None:
    svc = service(broker.url, "--timeout-s", "0.3", "--budget-s", "0.5")
    set_mode(broker, mode="slow", latency_ms=1000)
    started = time.monotonic()
    status, _, body = place_order(svc, "slow-1")
    assert time.monotonic() - started < 0.65
    assert (status, body["error"]) == (504, "broker_timeout")
    assert orders(svc, "failed") == 1
    assert api_calls(svc, "timeout") == 2, "0.3 s, then the 0.175 s left of the budget"
    assert metric(svc.url, "broker_connection_status") == 0


def test_retries_after_timeouts_never_fill_twice(broker: Proc, service: StartService) -> None:
    svc = service(broker.url, "--timeout-s", "0.2", "--budget-s", "2", "--max-attempts", "4",
                  "--failure-threshold", "50")  # fmt: skip
    set_mode(broker, mode="slow", latency_ms=400)  # every attempt in the first 0.3 s times out
    ids = [f"idem-{i}" for i in range(8)]
    with ThreadPoolExecutor(len(ids)) as pool:
        answers = [pool.submit(place_order, svc, i) for i in ids]
        time.sleep(0.3)
        http("POST", broker.admin_url + "/admin/reset")  # later attempts are answered
        results = [answer.result() for answer in answers]
    assert [r[0] for r in results] == [200] * len(ids)
    assert api_calls(svc, "timeout") >= len(ids), "every order timed out at least once"
    time.sleep(0.5)  # let the broker finish the slow attempts still in flight
    for client_order_id, (_, _, body) in zip(ids, results, strict=True):
        [fill] = ledger(broker, client_order_id)
        assert fill["fill_id"] == body["fill_id"]


def test_sigterm_drains_without_losing_an_in_flight_order(broker: Proc, tmp_path: Path,
                                                          normal_mode: None) -> None:  # fmt: skip
    svc = start_service(tmp_path / "svc.log", broker.url, "--drain-delay-s", "0.4")
    set_mode(broker, mode="slow", latency_ms=500)
    with ThreadPoolExecutor(4) as pool:
        in_flight = [pool.submit(place_order, svc, f"drain-{i}") for i in range(3)]
        time.sleep(0.2)
        svc.proc.terminate()
        time.sleep(0.1)
        assert http("GET", svc.url + "/ready")[::2] == (
            503, {"status": "draining", "name": "svc-a"}
        )  # fmt: skip
        during_delay = pool.submit(place_order, svc, "drain-late")
        answers = [future.result() for future in [*in_flight, during_delay]]
    assert [a[0] for a in answers] == [200] * 4
    assert svc.proc.wait(timeout=5) == 0
    for i in (0, 1, 2):
        assert len(ledger(broker, f"drain-{i}")) == 1
    with pytest.raises(OSError):
        http("GET", svc.url + "/health", timeout_s=1)
    assert [e["event"] for e in json_lines(svc.stderr_path)].count("draining") == 1


def test_json_logs_go_to_the_log_file_when_given(broker: Proc, service: StartService,
                                                 tmp_path: Path) -> None:  # fmt: skip
    log_file = tmp_path / "replica.log"
    svc = service(broker.url, "--log-file", str(log_file))
    assert place_order(svc, "log-1")[0] == 200
    stop(svc.proc)
    [line] = [e for e in json_lines(log_file) if e.get("event") == "order"]
    assert set(line) >= {"timestamp", "level", "logger", "message", "replica", "status"}
    assert (line["replica"], line["level"], line["logger"]) == ("svc-a", "INFO", "lab.service")
    assert line["timestamp"].endswith("+00:00")
    assert events(svc, "order") == [], "nothing on stderr"


def test_ambiguous_status_sabotage_answers_a_timeout_as_a_definite_failure(
    broker: Proc, service: StartService
) -> None:
    args = ("--timeout-s", "0.2", "--max-attempts", "1", "--failure-threshold", "50")
    honest, sabotaged = service(broker.url, *args), service(broker.url, *args,
                                                           "--ambiguous-status", "500")
    set_mode(broker, mode="hang")
    assert place_order(honest, "amb-1")[0] == 504, "unknown outcome: maybe filled"
    status, _, body = place_order(sabotaged, "amb-2")
    assert (status, body["error"]) == (500, "broker_timeout")
    assert orders(sabotaged, "failed") == 1


def test_breaker_leaks_sabotage_calls_the_broker_while_open(
    broker: Proc, service: StartService
) -> None:
    svc = service(broker.url, "--failure-threshold", "1", "--reset-timeout-s", "30",
                  "--max-attempts", "1", "--breaker-leaks")  # fmt: skip
    set_mode(broker, mode="error", status=503)
    assert place_order(svc, "leak-0")[0] == 502
    assert http("GET", svc.url + "/health")[2]["breaker"] == "open"
    calls = broker_calls(broker)
    assert [place_order(svc, f"leak-{i}")[0] for i in (1, 2)] == [502, 502]
    assert broker_calls(broker) == calls + 2, "open, yet every order went to the broker"
    assert metric(svc.url, "broker_circuit_breaker_state",
                  broker_circuit_breaker_state="open") == 1  # fmt: skip
