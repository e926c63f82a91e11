"""Run the broker simulator: ``python -m lab.broker --port P --admin-port A``.

Options: ``--host`` (default 127.0.0.1; both APIs bind it), ``--port`` and
``--admin-port`` (default 0 = any free port), ``--latency-ms`` (median order
latency, default 10), ``--seed`` (reproducible randomness).
First stdout line: ``listening http://HOST:PORT admin http://HOST:APORT``.
"""

from __future__ import annotations

import argparse
import asyncio

from prometheus_client import disable_created_metrics

from lab.broker.app import make_admin_app, make_order_app
from lab.broker.serving import serve_until_signal
from lab.broker.state import BrokerSettings, BrokerState


def parse_args(argv: list[str] | None = None) -> BrokerSettings:
    """Settings from the command line."""
    parser = argparse.ArgumentParser(prog="python -m lab.broker", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="order API port, 0 = any")
    parser.add_argument("--admin-port", type=int, default=0, help="admin API port, 0 = any")
    parser.add_argument("--latency-ms", type=float, default=10.0, help="median latency")
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args(argv)
    if args.latency_ms < 0:
        parser.error("--latency-ms must be >= 0")
    return BrokerSettings(args.host, args.port, args.admin_port, args.latency_ms, args.seed)


async def run(settings: BrokerSettings) -> None:
    """Serve both APIs until SIGTERM/SIGINT."""
    state = BrokerState(settings)
    await serve_until_signal(
        [
            ("orders", make_order_app(state), settings.host, settings.port),
            ("admin", make_admin_app(state), settings.host, settings.admin_port),
        ]
    )


def main(argv: list[str] | None = None) -> None:
    """Entry point."""
    settings = parse_args(argv)
    disable_created_metrics()  # type: ignore[no-untyped-call]  # no *_created series
    asyncio.run(run(settings))


if __name__ == "__main__":
    main()
