"""The ``gameday`` command: run experiments, drive the lab, send load, judge journals.

Exit codes: 0 all passed / done; 1 an experiment failed; 2 bad input; 3 the lab or a
target could not be used; 130 interrupted (Ctrl-C, SIGTERM or SIGHUP: the rollbacks ran,
then whatever was still recorded as injected was undone).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from gameday.cli import explore as explorecli
from gameday.cli import init as initcli
from gameday.cli import lab as labcli
from gameday.cli import load as loadcli
from gameday.cli.lab import add_service_options, lab_if_needed, prepared_service
from gameday.contract import DEFAULT_SELECTOR, ConfigError, GamedayError
from gameday.engine import exporter, listing, live, notify, plan, preflight, traffic
from gameday.engine.chaosproc import signals_noted
from gameday.engine.journal import read_journal
from gameday.engine.results import ExperimentResult, counts, exit_code
from gameday.engine.runner import (
    RunSettings,
    journal_verdict,
    parse_var,
    run_all,
    select,
    shared_rate,
)
from gameday.engine.status import RunStatus
from gameday.faults import inject
from gameday.faults.record import InjectionLog
from gameday.measurements.breaker import BreakerView
from gameday.report.summary import junit_xml, table
from gameday.report.write import write_reports
from gameday.service_spec import load_spec
from gameday.settings import TARGET_NAMES, resolve
from gameday.targets import get_target
from gameday.targets.lab import LabTarget

EXIT_FAILED, EXIT_BAD_INPUT, EXIT_ENVIRONMENT, EXIT_INTERRUPTED = 1, 2, 3, 130
METRICS_PORT_ENV = "GAMEDAY_METRICS_PORT"


def _add_selection(parser: argparse.ArgumentParser) -> None:
    """The options ``run`` and ``plan`` share: which experiments, ``--var``, the target."""
    parser.add_argument("experiments", nargs="*", type=Path, metavar="EXPERIMENT",
                        help="experiment files (default: every one in experiments/)")
    parser.add_argument("--var", action="append", default=[], metavar="KEY=VALUE",
                        help="override a configuration value, e.g. sla_p95_latency_max_s=0.5")
    parser.add_argument("--tag", action="append", default=[], metavar="TAG",
                        help="only experiments with this tag (repeatable: any of them)")
    parser.add_argument("--skip-tag", action="append", default=[], metavar="TAG",
                        help="leave out experiments with this tag (repeatable), e.g. netns "
                             "on a lab without network namespaces")
    parser.add_argument("--target", choices=TARGET_NAMES, default=None,
                        help="where to run (default: $GAMEDAY_TARGET, else lab)")


def _add_run(subparsers: Any) -> None:
    parser = subparsers.add_parser("run", help="run experiments and judge them strictly")
    _add_selection(parser)
    parser.add_argument("--junit", type=Path, metavar="PATH",
                        help="also write JUnit XML (one test case per experiment)")
    parser.add_argument("--reports", type=Path, default=None,
                        help="where journals and logs go (default: $GAMEDAY_RUN_DIR, "
                             "else reports/)")
    add_service_options(parser)
    parser.add_argument("--notify", metavar="URL", default=None,
                        help="POST a JSON message (Slack-compatible `text` and the "
                             "structured result) when the game day starts, when an "
                             "experiment fails or is inconclusive, and when it ends; "
                             f"default ${notify.NOTIFY_ENV}. A failed notification never "
                             "fails the game day")
    parser.add_argument("--report-url", metavar="URL", default=None,
                        help="with --notify: where the reports directory is published "
                             "(the messages link there instead of file://)")
    parser.add_argument("--dry-run", action="store_true",
                        help="check and show the plan (`gameday plan`); break nothing")
    parser.set_defaults(func=_run)


def _add_plan(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "plan", help="what `run` would do, experiment by experiment: faults in order, "
        "their blast radius, bounds, safeguards, time; nothing is injected")
    _add_selection(parser)
    add_service_options(parser)
    parser.set_defaults(func=_plan)


def _plan(args: argparse.Namespace) -> int:
    """Pre-flight checks as for a run, then the plan; nothing started or injected."""
    variables = dict(parse_var(v) for v in args.var)
    paths = select(args.experiments, args.tag, args.skip_tag)
    target = args.target or resolve().target
    preflight.ensure_runnable(paths, variables, preflight.target_links(target))
    service = getattr(args, "service", None)
    if service is not None:
        spec = load_spec(service)
        print(f"service: {spec.name} ({service}), {spec.replicas} replicas, "
              f"orders {spec.order.method} {spec.order.path}")
    unsupported = preflight.target_unsupported(target)
    no_traffic = preflight.target_without_traffic(target)
    print(plan.render([plan.plan_of(path, variables, unsupported, no_traffic)
                       for path in paths]))
    return 0


def _add_cleanup(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "cleanup", help="undo every fault recorded as injected (e.g. after a killed run)")
    parser.add_argument("--target", choices=TARGET_NAMES, default=None,
                        help="where (default: $GAMEDAY_TARGET, else lab)")
    parser.add_argument("--all", action="store_true",
                        help="also undo what gameday finds injected but has no record of "
                             "(a runner that lost its state directory): heal every link, "
                             "reset the broker simulator, release every gray fault")
    parser.set_defaults(func=_cleanup)


def _cleanup(args: argparse.Namespace) -> int:
    target = get_target(args.target)
    for item in inject.cleanup(target):
        print(f"undone: {item}")
    if args.all:
        for item in inject.sweep(target):
            print(f"undone (found, not recorded): {item}")
    leftovers = target.leftovers()
    for item in leftovers:
        print(f"still injected (not recorded by gameday; `gameday cleanup --all` undoes "
              f"what gameday made): {item}")
    print("nothing left injected" if not leftovers else "faults remain")
    return EXIT_FAILED if leftovers else 0


def _add_list(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "list", help="the catalog: each experiment and incident replay, its tags, the "
        "failure it stands for and what must hold")
    parser.add_argument("--tag", action="append", default=[], metavar="TAG",
                        help="only entries with this tag (repeatable: any of them)")
    parser.add_argument("--json", action="store_true", help="print one JSON array")
    parser.set_defaults(func=_list)


def _list(args: argparse.Namespace) -> int:
    rows = listing.entries()
    if args.tag:
        known = sorted({tag for row in rows for tag in row.tags})
        rows = [row for row in rows if set(args.tag) & set(row.tags)]
        if not rows:
            raise ConfigError(f"no entry has tag {', '.join(args.tag)}: known tags are "
                              f"{', '.join(known)}")
    if args.json:
        print(json.dumps([row.as_json() for row in rows], indent=2, ensure_ascii=False))
    else:
        print(listing.table(rows))
    return 0


def _add_judge(subparsers: Any) -> None:
    parser = subparsers.add_parser("judge", help="judge a Chaos Toolkit journal strictly")
    parser.add_argument("journal", type=Path)
    parser.set_defaults(func=_judge)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _interrupt_on(*signals: signal.Signals) -> None:
    """Treat these signals like Ctrl-C, unless they are ignored (``nohup`` for SIGHUP)."""
    for stop in signals:
        if signal.getsignal(stop) is not signal.SIG_IGN:
            signal.signal(stop, _interrupt)


def _check_outputs(args: argparse.Namespace) -> None:
    """Refuse output paths that could only fail at the end of the run."""
    args.reports = args.reports or resolve().run_dir
    if args.reports.exists() and not args.reports.is_dir():
        raise ConfigError(f"--reports {args.reports} is a file: name a directory")
    if args.junit is not None and args.junit.is_dir():
        raise ConfigError(f"--junit {args.junit} is a directory: name the XML file to write")
    if args.junit is not None and any(p.exists() and not p.is_dir()
                                      for p in args.junit.parents):
        raise ConfigError(f"--junit {args.junit}: a parent of it is a file, not a directory")


def _use_service(args: argparse.Namespace) -> None:
    """``--service SPEC``: every part of the run (experiments included) tests that service
    (``GAMEDAY_SERVICE``); its setup runs first unless ``--skip-setup``."""
    service = prepared_service(args)
    if service is not None:
        os.environ["GAMEDAY_SERVICE"] = str(service)


def _run(args: argparse.Namespace) -> int:
    if args.dry_run:
        return _plan(args)
    _check_outputs(args)
    notifier = notify.notifier(args.notify, args.report_url, os.environ)
    _use_service(args)
    variables = dict(parse_var(v) for v in args.var)
    target = args.target or resolve().target
    get_target(target)
    viewed = live.wanted(sys.stdout.isatty(), os.environ)
    settings = RunSettings(select(args.experiments, args.tag, args.skip_tag), variables,
                           args.reports, target,
                           console_logs=viewed)
    preflight.ensure_runnable(settings.experiments, variables, preflight.target_links(target))
    _interrupt_on(signal.SIGTERM, signal.SIGHUP)
    started = time.monotonic()
    with lab_if_needed(target) as service:
        told = _Told(notifier, settings.reports_dir / "index.html")
        told.start(settings, service)
        status = RunStatus(target, service, settings.reports_dir)
        with _undone_if_interrupted(target), _run_metrics(target, status):
            with _shared_traffic(settings), _viewed(viewed, status, settings):
                results = run_all(settings, _each(told.result, status), status.begin)
            interrupted = bool(results) and results[-1].interrupted
            if interrupted:
                _undo_leftovers(target)
        pages = write_reports(results, settings.reports_dir)
    told.end(results, interrupted, time.monotonic() - started)
    print("\n" + table(results), flush=True)
    print(f"reports: {pages[0] if pages else settings.reports_dir}", flush=True)
    if args.junit:
        args.junit.parent.mkdir(parents=True, exist_ok=True)
        args.junit.write_text(junit_xml(results), encoding="utf-8")
        print(f"JUnit XML: {args.junit}")
    print(f"{counts(results)} in {time.monotonic() - started:.0f} s"
          + (" (interrupted)" if interrupted else ""), flush=True)
    return EXIT_INTERRUPTED if interrupted else exit_code(results)


@dataclass(frozen=True)
class _Told:
    """The run's notifications (none without ``--notify``)."""

    notifier: notify.Notifier | None
    index: Path

    def start(self, settings: RunSettings, service: str) -> None:
        if self.notifier is not None:
            self.notifier.send(notify.start_message(settings.experiments, settings.target,
                                                    service, self.index,
                                                    self.notifier.report_url))

    def result(self, result: ExperimentResult) -> None:
        if self.notifier is not None and result.verdict.kind != "PASS":
            self.notifier.send(notify.experiment_message(result, self.notifier.report_url))

    def end(self, results: list[ExperimentResult], interrupted: bool,
            duration_s: float) -> None:
        if self.notifier is not None:
            self.notifier.send(notify.end_message(results, interrupted, duration_s,
                                                  self.index, self.notifier.report_url))


def _each(tell: Callable[[ExperimentResult], None],
          status: RunStatus) -> Callable[[ExperimentResult], None]:
    def seen(result: ExperimentResult) -> None:
        status.finish(result.verdict.kind)
        tell(result)
    return seen


@contextmanager
def _viewed(viewed: bool, status: RunStatus, settings: RunSettings) -> Iterator[None]:
    """The live view (gameday.engine.live) over the block, when ``viewed``."""
    if not viewed:
        yield
        return
    chosen = get_target(settings.target)
    sources = live.Sources(status, len(settings.experiments),
                           lambda: InjectionLog(chosen.state_dir()),
                           lambda: BreakerView(chosen.prometheus(), DEFAULT_SELECTOR).states())
    with live.live_view(sources):
        yield


def _metrics_port(target: str) -> int | None:
    """Where the run serves its metrics: ``$GAMEDAY_METRICS_PORT`` (0: nowhere), else on
    the lab target the lab's own port for them (which its Prometheus scrapes)."""
    raw = os.environ.get(METRICS_PORT_ENV, "").strip()
    if raw:
        if not raw.isdigit() or int(raw) > 65535:
            raise ConfigError(f"{METRICS_PORT_ENV}={raw!r}: valid is a port 1..65535, "
                              "or 0 for no metrics")
        return int(raw) or None
    if target != "lab":
        return None
    return LabTarget.from_settings(resolve()).layout.port("runner_metrics")


@contextmanager
def _run_metrics(target: str, status: RunStatus) -> Iterator[None]:
    """Serve the game day's metrics (gameday.engine.exporter) while it runs."""
    port = _metrics_port(target)
    chosen = get_target(target)
    server = None if port is None else exporter.serve(
        port, exporter.RunCollector(status, lambda: InjectionLog(chosen.state_dir())))
    try:
        yield
    finally:
        if server is not None:
            server.shutdown()
            server.server_close()


@contextmanager
def _undone_if_interrupted(target: str) -> Iterator[None]:
    """If the run is interrupted outside an experiment, undo what is still recorded."""
    try:
        yield
    except KeyboardInterrupt:
        _undo_leftovers(target)
        raise


def _undo_leftovers(target: str) -> None:
    """After an interruption: undo every fault still recorded as injected (a rollback cut
    short, say) and say what, if anything, is left."""
    with signals_noted("undoing recorded faults first"):
        try:
            chosen = get_target(target)
            for item in inject.cleanup(chosen):
                print(f"gameday: undone after the interruption: {item}", file=sys.stderr)
            leftovers = chosen.leftovers()
        except GamedayError as exc:
            print(f"gameday: could not check for leftovers ({exc}); run `gameday cleanup`",
                  file=sys.stderr, flush=True)
            return
    for item in leftovers:
        print(f"gameday: still wrong after the interruption: {item}", file=sys.stderr)
    print("gameday: nothing is left injected" if not leftovers
          else "gameday: see `gameday lab doctor`", file=sys.stderr, flush=True)


@contextmanager
def _shared_traffic(settings: RunSettings) -> Iterator[None]:
    """One load for the whole game day when every experiment asks for the same rate (none
    on a target without traffic)."""
    rate = shared_rate(settings.experiments)
    chosen = get_target(settings.target)
    if rate is None or chosen.no_traffic_reason() is not None:
        yield
        return
    orders = traffic.orders_of(chosen)
    process = traffic.start_shared(orders, rate, settings.reports_dir)
    os.environ[traffic.SHARED_ENV] = str(settings.reports_dir)
    print(f"traffic: {rate:g} orders/s to {orders.url} for the whole run", flush=True)
    try:
        yield
    finally:
        os.environ.pop(traffic.SHARED_ENV, None)
        traffic.stop_shared(process)


def _judge(args: argparse.Namespace) -> int:
    verdict = journal_verdict(read_journal(args.journal))
    print(f"{verdict.kind}  {verdict.title}")
    for reason in verdict.shown:
        print(f"      {reason}")
    return exit_code([ExperimentResult(args.journal, verdict, args.journal, 0.0)])


def _add_report(subparsers: Any) -> None:
    from gameday.report import write as report  # noqa: PLC0415 (self-contained: `gameday report`)

    parser = subparsers.add_parser(
        "report", help="write HTML reports, index.html, history and a Markdown summary")
    report.add_arguments(parser)
    parser.set_defaults(func=_report)


def _report(args: argparse.Namespace) -> int:
    """``gameday report``, once its options are known to be usable (the journals are
    checked as they are read)."""
    from gameday.report import write as report  # noqa: PLC0415 (as above)

    if args.out.exists() and not args.out.is_dir():
        raise ConfigError(f"--out {args.out} is a file: name a directory for the reports")
    if not (math.isfinite(args.margin) and args.margin >= 0):
        raise ConfigError(f"--margin {args.margin} is invalid: expected a share >= 0, "
                          "e.g. 0.25 (25 % worse)")
    return int(report.run_report(args))


def build_parser() -> argparse.ArgumentParser:
    """The ``gameday`` argument parser."""
    parser = argparse.ArgumentParser(prog="gameday", description=__doc__.splitlines()[0])
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_run(subparsers)
    labcli.add_parser(subparsers)
    loadcli.add_parser(subparsers)
    _add_cleanup(subparsers)
    _add_list(subparsers)
    _add_plan(subparsers)
    _add_judge(subparsers)
    _add_report(subparsers)
    initcli.add_parser(subparsers)
    explorecli.add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``gameday`` console script."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except ConfigError as exc:
        print(f"gameday: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except GamedayError as exc:
        print(f"gameday: {exc}", file=sys.stderr)
        return EXIT_ENVIRONMENT
    except KeyboardInterrupt:
        print("gameday: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
