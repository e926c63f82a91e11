"""Replica probes."""


from gameday.contract import KILL_FAULT, ConfigError, MeasurementError
from gameday.engine.activity import activity
from gameday.faults.record import InjectionLog
from gameday.targets import get_target

__all__ = ["enough_ready", "in_rotation", "ready_count", "replaced"]

KILLS_MAX = 100


@activity
def ready_count(selector: str = "app=broker-integration") -> int:
    """Number of replicas that run and answer their health check.

    Args:
        selector: which replicas (label selector; ``name=replica-N`` is replica N: on
            Kubernetes, the N-th current pod by name).

    Returns an integer. Pair it with a range tolerance, e.g. ``[3, 3]``.
    """
    return get_target().ready_replicas(selector)


@activity
def in_rotation(selector: str = "app=broker-integration") -> int:
    """Number of replicas the load balancer currently sends traffic to.

    Args:
        selector: which replicas (label selector; ``name=replica-N`` is replica N: on
            Kubernetes, the N-th current pod by name).

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
        selector: which replicas (label selector; ``name=replica-N`` is replica N: on
            Kubernetes, the N-th current pod by name).

    Returns a boolean. Pair it with ``tolerance: true``; in a safeguard it ends the
    experiment once too few replicas are left (the bound comes from configuration, which
    Chaos Toolkit substitutes in arguments but not in a safeguard's tolerance).
    """
    if isinstance(minimum, bool) or not isinstance(minimum, int) or minimum < 0:
        raise ConfigError(f"minimum={minimum!r} is invalid: valid is a whole number >= 0")
    return get_target().ready_replicas(selector) >= minimum


@activity
def replaced(kills: int = 1) -> int:
    """How many replicas killed by the last ``kills`` kill actions no longer run as before.

    Evidence that pod kills landed: none of a killed replica's processes (nor the one
    that served its port), or not the same pod and restart count, still runs.

    Args:
        kills: how many of gameday's most recent kill actions to check (each kill records
            what its replicas ran as just before it), 1..100.

    Read from the kernel (lab: ``/proc``) or the API server (Kubernetes), not from the
    service. Returns an integer. An *evidence* probe: pair it with ``{type: range,
    range: [N, N]}``, N the replicas killed; out of it, the kill did not land (a replica
    survived it) and the verdict is INCONCLUSIVE. Whether the replicas came back is
    ``ready_count``'s to say.
    Raises when fewer kills were recorded, or a kill recorded nothing it could check.
    """
    if isinstance(kills, bool) or not isinstance(kills, int) or not 1 <= kills <= KILLS_MAX:
        raise ConfigError(f"kills={kills!r} is invalid: valid is a whole number 1..{KILLS_MAX}")
    target = get_target()
    recorded = [e for e in InjectionLog(target.state_dir()).entries()
                if e.get("event") == "injected" and e.get("kind") == KILL_FAULT]
    if len(recorded) < kills:
        raise MeasurementError(f"{kills} kill(s) to check but gameday recorded {len(recorded)} "
                               "(kill with actions.pods.kill first)")
    killed: list[list[str]] = []
    for entry in recorded[-kills:]:
        instances = (entry.get("params") or {}).get("instances")
        if not isinstance(instances, dict):
            raise MeasurementError("a kill was recorded without what its replicas ran as "
                                   "(recorded by an older gameday?): cannot tell it landed")
        killed.extend([str(i) for i in ran] for ran in instances.values())
    survivors = set(target.instances_running([i for ran in killed for i in ran]))
    return sum(1 for ran in killed if ran and not survivors & set(ran))
