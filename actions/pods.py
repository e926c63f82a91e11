"""Kill replicas of the service ("pods"); the platform brings them back by itself.

On the lab a pod is a replica process, killed with SIGKILL and restarted by supervisord
like a ReplicaSet would; on Kubernetes, pods are terminated through
chaostoolkit-kubernetes.
"""


from gameday.engine.activity import activity
from gameday.faults import inject
from gameday.targets import get_target

__all__ = ["kill"]


@activity
def kill(selector: str = "app=broker-integration", qty: float = 1,
         mode: str = "fixed") -> list[str]:
    """Kill replicas of the service.

    Args:
        selector: which pods, a label selector (``name=replica-N`` is replica N: on
            Kubernetes, the N-th current pod by name at the call);
            an empty or match-everything selector is refused.
        qty: how many (``mode`` fixed: a whole number) or what share (``mode``
            percentage: 0 < qty <= 100, rounded down, at least one).
        mode: ``fixed`` or ``percentage``.

    Returns the names of the killed replicas. Nothing to undo: pair it with a probe such
    as ``probes.replicas.ready_count`` to check they come back.
    """
    return inject.kill(get_target(), selector, qty, mode)
