"""The ``gameday`` command: run experiments, drive the lab, send load, judge journals.

Exit codes: 0 all passed / done; 1 an experiment failed; 2 bad input; 3 the lab or a
target could not be used.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

from gameday import inject, labcli, loadcli, traffic
from gameday.errors import ConfigError, GamedayError
from gameday.report import write_reports
from gameday.runner import RunSettings, parse_var, run_all, select, shared_rate
from gameday.summary import junit_xml, table
from gameday.targets import TARGET_NAMES, get_target
from gameday.verdict import judge
from lab import stack
from lab.layout import LayoutError, layout_from_env

EXIT_FAILED, EXIT_BAD_INPUT, EXIT_ENVIRONMENT = 1, 2, 3


def _add_run(subparsers: Any) -> None:
    parser = subparsers.add_parser("run", help="run experiments and judge them strictly")
    parser.add_argument("experiments", nargs="*", type=Path, metavar="EXPERIMENT",
                        help="experiment files (default: every one in experiments/)")
    parser.add_argument("--var", action="append", default=[], metavar="KEY=VALUE",
                        help="override a configuration value, e.g. sla_p95_latency_max_s=0.5")
    parser.add_argument("--tag", action="append", default=[], metavar="TAG",
                        help="run only experiments with this tag (repeatable: any of them)")
    parser.add_argument("--target", choices=TARGET_NAMES, default=None,
                        help="where to run (default: $GAMEDAY_TARGET, else lab)")
    parser.add_argument("--junit", type=Path, metavar="PATH",
                        help="also write JUnit XML (one test case per experiment)")
    parser.add_argument("--reports", type=Path, default=Path("reports"),
                        help="where journals and logs go (default: reports/)")
    parser.set_defaults(func=_run)


def _add_cleanup(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "cleanup", help="undo every fault recorded as injected (e.g. after a killed run)")
    parser.add_argument("--target", choices=TARGET_NAMES, default=None,
                        help="where (default: $GAMEDAY_TARGET, else lab)")
    parser.set_defaults(func=_cleanup)


def _cleanup(args: argparse.Namespace) -> int:
    target = get_target(args.target)
    for item in inject.cleanup(target):
        print(f"undone: {item}")
    leftovers = target.leftovers()
    for item in leftovers:
        print(f"still injected (not recorded by gameday): {item}")
    print("nothing left injected" if not leftovers else "faults remain")
    return EXIT_FAILED if leftovers else 0


def _add_judge(subparsers: Any) -> None:
    parser = subparsers.add_parser("judge", help="judge a Chaos Toolkit journal strictly")
    parser.add_argument("journal", type=Path)
    parser.set_defaults(func=_judge)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _run(args: argparse.Namespace) -> int:
    variables = dict(parse_var(v) for v in args.var)
    target = args.target or os.environ.get("GAMEDAY_TARGET", "lab")
    get_target(target)
    settings = RunSettings(select(args.experiments, args.tag), variables, args.reports, target)
    signal.signal(signal.SIGTERM, _interrupt)
    started = time.monotonic()
    with _lab_if_needed(target):
        with _shared_traffic(settings):
            results = run_all(settings)
        pages = write_reports(results, settings.reports_dir)
    failed = sum(not r.verdict.passed for r in results)
    print("\n" + table(results), flush=True)
    print(f"reports: {pages[0] if pages else settings.reports_dir}", flush=True)
    if args.junit:
        args.junit.parent.mkdir(parents=True, exist_ok=True)
        args.junit.write_text(junit_xml(results), encoding="utf-8")
        print(f"JUnit XML: {args.junit}")
    print(f"{len(results) - failed} passed, {failed} failed "
          f"in {time.monotonic() - started:.0f} s", flush=True)
    return EXIT_FAILED if failed else 0


@contextmanager
def _shared_traffic(settings: RunSettings) -> Iterator[None]:
    """One load for the whole game day when every experiment asks for the same rate."""
    rate = shared_rate(settings.experiments)
    if rate is None:
        yield
        return
    url = get_target(settings.target).entry_url() + "/orders"
    process = traffic.start_shared(url, rate, settings.reports_dir)
    os.environ[traffic.SHARED_ENV] = str(settings.reports_dir)
    print(f"traffic: {rate:g} orders/s to {url} for the whole run", flush=True)
    try:
        yield
    finally:
        os.environ.pop(traffic.SHARED_ENV, None)
        traffic.stop_shared(process)


@contextmanager
def _lab_if_needed(target: str) -> Iterator[None]:
    """Start the lab for the run when the target is the lab and it is not running."""
    layout = layout_from_env()
    started = target == "lab" and stack.up(layout)
    if started:
        print(f"lab started for this run (state in {layout.state_dir})", flush=True)
    try:
        yield
    finally:
        if started:
            stack.down(layout)
            print("lab stopped", flush=True)


def _judge(args: argparse.Namespace) -> int:
    try:
        journal = json.loads(args.journal.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read journal {args.journal}: {exc}") from None
    verdict = judge(journal)
    print(("PASS" if verdict.passed else "FAIL") + f"  {verdict.title}")
    for reason in verdict.reasons:
        print(f"      {reason}")
    return 0 if verdict.passed else EXIT_FAILED


def _add_report(subparsers: Any) -> None:
    from gameday import report  # noqa: PLC0415 (self-contained: `gameday report`)

    parser = subparsers.add_parser(
        "report", help="write HTML reports, index.html, history and a Markdown summary")
    report.add_arguments(parser)
    parser.set_defaults(func=report.run_report)


def build_parser() -> argparse.ArgumentParser:
    """The ``gameday`` argument parser."""
    parser = argparse.ArgumentParser(prog="gameday", description=__doc__.splitlines()[0])
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_run(subparsers)
    labcli.add_parser(subparsers)
    loadcli.add_parser(subparsers)
    _add_cleanup(subparsers)
    _add_judge(subparsers)
    _add_report(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``gameday`` console script."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except (ConfigError, LayoutError) as exc:
        print(f"gameday: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (GamedayError, stack.LabError) as exc:
        print(f"gameday: {exc}", file=sys.stderr)
        return EXIT_ENVIRONMENT
    except KeyboardInterrupt:
        print("gameday: interrupted", file=sys.stderr)
        return 130
