"""Network evidence probes: proof that a link fault sits on the service's path.

A partition of the ``service-broker`` link proves nothing when the service does not send
its broker calls over that link (a replica configured with the broker's direct address,
a sidecar that bypasses the proxy): the fault lands on an idle link and the service
"passes". ``link_traffic`` measures the bytes the fault proxy carried on the link —
Toxiproxy's own counters ``toxiproxy_proxy_{received,sent}_bytes_total{proxy}``, which
the lab's fault proxy exports under the same names — over a window, from the
target's Prometheus. It is an *evidence* probe: out of its tolerance, the verdict is
INCONCLUSIVE (the fault did not land), not PASS.

The lab's fault proxy counts bytes as they pass. Toxiproxy 2.5 itself (the lab with
``GAMEDAY_LAB_FAULT_PROXY=toxiproxy``, or a real Toxiproxy on Kubernetes) adds a
connection's bytes only when that connection ends: on a link whose connections stay
open (a service keeping its connections to the broker alive) a window before the fault
shows nothing. So the catalog measures from a little before the fault until after it
(``from_fault: true``): a partition ends the link's connections, and a blackholed
connection is given up by the service, so both proxies have counted the link's bytes by
then, and an idle link still shows none.

``packets_dropped`` is the evidence of packet loss: the packets the kernel's loss rules
on the link have dropped, read from the rules' own counters (``iptables -v -S`` in the
lab's namespaces), independent of the service. 0 means the loss hit nothing.
"""

import time

from gameday.clients.prometheus import Prometheus
from gameday.contract import PACKET_LOSS_FAULT, ConfigError, MeasurementError, window_selector
from gameday.engine.activity import activity
from gameday.faults.record import InjectionLog
from gameday.measurements.evidence import counter_increase, sample_step_s
from gameday.targets import get_target

__all__ = ["link_traffic", "packets_dropped"]

LINK_BYTES = ("toxiproxy_proxy_received_bytes_total", "toxiproxy_proxy_sent_bytes_total")
LINK_FAULTS = ("partition", "degrade", PACKET_LOSS_FAULT)


def _link(link: str) -> str:
    links = get_target().links()
    if link not in links:
        raise ConfigError(f"unknown link {link!r}: valid are {', '.join(links)}")
    return link


def _link_fault_at(link: str) -> float:
    """When gameday last injected a fault on ``link`` (unix seconds); MeasurementError
    when it recorded none."""
    entries = [e for e in InjectionLog(get_target().state_dir()).entries()
               if e.get("event") == "injected" and e.get("kind") in LINK_FAULTS
               and (e.get("params") or {}).get("link") == link]
    if not entries:
        raise MeasurementError(f"no fault on link {link!r} was recorded by gameday's "
                               "actions: call it after the fault, or with from_fault: false")
    return float(entries[-1]["at_unix"])


@activity
def link_traffic(link: str = "service-broker", window_s: float = 10,
                 from_fault: bool = False) -> float:
    """Bytes the fault proxy carried on ``link`` (both ways) over a window.

    Pair it with a tolerance such as ``{type: range, range: [1, 1000000000000000]}``: a
    link that carried nothing is not on the service's path, so a fault on it cannot take
    effect.

    Args:
        link: a link of the target (``service-broker`` by default).
        window_s: the trailing window, in seconds (2..3600); with ``from_fault``, how
            long before the fault the window begins.
        from_fault: measure from ``window_s`` before the latest fault gameday injected on
            the link until now (call it a few seconds into the fault, or after it; this
            works with Toxiproxy's own counters too), reading the counters' samples (a
            counter that appears in the window counts from 0); else ``increase()`` over
            the trailing window (call it just before injecting).

    Returns the byte count (a float; 0 when Prometheus holds the proxy's other series
    but no byte on the link). Raises when nothing of the proxy can be read (not scraped,
    Prometheus unreachable): no traffic measured is not "no traffic".
    """
    if not isinstance(from_fault, bool):
        raise ConfigError(f"from_fault={from_fault!r} is invalid: valid are true, false")
    name, window = _link(str(link)), window_selector(window_s)
    selector = f'proxy="{name}"'
    prometheus = get_target().prometheus()
    try:
        if from_fault:
            return _bytes_since(prometheus, selector, _link_fault_at(name) - float(window_s))
        promql = " + ".join(f"sum(increase({metric}{{{selector}}}[{window}]))"
                            for metric in LINK_BYTES)
        return prometheus.scalar(promql)
    except MeasurementError as missing:
        # The byte counters appear with the link's first byte. If Prometheus holds other
        # series of this proxy (its state gauges), the proxy is scraped and the link has
        # carried nothing; if not, nothing was measured, and that is not "no traffic".
        try:
            prometheus.vector(f"count({{{selector}}})")
        except MeasurementError:
            raise missing from None
        return 0.0


def _bytes_since(prometheus: Prometheus, selector: str, start: float) -> float:
    """The exact growth of the link's byte counters from ``start`` until now, summed
    over their series; MeasurementError when there is none."""
    end = time.time()
    names = "|".join(LINK_BYTES)
    series = prometheus.query_range(f'{{__name__=~"{names}",{selector}}}', start, end,
                                    sample_step_s(end - start))
    if not series:
        raise MeasurementError(f"no {' or '.join(LINK_BYTES)}{{{selector}}} in Prometheus "
                               f"since {start:.3f}")
    return float(sum(counter_increase(s.points, start) for s in series))


@activity
def packets_dropped(link: str = "service-broker") -> int:
    """How many packets the packet loss on ``link`` has dropped so far.

    Counted since the loss was put in place (``actions.network.drop_packets``), both ways,
    summed over every replica: the loss rules' own counters, read in the kernel.

    Args:
        link: the link the loss is on (``service-broker`` by default).

    Call it while the loss is on, after the traffic has had time to cross the link (the
    counters go with the rules at ``heal``); pair it with ``{type: range, range: [1,
    1000000000000]}``: 0 means no packet of the service crossed the loss, and the
    verdict is INCONCLUSIVE.

    Returns the count of dropped packets. Raises when no loss is in place on the link or
    the counters cannot be read (not measured is not "none dropped").
    """
    return get_target().dropped_packets(_link(str(link)))
