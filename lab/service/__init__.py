"""Reference broker-integration service: orders to the broker through a circuit breaker.

Run a replica with ``python -m lab.service`` (see :mod:`lab.service.__main__`); the
HTTP API is in :mod:`lab.service.app`, the breaker in :mod:`lab.service.breaker` (with
its sliding window in :mod:`lab.service.window`), retries in :mod:`lab.service.retry`
and :mod:`lab.service.placing`, the monitoring contract in :mod:`lab.service.metrics`,
the JSON log events in :mod:`lab.service.logs`.
"""
