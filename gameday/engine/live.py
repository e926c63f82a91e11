"""The live view of ``gameday run`` on a terminal: one status area, updated in place
(rich), under the lines the run prints as it goes.

It shows the running experiment (and how many are left), its phase (warm-up, baseline,
method, after, rollback: see :mod:`gameday.engine.status`), the faults injected now and
for how long, the client-side SLA of the last 10 s (rate, p95, errors, from the load
generator's live file) and every replica's breaker state (from Prometheus). A figure that
cannot be read shows as ``-`` with the reason; the view never stops the run.

When the output is not a terminal (CI), or ``$GAMEDAY_LIVE=0``, there is no view: the
run prints its plain lines only. While the view is on, Chaos Toolkit's own console output
goes to ``<experiment>-<time>.console.log`` next to its journal instead of the terminal.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from gameday.contract import GamedayError
from gameday.engine.status import ActiveFault, RunStatus, active_faults
from gameday.faults.record import InjectionLog
from gameday.measurements.client_sla import client_sla, read_live

__all__ = ["LIVE_ENV", "Snapshot", "Sources", "live_view", "render", "wanted"]

LIVE_ENV = "GAMEDAY_LIVE"
SLA_WINDOW_S = 10.0
REFRESH_PER_S = 2


@dataclass(frozen=True)
class Snapshot:
    """What the view shows at one moment (plain values, so :func:`render` is pure)."""

    experiment: str
    position: str
    phase: str
    elapsed_s: float
    faults: tuple[ActiveFault, ...]
    sla: Mapping[str, Any] | str
    breakers: Mapping[str, str] | str
    now_unix: float


def wanted(is_terminal: bool, environ: Mapping[str, str]) -> bool:
    """Whether to show the view: on a terminal, unless ``$GAMEDAY_LIVE`` is 0."""
    return is_terminal and environ.get(LIVE_ENV, "1").strip() != "0"


def render(snap: Snapshot) -> Group:
    """The status area for ``snap``."""
    head = Text.assemble(("gameday ", "bold"), (snap.experiment or "between experiments",
                                                "bold cyan"), f"  {snap.position}")
    if snap.experiment:
        head.append(f"  phase: {snap.phase}", style="bold yellow")
        head.append(f"  {snap.elapsed_s:.0f} s")
    faults = Table.grid(padding=(0, 2))
    if snap.faults:
        for fault in snap.faults:
            faults.add_row(Text("FAULT", style="bold red"), f"{fault.kind} {fault.target}",
                           f"on for {snap.now_unix - fault.since_unix:.0f} s")
    else:
        faults.add_row(Text("no fault injected", style="green"))
    return Group(head, faults, Text(_sla_line(snap.sla)), Text(_breaker_line(snap.breakers)))


def _sla_line(sla: Mapping[str, Any] | str) -> str:
    if isinstance(sla, str):
        return f"client SLA (last {SLA_WINDOW_S:g} s): - ({sla})"
    return (f"client SLA (last {SLA_WINDOW_S:g} s): {sla['throughput_rps']:.0f} orders/s, "
            f"p95 {sla['p95_latency_s'] * 1000:.0f} ms, errors {sla['error_rate']:.2%}, "
            f"availability {sla['availability']:.2%}")


def _breaker_line(breakers: Mapping[str, str] | str) -> str:
    if isinstance(breakers, str):
        return f"breakers: - ({breakers})"
    return "breakers: " + ", ".join(f"{name} {state}" for name, state in sorted(breakers.items()))


@dataclass(frozen=True)
class Sources:
    """Where the view reads: the run's status, the fault record, the live files, the
    breaker states."""

    status: RunStatus
    total: int
    log: Callable[[], InjectionLog]
    breakers: Callable[[], dict[str, str]]

    def snapshot(self) -> Snapshot:
        """Read everything once (each failure becomes its reason in the view)."""
        status, now = self.status, time.time()
        done = sum(status.verdicts.values())
        try:
            faults = tuple(active_faults(self.log().pending()))
        except (GamedayError, OSError):
            faults = ()
        return Snapshot(status.experiment, f"({done + 1 if status.experiment else done} of "
                        f"{self.total})", status.phase(), now - status.started_unix,
                        faults, self._sla(now), self._breakers(), now)

    def _sla(self, now: float) -> Mapping[str, Any] | str:
        traffic = self.status.reports_dir / "traffic"
        files = sorted(traffic.glob("*.live.json"), key=_mtime) if traffic.is_dir() else []
        if not files:
            return "no load yet"
        try:
            return client_sla(read_live(files[-1]), SLA_WINDOW_S, now)
        except GamedayError as exc:
            return str(exc).split(":")[0]

    def _breakers(self) -> Mapping[str, str] | str:
        try:
            return self.breakers()
        except GamedayError as exc:
            return str(exc).split(":")[0]


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _shown(sources: Sources) -> Group | Text:
    """The view now; whatever goes wrong reading it is shown, never raised (it runs in
    rich's refresh thread, and must not stop the game day)."""
    try:
        return render(sources.snapshot())
    except Exception as exc:  # any: see the docstring
        return Text(f"gameday live view: cannot read the run's state ({exc})")


@contextmanager
def live_view(sources: Sources, console: Console | None = None) -> Iterator[None]:
    """Show the view while the block runs (what the block prints scrolls above it)."""
    with Live(get_renderable=lambda: _shown(sources), console=console,
              refresh_per_second=REFRESH_PER_S, transient=False, redirect_stdout=True,
              redirect_stderr=True):
        yield

