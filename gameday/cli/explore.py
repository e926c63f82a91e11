"""``gameday explore PARAMETER``: find the resilience envelope on the lab (see
:mod:`gameday.engine.explore` and :mod:`gameday.engine.envelope`)."""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path
from typing import Any

from gameday.cli.lab import lab_if_needed
from gameday.contract import ConfigError
from gameday.engine.envelope import PARAMETERS, parse_range
from gameday.engine.explore import (
    ExploreSettings,
    PairsSettings,
    Sweep,
    explore,
    explore_pairs,
)
from gameday.engine.results import EXIT_FAILED, EXIT_INCONCLUSIVE
from gameday.measurements.sla import SlaTargets
from gameday.report.envelope import edge_moves, envelope_page, knees_entry
from gameday.report.history import append_history
from gameday.settings import resolve
from gameday.targets import get_target


def add_parser(subparsers: Any) -> None:
    """Register ``gameday explore``."""
    parser = subparsers.add_parser(
        "explore", help="sweep one fault parameter on the lab and find where the SLA, the "
        "orders and the breakers change (the resilience envelope)")
    parser.add_argument("parameter", choices=[*sorted(PARAMETERS), "pairs"],
                        help="broker-latency (s added to each broker call), broker-errors "
                             "(share of broker calls answered 503), rate (orders/s of the "
                             "load: the capacity), or pairs (two faults of the catalog at "
                             "once)")
    parser.add_argument("--range", dest="range_", metavar="LO:HI", default=None,
                        help="the values to cover (default: the parameter's own range)")
    parser.add_argument("--resolution", type=float, default=None,
                        help="how precisely to locate each knee (default: the parameter's)")
    parser.add_argument("--hold-s", type=float, default=8.0,
                        help="how long each step holds its value (default 8)")
    parser.add_argument("--budget-min", type=float, default=10.0,
                        help="stop after this many minutes (default 10)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON "
                        "(exit 0; 4 when the sweep stopped short: the machine starved, "
                        "or the service did not recover from a step)")
    parser.set_defaults(func=_explore)


def _settings(args: argparse.Namespace) -> ExploreSettings:
    parameter = PARAMETERS[args.parameter]
    low, high = (parameter.low, parameter.high) if args.range_ is None \
        else parse_range(args.range_, parameter)
    resolution = parameter.resolution if args.resolution is None else args.resolution
    checks = {"--resolution": (resolution, 0 < resolution < high - low),
              "--hold-s": (args.hold_s, 3 <= args.hold_s <= 120),
              "--budget-min": (args.budget_min, 1 <= args.budget_min <= 240)}
    bad = [f"{name} {value:g}" for name, (value, ok) in checks.items()
           if not (math.isfinite(value) and ok)]
    if bad:
        raise ConfigError(f"{', '.join(bad)}: valid are 0 < --resolution < HI-LO, "
                          "3 <= --hold-s <= 120, 1 <= --budget-min <= 240")
    return ExploreSettings(parameter, low, high, resolution, args.hold_s,
                           args.budget_min * 60)


def _explore(args: argparse.Namespace) -> int:
    if args.parameter == "pairs":
        return _pairs(args)
    settings = _settings(args)
    run_dir = _run_dir()
    with lab_if_needed("lab"):
        sweep = explore(get_target("lab"), settings, run_dir,
                        (lambda _: None) if args.json else print)
    result = sweep.as_json()
    out = run_dir / f"explore-{settings.parameter.name}-{time.strftime('%Y%m%dT%H%M%S')}.json"
    out.write_text(json.dumps(result, indent=2), encoding="utf-8")
    html = out.with_suffix(".html")
    html.write_text(envelope_page(result), encoding="utf-8")
    entry = knees_entry(result)
    history = append_history(run_dir / "history.jsonl", [entry])
    earlier = [e for e in history if e["experiment"] == entry["experiment"]
               and float(e["started_unix"]) < entry["started_unix"]]
    moves = edge_moves(earlier[-1] if earlier else None, entry)
    print(json.dumps({**result, "compared": moves}, indent=2) if args.json
          else _summary(sweep, str(html)) + "\nagainst the last sweep:\n  "
          + "\n  ".join(moves))
    return EXIT_INCONCLUSIVE if sweep.inconclusive else 0


def _summary(sweep: Sweep, where: str) -> str:
    unit = sweep.settings.parameter.unit
    lines = [f"\n{len(sweep.steps)} steps in {sweep.duration_s:.0f} s ({sweep.stopped})"]
    for knee in sweep.knees:
        if knee.value is None:
            held = "held over the whole range" if knee.holds else "never held in the range"
            lines.append(f"  {knee.property}: {held}")
        else:
            lines.append(f"  {knee.property}: changes at {knee.value:.3f} "
                         f"± {knee.uncertainty:.3f} {unit}")
    if sweep.settings.parameter.is_rate:
        lines.append(_capacity(sweep))
    lines.append(f"envelope: {where}")
    return "\n".join(lines)


def _capacity(sweep: Sweep) -> str:
    """The capacity (where the SLA stops holding) and its headroom over the SLA's
    throughput floor."""
    floor = SlaTargets().throughput_min_rps
    sla = next(k for k in sweep.knees if k.property == "sla")
    held = [s.value for s in sweep.steps if s.holds(SlaTargets())["sla"]]
    if sla.value is not None:
        return (f"capacity: about {sla.value:.0f} orders/s with the SLA held, "
                f"{sla.value / floor:.1f}x the SLA's {floor:g} orders/s floor")
    if held:
        return (f"capacity: at least {max(held):.0f} orders/s (the SLA held at every rate "
                f"measured), {max(held) / floor:.1f}x the SLA's {floor:g} orders/s floor")
    return "capacity: the SLA did not hold at any rate measured"


def _run_dir() -> Path:
    resolved = resolve()
    if resolved.target != "lab":
        raise ConfigError("gameday explore runs on the lab only (it sets the broker "
                          "simulator's modes): unset GAMEDAY_TARGET")
    return resolved.run_dir / "explore"


def _pairs(args: argparse.Namespace) -> int:
    if args.range_ is not None or args.resolution is not None:
        raise ConfigError("explore pairs takes no --range or --resolution: it runs the "
                          "catalog's faults, alone and two at a time")
    if not (5 <= args.hold_s <= 120 and 1 <= args.budget_min <= 240):
        raise ConfigError(f"--hold-s {args.hold_s:g}, --budget-min {args.budget_min:g}: "
                          "valid are 5 <= --hold-s <= 120, 1 <= --budget-min <= 240")
    run_dir = _run_dir()
    settings = PairsSettings(hold_s=args.hold_s, budget_s=args.budget_min * 60)
    with lab_if_needed("lab"):
        result = explore_pairs(get_target("lab"), settings, run_dir,
                               (lambda _: None) if args.json else print)
    out = run_dir / f"explore-pairs-{time.strftime('%Y%m%dT%H%M%S')}.json"
    out.write_text(json.dumps(result.as_json(), indent=2), encoding="utf-8")
    if args.json:
        print(json.dumps(result.as_json(), indent=2))
    else:
        print(f"\n{len(result.singles)} single faults and {len(result.pairs)} pairs run, "
              f"{len(result.skipped)} pairs skipped, in {result.duration_s:.0f} s")
        for (a, b), why in result.skipped:
            print(f"  skipped {a} + {b}: {why}")
        for line in result.found or ["no pair fails that its single faults do not"]:
            print(f"  {line}")
        print(f"result: {out}")
    return EXIT_FAILED if result.found else 0
