"""Evidence that a gray fault took effect, read from the replicas' cgroups.

A freeze or a CPU limit that the kernel did not apply proves nothing: the replica ran
as usual and the experiment "passes". These are *evidence* probes, read from the
kernel's own files: out of their tolerance, the verdict is INCONCLUSIVE (the fault did
not land), not PASS. They raise when the cgroups cannot be read.
"""


import time

from gameday.contract import ConfigError
from gameday.engine.activity import activity
from gameday.targets import get_target

__all__ = ["cpu_throttled", "frozen"]

SECONDS_MAX = 60.0


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
    return sum(int(after[name]["nr_throttled"] - before[name]["nr_throttled"])
               for name in after if name in before and after[name]["quota_cores"] >= 0)
