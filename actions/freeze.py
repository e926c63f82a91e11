"""Freeze a replica: the gray failure — alive, its sockets open, answering nothing.

On the lab the replica's cgroup freezer stops every one of its processes (``freezer.state``
FROZEN): the kernel still completes TCP handshakes into its listen backlog, so a load
balancer's connects succeed and only its timeouts notice. ``thaw`` (the idempotent undo,
use it as the rollback) lets it run again. Needs replica cgroups (root, cgroup v1
``freezer``); where the target cannot offer them the run reports the experiment as not
runnable here. Every freeze is recorded before it is injected, so ``gameday cleanup``
thaws it after a crash.
"""


from typing import Any

from gameday.engine.activity import activity
from gameday.faults import inject
from gameday.targets import get_target

__all__ = ["freeze", "thaw"]


@activity
def freeze(selector: str = "name=replica-2") -> dict[str, Any]:
    """Freeze the replicas matching ``selector``.

    Args:
        selector: which replicas (``name=replica-N``; a match-everything selector is
            refused).

    Returns ``{frozen: [names]}`` once the kernel says FROZEN. Undo with ``thaw``.
    """
    return inject.freeze(get_target(), selector)


@activity
def thaw(selector: str = "name=replica-2") -> dict[str, Any]:
    """Let the replicas matching ``selector`` run again.

    Args:
        selector: which replicas, as given to ``freeze``.

    Safe to call when they are not frozen: use it as the rollback. Returns
    ``{thawed: [names]}``.
    """
    return inject.thaw(get_target(), selector)
