"""Broker simulator for the lab: fills orders over HTTP and misbehaves on request.

Run it with ``python -m lab.broker`` (see :mod:`lab.broker.__main__`); the order API
is in :mod:`lab.broker.app`, the modes (normal, error, slow) in :mod:`lab.broker.modes`.
"""
