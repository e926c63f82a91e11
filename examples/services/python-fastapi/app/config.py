"""Tuning constants, in one place so that the README can point at them.

The values follow the contract (docs/contract.md, section 3) where it gives one:
the breaker opens after 5 consecutive failures and stays open 5 s; a broker call may
take 0.8 s; all attempts of one order fit in a 0.9 s budget, under the 1 s p95 target.
"""

from __future__ import annotations

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
BREAKER_THRESHOLD = 5  # consecutive failures that open the circuit
BREAKER_TTL_S = 5.0  # seconds the circuit stays open before a trial call

# --- shutdown (uvicorn) ---------------------------------------------------------------
DRAIN_DELAY_S = 1.0  # /ready answers 503 this long before the listener closes
DRAIN_TIMEOUT_S = 5  # then in-flight requests get this long to finish
