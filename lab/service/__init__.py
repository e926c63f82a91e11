"""Reference broker-integration service: orders to the broker through a circuit breaker.

Run a replica with ``python -m lab.service`` (see :mod:`lab.service.__main__`); the
HTTP API is in :mod:`lab.service.app`, the breaker in :mod:`lab.service.breaker`, the
monitoring contract in :mod:`lab.service.metrics`.
"""
