"""Run the broker simulator: ``python -m lab.broker --port P --admin-port A``.

Options: ``--host`` (order API address, default 127.0.0.1), ``--port`` and
``--admin-port`` (default 0 = any free port), ``--admin-host`` (default 127.0.0.1),
``--latency-ms`` (median order latency, default 20), ``--latency-sigma`` (log-normal
tail, default 0.6; 0 = constant), ``--seed``
(reproducible randomness), ``--ledger PATH`` (SQLite ledger kept across restarts;
default: in memory). First stdout line:
``listening http://HOST:PORT admin http://HOST:APORT``.

With ``GAMEDAY_ADMIN_TOKEN`` set in its environment, the admin API requires
``Authorization: Bearer <token>`` on every request (see :mod:`lab.broker.admin`); the
order API never does.
"""

from __future__ import annotations

import argparse

from prometheus_client import disable_created_metrics

from gameday.contract import ConfigError, admin_token
from lab.broker import serving
from lab.broker.admin import make_admin_app
from lab.broker.app import make_order_app
from lab.broker.ledger import MEMORY
from lab.broker.orders import LATENCY_SIGMA
from lab.broker.serving import DrainSettings, serve_until_signal
from lab.broker.state import BrokerSettings, BrokerState

# Hung requests must not hold up a stop: supervisord kills after 5 s.
DRAIN = DrainSettings(delay_s=0.0, timeout_s=2.0, handler_cancellation=True)


def parse_args(argv: list[str] | None = None) -> BrokerSettings:
    """Settings from the command line."""
    parser = argparse.ArgumentParser(prog="python -m lab.broker", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="order API port, 0 = any")
    parser.add_argument("--admin-host", default="127.0.0.1")
    parser.add_argument("--admin-port", type=int, default=0, help="admin API port, 0 = any")
    parser.add_argument("--latency-ms", type=float, default=20.0, help="median latency")
    parser.add_argument("--latency-sigma", type=float, default=LATENCY_SIGMA,
                        help="log-normal sigma of the latency (tail), 0..3")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--ledger", default=MEMORY, help="SQLite file (default: in memory)")
    parser.add_argument("--no-idempotency", action="store_true",
                        help="sabotage: fill a repeated client order id again")
    args = parser.parse_args(argv)
    if not args.latency_ms >= 0:
        parser.error("--latency-ms must be >= 0")
    if not 0 <= args.latency_sigma <= 3:
        parser.error("--latency-sigma must be between 0 and 3")
    try:
        token = admin_token()
    except ConfigError as exc:
        parser.error(str(exc))
    return BrokerSettings(
        host=args.host, port=args.port, admin_port=args.admin_port,
        latency_ms=args.latency_ms, seed=args.seed, ledger_path=args.ledger,
        admin_host=args.admin_host, latency_sigma=args.latency_sigma,
        no_idempotency=args.no_idempotency, admin_token=token,
    )  # fmt: skip


async def serve(settings: BrokerSettings) -> None:
    """Serve both APIs until SIGTERM/SIGINT."""
    state = BrokerState(settings)
    await serve_until_signal(
        [
            ("orders", make_order_app(state), settings.host, settings.port),
            ("admin", make_admin_app(state), settings.admin_host, settings.admin_port),
        ],
        DRAIN,
    )


def main(argv: list[str] | None = None) -> None:
    """Entry point."""
    settings = parse_args(argv)
    disable_created_metrics()  # type: ignore[no-untyped-call]  # no *_created series
    serving.run(serve(settings))


if __name__ == "__main__":
    main()
