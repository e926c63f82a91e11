"""Broker simulator for the lab: fills orders over HTTP, keeps a ledger, misbehaves on request.

Run it with ``python -m lab.broker`` (see :mod:`lab.broker.__main__`); the order API
is in :mod:`lab.broker.app`, the admin API in :mod:`lab.broker.admin`, the failure
modes in :mod:`lab.broker.modes`, the SQLite ledger in :mod:`lab.broker.ledger`.
"""
