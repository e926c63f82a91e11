"""Where a game day is, for the people watching it: the running experiment, its phase
and the faults active now (read by the metrics ``gameday run`` serves, see
:mod:`gameday.engine.exporter`).

The phase comes from the Chaos Toolkit log of the running experiment (pure, from its
text): ``warm-up`` (the traffic control's warm-up), ``baseline`` (the steady state
before), ``method`` (faults and the probes during them), ``after`` (the steady state
after), ``rollback``, ``ended``. The active faults are the record of injected faults.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from gameday.faults.record import Injection

__all__ = ["PHASES", "ActiveFault", "RunStatus", "active_faults", "phase_of"]

PHASES = ("warm-up", "baseline", "method", "after", "rollback", "ended")
_HYPOTHESIS = "Steady state hypothesis: "
_METHOD = "Playing your experiment's method now"
_ROLLBACK = "Let's rollback"
_ENDED = "Experiment ended with status"
FAULT_TARGET_KEYS = ("link", "replica", "mode", "proxy", "selector")


@dataclass(frozen=True)
class ActiveFault:
    """A fault injected and not yet undone: its kind, what it hit, since when."""

    kind: str
    target: str
    since_unix: float


def phase_of(log_text: str) -> str:
    """The phase of an experiment from its Chaos Toolkit log so far."""
    if _ENDED in log_text:
        return "ended"
    if _ROLLBACK in log_text:
        return "rollback"
    hypotheses = log_text.count(_HYPOTHESIS)
    if _METHOD in log_text:
        return "after" if hypotheses >= 2 else "method"
    return "baseline" if hypotheses else "warm-up"


def active_faults(pending: Sequence[Injection]) -> list[ActiveFault]:
    """The recorded faults still injected, with what each hit (a link, a replica, a
    broker mode...) from its parameters."""
    return [ActiveFault(i.kind, _fault_target(i.params), i.at_unix) for i in pending]


def _fault_target(params: dict[str, object]) -> str:
    for key in FAULT_TARGET_KEYS:
        if params.get(key):
            return str(params[key])
    return ""


@dataclass
class RunStatus:
    """One ``gameday run`` as it goes (owned by that run; updated as experiments start
    and finish)."""

    target: str
    service: str
    reports_dir: Path
    experiment: str = ""
    started_unix: float = 0.0
    verdicts: dict[str, int] = field(default_factory=dict)
    run_started_unix: float = field(default_factory=time.time)

    def begin(self, path: Path) -> None:
        """An experiment starts."""
        self.experiment, self.started_unix = path.stem, time.time()

    def finish(self, verdict: str) -> None:
        """The running experiment ended with ``verdict``."""
        self.verdicts[verdict] = self.verdicts.get(verdict, 0) + 1
        self.experiment = ""

    def phase(self) -> str:
        """The running experiment's phase (``""`` between experiments)."""
        if not self.experiment:
            return ""
        logs = [p for p in self.reports_dir.glob(f"{self.experiment}-*.chaos.log")
                if p.stat().st_mtime >= self.started_unix - 1]
        if not logs:
            return "warm-up"
        newest = max(logs, key=lambda p: p.stat().st_mtime)
        return phase_of(newest.read_text(encoding="utf-8", errors="replace"))
