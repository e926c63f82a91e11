"""Network evidence probes: proof that a link fault sits on the service's path.

A partition of the ``service-broker`` link proves nothing when the service does not send
its broker calls over that link (a replica configured with the broker's direct address,
a sidecar that bypasses the proxy): the fault lands on an idle link and the service
"passes". ``link_traffic`` measures the bytes the fault proxy carried on the link —
Toxiproxy's own counters ``toxiproxy_proxy_{received,sent}_bytes_total{proxy}``, which
the lab's fault proxy exports under the same names — over a trailing window, from the
target's Prometheus. It is an *evidence* probe: out of its tolerance, the verdict is
INCONCLUSIVE (the fault did not land), not PASS.

The lab's fault proxy counts bytes as they pass. Toxiproxy 2.5 itself (the lab with
``GAMEDAY_LAB_FAULT_PROXY=toxiproxy``, or a real Toxiproxy on Kubernetes) adds a
connection's bytes only when that connection ends: on a link whose connections stay
open (a service keeping its connections to the broker alive) it shows no traffic, and
an experiment relying on this evidence is then INCONCLUSIVE although the fault lands.
"""

from gameday.contract import ConfigError, MeasurementError, window_selector
from gameday.engine.activity import activity
from gameday.targets import get_target

__all__ = ["link_traffic"]

LINK_BYTES = ("toxiproxy_proxy_received_bytes_total", "toxiproxy_proxy_sent_bytes_total")


def _link(link: str) -> str:
    links = get_target().links()
    if link not in links:
        raise ConfigError(f"unknown link {link!r}: valid are {', '.join(links)}")
    return link


@activity
def link_traffic(link: str = "service-broker", window_s: float = 10) -> float:
    """Bytes the fault proxy carried on ``link`` (both ways) over the trailing window.

    Call it just before injecting a fault on the link; pair it with a tolerance such as
    ``{type: range, range: [1, 1000000000000000]}``: a link that carried nothing is not
    on the service's path, so a fault on it cannot take effect.

    Args:
        link: a link of the target (``service-broker`` by default).
        window_s: the window, in seconds (2..3600).

    Returns the byte count (a float; 0 when Prometheus holds the proxy's other series
    but no byte on the link). Raises when nothing of the proxy can be read (not scraped,
    Prometheus unreachable): no traffic measured is not "no traffic".
    """
    name, window = _link(str(link)), window_selector(window_s)
    selector = f'proxy="{name}"'
    promql = " + ".join(f"sum(increase({metric}{{{selector}}}[{window}]))"
                        for metric in LINK_BYTES)
    prometheus = get_target().prometheus()
    try:
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
