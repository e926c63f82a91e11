"""Run one service replica: ``python -m lab.service --broker-url URL --name NAME``.

Options (defaults in brackets):

- ``--host`` [127.0.0.1], ``--port`` [0 = any free port];
- ``--timeout-s`` [0.8]: one broker call; ``--budget-s`` [max(0.9, timeout)]: all
  attempts of one order; ``--max-attempts`` [2]: broker calls per order (1 = no retry);
- breaker: ``--failure-threshold`` [5] consecutive failures, or
  ``--failure-rate-threshold`` [0.25] of at least ``--min-calls`` [20] results in the
  last ``--window-s`` [3]; ``--reset-timeout-s`` [5]; ``--success-threshold`` [2];
  ``--half-open-max-calls`` [1];
- drain on SIGTERM: ``--drain-delay-s`` [1.0] not ready but serving, then
  ``--drain-timeout-s`` [5] for in-flight orders;
- sabotage (:mod:`lab.sabotage`): ``--ignore-retry-after``; ``--breaker-leaks``: call
  the broker even when the breaker is open; ``--ambiguous-status N``: answer N instead
  of 502/504 when an order's outcome is unknown; ``--retry-new-id``: retry under a new
  client order id (``ID-rN``), so a retry after a lost reply fills the order twice.

First stdout line: ``listening http://HOST:PORT``; logs are JSON lines on stderr, or
appended to ``--log-file PATH`` (see :mod:`lab.service.logs`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from prometheus_client import disable_created_metrics

from lab.broker.serving import DrainSettings, Lifecycle, run, serve_until_signal
from lab.service.app import ServiceSettings, broker_endpoint, make_app
from lab.service.breaker import BreakerSettings
from lab.service.logs import configure_json_logs
from lab.service.retry import RetrySettings

DEFAULT_BUDGET_S = 0.9


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m lab.service", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    add = parser.add_argument
    add("--host", default="127.0.0.1")
    add("--port", type=int, default=0, help="0 = any free port")
    add("--broker-url", required=True, help="e.g. http://127.0.0.1:8100")
    add("--name", required=True, help="replica name for /health, /ready and logs")
    add("--timeout-s", type=float, default=0.8)
    add("--budget-s", type=float, default=None)
    add("--max-attempts", type=int, default=2)
    add("--ignore-retry-after", action="store_true",
        help="sabotage: do not wait a 429's Retry-After before retrying")
    add("--breaker-leaks", action="store_true",
        help="sabotage: call the broker even when the breaker is open")
    add("--ambiguous-status", type=int, default=None, metavar="N",
        help="sabotage: answer N (e.g. 500) when the order's outcome is unknown")
    add("--retry-new-id", action="store_true",
        help="sabotage: retry under a new client order id (ID-rN)")
    add("--no-keepalive", action="store_true",
        help="sabotage: open a new connection to the broker for every call")
    add("--failure-threshold", type=int, default=5)
    add("--failure-rate-threshold", type=float, default=0.25)
    add("--min-calls", type=int, default=20)
    add("--window-s", type=float, default=3.0)
    add("--reset-timeout-s", type=float, default=5.0)
    add("--success-threshold", type=int, default=2)
    add("--half-open-max-calls", type=int, default=1)
    add("--drain-delay-s", type=float, default=1.0)
    add("--drain-timeout-s", type=float, default=5.0)
    add("--log-file", type=Path, default=None, help="JSON logs here instead of stderr")
    return parser


def _settings(args: argparse.Namespace) -> ServiceSettings:
    breaker = BreakerSettings(
        args.failure_threshold, args.reset_timeout_s, args.success_threshold,
        args.half_open_max_calls, args.failure_rate_threshold, args.window_s, args.min_calls,
    )  # fmt: skip
    budget_s = args.budget_s if args.budget_s is not None else max(DEFAULT_BUDGET_S,
                                                                    args.timeout_s)
    retry = RetrySettings(max_attempts=args.max_attempts, budget_s=budget_s,
                          honour_retry_after=not args.ignore_retry_after)
    drain = DrainSettings(args.drain_delay_s, args.drain_timeout_s)
    return ServiceSettings(
        args.broker_url, args.name, args.host, args.port, args.timeout_s, breaker, retry, drain,
        args.log_file, args.breaker_leaks, args.ambiguous_status, args.retry_new_id,
        args.no_keepalive,
    )


def parse_args(argv: list[str] | None = None) -> ServiceSettings:
    """Settings from the command line; exits with a usage error on bad values."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.log_file is not None and not args.log_file.parent.is_dir():
        parser.error(f"--log-file: no directory {args.log_file.parent}")
    try:
        broker_endpoint(args.broker_url)
    except ValueError as exc:
        parser.error(f"--broker-url: {exc}")
    if not args.timeout_s > 0:
        parser.error("--timeout-s must be > 0")
    if args.ambiguous_status is not None and not 100 <= args.ambiguous_status <= 599:
        parser.error("--ambiguous-status must be an HTTP status, 100..599")
    try:
        return _settings(args)
    except ValueError as exc:
        parser.error(str(exc))


def main(argv: list[str] | None = None) -> None:
    """Entry point."""
    settings = parse_args(argv)
    configure_json_logs(settings.name, settings.log_file or sys.stderr)
    disable_created_metrics()  # type: ignore[no-untyped-call]  # no *_created series
    lifecycle = Lifecycle()
    app = make_app(settings, lifecycle=lifecycle)
    listeners = [("service", app, settings.host, settings.port)]
    run(serve_until_signal(listeners, settings.drain, lifecycle))


if __name__ == "__main__":
    main()
