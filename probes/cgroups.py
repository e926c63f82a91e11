"""Evidence that a gray fault took effect, read from the replicas' cgroups.

A freeze or a CPU limit that the kernel did not apply proves nothing: the replica ran
as usual and the experiment "passes". These are *evidence* probes, read from the
kernel's own files: out of their tolerance, the verdict is INCONCLUSIVE (the fault did
not land), not PASS. They raise when the cgroups cannot be read.
"""


import time
from pathlib import Path
from typing import Any

from gameday.contract import MEMORY_LIMIT_FAULT, ConfigError, MeasurementError
from gameday.engine.activity import activity
from gameday.faults.record import InjectionLog
from gameday.targets import get_target

__all__ = ["cpu_throttled", "frozen", "oom_killed"]

SECONDS_MAX = 60.0
POLL_S = 0.25


@activity
def frozen(selector: str = "name=replica-2") -> int:
    """How many replicas matching ``selector`` the kernel holds FROZEN (their cgroup's
    ``freezer.state``).

    Args:
        selector: which replicas (``name=replica-N``).

    Call it right after the freeze; pair it with ``{type: range, range: [1, 1]}``.
    """
    figures = get_target().cgroup_figures(selector)
    return sum(1 for replica in figures.values() if replica["freezer_state"] == "FROZEN")


@activity
def cpu_throttled(selector: str = "name=replica-2", seconds: float = 2.0) -> int:
    """How many CFS periods the kernel throttled the replicas matching ``selector`` in
    the next ``seconds`` (the growth of ``nr_throttled`` in their ``cpu.stat``), counted
    only while a CPU limit is set.

    Args:
        selector: which replicas (``name=replica-N``).
        seconds: how long to watch, 0.5..60.

    Call it while the limit is on and the replica has traffic; pair it with a tolerance
    such as ``{type: range, range: [1, 1000000]}``: 0 means the limit never bit.
    """
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not (
            0.5 <= seconds <= SECONDS_MAX):
        raise ConfigError(f"seconds={seconds!r} is out of range: valid is 0.5..{SECONDS_MAX:g}")
    target = get_target()
    before = target.cgroup_figures(selector)
    time.sleep(float(seconds))
    after = target.cgroup_figures(selector)
    limited = [name for name in after if name in before and after[name]["quota_cores"] >= 0]
    unread = [name for name in limited
              if after[name]["nr_throttled"] is None or before[name]["nr_throttled"] is None]
    if unread:
        raise MeasurementError(f"no count of throttled CPU periods for {', '.join(unread)}: "
                               "on Kubernetes the target's Prometheus must scrape the "
                               "kubelets' cAdvisor (container_cpu_cfs_throttled_periods_total)")
    return sum(int(after[name]["nr_throttled"] - before[name]["nr_throttled"])
               for name in limited)


def _last_limit(state_dir: Path, selector: str) -> tuple[dict[str, int], dict[str, list[str]]]:
    """The last memory limit recorded on ``selector``: each replica's OOM-kill count and
    what it ran as, from before the limit."""
    limits = [e for e in InjectionLog(state_dir).entries()
              if e.get("event") == "injected" and e.get("kind") == MEMORY_LIMIT_FAULT
              and (e.get("params") or {}).get("selector") == selector]
    if not limits:
        raise MeasurementError(f"no memory limit on {selector} was recorded (limit it with "
                               "actions.memory.limit first)")
    params = limits[-1]["params"]
    before, instances = params.get("oom_kills_before"), params.get("instances")
    if not isinstance(before, dict) or not isinstance(instances, dict):
        raise MeasurementError("the memory limit was recorded without the OOM-kill counts and "
                               "processes from before it (an older gameday?): cannot tell it "
                               "landed")
    return ({str(name): int(count) for name, count in before.items()},
            {str(name): [str(i) for i in ran] for name, ran in instances.items()})


@activity
def oom_killed(selector: str = "name=replica-2", within_s: float = 20.0) -> int:
    """How many replicas matching ``selector`` the kernel's OOM killer ended since the
    last memory limit on them: the ``oom_kill`` count of the replica's memory cgroup
    (``memory.oom_control``) grew over the one recorded with the limit, and none of the
    processes the replica ran as then still runs (so the kill took the replica, not
    something else in its cgroup).

    Args:
        selector: which replicas, as given to ``actions.memory.limit``.
        within_s: how long to wait for every one of them to be killed, 0.5..60.

    Call it right after the limit; pair it with ``{type: range, range: [N, N]}``, N the
    replicas limited: fewer means the limit never bit (the leak ended first, or the
    kernel killed something else) and the verdict is INCONCLUSIVE.
    """
    if isinstance(within_s, bool) or not isinstance(within_s, int | float) or not (
            0.5 <= within_s <= SECONDS_MAX):
        raise ConfigError(f"within_s={within_s!r} is out of range: valid is "
                          f"0.5..{SECONDS_MAX:g}")
    target = get_target()
    before, instances = _last_limit(target.state_dir(), selector)
    deadline = time.monotonic() + float(within_s)
    while True:
        killed = _oom_killed(target.cgroup_figures(selector), before, instances,
                             set(target.instances_running(
                                 [i for ran in instances.values() for i in ran])))
        if killed >= len(before) or time.monotonic() >= deadline:
            return killed
        time.sleep(POLL_S)


def _oom_killed(figures: dict[str, dict[str, Any]], before: dict[str, int],
                instances: dict[str, list[str]], running: set[str]) -> int:
    """Replicas OOM-killed: their count grew, and nothing they ran as still runs (pure)."""
    return sum(1 for name, f in figures.items()
               if name in before and f["oom_kills"] > before[name]
               and instances.get(name) and not running & set(instances[name]))
