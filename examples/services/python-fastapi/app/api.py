"""The FastAPI application: ``POST /orders``, ``GET /health``, ``GET /ready``,
``GET /metrics`` (docs/contract.md, section 2).

Answers to ``POST /orders`` and the ``broker_orders_total{status}`` they count under:

====  =================================================================  ============
200   ``{"status": "filled", "fill_id", "client_order_id", "instrument",     filled
      "units", "fill_price", "filled_at"}``
400   ``{"error", "field"}``: the body fails validation (pydantic)           (not counted)
422   ``{"status": "rejected", "reason"}``: broker 4xx other than 429        rejected
502   ``{"error": "broker_unavailable", "detail"}`` (+ the broker's          failed
      ``Retry-After``): broker 5xx/429, unreadable fill, no connection
503   ``{"error": "circuit_open"}`` + ``Retry-After``: breaker open          circuit_open
504   ``{"error": "broker_timeout", "detail"}``: no answer in time           failed
====  =================================================================  ============
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, Field, field_validator

from app.breaker import BreakerMonitor, CircuitOpen, make_breakers, retry_after_s
from app.broker import BrokerClient
from app.metrics import ORDER_SECONDS, ORDERS, SLIPPAGE_PIPS

__all__ = ["OrderIn", "Readiness", "create_app", "pip_size"]

log = logging.getLogger(__name__)


class OrderIn(BaseModel):
    """An order as the load generator sends it (all fields required)."""

    client_order_id: str = Field(min_length=1, max_length=128)
    instrument: str = Field(min_length=1, max_length=128)
    units: int
    price: float = Field(gt=0, allow_inf_nan=False)

    @field_validator("units")
    @classmethod
    def _units_non_zero(cls, units: int) -> int:
        if units == 0:
            raise ValueError("units must be a non-zero integer (negative = sell)")
        return units


@dataclass
class Readiness:
    """``starting`` until the app has started, ``ready``, then ``draining`` on SIGTERM."""

    status: str = "starting"

    def drain(self) -> None:
        self.status = "draining"


def pip_size(instrument: str) -> float:
    """One pip: 0.01 for JPY-quoted pairs, else 0.0001."""
    return 0.01 if instrument.upper().endswith("JPY") else 0.0001


def _answer(status_label: str, body: dict[str, Any], code: int, **headers: str) -> JSONResponse:
    ORDERS.labels(status=status_label).inc()
    return JSONResponse(body, status_code=code, headers=headers or None)


def _broker_error_answer(exc: httpx.HTTPStatusError) -> JSONResponse:
    """422 for a broker refusal (4xx but 429), else 502 (5xx, 429, anything else)."""
    response = exc.response
    code = response.status_code
    try:
        body = response.json()
    except ValueError:
        body = None
    body = body if isinstance(body, dict) else {}
    if response.is_client_error and code != 429:
        reason = body.get("reason") or body.get("error") or f"broker answered {code}"
        return _answer("rejected", {"status": "rejected", "reason": str(reason)}, 422)
    detail = f"broker answered {code} {body.get('error', response.reason_phrase)}".strip()
    headers = {}
    if "retry-after" in response.headers:
        headers["Retry-After"] = response.headers["retry-after"]
    return _answer("failed", {"error": "broker_unavailable", "detail": detail}, 502, **headers)


def _fill_answer(order: OrderIn, response: httpx.Response) -> JSONResponse:
    """200 with the broker's fill, or 502 when the fill cannot be read."""
    try:
        fill = response.json()
        fill_price = float(fill["fill_price"])
        if not math.isfinite(fill_price):
            raise ValueError("fill_price is not finite")
        body = {
            "status": "filled",
            "fill_id": str(fill["fill_id"]),
            "client_order_id": fill["client_order_id"],
            "instrument": fill["instrument"],
            "units": fill["units"],
            "fill_price": fill_price,
            "filled_at": fill["filled_at"],
        }
    except (ValueError, KeyError, TypeError) as exc:
        detail = f"unreadable fill: {exc}"
        return _answer("failed", {"error": "broker_unavailable", "detail": detail}, 502)
    SLIPPAGE_PIPS.observe((fill_price - order.price) / pip_size(order.instrument))
    return _answer("filled", body, 200)


async def _place(broker: BrokerClient, order: OrderIn) -> JSONResponse:
    """Place ``order`` with the broker and answer as the module doc says."""
    try:
        response = await broker.place(order.model_dump())
    except CircuitOpen as exc:
        headers = {"Retry-After": str(retry_after_s(exc))}
        return _answer("circuit_open", {"error": "circuit_open"}, 503, **headers)
    except httpx.TimeoutException as exc:
        detail = f"no answer from the broker in time ({type(exc).__name__})"
        return _answer("failed", {"error": "broker_timeout", "detail": detail}, 504)
    except httpx.TransportError as exc:
        detail = f"broker connection failed ({type(exc).__name__}: {exc})"
        return _answer("failed", {"error": "broker_unavailable", "detail": detail}, 502)
    except httpx.HTTPStatusError as exc:
        return _broker_error_answer(exc)
    return _fill_answer(order, response)


def create_app(broker_url: str, name: str) -> FastAPI:
    """The service's ASGI app; ``name`` shows in /health and /ready."""
    readiness = Readiness()
    monitor = BreakerMonitor()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        breakers = make_breakers(monitor)
        await breakers.initialize()
        app.state.broker = BrokerClient(broker_url, breakers)
        readiness.status = "ready"
        log.info("%s ready, broker %s", name, broker_url)
        try:
            yield
        finally:
            await app.state.broker.aclose()
            log.info("%s stopped", name)

    app = FastAPI(title="broker-integration (python-fastapi example)", lifespan=lifespan)
    app.state.readiness = readiness
    app.state.monitor = monitor

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        first = errors[0] if errors else {}
        loc = first.get("loc", ())
        field = loc[1] if len(loc) > 1 and loc[0] == "body" and isinstance(loc[1], str) else None
        message = first.get("msg", "invalid request")
        return JSONResponse({"error": message, "field": field}, status_code=400)

    @app.post("/orders")
    async def post_order(order: OrderIn, request: Request) -> JSONResponse:
        started = time.perf_counter()
        try:
            return await _place(request.app.state.broker, order)
        finally:
            ORDER_SECONDS.observe(time.perf_counter() - started)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok", "name": name, "breaker": monitor.state}

    @app.get("/ready")
    async def ready() -> JSONResponse:
        code = 200 if readiness.status == "ready" else 503
        return JSONResponse({"status": readiness.status, "name": name}, status_code=code)

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return app
