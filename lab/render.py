"""Render the lab's configuration files from the templates in ``lab/conf`` (pure).

With the layout's ``netns`` option on, the replica programs run through
``ip netns exec`` in their namespaces and listen on every address there (their
namespace holds only its loopback and the lab's veth), HAProxy and Prometheus call them
on their namespace addresses, and the fault proxy's service → broker link listens on
the lab's gateway. The fault proxy then carries no ``lb-replica-N`` links: HAProxy
reaches the replicas directly, and a partition of that link is an iptables rule.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from string import Template

import yaml

from gameday.contract import SERVICE_BROKER_LINK, recording_rules
from lab.layout import HOST, LabLayout
from lab.sabotage import Sabotage

CONF_DIR = Path(__file__).parent / "conf"


@dataclass(frozen=True)
class Executables:
    """Paths of the programs the lab runs."""

    python: str
    haproxy: str
    prometheus: str
    ip: str = "ip"


class RenderError(ValueError):
    """A template no longer has what rendering relies on; the message names it."""


NETNS_LISTEN_HOST = "0.0.0.0"


NO_SABOTAGE = Sabotage()


def _template(name: str) -> Template:
    return Template((CONF_DIR / name).read_text(encoding="utf-8"))


def _link(name: str, listen_port: int, upstream_port: int,
          listen_host: str = HOST) -> dict[str, object]:
    return {"name": name, "listen": f"{listen_host}:{listen_port}",
            "upstream": f"{HOST}:{upstream_port}", "enabled": True}


def proxies_json(layout: LabLayout) -> str:
    """The fault proxy's start-up config: the service → broker link, and one link from
    the load balancer to each replica (``lb-replica-N``; none in netns mode)."""
    links = [_link(SERVICE_BROKER_LINK, layout.port("service_broker_link"), layout.port("broker"),
                   layout.broker_link_host())]
    links += [] if layout.netns else [
        _link(layout.lb_link_name(name), layout.lb_link_port(name), layout.replica_port(name))
        for name in layout.replica_names()
    ]
    return json.dumps(links, indent=2) + "\n"


def _listen_in_namespace(block: str) -> str:
    """The replica's program block, listening on every address of its namespace."""
    old = f"--host {HOST} "
    if block.count(old) != 1:
        raise RenderError(f"lab/conf/replica.program.tmpl must pass `{old.strip()}` to the "
                          f"replica exactly once for GAMEDAY_LAB_NETNS to move it")
    return block.replace(old, f"--host {NETNS_LISTEN_HOST} ")


def _replica_program(template: Template, layout: LabLayout, exe: Executables,
                     name: str, sabotage: Sabotage = NO_SABOTAGE) -> str:
    python = exe.python
    if layout.netns:
        python = f"{exe.ip} netns exec {layout.netns_name(name)} {exe.python}"
    block = template.substitute(
        name=name,
        python=python,
        port=layout.replica_port(name),
        state_dir=layout.state_dir,
        broker_link_url=layout.broker_link_url() + sabotage.replica_args(),
    )
    return _listen_in_namespace(block) if layout.netns else block


def _replica_programs(layout: LabLayout, exe: Executables, sabotage: Sabotage) -> str:
    template = _template("replica.program.tmpl")
    blocks = [_replica_program(template, layout, exe, name, sabotage)
              for name in layout.replica_names()]
    return "\n".join(blocks)


def supervisord_conf(layout: LabLayout, exe: Executables, workdir: Path,
                     sabotage: Sabotage = NO_SABOTAGE) -> str:
    """supervisord's config: every lab process, restarted when it dies."""
    return _template("supervisord.conf.tmpl").substitute(
        state_dir=layout.state_dir,
        workdir=workdir,
        python=exe.python,
        haproxy=exe.haproxy,
        prometheus=exe.prometheus,
        broker_port=layout.port("broker"),
        broker_admin_port=layout.port("broker_admin"),
        fault_proxy_port=layout.port("fault_proxy"),
        prometheus_port=layout.port("prometheus"),
        replica_programs=_replica_programs(layout, exe, sabotage),
        broker_extra_args=sabotage.broker_args(),
    )


def _server_address(layout: LabLayout, name: str) -> str:
    if layout.netns:
        return f"{layout.replica_service_host(name)}:{layout.replica_port(name)}"
    return f"{HOST}:{layout.lb_link_port(name)}"


def haproxy_cfg(layout: LabLayout, sabotage: Sabotage = NO_SABOTAGE) -> str:
    """HAProxy's config: the entry point, round robin over health-checked replicas,
    each reached through its ``lb-replica-N`` link of the fault proxy (in netns mode:
    directly, on its service address)."""
    servers = "\n".join(
        f"    server {name} {_server_address(layout, name)}{sabotage.server_check()}"
        for name in layout.replica_names()
    )
    return _template("haproxy.cfg.tmpl").substitute(
        entry_port=layout.port("entry"),
        stats_port=layout.port("haproxy_stats"),
        servers=servers,
        retries=sabotage.lb_retries(),
    )


def prometheus_yml(layout: LabLayout) -> str:
    """Prometheus' config: 1 s scrapes of replicas, HAProxy, fault proxy, broker sim."""
    targets = "\n".join(
        f'      - targets: ["{layout.replica_host(name)}:{layout.replica_port(name)}"]\n'
        f"        labels: {{replica: {name}}}"
        for name in layout.replica_names()
    )
    return _template("prometheus.yml.tmpl").substitute(
        state_dir=layout.state_dir,
        replica_targets=targets,
        stats_port=layout.port("haproxy_stats"),
        fault_proxy_port=layout.port("fault_proxy"),
        broker_port=layout.port("broker"),
    )


def rules_yml() -> str:
    """Prometheus recording rules for the SLA, from the same PromQL the probes use."""
    header = "# Rendered by `gameday lab up` from gameday.measurements.sla — do not edit.\n"
    return header + yaml.safe_dump(recording_rules(), sort_keys=False, width=200)


def all_files(layout: LabLayout, exe: Executables, workdir: Path,
              sabotage: Sabotage = NO_SABOTAGE) -> dict[str, str]:
    """Every rendered file, by its name under the state directory."""
    return {
        "supervisord.conf": supervisord_conf(layout, exe, workdir, sabotage),
        "haproxy.cfg": haproxy_cfg(layout, sabotage),
        "prometheus.yml": prometheus_yml(layout),
        "rules.yml": rules_yml(),
        "proxies.json": proxies_json(layout),
    }
