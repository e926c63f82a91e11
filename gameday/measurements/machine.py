"""Whether the machine gave the experiment the CPU it needed (pure, apart from
:func:`read_sample`).

A game day on a 2-core machine while something else runs there (a build, another lab)
measures that machine, not the service: the service's broker calls time out and its
SLA fails although nothing is wrong with it. The load generator's late starts show
this only when the load generator itself is starved. So gameday also samples, at each
phase boundary of an experiment, the CPU the whole machine spent busy, the CPU of *our*
processes (the lab's process tree and replica cgroups, and gameday's own: the runner,
Chaos Toolkit, the load generator) and how long our processes waited, runnable, for a
CPU (``/proc/<pid>/schedstat``). Between two samples this gives a :class:`MachineLoad`:
how many cores were busy, how many of them other work took, and the share of their
runnable time our processes spent waiting. A machine with (nearly) no idle time left,
much of it taken by other work, starved the experiment.

Measured on the project's 2-core machine with another engineer's lab beside the
reference lab: 1.81 cores busy, 1.07 of them others', our processes waiting 53 % of
their runnable time, and the clients' p95 62 ms (not starved); with two more labs at
200 orders/s: 2.0 cores busy, 1.5 others', waiting 70 %, p95 600 ms and 41 % of the
load generator's starts late (starved).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["CpuSample", "MachineLoad", "ProcessFigures", "load_between", "phase_loads",
           "read_sample"]

PROC = Path("/proc")


@dataclass(frozen=True)
class ProcessFigures:
    """One of our processes at a sample: its CPU seconds (with the children it reaped),
    and its main thread's seconds on a CPU and waiting, runnable, for one."""

    cpu_s: float
    run_s: float
    wait_s: float


@dataclass(frozen=True)
class CpuSample:
    """The machine and our processes at one moment (``label`` names the moment)."""

    label: str
    unix_s: float
    busy_s: float
    ours: Mapping[int, ProcessFigures]

    def as_json(self) -> dict[str, Any]:
        """The sample as a JSON object."""
        return {"label": self.label, "unix_s": round(self.unix_s, 3),
                "busy_s": round(self.busy_s, 3),
                "ours": {str(pid): [round(f.cpu_s, 3), round(f.run_s, 6), round(f.wait_s, 6)]
                         for pid, f in self.ours.items()}}

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> CpuSample:
        """The sample :meth:`as_json` wrote."""
        return cls(str(body["label"]), float(body["unix_s"]), float(body["busy_s"]),
                   {int(pid): ProcessFigures(*(float(v) for v in values))
                    for pid, values in body["ours"].items()})


@dataclass(frozen=True)
class MachineLoad:
    """What the machine did between two samples: cores busy in all, taken by our
    processes and by other work, and the share of our processes' runnable time spent
    waiting for a CPU."""

    seconds: float
    cores: int
    busy_cores: float
    ours_cores: float
    others_cores: float
    wait_share: float

    def starved(self, others_share_max: float, busy_share_max: float) -> bool:
        """Whether the machine was busy beyond ``busy_share_max`` of its cores (nearly no
        idle time left: run queues grow, and our processes wait for a CPU for as long as
        they run and more) while other work took more than ``others_share_max`` of
        them. A machine busy with our processes alone is not starved by others."""
        return (self.busy_cores > busy_share_max * self.cores
                and self.others_cores > others_share_max * self.cores)

    def words(self) -> str:
        """The figures in words, for a verdict's reason."""
        return (f"other processes than the lab's and gameday's took {self.others_cores:.2f} "
                f"of the machine's {self.cores} cores ({self.busy_cores:.2f} busy in all) and "
                f"ours waited for a CPU {self.wait_share:.0%} of the time they could run, "
                f"over {self.seconds:.0f} s")

    def as_json(self) -> dict[str, Any]:
        """The load as a JSON object (the journal's form)."""
        return {"seconds": round(self.seconds, 3), "cores": self.cores,
                "busy_cores": round(self.busy_cores, 3), "ours_cores": round(self.ours_cores, 3),
                "others_cores": round(self.others_cores, 3),
                "wait_share": round(self.wait_share, 4)}

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> MachineLoad:
        """The load :meth:`as_json` wrote."""
        return cls(float(body["seconds"]), int(body["cores"]), float(body["busy_cores"]),
                   float(body["ours_cores"]), float(body["others_cores"]),
                   float(body["wait_share"]))


def load_between(first: CpuSample, last: CpuSample, cores: int) -> MachineLoad | None:
    """The machine's load from ``first`` to ``last`` (None when no time passed).

    Our CPU is the growth of what our processes have used at ``last`` over what those
    at ``first`` had used: one that started in between counts from 0, one that ended
    counts through the process that reaped it (its children's CPU). The wait share is
    over the processes sampled both times and those that started in between."""
    seconds = last.unix_s - first.unix_s
    if seconds <= 0 or cores <= 0:
        return None
    busy = max(0.0, last.busy_s - first.busy_s)
    ours_cpu = max(0.0, sum(f.cpu_s for f in last.ours.values())
                   - sum(f.cpu_s for f in first.ours.values()))
    ours_cpu = min(ours_cpu, busy)
    zero = ProcessFigures(0.0, 0.0, 0.0)
    run = wait = 0.0
    for pid, now in last.ours.items():
        before = first.ours.get(pid, zero)
        run += max(0.0, now.run_s - before.run_s)
        wait += max(0.0, now.wait_s - before.wait_s)
    return MachineLoad(seconds, cores, busy / seconds, ours_cpu / seconds,
                       (busy - ours_cpu) / seconds, wait / (run + wait) if run + wait else 0.0)


def phase_loads(samples: Sequence[CpuSample], cores: int) -> dict[str, MachineLoad]:
    """The load of each phase of an experiment from its samples (labelled ``start``,
    ``hypothesis`` after each steady-state check, ``method-before``, ``method-after``
    and ``end``): ``baseline`` (from the start, the warm-up included, to the end of the
    first steady-state check), ``method`` and ``experiment`` (start to end)."""
    first: dict[str, CpuSample] = {}
    for sample in samples:
        first.setdefault(sample.label, sample)
    spans = {"baseline": ("start", "hypothesis"), "method": ("method-before", "method-after"),
             "experiment": ("start", "end")}
    loads = {}
    for phase, (begin, end) in spans.items():
        if begin in first and end in first:
            load = load_between(first[begin], first[end], cores)
            if load is not None:
                loads[phase] = load
    return loads


def _stat_fields(text: str) -> list[str]:
    """The fields of a ``/proc/<pid>/stat`` line after the command (which may hold
    spaces and parentheses)."""
    return text[text.rindex(")") + 2:].split()


def _machine_busy_s(proc: Path, ticks: int) -> float:
    """CPU seconds the whole machine spent busy (all but idle and iowait) since boot."""
    values = [int(v) for v in (proc / "stat").read_text().splitlines()[0].split()[1:]]
    return (sum(values) - values[3] - values[4]) / ticks


def _processes(proc: Path) -> dict[int, list[str]]:
    """Every process's stat fields (processes that end while read are skipped)."""
    found = {}
    for entry in proc.iterdir():
        if entry.name.isdigit():
            try:
                found[int(entry.name)] = _stat_fields((entry / "stat").read_text())
            except (OSError, ValueError):
                continue
    return found


def _tree(parents: Mapping[int, int], roots: Iterable[int]) -> set[int]:
    """``roots`` and every process descending from them."""
    children: dict[int, list[int]] = {}
    for pid, parent in parents.items():
        children.setdefault(parent, []).append(pid)
    seen: set[int] = set()
    stack = [r for r in roots if r in parents]
    while stack:
        pid = stack.pop()
        if pid not in seen:
            seen.add(pid)
            stack.extend(children.get(pid, []))
    return seen


def _in_cgroups(proc: Path, pid: int, names: Sequence[str]) -> bool:
    try:
        text = (proc / str(pid) / "cgroup").read_text()
    except OSError:
        return False
    return any(f"/{name}/" in text or text.rstrip().endswith(f"/{name}") for name in names)


def _figures(proc: Path, pid: int, fields: list[str], ticks: int) -> ProcessFigures:
    cpu_s = sum(int(v) for v in fields[11:15]) / ticks  # utime stime cutime cstime
    try:
        run_ns, wait_ns = (int(v) for v in (proc / str(pid) / "schedstat").read_text().split()[:2])
    except (OSError, ValueError):
        run_ns = wait_ns = 0
    return ProcessFigures(cpu_s, run_ns / 1e9, wait_ns / 1e9)


def read_sample(label: str, unix_s: float, roots: Iterable[int], cgroups: Sequence[str] = (),
                proc: Path = PROC) -> CpuSample:
    """Sample the machine and our processes: those descending from ``roots`` and those
    in a cgroup named in ``cgroups`` (a replica that left its parent's tree)."""
    ticks = os.sysconf("SC_CLK_TCK")
    busy_s = _machine_busy_s(proc, ticks)
    processes = _processes(proc)
    ours = _tree({pid: int(fields[1]) for pid, fields in processes.items()}, roots)
    if cgroups:
        ours |= {pid for pid in processes if pid not in ours and _in_cgroups(proc, pid, cgroups)}
    return CpuSample(label, unix_s, busy_s,
                     {pid: _figures(proc, pid, processes[pid], ticks) for pid in sorted(ours)})
