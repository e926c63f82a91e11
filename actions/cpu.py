"""Starve a replica of CPU: a CFS quota of a fraction of one core.

On the lab the replica's ``cpu`` cgroup gets ``cpu.cfs_quota_us`` = ``cores`` x the
100 ms period (0.1 core: 10 ms of CPU time per 100 ms; the seed deployment's limit is
500m), so the kernel throttles it whenever it has used its share. ``unthrottle`` (the
idempotent undo, use it as the rollback) lifts the quota. Needs replica cgroups (root,
cgroup v1 ``cpu``); where the target cannot offer them the run reports the experiment as
not runnable here. Every throttle is recorded before it is injected, so ``gameday
cleanup`` lifts it after a crash.
"""


from typing import Any

from gameday.engine.activity import activity
from gameday.faults import inject
from gameday.targets import get_target

__all__ = ["throttle", "unthrottle"]


@activity
def throttle(selector: str = "name=replica-2", cores: float = 0.1) -> dict[str, Any]:
    """Limit the replicas matching ``selector`` to ``cores`` of CPU time.

    Args:
        selector: which replicas (``name=replica-N``; a match-everything selector is
            refused).
        cores: the share of one core each may use, 0.01..64 (e.g. 0.1 = 100m).

    Returns ``{throttled: [names], cores}``. Undo with ``unthrottle``.
    """
    return inject.throttle(get_target(), selector, cores)


@activity
def unthrottle(selector: str = "name=replica-2") -> dict[str, Any]:
    """Lift the CPU limit of the replicas matching ``selector``.

    Args:
        selector: which replicas, as given to ``throttle``.

    Safe to call when they are not throttled: use it as the rollback. Returns
    ``{unthrottled: [names]}``.
    """
    return inject.unthrottle(get_target(), selector)
