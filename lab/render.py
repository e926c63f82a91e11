"""Render the lab's configuration files from the templates in ``lab/conf`` (pure).

With the layout's ``netns`` option on, the replica programs run through
``ip netns exec`` in their namespaces and listen on every address there (their
namespace holds only its loopback and the lab's veth), HAProxy and Prometheus call them
on their namespace addresses, and the fault proxy's service → broker link listens on
the lab's gateway. The fault proxy then carries no ``lb-replica-N`` links: HAProxy
reaches the replicas directly, and a partition of that link is an iptables rule.

With a :class:`lab.cgroups.CgroupPlan`, each replica program starts through
:mod:`lab.cgexec`, which joins the replica's cgroups and then execs it (at every start
and restart by supervisord).
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from string import Template

import yaml

from gameday.contract import SERVICE_BROKER_LINK, MetricNaming, fill_placeholders, recording_rules
from lab import cgexec
from lab.cgroups import CgroupPlan
from lab.layout import HOST, LabLayout, LayoutError
from lab.sabotage import Sabotage

CONF_DIR = Path(__file__).parent / "conf"


@dataclass(frozen=True)
class Executables:
    """Paths of the programs the lab runs; ``toxiproxy``: Toxiproxy's server, run in
    place of ``lab.faultproxy`` when set (``GAMEDAY_LAB_FAULT_PROXY=toxiproxy``)."""

    python: str
    haproxy: str
    prometheus: str
    ip: str = "ip"
    toxiproxy: str | None = None


class RenderError(ValueError):
    """A template no longer has what rendering relies on; the message names it."""


NETNS_LISTEN_HOST = "0.0.0.0"


@dataclass(frozen=True)
class ServiceProgram:
    """How the lab runs, checks and scrapes each replica of the service under test.

    Built from the service's spec by ``gameday.targets.lab``. ``command`` and ``env``
    values may hold the placeholders ``{python}`` (the Python running the lab), ``{host}``,
    ``{port}``, ``{broker_url}``, ``{name}`` (replica-N) and ``{log_dir}``; ``naming``
    renames the contract's metrics in the recording rules; ``takes_sabotage`` is true
    only for the reference service, whose flags ``GAMEDAY_LAB_SABOTAGE`` uses;
    ``spec_path`` (the spec file) goes into the lab's record.
    """

    command: tuple[str, ...]
    workdir: Path
    env: Mapping[str, str] = field(default_factory=dict)
    stop_signal: str = "SIGTERM"
    stop_grace_s: float = 10.0
    health_path: str = "/health"
    ready_path: str = "/ready"
    metrics_path: str = "/metrics"
    naming: MetricNaming = field(default_factory=MetricNaming)
    takes_sabotage: bool = False
    spec_path: Path | None = None

    def argv(self, values: Mapping[str, str]) -> list[str]:
        """The command of one replica, every placeholder replaced (pure)."""
        return [str(fill_placeholders(part, values)) for part in self.command]

    def environment(self, values: Mapping[str, str]) -> dict[str, str]:
        """The extra environment of one replica, every placeholder replaced (pure)."""
        return {key: str(fill_placeholders(value, values)) for key, value in self.env.items()}


def _supervisor_text(text: str) -> str:
    """``text`` safe in a supervisord value (it expands ``%(name)s``)."""
    return text.replace("%", "%%")


def _quoted(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{_supervisor_text(escaped)}"'


def _environment_line(env: Mapping[str, str]) -> str:
    """supervisord's ``environment=`` value: quoted pairs, the admin token emptied."""
    pairs = {"GAMEDAY_ADMIN_TOKEN": "", **env}
    return ",".join(f"{key}={_quoted(value)}" for key, value in pairs.items())


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


def _broker_url(layout: LabLayout, sabotage: Sabotage) -> str:
    """The broker URL the replicas call: the fault proxy's link, unless sabotaged."""
    if not sabotage.bypasses_fault_proxy():
        return layout.broker_link_url()
    if layout.netns:
        raise LayoutError("GAMEDAY_LAB_SABOTAGE=fault-bypass needs GAMEDAY_LAB_NETNS=0: in "
                          "their namespaces the replicas cannot reach the broker directly")
    return layout.url("broker")


def _in_cgroups(argv: list[str], python: str, cgroups: CgroupPlan | None,
                name: str) -> list[str]:
    """``argv`` started through :mod:`lab.cgexec` into the replica's cgroups (if any)."""
    if cgroups is None:
        return argv
    dirs = [str(d) for d in cgroups.replica_dirs(name)]
    return [python, str(Path(cgexec.__file__)), *dirs, "--", *argv]


def _replica_program(template: Template, layout: LabLayout, exe: Executables, *,
                     program: ServiceProgram, name: str, sabotage: Sabotage,
                     cgroups: CgroupPlan | None) -> str:
    values = {"python": exe.python, "name": name, "port": str(layout.replica_port(name)),
              "host": NETNS_LISTEN_HOST if layout.netns else HOST,
              "broker_url": _broker_url(layout, sabotage), "log_dir": str(layout.log_dir)}
    argv = program.argv(values) + (sabotage.replica_argv() if program.takes_sabotage else [])
    if layout.netns:
        argv = [exe.ip, "netns", "exec", layout.netns_name(name), *argv]
    argv = _in_cgroups(argv, exe.python, cgroups, name)
    return template.substitute(
        name=name,
        command=_supervisor_text(shlex.join(argv)),
        workdir=_supervisor_text(str(program.workdir)),
        environment=_environment_line(program.environment(values)),
        stop_signal=program.stop_signal.removeprefix("SIG"),
        stop_grace_s=max(1, round(program.stop_grace_s)),
        state_dir=layout.state_dir,
    )


def _replica_programs(layout: LabLayout, exe: Executables, program: ServiceProgram,
                      sabotage: Sabotage, cgroups: CgroupPlan | None) -> str:
    if sabotage.replica_argv() and not program.takes_sabotage:
        raise RenderError("GAMEDAY_LAB_SABOTAGE kinds that change the replicas apply to the "
                          "reference service only; unset them to run another service")
    template = _template("replica.program.tmpl")
    return "\n".join(_replica_program(template, layout, exe, program=program, name=name,
                                      sabotage=sabotage, cgroups=cgroups)
                     for name in layout.replica_names())


def fault_proxy_command(layout: LabLayout, exe: Executables) -> str:
    """The fault proxy's command line: ``lab.faultproxy``, or Toxiproxy's server with
    its byte counters on (``-proxy-metrics``, which Prometheus scrapes), both on
    127.0.0.1 and creating the links of ``proxies.json``."""
    config = str(layout.state_dir / "proxies.json")
    port = str(layout.port("fault_proxy"))
    if exe.toxiproxy is not None:
        argv = [exe.toxiproxy, "-host", HOST, "-port", port, "-config", config,
                "-proxy-metrics"]
    else:
        argv = [exe.python, "-m", "lab.faultproxy", "--host", HOST, "--port", port,
                "--config", config]
    return _supervisor_text(shlex.join(argv))


def supervisord_conf(layout: LabLayout, exe: Executables, workdir: Path,
                     program: ServiceProgram, sabotage: Sabotage = NO_SABOTAGE, *,
                     cgroups: CgroupPlan | None = None) -> str:
    """supervisord's config: every lab process, restarted when it dies (each replica
    into its cgroups when ``cgroups`` is given)."""
    return _template("supervisord.conf.tmpl").substitute(
        state_dir=layout.state_dir,
        workdir=workdir,
        python=exe.python,
        haproxy=exe.haproxy,
        prometheus=exe.prometheus,
        broker_port=layout.port("broker"),
        broker_admin_port=layout.port("broker_admin"),
        fault_proxy_command=fault_proxy_command(layout, exe),
        prometheus_port=layout.port("prometheus"),
        replica_programs=_replica_programs(layout, exe, program, sabotage, cgroups),
        broker_extra_args=sabotage.broker_args(),
    )


def _server_address(layout: LabLayout, name: str) -> str:
    if layout.netns:
        return f"{layout.replica_service_host(name)}:{layout.replica_port(name)}"
    return f"{HOST}:{layout.lb_link_port(name)}"


def haproxy_cfg(layout: LabLayout, program: ServiceProgram,
                sabotage: Sabotage = NO_SABOTAGE) -> str:
    """HAProxy's config: the entry point, least connections over health-checked replicas,
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
        ready_path=program.ready_path,
        retries=sabotage.lb_retries(),
        balance=sabotage.lb_balance(),
    )


def prometheus_yml(layout: LabLayout, program: ServiceProgram) -> str:
    """Prometheus' config: 1 s scrapes of replicas, HAProxy, fault proxy, broker sim."""
    targets = "\n".join(
        f'      - targets: ["{layout.replica_host(name)}:{layout.replica_port(name)}"]\n'
        f"        labels: {{replica: {name}}}"
        for name in layout.replica_names()
    )
    return _template("prometheus.yml.tmpl").substitute(
        state_dir=layout.state_dir,
        replica_targets=targets,
        metrics_path=program.metrics_path,
        stats_port=layout.port("haproxy_stats"),
        fault_proxy_port=layout.port("fault_proxy"),
        broker_port=layout.port("broker"),
        runner_metrics_port=layout.port("runner_metrics"),
    )


def rules_yml(naming: MetricNaming | None = None) -> str:
    """Prometheus recording rules for the SLA, from the same PromQL the probes use (in
    the service's metric names)."""
    rules = recording_rules()
    for group in rules["groups"]:
        for rule in group["rules"]:
            rule["expr"] = (naming or MetricNaming()).promql(rule["expr"])
    header = "# Rendered by `gameday lab up` from gameday.contract — do not edit.\n"
    return header + yaml.safe_dump(rules, sort_keys=False, width=200)


def all_files(layout: LabLayout, exe: Executables, workdir: Path, program: ServiceProgram,
              sabotage: Sabotage = NO_SABOTAGE, *,
              cgroups: CgroupPlan | None = None) -> dict[str, str]:
    """Every rendered file, by its name under the state directory."""
    return {
        "supervisord.conf": supervisord_conf(layout, exe, workdir, program, sabotage,
                                             cgroups=cgroups),
        "haproxy.cfg": haproxy_cfg(layout, program, sabotage),
        "prometheus.yml": prometheus_yml(layout, program),
        "rules.yml": rules_yml(program.naming),
        "proxies.json": proxies_json(layout),
    }
