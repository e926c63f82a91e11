"""Prometheus metrics of the fault proxy, in a registry owned by one app.

Byte counters use Toxiproxy's names and labels (so dashboards work with either):
`toxiproxy_proxy_received_bytes_total` / `toxiproxy_proxy_sent_bytes_total`
{direction, proxy, listener, upstream}. State gauges are read at scrape time:
`faultproxy_active_toxics{proxy}`, `faultproxy_proxy_enabled{proxy}`,
`faultproxy_open_connections{proxy}`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric

from lab.faultproxy.link import ByteCounts, LinkMeters
from lab.faultproxy.toxics import STREAMS

__all__ = ["CONTENT_TYPE", "Metrics", "ProxyState"]

CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
_LINK_LABELS = ("direction", "proxy", "listener", "upstream")


@dataclass(frozen=True)
class ProxyState:
    """What the state gauges report about one proxy."""

    name: str
    enabled: bool
    toxics: int
    connections: int


class _StateCollector:
    """Gauges computed from the live proxies at each scrape."""

    def __init__(self, states: Callable[[], Iterable[ProxyState]]) -> None:
        self._states = states

    def describe(self) -> list[Metric]:
        return list(self._families())

    def collect(self) -> Iterator[Metric]:
        families = self._families()
        for state in self._states():
            families[0].add_metric([state.name], state.toxics)
            families[1].add_metric([state.name], 1.0 if state.enabled else 0.0)
            families[2].add_metric([state.name], state.connections)
        yield from families

    @staticmethod
    def _families() -> tuple[GaugeMetricFamily, GaugeMetricFamily, GaugeMetricFamily]:
        return (
            GaugeMetricFamily(
                "faultproxy_active_toxics", "Toxics set on the proxy.", labels=["proxy"]
            ),
            GaugeMetricFamily(
                "faultproxy_proxy_enabled", "1 when the proxy listens.", labels=["proxy"]
            ),
            GaugeMetricFamily(
                "faultproxy_open_connections", "Client connections open.", labels=["proxy"]
            ),
        )


class _ByteCollector:
    """Toxiproxy's byte counters, read from the links' plain counts at scrape time."""

    def __init__(self, counts: dict[tuple[str, ...], ByteCounts]) -> None:
        self._counts = counts

    def describe(self) -> list[Metric]:
        return list(self._families())

    def collect(self) -> Iterator[Metric]:
        received, sent = self._families()
        for labels, counts in self._counts.items():
            received.add_metric(labels, counts.received)
            sent.add_metric(labels, counts.sent)
        yield from (received, sent)

    @staticmethod
    def _families() -> tuple[CounterMetricFamily, CounterMetricFamily]:
        return (
            CounterMetricFamily(
                "toxiproxy_proxy_received_bytes",
                "Bytes a proxy read, by direction of the link.",
                labels=_LINK_LABELS,
            ),
            CounterMetricFamily(
                "toxiproxy_proxy_sent_bytes",
                "Bytes a proxy wrote, by direction of the link.",
                labels=_LINK_LABELS,
            ),
        )


class Metrics:
    """The registry, the byte counters, and the state gauges once `watch` is called."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._bytes: dict[tuple[str, ...], ByteCounts] = {}
        self.registry.register(_ByteCollector(self._bytes))

    def link_meters(self, proxy: str, listener: str, upstream: str) -> LinkMeters:
        """Byte counts for a new link of `proxy` (shared by its links with the same labels)."""
        return {
            s: self._bytes.setdefault((s, proxy, listener, upstream), ByteCounts()) for s in STREAMS
        }

    def watch(self, states: Callable[[], Iterable[ProxyState]]) -> None:
        """Report the state gauges from `states()` at each scrape."""
        self.registry.register(_StateCollector(states))

    def render(self) -> bytes:
        """The Prometheus text exposition of everything."""
        return generate_latest(self.registry)
