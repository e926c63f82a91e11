"""Run the service: ``python -m app --host HOST --port PORT --broker-url URL --name NAME``.

``--port 0`` binds a free port; the first stdout line is ``listening http://HOST:PORT``.
Logs go to stderr, each line tagged with ``--name``. ``--broker-url`` defaults to the
``BROKER_URL`` environment variable. SIGTERM drains and exits 0 (see :mod:`app.server`).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from types import FrameType

import uvicorn

from app import config
from app.api import create_app
from app.server import DrainingServer

log = logging.getLogger("app")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m app", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8080, help="port, 0 = any free one")
    parser.add_argument(
        "--broker-url",
        default=os.environ.get("BROKER_URL"),
        help="broker API base URL (default: $BROKER_URL)",
    )
    parser.add_argument(
        "--name",
        default="broker-integration",
        help="replica name, shown in /health, /ready and the logs",
    )
    args = parser.parse_args(argv)
    if not args.broker_url:
        parser.error("--broker-url (or BROKER_URL) is required")
    if not 0 <= args.port <= 65535:
        parser.error("--port must be between 0 and 65535")
    return args


def configure_logging(name: str) -> None:
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format=f"%(asctime)s {name} %(levelname)s %(name)s: %(message)s",
    )


def _stopped(sig: int, frame: FrameType | None) -> None:
    """Installed before uvicorn runs: uvicorn restores it after its graceful shutdown
    and re-raises the signal it caught, which would otherwise kill the process with
    status -15 (143) instead of letting it exit 0."""
    log.info("signal %d handled, exiting", sig)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    configure_logging(args.name)
    app = create_app(broker_url=args.broker_url, name=args.name)
    uv_config = uvicorn.Config(
        app,
        host=args.host,
        port=args.port,
        log_config=None,  # keep the logging configured above (stderr, with the name)
        timeout_graceful_shutdown=config.DRAIN_TIMEOUT_S,
    )
    server = DrainingServer(
        uv_config, drain_delay_s=config.DRAIN_DELAY_S, on_drain=app.state.readiness.drain
    )
    signal.signal(signal.SIGTERM, _stopped)
    signal.signal(signal.SIGINT, _stopped)
    server.run()
    return 0 if server.started else 1


if __name__ == "__main__":
    sys.exit(main())
