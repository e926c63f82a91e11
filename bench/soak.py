"""Soak test (``make soak``): randomly chosen faults for 10 minutes under 200 orders/s.

``python -m bench.soak [--seed N] [--duration-s 600] [--rate 200] [--warmup-s 30]
[--no-warmup-faults] [--port-base 20500] [--state-dir DIR]`` starts a lab of its own
(port base 20500 by default; state in a temporary directory unless ``--state-dir``) and
sends orders with gameday's open-model load generator (``gameday load``, its own
process) for the whole run. After a warm-up — 30 s of load, then every kind of fault
once — it injects faults chosen at random from a seeded schedule (the seed is printed:
pass it back with ``--seed`` to repeat a run): replica kills and partitions, broker
link down / latency / blackhole / resets, broker errors, maintenance, slowness, rate
limits, hangs and flapping. One fault at a time, each held a few seconds, healed, then
a quiet gap. Faults go through :mod:`gameday.faults.inject` like the experiments' actions:
each is recorded in the lab's ``injected.jsonl`` before it is injected, then undone.

It prints, at the end:

- the memory (RSS, MiB) of every lab process at the start of the fault phase, in its
  middle and at its end (each in a quiet gap, under the same load), and the RSS and USS
  growth from start to end: it must stay under 20 %. Every process is judged except
  Prometheus, whose in-memory head block holds every sample of the last 2-3 hours by
  design (it grows with the run; shown, not judged). ``replica-1`` is never killed, so
  that one replica is measured over the whole soak; a killed replica comes back as a
  new, young process (shown, not comparable, not judged); a process restarted without
  a kill fails the soak. The warm-up round of faults lets each process reach the memory
  its peak load takes (buffers, pools: a high-water mark, no leak) before the start;
- the load generator's figures (orders due, sent, ok, failed, unknown, achieved rate);
- the reconciliation of every order's outcome with the broker's ledger: 0 lost
  (acknowledged but not filled) and 0 duplicated (filled twice) are required;
- the faults injected, by kind, and the injection record's counts;
- ``verdict: PASS`` or ``verdict: FAIL`` with the reasons. Exit code 0 for a pass, 1
  for a fail, 2 for bad options, 3 when the lab could not be used, 130 when interrupted.

Ctrl-C or SIGTERM at any moment: every recorded fault is undone, the load stopped and
the lab brought down before it exits.
"""

from __future__ import annotations

import signal
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from bench.common import running_lab
from bench.soak_faults import FaultRecord, recorded_counts, run_schedule, undo_everything
from bench.soak_load import read_fills, running_load
from bench.soak_memory import MemoryRow, MemorySample, Samples, format_table, memory_rows, sample
from bench.soak_plan import (
    PlannedFault,
    SoakSettings,
    fault_schedule,
    parse_settings,
    warmup_schedule,
)
from gameday.contract import GamedayError
from gameday.load.output import read_outcomes
from gameday.measurements.reconcile import reconcile
from gameday.targets.lab import LabTarget
from lab import stack
from lab.layout import LabLayout, LayoutError
from lab.stack import LabError

QUIET_BEFORE_SAMPLE_S = 3.0
LOAD_SLACK_S = 300.0  # the load's time bound beyond the plan (kills, samples, slow heals)
MIN_ACHIEVED_SHARE = 0.95
NOT_JUDGED = {"prometheus": "not judged: its head block keeps the last 2-3 h of samples "
                            "in memory by design, so it grows with the run"}
EXIT_PASS, EXIT_FAIL, EXIT_LAB, EXIT_INTERRUPTED = 0, 1, 3, 130

Say = Callable[[str], None]


@dataclass(frozen=True)
class Plan:
    """The faults of the warm-up round and of the fault phase."""

    warmup: list[PlannedFault]
    faults: list[PlannedFault]

    def load_bound_s(self, settings: SoakSettings) -> float:
        """The longest the load may run: everything planned plus a generous slack."""
        warmup = self.warmup[-1].start_s + self.warmup[-1].hold_s if self.warmup else 0.0
        return settings.warmup_s + warmup + settings.duration_s + LOAD_SLACK_S


@dataclass(frozen=True)
class SoakResult:
    """What the soak measured: memory rows, the load summary, the reconciliation, the
    faults (warm-up round apart), the injection record's counts and what was left
    injected afterwards."""

    rows: list[MemoryRow]
    load: Mapping[str, Any]
    reconciliation: Mapping[str, int]
    faults: FaultRecord
    warmup: FaultRecord
    recorded: Mapping[str, int]
    leftovers: list[str]


def reasons(result: SoakResult, settings: SoakSettings) -> list[str]:
    """Why the soak failed; empty when it passed (pure)."""
    found = [f"memory: {row.role}: {row.note}" for row in result.rows if not row.ok]
    rec = result.reconciliation
    if rec["lost"] or rec["duplicated"] or rec.get("failed_but_filled"):
        found.append(f"reconciliation: {rec['lost']} lost, {rec['duplicated']} duplicated, "
                     f"{rec.get('failed_but_filled', 0)} answered failed but filled")
    achieved = float(result.load.get("achieved_rps", 0.0))
    if achieved < MIN_ACHIEVED_SHARE * settings.rate_rps:
        found.append(f"load: {achieved:.1f} orders/s achieved, under "
                     f"{MIN_ACHIEVED_SHARE:.0%} of {settings.rate_rps:g}")
    if result.faults.total == 0:
        found.append("faults: none was injected")
    found += [f"faults: {e}" for e in result.warmup.errors + result.faults.errors]
    found += [f"left injected or broken afterwards: {item}" for item in result.leftovers]
    if result.recorded.get("pending"):
        found.append(f"injection record: {result.recorded['pending']} fault(s) still pending")
    return found


def _say(started: float) -> Say:
    def say(message: str) -> None:
        print(f"[{time.monotonic() - started:7.1f} s] {message}", flush=True)
    return say


def lab_pids(layout: LabLayout) -> dict[str, int]:
    """PID of supervisord and of every running lab process, by role (program name)."""
    client = stack.client(layout)
    running = {p.name: p.pid for p in client.processes() if p.running}
    return {"supervisord": client.pid(), **running}


@contextmanager
def _shielded_cleanup() -> Iterator[None]:
    """On leaving the block, ignore SIGINT and SIGTERM: the cleanup that follows (undo,
    stop the load, stop the lab) must finish even when Ctrl-C is pressed again."""
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)


@contextmanager
def _undoing(target: LabTarget, say: Say) -> Iterator[None]:
    """Undo whatever the injection record still holds when the block ends, however."""
    try:
        yield
    finally:
        try:
            undone = undo_everything(target)
        except (GamedayError, OSError) as exc:
            say(f"could not undo the recorded faults: {exc}")
        else:
            if undone:
                say(f"undid {len(undone)} fault(s) left injected: {'; '.join(undone)}")


def _until(moment: float) -> None:
    time.sleep(max(0.0, moment - time.monotonic()))


def _sample(layout: LabLayout, say: Say, when: str) -> dict[str, MemorySample]:
    """Every lab process' memory, after a few quiet seconds (the last heal's requests
    drain first)."""
    time.sleep(QUIET_BEFORE_SAMPLE_S)
    taken = sample(lab_pids(layout))
    say(f"memory sampled ({when})")
    return taken


def _warm_up(target: LabTarget, settings: SoakSettings, plan: Plan, say: Say) -> FaultRecord:
    """Load without faults for ``warmup_s``, then the warm-up round of faults (if any)."""
    say(f"load running at {settings.rate_rps:g} orders/s; {settings.warmup_s:g} s without "
        "faults")
    time.sleep(settings.warmup_s)
    if plan.warmup:
        say(f"warm-up: each of the {len(plan.warmup)} fault kinds once")
    return run_schedule(target, plan.warmup, time.monotonic(), say)


def _fault_phase(layout: LabLayout, settings: SoakSettings, plan: Plan,
                 say: Say) -> tuple[Samples, FaultRecord]:
    """The random faults, with memory samples at the start, in the middle and at the end."""
    target = LabTarget(layout)
    start = _sample(layout, say, "start")
    say(f"random faults for {settings.duration_s:g} s")
    phase, half = time.monotonic(), settings.duration_s / 2
    record = run_schedule(target, [f for f in plan.faults if f.start_s < half], phase, say)
    _until(phase + half)
    mid = _sample(layout, say, "middle")
    run_schedule(target, [f for f in plan.faults if f.start_s >= half], phase, say, record)
    _until(phase + settings.duration_s)
    end = _sample(layout, say, "end")
    return Samples(start, mid, end), record


def _measure(layout: LabLayout, settings: SoakSettings, plan: Plan, say: Say) -> SoakResult:
    target = LabTarget(layout)
    url = layout.url("entry") + "/orders"
    bound_s = plan.load_bound_s(settings)
    with running_load(url, settings.rate_rps, bound_s, layout.state_dir / "soak-load.json") \
            as load, _undoing(target, say), _shielded_cleanup():
        load.wait_started()
        warmup = _warm_up(target, settings, plan, say)
        samples, faults = _fault_phase(layout, settings, plan, say)
        say("stopping the load (orders in flight finish)")
        summary = load.finish()
    rec = reconcile(read_outcomes(load.outcomes_path), read_fills(layout))
    rows = memory_rows(samples, faults.killed, settings.growth_limit_pct, NOT_JUDGED)
    return SoakResult(rows, summary, rec, faults, warmup, recorded_counts(target),
                      target.leftovers())


def _print_memory(rows: list[MemoryRow]) -> None:
    print("\n== memory (MiB; growth from start to end in %; judged on RSS) ==")
    print(format_table(rows))
    print("start: after the warm-up; middle, end: in a quiet gap after a heal; all under "
          "the same load. A leak grows from middle to end as it did from start to "
          "middle; a high-water mark does not. replica-1 is never killed: the replica "
          "measured over the whole soak. A killed replica restarts as a new process "
          "(new PID): its figures are not comparable.")


def _print_result(result: SoakResult, settings: SoakSettings) -> list[str]:
    _print_memory(result.rows)
    load = result.load
    outcomes = load.get("outcomes", {})
    errors = " ".join(f"{k}={v}" for k, v in sorted(load.get("errors", {}).items()))
    print(f"\norders: due={load['due']} sent={load['sent']} ok={outcomes.get('ok', 0)} "
          f"failed={outcomes.get('failed', 0)} unknown={outcomes.get('unknown', 0)} "
          f"achieved_rps={load['achieved_rps']:.1f} (errors: {errors})")
    print("reconciliation: " + " ".join(f"{k}={v}" for k, v in result.reconciliation.items()))
    faults = result.faults
    kinds = ", ".join(f"{name} {count}" for name, count in sorted(faults.injected.items()))
    killed = ", ".join(f"{n} {c}" for n, c in sorted(faults.killed.items())) or "none"
    print(f"faults: injected={faults.total} ({kinds}); replicas killed: {killed}; "
          f"warm-up round: {result.warmup.total}")
    print("injection record: " + " ".join(f"{k}={v}" for k, v in result.recorded.items()))
    print(f"left injected afterwards: {'; '.join(result.leftovers) or 'nothing'}")
    found = reasons(result, settings)
    print(f"\nverdict: {'FAIL' if found else 'PASS'} (seed {settings.seed}; memory growth "
          f"< {settings.growth_limit_pct:g} %, 0 lost, 0 duplicated)")
    for reason in found:
        print(f"  - {reason}")
    return found


def make_plan(settings: SoakSettings) -> Plan:
    """The warm-up round (unless switched off) and the random faults (pure)."""
    replicas = LabLayout(Path(), settings.port_base).replica_names()
    warmup = (warmup_schedule(settings.seed, replicas, settings.warmup_hold_s)
              if settings.warmup_faults else [])
    faults = fault_schedule(settings.seed, settings.duration_s, replicas,
                            hold_s=settings.hold_s, gap_s=settings.gap_s)
    return Plan(warmup, faults)


def soak(settings: SoakSettings) -> int:
    """Run the soak and print its figures; 0 when every target was met, else 1."""
    plan = make_plan(settings)
    print(f"soak: seed {settings.seed} (repeat with --seed {settings.seed}); "
          f"{settings.duration_s:g} s of random faults ({len(plan.faults)} planned) at "
          f"{settings.rate_rps:g} orders/s after a {settings.warmup_s:g} s warm-up"
          f"{' and a round of every fault kind' if plan.warmup else ''}; lab port base "
          f"{settings.port_base}; the load stops by itself after "
          f"{plan.load_bound_s(settings):g} s at the latest", flush=True)
    say = _say(time.monotonic())
    with running_lab(settings.port_base, settings.state_dir) as layout:
        say(f"lab up (state in {layout.state_dir})")
        result = _measure(layout, settings, plan, say)
        say("stopping the lab")
    return EXIT_FAIL if _print_result(result, settings) else EXIT_PASS


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    """Entry point: parse the options (exit 2 on bad ones), soak, exit with the verdict."""
    settings = parse_settings(argv)
    previous = {sig: signal.signal(sig, handler) for sig, handler in
                ((signal.SIGTERM, _interrupt), (signal.SIGINT, signal.default_int_handler))}
    try:
        return soak(settings)
    except KeyboardInterrupt:
        print("\nsoak interrupted: recorded faults undone, load and lab stopped",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    except (LabError, LayoutError, GamedayError) as exc:
        print(f"soak: the lab could not be used: {exc}", file=sys.stderr)
        return EXIT_LAB
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


if __name__ == "__main__":
    sys.exit(main())
