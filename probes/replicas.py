"""Replica probes."""


from gameday.contract import ConfigError
from gameday.engine.activity import activity
from gameday.targets import get_target

__all__ = ["enough_ready", "in_rotation", "ready_count"]


@activity
def ready_count(selector: str = "app=broker-integration") -> int:
    """Number of replicas that run and answer their health check.

    Args:
        selector: which replicas (label selector; the lab also takes ``name=replica-N``).

    Returns an integer. Pair it with a range tolerance, e.g. ``[3, 3]``.
    """
    return get_target().ready_replicas(selector)


@activity
def in_rotation(selector: str = "app=broker-integration") -> int:
    """Number of replicas the load balancer currently sends traffic to.

    Args:
        selector: which replicas (label selector; the lab also takes ``name=replica-N``).

    On the lab, the replicas HAProxy marks UP after its health checks; on Kubernetes, the
    Ready pods behind the Service. Returns an integer. Pair it with a range tolerance,
    e.g. ``[2, 2]`` while one replica is cut off.
    """
    return get_target().in_rotation(selector)


@activity
def enough_ready(minimum: int = 1, selector: str = "app=broker-integration") -> bool:
    """True when at least ``minimum`` replicas run and answer their health check.

    Args:
        minimum: the fewest ready replicas that is still safe (e.g. a safeguard's floor);
            0 means no floor (always true, but the replicas are still counted).
        selector: which replicas (label selector; the lab also takes ``name=replica-N``).

    Returns a boolean. Pair it with ``tolerance: true``; in a safeguard it ends the
    experiment once too few replicas are left (the bound comes from configuration, which
    Chaos Toolkit substitutes in arguments but not in a safeguard's tolerance).
    """
    if isinstance(minimum, bool) or not isinstance(minimum, int) or minimum < 0:
        raise ConfigError(f"minimum={minimum!r} is invalid: valid is a whole number >= 0")
    return get_target().ready_replicas(selector) >= minimum
