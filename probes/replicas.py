"""Replica probes."""


from gameday.targets import get_target

__all__ = ["ready_count"]


def ready_count(selector: str = "app=broker-integration") -> int:
    """Number of replicas that run and answer their health check.

    Args:
        selector: which replicas (label selector; the lab also takes ``name=replica-N``).

    Returns an integer. Pair it with a range tolerance, e.g. ``[3, 3]``.
    """
    return get_target().ready_replicas(selector)
