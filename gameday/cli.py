"""The ``gameday`` command: run experiments, drive the lab, send load, judge journals.

Exit codes: 0 all passed / done; 1 an experiment failed; 2 bad input; 3 the lab or a
target could not be used.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path
from types import FrameType
from typing import Any

from gameday import labcli, loadcli
from gameday.errors import ConfigError, GamedayError
from gameday.runner import RunSettings, parse_var, run_all, validate_paths
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
    parser.add_argument("--reports", type=Path, default=Path("reports"),
                        help="where journals and logs go (default: reports/)")
    parser.set_defaults(func=_run)


def _add_judge(subparsers: Any) -> None:
    parser = subparsers.add_parser("judge", help="judge a Chaos Toolkit journal strictly")
    parser.add_argument("journal", type=Path)
    parser.set_defaults(func=_judge)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _run(args: argparse.Namespace) -> int:
    variables = dict(parse_var(v) for v in args.var)
    settings = RunSettings(validate_paths(args.experiments), variables, args.reports)
    layout = layout_from_env()
    signal.signal(signal.SIGTERM, _interrupt)
    started = stack.up(layout)
    if started:
        print(f"lab started for this run (state in {layout.state_dir})", flush=True)
    try:
        verdicts = run_all(settings)
    finally:
        if started:
            stack.down(layout)
            print("lab stopped", flush=True)
    failed = [v for v in verdicts if not v.passed]
    print(f"{len(verdicts) - len(failed)} passed, {len(failed)} failed", flush=True)
    return EXIT_FAILED if failed else 0


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


def build_parser() -> argparse.ArgumentParser:
    """The ``gameday`` argument parser."""
    parser = argparse.ArgumentParser(prog="gameday", description=__doc__.splitlines()[0])
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_run(subparsers)
    labcli.add_parser(subparsers)
    loadcli.add_parser(subparsers)
    _add_judge(subparsers)
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
