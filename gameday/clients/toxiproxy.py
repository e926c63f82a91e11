"""A small client for the Toxiproxy HTTP API (the lab's fault proxy or a real Toxiproxy).

It sends the admin token (``GAMEDAY_ADMIN_TOKEN``, see :mod:`gameday.clients.http`) with every
call; a 401 answer is an InjectionError saying the token is missing or wrong.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gameday.clients.http import Response, admin_call
from gameday.contract import ConfigError, InjectionError

TOXIC_TYPES = ("latency", "bandwidth", "slow_close", "timeout", "reset_peer", "slicer",
               "limit_data")
STREAMS = ("downstream", "upstream")


@dataclass(frozen=True)
class Toxiproxy:
    """The Toxiproxy API at ``url``; every call times out after ``timeout_s``."""

    url: str
    timeout_s: float = 5.0

    def _call(self, method: str, path: str, body: Any = None) -> Response:
        return admin_call("fault proxy (Toxiproxy API)", method, self.url + path, body,
                          timeout_s=self.timeout_s)

    def proxies(self) -> dict[str, Any]:
        """Every proxy by name, with ``enabled`` and ``toxics``."""
        response = self._call("GET", "/proxies")
        if response.status != 200 or not isinstance(response.body, dict):
            raise InjectionError(f"fault proxy answered {response.status}: {response.body}")
        return response.body

    def _known(self, link: str) -> None:
        names = sorted(self.proxies())
        if link not in names:
            raise ConfigError(f"unknown link {link!r}: valid links are {', '.join(names)}")

    def set_enabled(self, link: str, enabled: bool) -> None:
        """Enable (up) or disable (down: refuse and close connections) a link."""
        response = self._call("POST", f"/proxies/{link}", {"enabled": enabled})
        if response.status == 404:
            self._known(link)
        if response.status >= 300:
            raise InjectionError(f"fault proxy refused to change {link!r}: {response.body}")

    def add_toxic(self, link: str, toxic: dict[str, Any]) -> dict[str, Any]:
        """Add a toxic to a link; ConfigError when the fault proxy rejects its fields."""
        response = self._call("POST", f"/proxies/{link}/toxics", toxic)
        if response.status == 404:
            self._known(link)
        if response.status in (400, 409):
            raise ConfigError(f"toxic {toxic} refused on {link!r}: {response.body}")
        if response.status >= 300:
            raise InjectionError(f"fault proxy answered {response.status}: {response.body}")
        return dict(response.body)

    def remove_toxics(self, link: str) -> list[str]:
        """Remove every toxic of a link; returns their names (none when the link is unknown)."""
        proxy = self.proxies().get(link)
        names = [t["name"] for t in (proxy or {}).get("toxics") or []]
        for name in names:
            response = self._call("DELETE", f"/proxies/{link}/toxics/{name}")
            if response.status not in (204, 404):
                raise InjectionError(f"could not remove toxic {name} from {link}: {response.body}")
        return names


def proxy_problems(proxies: Any) -> list[str]:
    """Disabled proxies and toxics of a ``GET /proxies`` answer, in words (pure)."""
    if not isinstance(proxies, dict):
        return [f"fault proxy answered {proxies!r} instead of its proxies"]
    problems = []
    for name, proxy in sorted(proxies.items()):
        if not proxy.get("enabled", False):
            problems.append(f"link {name} is down")
        problems += [f"toxic {t.get('name')} on link {name}" for t in proxy.get("toxics") or []]
    return problems
