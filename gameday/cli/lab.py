"""``gameday lab up|down|status``: the local lab's lifecycle."""

from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from gameday.contract import GamedayError, MeasurementError
from gameday.engine.check_service import check_service, table
from gameday.service_spec import ServiceSpec, load_spec
from gameday.settings import Settings, forget_default_lab, note_default_lab, resolve
from gameday.targets import get_target
from gameday.targets.lab import LabTarget


def add_parser(subparsers: Any) -> None:
    """Register ``gameday lab`` and its actions."""
    parser = subparsers.add_parser("lab", help="start, stop or inspect the local lab")
    actions = parser.add_subparsers(dest="lab_action", required=True, metavar="ACTION")
    up = actions.add_parser("up", help="start the lab and wait until it is ready")
    add_service_options(up)
    up.set_defaults(func=_up)
    actions.add_parser("down", help="stop every lab process").set_defaults(func=_down)
    actions.add_parser("doctor", help="exit 0 only if the lab is healthy and nothing is "
                       "left injected; list what is wrong otherwise").set_defaults(func=_doctor)
    status = actions.add_parser("status", help="where the lab's parts are and whether they run")
    status.add_argument("--json", action="store_true", help="print one JSON object")
    status.set_defaults(func=_status)
    check = actions.add_parser(
        "check-service", help="check that a service meets the contract (docs/contract.md): "
        "one replica against a broker simulator of its own; exit 0 only if every check passes")
    check.add_argument("spec", type=Path, help="the service spec (YAML), e.g. "
                       "examples/services/node-opossum/service.yaml")
    check.add_argument("--skip-setup", action="store_true",
                       help="do not run the spec's setup command first")
    check.add_argument("--work-dir", type=Path, default=None,
                       help="where the logs go (default: $GAMEDAY_RUN_DIR/check-service/NAME)")
    check.set_defaults(func=_check_service)


def add_service_options(parser: argparse.ArgumentParser) -> None:
    """``--service SPEC`` and ``--skip-setup``: which service the lab runs."""
    parser.add_argument("--service", type=Path, default=None, metavar="SPEC",
                        help="run this service's replicas (a service spec, see "
                        "docs/contract.md) instead of the reference service")
    parser.add_argument("--skip-setup", action="store_true",
                        help="do not run the service spec's setup command first")


def prepared_service(args: argparse.Namespace) -> Path | None:
    """``--service``'s spec file, checked and set up (unless ``--skip-setup``); None
    without ``--service``."""
    if args.service is None:
        return None
    spec = load_spec(args.service)
    if spec.setup and not args.skip_setup:
        run_setup(spec)
    return Path(args.service).resolve()


def lab_for(args: argparse.Namespace, settings: Settings) -> LabTarget:
    """The lab target for ``--service`` (checked, set up unless ``--skip-setup``)."""
    return LabTarget.from_settings(settings, service=prepared_service(args))


def _up(args: argparse.Namespace) -> int:
    settings = resolve()
    lab = lab_for(args, settings)
    layout = lab.layout
    started = lab.up()
    note_default_lab(settings)
    word = "started" if started else "already running"
    sabotage = lab.sabotage()
    if sabotage:
        print(f"SABOTAGED lab (GAMEDAY_LAB_SABOTAGE): {', '.join(sabotage)}")
    print(f"lab {word} with {lab.spec().name} x{layout.replica_count}: entry "
          f"{layout.url('entry')}, Prometheus {layout.url('prometheus')}, state in "
          f"{layout.state_dir}")
    return 0


def _down(args: argparse.Namespace) -> int:
    settings = resolve()
    stopped = LabTarget.from_settings(settings).down()
    forget_default_lab(settings)
    print("lab stopped" if stopped else "lab was not running")
    return 0


def _status(args: argparse.Namespace) -> int:
    lab = LabTarget.from_settings(resolve())
    status = lab.status()
    if args.json:
        data = dataclasses.asdict(status)
        data.pop("processes")
        data["setup"] = lab.setup()
        print(json.dumps(data, indent=2))
        return 0
    print(f"lab: {'running' if status.running else 'not running'}")
    print(f"  {'service':<13} {lab.spec().name}")
    for label, setup in lab.setup().items():
        print(f"  {label:<13} {setup}")
    for label, url in (("entry", status.entry_url), ("prometheus", status.prometheus_url),
                       ("fault proxy", status.fault_proxy_url), ("broker", status.broker_url),
                       ("broker admin", status.broker_admin_url)):
        print(f"  {label:<13} {url}")
    for replica in status.replicas:
        state = f"running, PID {replica.pid}" if replica.running else "not running"
        print(f"  {replica.name:<13} {replica.url}  {state}")
    for name, state in sorted(status.processes.items()):
        if state != "RUNNING":
            print(f"  process {name} is {state}")
    return 0


def _doctor(args: argparse.Namespace) -> int:
    lab = LabTarget.from_settings(resolve())
    if not lab.is_running():
        print(f"lab is not running (state dir {lab.layout.state_dir})")
        return 1
    problems = [f"{name} is not answering" for name in lab.failing_checks()]
    try:
        problems += lab.leftovers()
    except MeasurementError as exc:
        problems.append(str(exc))
    for problem in problems:
        print(f"  {problem}")
    print("lab is healthy and nothing is injected" if not problems
          else f"{len(problems)} problem(s); `gameday cleanup` undoes recorded faults")
    return 1 if problems else 0


SETUP_TIMEOUT_S = 900


def _check_service(args: argparse.Namespace) -> int:
    spec = load_spec(args.spec)
    work_dir = args.work_dir or resolve().run_dir / "check-service" / spec.name
    if spec.setup and not args.skip_setup:
        run_setup(spec)
    checks = check_service(spec, work_dir)
    print(table(checks))
    failed = sum(not c.passed for c in checks)
    print(f"{spec.name}: {len(checks) - failed} passed, {failed} failed (logs in {work_dir})")
    return 1 if failed else 0


def run_setup(spec: ServiceSpec) -> None:
    """Run the spec's setup command in its working directory; GamedayError if it fails."""
    print(f"setup: {' '.join(spec.setup)} (in {spec.workdir})", flush=True)
    try:
        done = subprocess.run(list(spec.setup), cwd=spec.workdir, timeout=SETUP_TIMEOUT_S,
                              check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise GamedayError(f"the setup of {spec.name} could not run: {exc}") from None
    if done.returncode != 0:
        raise GamedayError(f"the setup of {spec.name} ({' '.join(spec.setup)}) exited "
                           f"{done.returncode}")


@contextmanager
def lab_if_needed(target: str) -> Iterator[str]:
    """Start the lab for the run when the target is the lab and it is not running;
    yields the name of the service under test."""
    settings = resolve()
    lab = LabTarget.from_settings(settings)
    started = target == "lab" and lab.up()
    if started:
        note_default_lab(settings)
        print(f"lab started for this run with {lab.spec().name} (state in "
              f"{lab.layout.state_dir})", flush=True)
    try:
        yield get_target(target).service_name()
    finally:
        if started:
            lab.down()
            print("lab stopped", flush=True)
