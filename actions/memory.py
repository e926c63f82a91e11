"""Run a replica out of memory: a memory limit it then exceeds, ending in an OOM kill.

On the lab the replica's ``memory`` cgroup gets ``memory.limit_in_bytes`` = what it uses
now + ``headroom_mib``, and a leak charged to that cgroup grows by ``leak_mib_per_s``
(pages of a tmpfs file, which cannot be reclaimed without swap). The kernel first
reclaims what it can — the replica slows down — and then its OOM killer ends the replica
(the largest process in the cgroup), as it ends a container over its limit; the process
manager restarts it, in the same cgroup, under the same limit. The leak stops at the
first OOM kill (its memory is freed: a leak dies with its process) or after 60 s.
``unlimit`` (the idempotent undo, use it as the rollback) ends the leak and lifts the
limit. Needs replica cgroups (root, cgroup v1 ``memory``); where the target cannot offer
them the run reports the experiment as not runnable here. Every limit is recorded before
it is set, with each replica's OOM-kill count from before (the baseline of
``probes.cgroups.oom_killed``), so ``gameday cleanup`` lifts it after a crash.
"""


from typing import Any

from gameday.engine.activity import activity
from gameday.faults import inject
from gameday.targets import get_target

__all__ = ["limit", "unlimit"]


@activity
def limit(selector: str = "name=replica-2", headroom_mib: int = 48,
          leak_mib_per_s: int = 32) -> dict[str, Any]:
    """Limit the memory of the replicas matching ``selector`` and leak into it until the
    kernel OOM-kills them.

    Args:
        selector: which replicas (``name=replica-N``; a match-everything selector is
            refused).
        headroom_mib: MiB the limit leaves above what each uses now, 1..4096.
        leak_mib_per_s: how fast the leak grows, MiB per second, 1..1024.

    Returns ``{limited: [names], headroom_mib, leak_mib_per_s}``. Undo with ``unlimit``.
    """
    return inject.limit_memory(get_target(), selector, headroom_mib, leak_mib_per_s)


@activity
def unlimit(selector: str = "name=replica-2") -> dict[str, Any]:
    """End the leak and lift the memory limit of the replicas matching ``selector``.

    Args:
        selector: which replicas, as given to ``limit``.

    Safe to call when they are not limited: use it as the rollback. Returns
    ``{unlimited: [names]}``.
    """
    return inject.unlimit_memory(get_target(), selector)
