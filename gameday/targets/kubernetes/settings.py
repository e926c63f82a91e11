"""Settings of the kubernetes target, read from the environment.

| variable | meaning | default |
|---|---|---|
| ``GAMEDAY_K8S_NAMESPACE`` | namespace of the service | ``broker-integration`` |
| ``GAMEDAY_K8S_SELECTOR`` | the service's pods (``key=value[,...]``) | ``app=broker-integration`` |
| ``GAMEDAY_K8S_TIMEOUT_S`` | timeout of each Kubernetes API call, seconds | ``10`` |
| ``GAMEDAY_K8S_TRAFFIC`` | ``none``: the pods serve nothing (kwok's fake nodes) | ``flows`` |
| ``GAMEDAY_PROMETHEUS_URL`` | the cluster's Prometheus | required |
| ``GAMEDAY_TOXIPROXY_URL`` | API of the Toxiproxy service on the broker link | required |
| ``GAMEDAY_ENTRY_URL`` | where clients reach the service | required |
| ``GAMEDAY_BROKER_URL`` | the broker API (``GET /fills``) | required |
| ``GAMEDAY_BROKER_ADMIN_URL`` | the broker simulator's admin API, if one is deployed | none |
| ``GAMEDAY_STATE_DIR`` | local state (record of injected faults) | ``.gameday`` |
| ``GAMEDAY_SERVICE`` | the service spec (its metric and label names, its order) | none |

With ``GAMEDAY_K8S_TRAFFIC=none`` only what the control plane shows is judged (see
``gameday.engine.controlplane``) and no load is started; the URLs are still required
(Toxiproxy's is read by the leftovers check), the others are not called.

``GAMEDAY_SERVICE`` names a service spec (:mod:`gameday.service_spec`). Its ``metrics:``
and ``labels:`` (contract name -> the service's name) are used in every Prometheus query
gameday sends, and each answer's labels are read back in the contract's names; its
``order:`` says how the load generator places an order. Without it the service must use
the contract's names and ``POST /orders`` (docs/contract.md). It is read with the common
settings (:mod:`gameday.settings`) and handed to the target by
:func:`gameday.targets.get_target`; the spec must be valid as a whole (the lab needs its
``command``), though on Kubernetes only ``metrics:``, ``labels:`` and ``order:`` are used.

Kubernetes credentials are found as chaostoolkit-kubernetes finds them
(``chaosk8s.create_k8s_api_client``): the kubeconfig at ``KUBECONFIG`` (default
``~/.kube/config``, context ``KUBERNETES_CONTEXT``); else in-cluster when
``CHAOSTOOLKIT_IN_POD=true``; else ``KUBERNETES_HOST`` with ``KUBERNETES_API_KEY``, a
client certificate or a username and password.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from chaosk8s import get_config_path, has_local_config_file

from gameday.contract import ConfigError
from gameday.targets.kubernetes.objects import match_labels

__all__ = ["KubernetesSettings", "credentials_source"]

TRAFFIC_VALUES = ("flows", "none")
REQUIRED_URLS = ("GAMEDAY_PROMETHEUS_URL", "GAMEDAY_TOXIPROXY_URL", "GAMEDAY_ENTRY_URL",
                 "GAMEDAY_BROKER_URL")


@dataclass(frozen=True)
class KubernetesSettings:
    """Where the service, its links and its monitoring are; see the module docs."""

    prometheus_url: str
    toxiproxy_url: str
    entry_url: str
    broker_url: str
    namespace: str = "broker-integration"
    selector: str = "app=broker-integration"
    broker_admin_url: str | None = None
    state_dir: Path = Path(".gameday")
    api_timeout_s: float = 10.0
    traffic_flows: bool = True

    @classmethod
    def from_env(cls) -> KubernetesSettings:
        """Read the ``GAMEDAY_*`` variables; ConfigError names every missing or bad one."""
        env = os.environ
        missing = [name for name in REQUIRED_URLS if not env.get(name, "").strip()]
        if missing:
            raise ConfigError(f"the kubernetes target needs {', '.join(missing)} "
                              "(base URLs, e.g. http://prometheus.monitoring:9090)")
        admin = env.get("GAMEDAY_BROKER_ADMIN_URL", "").strip()
        settings = cls(
            prometheus_url=_url("GAMEDAY_PROMETHEUS_URL", env["GAMEDAY_PROMETHEUS_URL"]),
            toxiproxy_url=_url("GAMEDAY_TOXIPROXY_URL", env["GAMEDAY_TOXIPROXY_URL"]),
            entry_url=_url("GAMEDAY_ENTRY_URL", env["GAMEDAY_ENTRY_URL"]),
            broker_url=_url("GAMEDAY_BROKER_URL", env["GAMEDAY_BROKER_URL"]),
            namespace=env.get("GAMEDAY_K8S_NAMESPACE", "").strip() or cls.namespace,
            selector=env.get("GAMEDAY_K8S_SELECTOR", "").strip() or cls.selector,
            broker_admin_url=_url("GAMEDAY_BROKER_ADMIN_URL", admin) if admin else None,
            state_dir=Path(env.get("GAMEDAY_STATE_DIR", "").strip() or cls.state_dir),
            api_timeout_s=_seconds(env.get("GAMEDAY_K8S_TIMEOUT_S", "").strip() or "10"),
            traffic_flows=_traffic(env.get("GAMEDAY_K8S_TRAFFIC", "").strip() or "flows"),
        )
        match_labels(settings.selector)
        return settings


def _url(name: str, value: str) -> str:
    value = value.strip()
    if not value.startswith(("http://", "https://")):
        raise ConfigError(f"{name}={value!r} is not a URL: valid is http://HOST:PORT[/path]")
    return value.rstrip("/")


def _seconds(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        seconds = 0.0
    if not 0 < seconds <= 600:
        raise ConfigError(f"GAMEDAY_K8S_TIMEOUT_S={value!r} is invalid: valid is 0 < s <= 600")
    return seconds


def _traffic(value: str) -> bool:
    if value not in TRAFFIC_VALUES:
        raise ConfigError(f"GAMEDAY_K8S_TRAFFIC={value!r} is invalid: valid is flows (the "
                          "default) or none (the pods serve nothing, e.g. kwok's fake nodes)")
    return value == "flows"


def credentials_source() -> str:
    """Where chaostoolkit-kubernetes will take the API server and credentials from.

    Raises ConfigError when it has none: it would otherwise call http://localhost.
    """
    config_file = get_config_path()
    if has_local_config_file(config_file):
        return f"kubeconfig {config_file}"
    if os.environ.get("CHAOSTOOLKIT_IN_POD") == "true":
        return "in-cluster service account"
    if os.environ.get("KUBERNETES_HOST"):
        return f"KUBERNETES_HOST={os.environ['KUBERNETES_HOST']}"
    raise ConfigError(f"no Kubernetes credentials: no kubeconfig at {config_file}, "
                      "CHAOSTOOLKIT_IN_POD is not true and KUBERNETES_HOST is unset")
