"""Tuning constants, in one place so that the README can point at them.

The values follow the contract (docs/contract.md, section 3) where it gives one:
the breaker opens after 5 consecutive failures; a broker call may take 0.8 s; all
attempts of one order fit in a 0.9 s budget, under the 1 s p95 target. How long the
breaker stays open is purgatory's default (30 s) unless ``BREAKER_TTL_S`` says otherwise:
the contract's 5 s is a deployment setting (``service-fixed.yaml``).
"""

from __future__ import annotations

import math
import os
import sys

# --- broker calls (httpx) -----------------------------------------------------------
BROKER_ORDERS_PATH = "/orders"
ATTEMPT_TIMEOUT_S = 0.8  # httpx timeout of one call (connect, read, write and pool each)

# --- retries (tenacity) ---------------------------------------------------------------
MAX_ATTEMPTS = 3  # first call + 2 retries
RETRY_BUDGET_S = 0.9  # every attempt of one order ends within this time
MIN_ATTEMPT_S = 0.2  # no retry is started with less than this left in the budget
BACKOFF_INITIAL_S = 0.05  # wait_exponential_jitter: 0.05 s, 0.1 s, ... plus jitter
BACKOFF_MAX_S = 0.25
BACKOFF_JITTER_S = 0.05

# --- circuit breaker (purgatory) ------------------------------------------------------
BREAKER_NAME = "broker"
BREAKER_THRESHOLD = 5  # consecutive failures that open the circuit (purgatory's default)
PURGATORY_DEFAULT_TTL_S = 30.0  # AsyncCircuitBreakerFactory(default_ttl=30)


def _seconds_from_env(name: str, default: float) -> float:
    """A number of seconds from the environment (the deployment's tuning), else default."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not 0.1 <= value <= 600:
        sys.exit(f"{name}={raw!r}: expected a number of seconds 0.1..600")
    return value


# Seconds the circuit stays open before a trial call: purgatory's default unless the
# deployment sets BREAKER_TTL_S (service-fixed.yaml sets the contract's 5 s).
BREAKER_TTL_S = _seconds_from_env("BREAKER_TTL_S", PURGATORY_DEFAULT_TTL_S)

# An order whose earlier attempt was sent and got no answer (timeout, broken connection)
# may be filled; when a later attempt then ends in a definite failure (circuit open,
# connection refused), the default answers that failure and the client believes the
# order was not placed. KEEP_SENT_OUTCOME=1 (service-fixed.yaml) answers "outcome
# unknown" (502/504) instead, as the contract asks.
KEEP_SENT_OUTCOME = os.environ.get("KEEP_SENT_OUTCOME", "") == "1"

# --- shutdown (uvicorn) ---------------------------------------------------------------
DRAIN_DELAY_S = 1.0  # /ready answers 503 this long before the listener closes
DRAIN_TIMEOUT_S = 5  # then in-flight requests get this long to finish
