"""The broker simulator: pure parts directly, HTTP against a real process on port 0."""

from __future__ import annotations

import json
import math
import random
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.procs import ORDER, Proc, http, metric, order, start_broker, stop

from lab.broker.__main__ import parse_args
from lab.broker.ledger import FillQuery, InvalidQuery, Ledger, parse_fill_query
from lab.broker.modeparse import MODES, InvalidMode, parse_mode
from lab.broker.modes import (
    DuplicateMode,
    ErrorMode,
    FlapMode,
    HangMode,
    MaintenanceMode,
    NormalMode,
    RateLimitMode,
    SlowMode,
    Verdict,
    decide,
    maintenance_verdict,
)
from lab.broker.orders import (
    Order,
    fill_price,
    parse_order,
    pip_size,
    rejection_reason,
    sample_latency_ms,
)

# --- pure parts ----------------------------------------------------------------------


def test_parse_order_accepts_a_valid_order() -> None:
    assert parse_order(ORDER) == Order("c-1", "EUR_USD", 100, 1.1)
    assert parse_order({**ORDER, "units": -5, "price": 150}).price == 150.0


def test_fill_slippage_stays_within_two_pips() -> None:
    rng = random.Random(7)
    for instrument, price in (("EUR_USD", 1.1), ("USD_JPY", 150.25)):
        for _ in range(500):
            filled = fill_price(Order("x", instrument, 1, price), rng)
            assert abs(filled - price) <= 2 * pip_size(instrument) + 1e-9


@pytest.mark.parametrize(
    ("instrument", "units", "reason"),
    [("EUR_USD", 1, None), ("USD_JPY", -10_000_000, None), ("EURUSD", 1, "unknown_instrument"),
     ("eur_usd", 1, "unknown_instrument"), ("EUR_USD", 10_000_001, "units_limit_exceeded"),
     ("EUR_USD", -10_000_001, "units_limit_exceeded")],
)  # fmt: skip
def test_rejection_reason(instrument: str, units: int, reason: str | None) -> None:
    assert rejection_reason(Order("x", instrument, units, 1.0)) == reason


def test_latency_has_the_median_and_a_bounded_long_tail() -> None:
    rng = random.Random(3)
    samples = sorted(sample_latency_ms(rng, 20.0) for _ in range(4001))
    assert samples[0] >= 4.0
    assert samples[-1] <= 200.0
    assert 18.0 <= samples[2000] <= 22.0
    assert 45.0 <= samples[3800] <= 65.0  # p95
    assert sample_latency_ms(rng, 0.0) == 0.0
    assert {sample_latency_ms(rng, 20.0, sigma=0.0) for _ in range(10)} == {20.0}
    wide = sorted(sample_latency_ms(rng, 20.0, sigma=1.2) for _ in range(4001))
    assert wide[3800] > samples[3800] * 1.5, "a larger sigma, a longer tail"


@pytest.mark.parametrize(
    "argv", [["--latency-ms", "-1"], ["--latency-sigma", "4"], ["--latency-ms", "nan"]]
)
def test_cli_refuses_bad_latency(argv: list[str]) -> None:
    with pytest.raises(SystemExit):
        parse_args(argv)


def test_cli_reads_the_admin_token_and_never_shows_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GAMEDAY_ADMIN_TOKEN", " tok-77 ")
    settings = parse_args([])
    assert settings.admin_token == "tok-77" and "tok-77" not in repr(settings)
    monkeypatch.setenv("GAMEDAY_ADMIN_TOKEN", "")
    assert parse_args([]).admin_token is None
    monkeypatch.setenv("GAMEDAY_ADMIN_TOKEN", "two words")
    with pytest.raises(SystemExit):
        parse_args([])


def test_cli_defaults() -> None:
    settings = parse_args(["--ledger", "/tmp/x.sqlite"])
    assert (settings.latency_ms, settings.latency_sigma, settings.ledger_path) == (
        20.0, 0.6, "/tmp/x.sqlite"
    )  # fmt: skip
    assert (settings.host, settings.admin_host, settings.port) == ("127.0.0.1", "127.0.0.1", 0)
    assert parse_args([]).ledger_path == ":memory:"


def test_decide_follows_each_mode() -> None:
    rng = random.Random(1)
    assert decide(NormalMode(), rng) == Verdict()
    assert decide(ErrorMode(503), rng) == Verdict(error_status=503, error="broker_error")
    assert decide(RateLimitMode(2.5), rng) == Verdict(
        latency=False, error_status=429, error="rate_limited", retry_after_s=2.5
    )  # fmt: skip
    assert decide(SlowMode(250.0), rng) == Verdict(added_latency_ms=250.0)
    assert decide(HangMode(), rng) == Verdict(latency=False, hang=True)
    assert decide(DuplicateMode(), rng) == Verdict(duplicate=True)
    assert decide(MaintenanceMode(), rng) == Verdict(), "maintenance is decided per route"


def test_flap_starts_down_and_alternates() -> None:
    rng, mode = random.Random(1), FlapMode(down_s=2.0, up_s=3.0, status=502)
    down = Verdict(latency=False, error_status=502, error="broker_down")
    for elapsed_s, expected in ((0.0, down), (1.99, down), (2.0, Verdict()), (4.99, Verdict()),
                                (5.0, down), (7.5, Verdict()), (10.1, down)):  # fmt: skip
        assert decide(mode, rng, elapsed_s) == expected, elapsed_s


def test_probability_is_the_share_of_affected_orders() -> None:
    rng = random.Random(1)
    assert all(decide(ErrorMode(503, 0.0), rng) == Verdict() for _ in range(100))
    errors = sum(decide(ErrorMode(500, 0.3), rng).error_status == 500 for _ in range(2000))
    assert 450 < errors < 750
    hangs = sum(decide(HangMode(0.5), rng).hang for _ in range(2000))
    assert 850 < hangs < 1150


def test_maintenance_verdict_only_in_maintenance() -> None:
    rng = random.Random(1)
    assert maintenance_verdict(NormalMode(), rng) is None
    assert maintenance_verdict(ErrorMode(), rng) is None
    assert maintenance_verdict(MaintenanceMode(30.0), rng) == Verdict(
        latency=False, error_status=503, error="maintenance", retry_after_s=30.0
    )  # fmt: skip
    assert maintenance_verdict(MaintenanceMode(probability=0.0), rng) is None


def test_parse_mode_defaults_and_values() -> None:
    assert parse_mode({"mode": "normal", "probability": 1}) == NormalMode()
    assert parse_mode({"mode": "error"}) == ErrorMode(500, 1.0)
    assert parse_mode({"mode": "error", "status": 429, "probability": 0.5}) == ErrorMode(429, 0.5)
    assert parse_mode({"mode": "slow", "latency_ms": 5}) == SlowMode(5.0)
    assert parse_mode({"mode": "flap", "down_s": 1, "up_s": 2}) == FlapMode(1.0, 2.0)
    assert parse_mode({"mode": "rate_limit"}) == RateLimitMode(1.0)


@pytest.mark.parametrize("name", list(MODES))
def test_every_mode_round_trips_through_its_json(name: str) -> None:
    mode = parse_mode({"mode": name})
    assert mode.to_json()["mode"] == name
    assert parse_mode(mode.to_json()) == mode


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"mode": "bogus"}, "normal, error, rate_limit, slow, hang, flap, maintenance"),
        ({}, "valid modes"),
        ([1], "JSON object"),
        ({"mode": "error", "status": 200}, "400..599"),
        ({"mode": "error", "status": "500"}, "400..599"),
        ({"mode": "error", "status": 500.0}, "400..599"),
        ({"mode": "error", "probability": 1.5}, "between 0 and 1"),
        ({"mode": "error", "probability": "all"}, "probability"),
        ({"mode": "slow", "latency_ms": -1}, "latency_ms"),
        ({"mode": "slow", "latency_ms": math.inf}, "latency_ms"),
        ({"mode": "slow", "latency": 500}, "valid: latency_ms, probability"),
        ({"mode": "hang", "status": 500}, "not a parameter of mode hang"),
        ({"mode": "flap", "down_s": 0}, "down_s"),
        ({"mode": "rate_limit", "retry_after_s": True}, "retry_after_s"),
        ({"mode": "normal", "probability": "x"}, "probability"),
        ({"mode": "normal", "probability": -1}, "probability"),
        ({"mode": "x" * 10_000}, r"^unknown mode 'x{56}\.\.\.; valid modes"),
        ({"mode": "slow", "y" * 10_000: 1}, r"^'y{56}\.\.\. is not a parameter"),
    ],
)
def test_parse_mode_refuses_bad_input(body: object, says: str) -> None:
    with pytest.raises(InvalidMode, match=says):
        parse_mode(body)


def test_ledger_books_and_finds_fills(tmp_path: Path) -> None:
    ledger = Ledger(str(tmp_path / "ledger.sqlite"))
    a = ledger.add(Order("a", "EUR_USD", 1, 1.1), 1.1001, 100.0)
    b = ledger.add(Order("b", "EUR_USD", -2, 1.2), 1.1999, 200.0)
    again = ledger.add(Order("a", "EUR_USD", 1, 1.1), 1.1002, 300.0)
    assert (ledger.first_fill("a"), ledger.first_fill("zz"), ledger.count()) == (a, None, 3)
    assert len({a.fill_id, b.fill_id, again.fill_id}) == 3
    assert ledger.fills(FillQuery()) == [a, b, again]
    assert ledger.fills(FillQuery(client_order_id="a")) == [a, again]
    assert ledger.fills(FillQuery(since_s=100.0, until_s=300.0)) == [a, b]
    ledger.close()
    reopened = Ledger(str(tmp_path / "ledger.sqlite"))
    assert reopened.fills(FillQuery()) == [a, b, again]
    assert int(reopened.add(Order("c", "EUR_USD", 1, 1.0), 1.0, 400.0).fill_id) > int(again.fill_id)


def test_parse_fill_query() -> None:
    assert parse_fill_query({}) == FillQuery()
    assert parse_fill_query({"since": "1.5", "until": "3", "client_order_id": "x"}) == FillQuery(
        1.5, 3.0, "x"
    )  # fmt: skip
    for params, field in (({"since": "yesterday"}, "since"), ({"until": "nan"}, "until"),
                          ({"since": "5", "until": "4"}, "until"),
                          ({"client_order_id": ""}, "client_order_id"),
                          ({"client_order_id": "\ud800"}, "client_order_id")):  # fmt: skip
        with pytest.raises(InvalidQuery) as caught:
            parse_fill_query(params)
        assert caught.value.field == field


# --- the real process ----------------------------------------------------------------


def start_broker_with(stderr_path: Path, token: str | None, *args: str) -> Proc:
    """A broker simulator whose admin API requires ``token`` (None: no token)."""
    with pytest.MonkeyPatch.context() as env:
        env.delenv("GAMEDAY_ADMIN_TOKEN", raising=False)
        if token is not None:
            env.setenv("GAMEDAY_ADMIN_TOKEN", token)
        return start_broker(stderr_path, *args)


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proc]:
    stderr = tmp_path_factory.mktemp("broker") / "stderr.log"
    args = ("--host", "127.0.0.1", "--port", "0", "--admin-port", "0", "--latency-ms", "2")
    started = start_broker_with(stderr, None, *args)
    yield started
    assert stop(started.proc) == 0


@pytest.fixture(autouse=True)
def normal_mode(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "broker" in request.fixturenames:
        http("POST", request.getfixturevalue("broker").admin_url + "/admin/reset")


def set_mode(broker: Proc, **mode: object) -> dict[str, object]:
    status, _, body = http("POST", broker.admin_url + "/admin/mode", mode)
    assert status == 200, body
    return dict(body)


def fills(broker: Proc, query: str = "") -> list[dict[str, object]]:
    status, _, body = http("GET", f"{broker.url}/fills?{query}")
    assert status == 200, body
    return list(body["fills"])


def test_health(broker: Proc) -> None:
    assert http("GET", broker.url + "/health")[::2] == (200, {"status": "ok"})


def test_order_is_filled_with_the_documented_shape(broker: Proc) -> None:
    status, _, fill = http("POST", broker.url + "/orders", order("shape-1"))
    assert status == 200
    assert set(fill) == {
        "fill_id", "client_order_id", "instrument", "units", "fill_price", "filled_at"
    }  # fmt: skip
    assert fill["client_order_id"] == "shape-1"
    assert (fill["instrument"], fill["units"]) == ("EUR_USD", 100)
    assert abs(fill["fill_price"] - 1.1) <= 0.00021
    assert datetime.fromisoformat(fill["filled_at"]).tzinfo is not None
    assert fills(broker, "client_order_id=shape-1") == [fill]


def test_same_client_order_id_gets_the_same_fill(broker: Proc) -> None:
    first = http("POST", broker.url + "/orders", order("idem-1"))[2]
    replayed = metric(broker.url, "broker_sim_orders_total", result="replayed")
    again = http("POST", broker.url + "/orders", order("idem-1"))[2]
    other = http("POST", broker.url + "/orders", order("idem-2"))[2]
    assert again == first
    assert other["fill_id"] != first["fill_id"]
    assert fills(broker, "client_order_id=idem-1") == [first]
    assert metric(broker.url, "broker_sim_orders_total", result="replayed") == replayed + 1


def test_fills_filter_by_time(broker: Proc) -> None:
    before = time.time()
    fill = http("POST", broker.url + "/orders", order("time-1"))[2]
    after = time.time()
    assert fill in fills(broker, f"since={before}&until={after + 0.01}")
    assert fill not in fills(broker, f"since={after + 0.01}")
    assert fill not in fills(broker, f"until={before}")
    status, _, body = http("GET", broker.url + "/fills?since=soon")
    assert (status, body["field"]) == (400, "since")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({k: v for k, v in ORDER.items() if k != "units"}, "units"),
        ({k: v for k, v in ORDER.items() if k != "client_order_id"}, "client_order_id"),
        ({**ORDER, "client_order_id": ""}, "client_order_id"),
        ({**ORDER, "instrument": 7}, "instrument"),
        ({**ORDER, "units": 1.5}, "units"),
        ({**ORDER, "units": 0}, "units"),
        ({**ORDER, "units": True}, "units"),
        ({**ORDER, "price": "1.1"}, "price"),
        ({**ORDER, "price": -1}, "price"),
        ({**ORDER, "client_order_id": "\ud800"}, "client_order_id"),
        ({**ORDER, "instrument": "EUR\udfff"}, "instrument"),
    ],
)
def test_invalid_orders_get_400_naming_the_field(
    broker: Proc, body: dict[str, object], field: str
) -> None:
    status, _, answer = http("POST", broker.url + "/orders", body)
    assert status == 400
    assert answer["field"] == field
    assert field in answer["error"]


@pytest.mark.parametrize("raw", [b"{not json", b"[1, 2]", b""])
def test_non_object_bodies_get_400(broker: Proc, raw: bytes) -> None:
    status, _, answer = http("POST", broker.url + "/orders", raw=raw)
    assert status == 400
    assert "JSON" in answer["error"]


def test_business_rejections_are_422_with_a_reason(broker: Proc) -> None:
    for body, reason in ((order("rj-1", instrument="XAU"), "unknown_instrument"),
                         (order("rj-2", units=20_000_000), "units_limit_exceeded")):  # fmt: skip
        status, _, answer = http("POST", broker.url + "/orders", body)
        assert (status, answer) == (422, {"error": "rejected", "reason": reason})
    assert fills(broker, "client_order_id=rj-1") == []


def test_error_mode_fails_orders_until_reset(broker: Proc) -> None:
    admin = broker.admin_url + "/admin"
    assert http("GET", admin + "/mode")[2] == {"mode": "normal"}
    mode = {"mode": "error", "status": 503, "probability": 1.0}
    assert set_mode(broker, **mode) == mode
    assert http("GET", admin + "/mode")[2] == mode
    failed_before = metric(broker.url, "broker_sim_orders_total", result="failed")
    for i in range(3):
        assert http("POST", broker.url + "/orders", order(f"err-{i}"))[::2] == (
            503, {"error": "broker_error"}
        )  # fmt: skip
    assert metric(broker.url, "broker_sim_orders_total", result="failed") == failed_before + 3
    assert metric(broker.url, "broker_sim_mode_info", mode="error") == 1.0
    assert fills(broker, "client_order_id=err-0") == []
    assert http("POST", admin + "/reset")[::2] == (200, {"mode": "normal"})
    assert http("POST", broker.url + "/orders", order("err-0"))[0] == 200
    assert metric(broker.url, "broker_sim_mode_info", mode="normal") == 1.0


def test_error_mode_with_probability_zero_fills_everything(broker: Proc) -> None:
    set_mode(broker, mode="error", probability=0)
    statuses = {http("POST", broker.url + "/orders", order(f"p0-{i}"))[0] for i in range(5)}
    assert statuses == {200}


def test_rate_limit_is_429_at_once_with_retry_after(broker: Proc) -> None:
    set_mode(broker, mode="rate_limit", retry_after_s=2.5)
    status, headers, body = http("POST", broker.url + "/orders", order("rl-1"))
    assert (status, body, headers["Retry-After"]) == (429, {"error": "rate_limited"}, "3")
    assert metric(broker.url, "broker_sim_orders_total", result="rate_limited") >= 1


def test_slow_mode_adds_latency(broker: Proc) -> None:
    set_mode(broker, mode="slow", latency_ms=300)
    started = time.monotonic()
    assert http("POST", broker.url + "/orders", order("slow-1"))[0] == 200
    assert time.monotonic() - started >= 0.3


def test_hang_never_answers_and_lets_go_when_the_client_does(broker: Proc) -> None:
    set_mode(broker, mode="hang")
    hung = metric(broker.url, "broker_sim_orders_total", result="hung")
    with pytest.raises(TimeoutError):
        http("POST", broker.url + "/orders", order("hang-1"), timeout_s=0.3)
    assert metric(broker.url, "broker_sim_orders_total", result="hung") == hung + 1
    time.sleep(0.1)
    assert metric(broker.url, "broker_sim_hanging_requests") == 0.0
    assert fills(broker, "client_order_id=hang-1") == []


def test_flap_alternates_down_and_up_periods(broker: Proc) -> None:
    set_mode(broker, mode="flap", down_s=0.5, up_s=0.5)
    started = time.monotonic()
    assert http("POST", broker.url + "/orders", order("flap-1"))[::2] == (
        503, {"error": "broker_down"}
    )  # fmt: skip
    time.sleep(max(0.0, 0.7 - (time.monotonic() - started)))
    assert http("POST", broker.url + "/orders", order("flap-2"))[0] == 200
    time.sleep(max(0.0, 1.15 - (time.monotonic() - started)))
    assert http("POST", broker.url + "/orders", order("flap-3"))[0] == 503


def test_maintenance_is_503_everywhere_but_metrics(broker: Proc) -> None:
    set_mode(broker, mode="maintenance", retry_after_s=30)
    for method, path in (("POST", "/orders"), ("GET", "/fills"), ("GET", "/health")):
        status, headers, body = http(method, broker.url + path, order("mt-1"))
        assert (status, body, headers["Retry-After"]) == (503, {"error": "maintenance"}, "30")
    assert http("GET", broker.url + "/metrics")[0] == 200
    assert http("GET", broker.admin_url + "/admin/mode")[2]["mode"] == "maintenance"


def test_every_order_request_is_counted_as_it_arrives(broker: Proc) -> None:
    received = metric(broker.url, "broker_sim_orders_received_total")
    http("POST", broker.url + "/orders", order("rx-1"))
    http("POST", broker.url + "/orders", {"units": 1})  # invalid, still received
    set_mode(broker, mode="maintenance")
    http("POST", broker.url + "/orders", order("rx-2"))
    http("GET", broker.url + "/fills")
    assert metric(broker.url, "broker_sim_orders_received_total") == received + 3


def test_duplicate_mode_fills_a_repeated_id_again(broker: Proc) -> None:
    first = http("POST", broker.url + "/orders", order("dup-1"))[2]
    set_mode(broker, mode="duplicate")
    second = http("POST", broker.url + "/orders", order("dup-1"))[2]
    assert second["fill_id"] != first["fill_id"]
    assert [f["fill_id"] for f in fills(broker, "client_order_id=dup-1")] == [
        first["fill_id"], second["fill_id"]
    ]  # fmt: skip


def hits(broker: Proc, mode: str) -> float:
    return metric(broker.url, "broker_sim_mode_hits_total", mode=mode)


def test_reply_lost_fills_once_and_drops_the_connection(broker: Proc) -> None:
    set_mode(broker, mode="reply_lost")
    before = hits(broker, "reply_lost")
    for _ in range(2):  # the client retries with the same id: the fill is replayed
        with pytest.raises(ConnectionError):
            http("POST", broker.url + "/orders", order("lost-1"))
    booked = fills(broker, "client_order_id=lost-1")
    assert [f["client_order_id"] for f in booked] == ["lost-1"]
    assert hits(broker, "reply_lost") == before + 2
    set_mode(broker, mode="normal")
    assert http("POST", broker.url + "/orders", order("lost-1"))[::2] == (200, booked[0])


def test_error_after_fill_fills_once_and_answers_the_status(broker: Proc) -> None:
    set_mode(broker, mode="error_after_fill", status=502)
    before = hits(broker, "error_after_fill")
    for _ in range(2):
        assert http("POST", broker.url + "/orders", order("eaf-1"))[::2] == (
            502, {"error": "broker_error"}
        )  # fmt: skip
    assert len(fills(broker, "client_order_id=eaf-1")) == 1
    assert hits(broker, "error_after_fill") == before + 2
    status, _, body = http("POST", broker.url + "/orders", order("eaf-2", instrument="X"))
    assert (status, body["reason"]) == (422, "unknown_instrument")
    assert hits(broker, "error_after_fill") == before + 2, "a rejected order is not a hit"


def test_error_after_fill_defaults_to_500(broker: Proc) -> None:
    assert set_mode(broker, mode="error_after_fill") == {
        "mode": "error_after_fill", "status": 500, "probability": 1.0
    }  # fmt: skip
    assert http("POST", broker.url + "/orders", order("eaf-3"))[0] == 500
    assert len(fills(broker, "client_order_id=eaf-3")) == 1


@pytest.mark.parametrize(("mode", "extra"), [("reply_lost", {}), ("error_after_fill", {}),
                                             ("error", {"status": 503}), ("hang", {})])
def test_a_mode_at_probability_zero_hits_nothing(
        broker: Proc, mode: str, extra: dict[str, object]) -> None:
    set_mode(broker, mode=mode, probability=0, **extra)
    before = hits(broker, mode)
    for i in range(5):
        assert http("POST", broker.url + "/orders", order(f"p0-{mode}-{i}"))[0] == 200
    assert hits(broker, mode) == before


def test_mode_hits_count_only_affected_orders(broker: Proc) -> None:
    set_mode(broker, mode="error", status=500, probability=0.5)
    before = hits(broker, "error")
    statuses = [http("POST", broker.url + "/orders", order(f"half-{i}"))[0] for i in range(40)]
    assert 0 < statuses.count(500) < 40
    assert hits(broker, "error") == before + statuses.count(500)
    set_mode(broker, mode="normal")
    first = http("POST", broker.url + "/orders", order("dup-hit"))[2]
    set_mode(broker, mode="duplicate")
    dup_before = hits(broker, "duplicate")
    http("POST", broker.url + "/orders", order("dup-new"))
    assert hits(broker, "duplicate") == dup_before, "a first fill is not a duplicate"
    assert http("POST", broker.url + "/orders", order("dup-hit"))[2] != first
    assert hits(broker, "duplicate") == dup_before + 1


def test_mode_hits_start_at_zero_for_every_mode_but_normal(broker: Proc) -> None:
    text = http("GET", broker.url + "/metrics")[2]
    for name in MODES:
        assert (f'broker_sim_mode_hits_total{{mode="{name}"}}' in text) is (name != "normal")


def test_an_order_taken_is_filled_even_if_the_client_gives_up(broker: Proc) -> None:
    set_mode(broker, mode="slow", latency_ms=300)
    with pytest.raises(TimeoutError):
        http("POST", broker.url + "/orders", order("gone-1"), timeout_s=0.1)
    time.sleep(0.4)
    assert [f["client_order_id"] for f in fills(broker, "client_order_id=gone-1")] == ["gone-1"]


@pytest.mark.parametrize(
    ("body", "says"),
    [({"mode": "bogus"}, "valid modes"), ({"mode": "error", "status": 200}, "400..599"),
     ({"mode": "slow", "latency": 5}, "latency_ms")],
)  # fmt: skip
def test_admin_rejects_invalid_modes(broker: Proc, body: dict[str, object], says: str) -> None:
    status, _, answer = http("POST", broker.admin_url + "/admin/mode", body)
    assert status == 400
    assert says in answer["error"]
    assert http("GET", broker.admin_url + "/admin/mode")[2] == {"mode": "normal"}


def test_admin_delete_mode_resets(broker: Proc) -> None:
    set_mode(broker, mode="hang", probability=0.5)
    assert http("GET", broker.admin_url + "/admin/mode")[2] == {"mode": "hang", "probability": 0.5}
    assert http("DELETE", broker.admin_url + "/admin/mode")[::2] == (200, {"mode": "normal"})


def test_admin_api_is_only_on_the_admin_port(broker: Proc) -> None:
    assert http("GET", broker.url + "/admin/mode")[0] == 404
    assert http("POST", broker.admin_url + "/orders", ORDER)[0] == 404


def test_metrics_expose_counts_and_mode(broker: Proc) -> None:
    status, headers, text = http("GET", broker.url + "/metrics")
    assert status == 200
    assert headers["Content-Type"].startswith("text/plain; version=0.0.4")
    for result in ("filled", "replayed", "rejected", "invalid", "failed", "rate_limited", "hung"):
        assert f'broker_sim_orders_total{{result="{result}"}}' in text
    assert 'broker_sim_mode_info{mode="normal"} 1.0' in text
    for name in ("broker_sim_order_seconds_count", "broker_sim_ledger_fills",
                 "broker_sim_hanging_requests"):  # fmt: skip
        assert f"\n{name} " in text
    assert "_created" not in text


@pytest.mark.parametrize("kill", [False, True])
def test_ledger_survives_a_restart(tmp_path: Path, kill: bool) -> None:
    args = ("--latency-ms", "0", "--ledger", str(tmp_path / "ledger.sqlite"))
    first = start_broker(tmp_path / "err-1", *args)
    fill = http("POST", first.url + "/orders", order("keep-1"))[2]
    if kill:
        first.proc.kill()
    assert stop(first.proc) == (-9 if kill else 0)
    second = start_broker(tmp_path / "err-2", *args)
    try:
        assert fills(second) == [fill]
        assert http("POST", second.url + "/orders", order("keep-1"))[2] == fill
        assert metric(second.url, "broker_sim_ledger_fills") == 1.0
    finally:
        assert stop(second.proc) == 0


def test_sigterm_stops_the_process_cleanly_even_with_a_hung_request(tmp_path: Path) -> None:
    broker = start_broker(tmp_path / "err", "--latency-ms", "0")
    set_mode(broker, mode="hang")
    with pytest.raises(TimeoutError):
        http("POST", broker.url + "/orders", order("h"), timeout_s=0.2)
    started = time.monotonic()
    assert stop(broker.proc) == 0
    assert time.monotonic() - started < 3.0


# --- bad admin and order payloads: 4xx with a JSON error, never a 500 -----------------

DEEP = b"[" * 100_000 + b"]" * 100_000


@pytest.mark.parametrize("admin", [False, True])
@pytest.mark.parametrize("raw", [DEEP, b'{"a":' * 5000 + b"1" + b"}" * 5000])
def test_deeply_nested_json_is_a_400(broker: Proc, admin: bool, raw: bytes) -> None:
    url = broker.admin_url + "/admin/mode" if admin else broker.url + "/orders"
    status, _, answer = http("POST", url, raw=raw)
    assert (status, "JSON" in answer["error"]) == (400, True)
    assert http("GET", broker.admin_url + "/admin/mode")[2] == {"mode": "normal"}


@pytest.mark.parametrize(
    ("method", "path", "raw", "status"),
    [("GET", "/nowhere", None, 404), ("PUT", "/admin/mode", b"{}", 405),
     ("GET", "/admin/reset", None, 405), ("POST", "/admin/mode", b"x" * (2 << 20), 413)],
)  # fmt: skip
def test_admin_http_errors_are_json(
    broker: Proc, method: str, path: str, raw: bytes | None, status: int
) -> None:
    got, _, answer = http(method, broker.admin_url + path, raw=raw)
    assert got == status and answer["status"] == status and answer["error"]


def test_order_api_http_errors_are_json(broker: Proc) -> None:
    assert http("GET", broker.url + "/nowhere")[::2] == (404, {"error": "not found",
                                                                "status": 404})
    status, headers, answer = http("GET", broker.url + "/orders")
    assert (status, answer["status"], headers["Allow"]) == (405, 405, "POST")
    assert http("POST", broker.url + "/orders", raw=b"x" * (2 << 20))[0] == 413


def test_random_admin_bodies_are_200_or_400(broker: Proc) -> None:
    scalars = (st.none() | st.booleans() | st.integers(-(2**70), 2**70)
               | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=8))
    values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                          | st.dictionaries(st.text(max_size=6), inner, max_size=3),
                          max_leaves=6)  # fmt: skip
    names = st.sampled_from([*MODES, "bogus"]) | values
    parameters = st.sampled_from(["status", "probability", "retry_after_s", "latency_ms",
                                  "down_s", "up_s", "bogus"])  # fmt: skip
    bodies = st.dictionaries(parameters, values, max_size=3).flatmap(
        lambda params: names.map(lambda name: {"mode": name, **params})) | values

    @settings(max_examples=150, deadline=None, database=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(body=bodies)
    def attempt(body: object) -> None:
        raw = json.dumps(body, allow_nan=True).encode()
        status, _, answer = http("POST", broker.admin_url + "/admin/mode", raw=raw)
        assert status in (200, 400), answer
        assert (status == 200) is ("error" not in answer)
        http("POST", broker.admin_url + "/admin/reset")

    attempt()
    assert http("POST", broker.url + "/orders", order("after-fuzz"))[0] == 200


# --- the admin token -------------------------------------------------------------------


def _with_token(method: str, url: str, token: str | None, body: object = None) -> Any:
    request = urllib.request.Request(url, method=method,
                                     data=None if body is None else json.dumps(body).encode())
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, json.loads(exc.read())


ADMIN_ROUTES = (("GET", "/mode", None), ("POST", "/mode", {"mode": "hang"}),
                ("POST", "/reset", {}), ("DELETE", "/mode", None))


def test_admin_token_is_required_when_set(tmp_path: Path) -> None:
    secured = start_broker_with(tmp_path / "err", "brk-tok-1", "--latency-ms", "0")
    try:
        admin = secured.admin_url + "/admin"
        for token in (None, "brk-tok-2", "brk-tok-1x", ""):
            for method, path, body in ADMIN_ROUTES:
                status, headers, answer = _with_token(method, admin + path, token, body)
                assert status == 401 and headers["WWW-Authenticate"].startswith("Bearer")
                assert "GAMEDAY_ADMIN_TOKEN" in answer["error"] and "brk-tok" not in str(answer)
        assert _with_token("GET", admin + "/mode", "brk-tok-1")[::2] == (200, {"mode": "normal"})
        assert _with_token("POST", admin + "/mode", "brk-tok-1", {"mode": "slow"})[0] == 200
        assert _with_token("POST", admin + "/reset", "brk-tok-1", {})[0] == 200
        assert http("POST", secured.url + "/orders", order("tok-1"))[0] == 200, "orders stay open"
        assert "brk-tok" not in (tmp_path / "err").read_text()
    finally:
        assert stop(secured.proc) == 0


def test_admin_refuses_browsers(broker: Proc) -> None:
    request = urllib.request.Request(broker.admin_url + "/admin/mode",
                                     headers={"User-Agent": "Mozilla/5.0"})
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=10)
    assert caught.value.code == 403
