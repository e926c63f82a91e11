"""Example broker-integration service: FastAPI + httpx + purgatory + tenacity +
prometheus_client.

It takes orders on ``POST /orders``, places them with the broker API
(``POST {broker_url}/orders``) and answers as docs/contract.md of the gameday
repository says. Run it with ``python -m app --broker-url URL --name NAME``.

Modules: :mod:`app.config` (the tuning constants), :mod:`app.metrics` (the
contract's Prometheus metrics), :mod:`app.breaker` (the purgatory circuit breaker and
its metrics hook), :mod:`app.broker` (the httpx client with tenacity retries),
:mod:`app.api` (the FastAPI application), :mod:`app.server` (uvicorn with a readiness
drain on SIGTERM) and :mod:`app.__main__` (the command line).
"""

__version__ = "0.1.0"
