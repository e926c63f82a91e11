"""Network faults on named links: cut a link, degrade it, and heal it (the idempotent undo).

Links are named after what they join: ``service-broker`` (every replica to the broker)
and ``lb-replica-N`` (the load balancer to replica N). On the lab a link is a proxy of
the fault proxy (Toxiproxy API); on Kubernetes a partition is a NetworkPolicy and the
broker link runs through a Toxiproxy service. Packet loss (``drop_packets``) needs a lab
whose replicas run in network namespaces (``GAMEDAY_LAB_NETNS=1``): elsewhere the run
reports the experiment as not runnable here. Every fault is recorded before it is
injected, so ``gameday cleanup`` can undo it after a crash.
"""


from typing import Any

from gameday.engine.activity import activity
from gameday.faults import inject
from gameday.targets import get_target

__all__ = ["degrade", "drop_packets", "heal", "partition"]


@activity
def partition(link: str = "service-broker") -> dict[str, Any]:
    """Take a link down: new connections are refused and open ones closed.

    Args:
        link: the link's name (``service-broker``, ``lb-replica-N``).

    Undo with ``heal(link)``; use that as the rollback. Returns ``{link, state}``.
    """
    return inject.partition(get_target(), link)


@activity
def degrade(link: str = "service-broker", toxic: str = "latency",
            stream: str = "downstream", toxicity: float = 1.0,
            attributes: dict[str, Any] | None = None) -> dict[str, Any]:
    """Degrade a link with a Toxiproxy toxic.

    Args:
        link: the link's name.
        toxic: latency (attributes ``latency``, ``jitter`` in ms), bandwidth (``rate`` in
            KB/s), slow_close (``delay`` ms), timeout (``timeout`` ms; 0 = hold and drop),
            reset_peer (``timeout`` ms), slicer (``average_size``, ``size_variation``
            bytes, ``delay`` µs), limit_data (``bytes``).
        stream: ``downstream`` (towards the caller) or ``upstream``.
        toxicity: probability (0..1) that a connection is affected.
        attributes: the toxic's attributes, as above.

    Undo with ``heal(link)``. Returns the toxic as the fault proxy created it.
    """
    return inject.degrade(get_target(), link, toxic=toxic, stream=stream, toxicity=toxicity,
                          attributes=attributes or {})


@activity
def drop_packets(link: str = "service-broker", loss_percent: float = 2.0) -> dict[str, Any]:
    """Drop a share of a link's packets at random, either way: a lossy network.

    On the lab (``GAMEDAY_LAB_NETNS=1``) each packet to or from the link, in every
    namespace it crosses, is dropped independently with probability ``loss_percent`` /
    100 by an iptables ``statistic`` rule; TCP retransmits it after its retransmission
    timeout (at least 200 ms, doubling on each loss of the same packet), so a few percent
    of loss means long tails, not errors, for a client that waits long enough.

    Args:
        link: the link's name (``service-broker``, ``lb-replica-N``).
        loss_percent: the share of packets dropped, 0 < loss_percent <= 100 (e.g. 2).

    Undo with ``heal(link)``; use that as the rollback. Returns ``{link, loss_percent}``.
    Evidence that it landed: ``probes.network.packets_dropped``.
    """
    return inject.drop_packets(get_target(), link, loss_percent)


@activity
def heal(link: str = "service-broker") -> dict[str, Any]:
    """Bring a link back up and remove every toxic and packet loss on it.

    Args:
        link: the link's name.

    Safe to call when the link is already healthy: use it as the rollback. Returns
    ``{link, state, toxics_removed}``.
    """
    return inject.heal(get_target(), link)
