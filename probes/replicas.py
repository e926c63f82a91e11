"""Replica probes."""


from gameday.targets import get_target

__all__ = ["in_rotation", "ready_count"]


def ready_count(selector: str = "app=broker-integration") -> int:
    """Number of replicas that run and answer their health check.

    Args:
        selector: which replicas (label selector; the lab also takes ``name=replica-N``).

    Returns an integer. Pair it with a range tolerance, e.g. ``[3, 3]``.
    """
    return get_target().ready_replicas(selector)


def in_rotation(selector: str = "app=broker-integration") -> int:
    """Number of replicas the load balancer currently sends traffic to.

    Args:
        selector: which replicas (label selector; the lab also takes ``name=replica-N``).

    On the lab, the replicas HAProxy marks UP after its health checks; on Kubernetes, the
    Ready pods behind the Service. Returns an integer. Pair it with a range tolerance,
    e.g. ``[2, 2]`` while one replica is cut off.
    """
    return get_target().in_rotation(selector)
