"""Run one service replica: ``python -m lab.service --broker-url URL --name NAME``.

Options: ``--host`` (default 127.0.0.1), ``--port`` (default 0 = any free port),
``--timeout-s`` (broker call timeout, default 0.8), ``--failure-threshold``
(default 5), ``--reset-timeout-s`` (default 5), ``--success-threshold`` (default 2).
First stdout line: ``listening http://HOST:PORT``; breaker transitions are logged,
one line each, to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from prometheus_client import disable_created_metrics

from lab.broker.serving import serve_until_signal
from lab.service.app import ServiceSettings, make_app
from lab.service.breaker import BreakerSettings


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m lab.service", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 = any free port")
    parser.add_argument("--broker-url", required=True, help="e.g. http://127.0.0.1:8100")
    parser.add_argument("--name", required=True, help="replica name for /health and logs")
    parser.add_argument("--timeout-s", type=float, default=0.8)
    parser.add_argument("--failure-threshold", type=int, default=5)
    parser.add_argument("--reset-timeout-s", type=float, default=5.0)
    parser.add_argument("--success-threshold", type=int, default=2)
    return parser


def parse_args(argv: list[str] | None = None) -> ServiceSettings:
    """Settings from the command line; exits with a usage error on bad values."""
    parser = _parser()
    args = parser.parse_args(argv)
    if not args.broker_url.startswith(("http://", "https://")):
        parser.error("--broker-url must be an http:// or https:// URL")
    if not args.timeout_s > 0:
        parser.error("--timeout-s must be > 0")
    try:
        breaker = BreakerSettings(
            args.failure_threshold, args.reset_timeout_s, args.success_threshold
        )
    except ValueError as exc:
        parser.error(str(exc))
    return ServiceSettings(
        args.broker_url, args.name, args.host, args.port, args.timeout_s, breaker
    )


def main(argv: list[str] | None = None) -> None:
    """Entry point."""
    settings = parse_args(argv)
    logging.basicConfig(
        stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s"
    )
    disable_created_metrics()  # type: ignore[no-untyped-call]  # no *_created series
    app = make_app(settings)
    asyncio.run(serve_until_signal([("service", app, settings.host, settings.port)]))


if __name__ == "__main__":
    main()
