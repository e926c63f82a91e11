"""The lab target: the local processes started by ``gameday lab up``.

Kill a pod = SIGKILL every process of a replica (its process group and its cgroup, as a
container's; supervisord restarts it, like a ReplicaSet);
partition a link = disable its proxy in the fault proxy, or, when the lab runs its
replicas in network namespaces (``GAMEDAY_LAB_NETNS=1``, see :mod:`lab.netns`), iptables
DROP rules in them; fail the broker = the broker simulator's admin API; freeze or
CPU-throttle a replica = its cgroups (see :mod:`lab.cgroups`), where the machine offers
them.

Both admin APIs are called with the admin token when ``GAMEDAY_ADMIN_TOKEN`` is set
(see :mod:`gameday.clients.http`); it must be the value the lab was started with.
"""

from __future__ import annotations

import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from gameday.clients.http import HttpUnreachable, admin_call, request_json
from gameday.clients.prometheus import Prometheus
from gameday.clients.toxiproxy import Toxiproxy, proxy_problems
from gameday.contract import (
    CGROUP_FAULTS,
    PACKET_LOSS_FAULT,
    REPLICA_LINK_DEGRADE_FAULT,
    SERVICE_BROKER_LINK,
    ConfigError,
    GamedayError,
    InjectionError,
    MeasurementError,
    MetricNaming,
)
from gameday.service_spec import OrderRequest, ServiceSpec, load_spec
from gameday.settings import LabLocation, Settings
from lab import cgroups, netns, procs, stack
from lab.broker.modeparse import MODES, InvalidMode, parse_mode
from lab.broker.modes import NormalMode
from lab.layout import LabLayout
from lab.render import ServiceProgram
from lab.sabotage import Sabotage
from lab.supervisor_client import SupervisorUnavailable

SERVICE_SELECTOR = "app=broker-integration"
_NO_NETNS = ("packet loss is made of iptables rules in the replicas' network namespaces, "
             "and this lab runs without them: bring it up with GAMEDAY_LAB_NETNS=1 (root, "
             "`ip` and `iptables`)")


def reference_spec_path() -> Path:
    """The reference service's spec (``lab/service/service.yaml``): what the lab runs when
    no other service is given."""
    return Path(stack.__file__).parent / "service" / "service.yaml"


def service_spec(path: Path | None) -> ServiceSpec:
    """The spec at ``path``, or the reference service's when None."""
    return load_spec(path or reference_spec_path())


def broker_fault_modes() -> tuple[str, ...]:
    """The broker simulator's failure modes: every mode of its admin API but ``normal``."""
    return tuple(name for name in MODES if name != NormalMode.name)


def check_broker_mode(body: dict[str, Any]) -> None:
    """ConfigError naming what is valid unless ``body`` is a mode the broker simulator's
    admin API accepts (``POST /admin/mode``); lets a run be refused before it starts."""
    try:
        parse_mode(body)
    except InvalidMode as exc:
        raise ConfigError(str(exc)) from None


@dataclass(frozen=True)
class LabTarget:
    """The lab described by ``layout`` (found as ``location`` says, when known)."""

    layout: LabLayout
    location: LabLocation | None = None
    service: ServiceSpec | None = None

    @classmethod
    def from_settings(cls, settings: Settings, service: Path | None = None) -> LabTarget:
        """The lab that the settings locate (see :mod:`gameday.settings`), running the
        service of ``service`` (a spec file; default: the settings', else the reference)."""
        found = settings.lab
        spec = service_spec(service or settings.service)
        layout = LabLayout(found.state_dir, found.port_base, replica_count=spec.replicas,
                           netns=found.netns)
        return cls(layout, found, spec)

    def spec(self) -> ServiceSpec:
        """The spec of the service this lab runs."""
        return self.service or service_spec(None)

    def naming(self) -> MetricNaming:
        """The service's names for the contract's metrics and labels."""
        return self.spec().naming()

    def service_name(self) -> str:
        """The name of the service this lab runs (its spec's)."""
        return self.spec().name

    def order(self) -> OrderRequest:
        """How an order is placed with the service."""
        return self.spec().order

    def _where(self) -> str:
        if self.location is not None:
            return self.location.how_to_point()
        return f"looked for the lab in {self.layout.state_dir}"

    def running_status(self) -> stack.LabStatus:
        """The lab's status; MeasurementError naming where gameday looked when no lab runs
        there (a probe must not count the replicas of a lab it cannot find as zero)."""
        status = stack.status(self.layout)
        if not status.running:
            raise MeasurementError(f"no lab is running: {self._where()}")
        return status

    def program(self) -> ServiceProgram:
        """How the lab runs the service: its spec, in the lab's terms."""
        spec = self.spec()
        reference = spec.path == reference_spec_path()
        return ServiceProgram(
            command=spec.command, workdir=spec.workdir, env=spec.env,
            stop_signal=spec.stop_signal, stop_grace_s=spec.stop_grace_s,
            health_path=spec.health_path, ready_path=spec.ready_path,
            metrics_path=spec.metrics_path, naming=spec.naming(),
            takes_sabotage=reference, spec_path=None if reference else spec.path)

    def up(self) -> bool:
        """Start the lab and wait until every part answers; False if it already ran
        (ConfigError when it runs another service than this target's)."""
        if self.is_running() and self.location is not None and (
                self.location.service != self.program().spec_path):
            raise ConfigError(
                f"the lab in {self.layout.state_dir} already runs "
                f"{self.location.service or 'the reference service'}: bring it down "
                f"(`gameday lab down`) before starting it with {self.spec().path}")
        return stack.up(self.layout, self.program())

    def down(self) -> bool:
        """Stop every lab process; False if the lab was not running."""
        return stack.down(self.layout)

    def status(self) -> stack.LabStatus:
        """Where the lab's parts are and which processes run (all stopped when down)."""
        return stack.status(self.layout)

    def setup(self) -> dict[str, str]:
        """How the lab was brought up, in words (fault proxy, netns, cgroups), from its
        record; empty when it has none."""
        return stack.recorded_setup(self.layout)

    def is_running(self) -> bool:
        """True when the lab's supervisor answers."""
        return stack.client(self.layout).is_up()

    def failing_checks(self) -> list[str]:
        """Names of the lab's parts that do not answer (empty when all do)."""
        return stack.failing_checks(self.layout, self.spec().health_path)

    @staticmethod
    def sabotage() -> list[str]:
        """The deliberate defects ``GAMEDAY_LAB_SABOTAGE`` asks for (empty: none)."""
        return sorted(Sabotage.from_env().kinds)

    def _replicas(self, selector: str) -> list[stack.ReplicaStatus]:
        replicas = self.running_status().replicas
        if selector == SERVICE_SELECTOR:
            return replicas
        if selector.startswith("name="):
            chosen = [r for r in replicas if r.name == selector.removeprefix("name=")]
            if chosen:
                return chosen
        names = ", ".join(f"name={r.name}" for r in replicas)
        raise ConfigError(f"selector {selector!r} matches no replica: valid are "
                          f"{SERVICE_SELECTOR} or one of {names}")

    def _pids(self, replica: stack.ReplicaStatus) -> list[int]:
        """The processes the lab started as the replica: its process group (supervisord
        makes each program a group leader) and, where the lab has them, its cgroup's
        members."""
        pids = set(procs.group_members(replica.pid)) if replica.running else set()
        try:
            plan = cgroups.recorded(self.layout.state_dir)
        except cgroups.CgroupError:
            plan = None  # an unreadable record: the process group still names them
        if plan is not None:
            pids.update(cgroups.members(plan, replica.name))
        return sorted(pids)

    def _serving(self, replica: stack.ReplicaStatus) -> list[int]:
        """:meth:`_pids` and whatever process listens on the replica's port."""
        port = urllib.parse.urlsplit(replica.url).port or 0
        return [*self._pids(replica), *procs.listeners(port, replica.pid)]

    def kill_pods(self, selector: str, qty: int) -> list[str]:
        """SIGKILL every process of ``qty`` running replicas matching ``selector``, as a
        container is killed whole; return their names."""
        running = [r for r in self._replicas(selector) if r.running]
        if qty < 1 or qty > len(running):
            raise ConfigError(f"qty={qty} is invalid: {len(running)} matching replicas run")
        for replica in running[:qty]:
            procs.kill_all(self._pids(replica))
        return [r.name for r in running[:qty]]

    def replica_instances(self, selector: str) -> dict[str, list[str]]:
        """Per running replica matching ``selector``: its processes and the one serving
        its port, as ``PID@START`` (read from ``/proc``; see :mod:`lab.procs`)."""
        return {r.name: procs.instances(self._serving(r)) for r in self._replicas(selector)
                if r.running}

    def instances_running(self, recorded: list[str]) -> list[str]:
        """Those of the recorded instances (``PID@START``) that still run."""
        return procs.still_running(recorded)

    def ready_replicas(self, selector: str = SERVICE_SELECTOR) -> int:
        """Replicas matching ``selector`` that run and answer /health."""
        ready = 0
        for replica in self._replicas(selector):
            try:
                answer = request_json("GET", replica.url + self.spec().health_path,
                                      timeout_s=1.0)
                ok = answer.status == 200
            except HttpUnreachable:
                ok = False
            ready += int(replica.running and ok)
        return ready

    def in_rotation(self, selector: str = SERVICE_SELECTOR) -> int:
        """Replicas matching ``selector`` that HAProxy marks UP (its own metrics)."""
        names = {r.name for r in self._replicas(selector)}
        url = self.layout.url("haproxy_stats") + "/metrics"
        try:
            with urllib.request.urlopen(url, timeout=2.0) as response:
                text = response.read().decode()
        except OSError as exc:
            raise MeasurementError(f"cannot read HAProxy's server states at {url}: {exc}") from exc
        return len(names & servers_up(text))

    def links(self) -> list[str]:
        """``service-broker`` and ``lb-replica-N`` for each replica."""
        return [SERVICE_BROKER_LINK] + [self.layout.lb_link_name(n)
                                        for n in self.layout.replica_names()]

    def _kernel(self, link: str) -> tuple[LabLayout, netns.Tools] | None:
        """The running lab's namespaces (as recorded by ``lab up``), or None when it runs
        in the default userspace mode; checks ``link`` in netns mode."""
        try:
            recorded = netns.recorded_layout(self.layout.state_dir)
            tools = None if recorded is None else netns.require_tools()
        except netns.NetnsError as exc:
            raise InjectionError(str(exc)) from exc
        if recorded is None or tools is None:
            return None
        if link not in self.links():
            raise ConfigError(f"unknown link {link!r}: valid links are {', '.join(self.links())}")
        return recorded, tools

    def partition(self, link: str) -> None:
        """Take the link down: new connections are refused and open ones closed (in netns
        mode: its packets are dropped, so connections time out and open ones stall)."""
        kernel = self._kernel(link)
        if kernel is None:
            Toxiproxy(self.fault_proxy_url()).set_enabled(link, False)
            return
        _netns_call(netns.partition, kernel, link)

    def heal(self, link: str) -> None:
        """Bring the link back up; idempotent."""
        kernel = self._kernel(link)
        if kernel is None:
            Toxiproxy(self.fault_proxy_url()).set_enabled(link, True)
            return
        _netns_call(netns.heal, kernel, link)
        if link == SERVICE_BROKER_LINK:
            Toxiproxy(self.fault_proxy_url()).set_enabled(link, True)

    def degrade(self, link: str, toxic: dict[str, Any]) -> dict[str, Any]:
        """Add the toxic to the link's proxy in the fault proxy."""
        return Toxiproxy(self.fault_proxy_url()).add_toxic(link, toxic)

    def no_traffic_reason(self) -> str | None:
        """None: the lab's replicas serve real requests."""
        return None

    def _lossy(self, link: str, error: type[GamedayError]) -> tuple[LabLayout, netns.Tools]:
        """The lab's namespaces, or ``error`` saying why packet loss is not offered."""
        reason = self.unsupported_faults().get(PACKET_LOSS_FAULT)
        kernel = None if reason else self._kernel(link)
        if kernel is None:
            raise error(f"not runnable here: {reason or _NO_NETNS}")
        return kernel

    def drop_packets(self, link: str, probability: float) -> None:
        """Drop each packet of the link, either way, with ``probability``: iptables
        ``statistic`` rules in the replicas' namespaces (``GAMEDAY_LAB_NETNS=1`` only; see
        :mod:`lab.netns`). Undo with :meth:`heal`."""
        layout, tools = self._lossy(link, InjectionError)
        try:
            netns.drop_packets(layout, link, probability, tools)
        except netns.NetnsError as exc:
            raise InjectionError(str(exc)) from exc

    def dropped_packets(self, link: str) -> int:
        """The packets the loss on the link has dropped so far (the iptables rules' own
        counters); MeasurementError when no loss is in place there."""
        layout, tools = self._lossy(link, MeasurementError)
        try:
            return netns.dropped_packets(layout, link, tools)
        except netns.NetnsError as exc:
            raise MeasurementError(str(exc)) from exc

    def unsupported_faults(self) -> dict[str, str]:
        """Every cgroup fault, with why, when the lab's replicas have no cgroups (not
        root, a controller missing or read-only, ``GAMEDAY_LAB_CGROUPS=0``); a toxic on
        a load balancer -> replica link when the replicas run in network namespaces
        (HAProxy then reaches them directly, not through the fault proxy); packet loss
        when they do not (it is made of iptables rules in their namespaces)."""
        try:
            reason = stack.no_cgroups_reason(self.layout)
        except stack.LabError as exc:
            reason = str(exc)
        unsupported = {kind: f"replica cgroups are not available in this lab: {reason}"
                       for kind in CGROUP_FAULTS} if reason else {}
        if self.layout.netns:
            unsupported[REPLICA_LINK_DEGRADE_FAULT] = (
                "with GAMEDAY_LAB_NETNS=1 the load balancer reaches the replicas directly, "
                "not through the fault proxy, so a toxic on its links would not land")
        else:
            unsupported[PACKET_LOSS_FAULT] = _NO_NETNS
        return unsupported

    def _cgroup_plan(self, error: type[GamedayError] = InjectionError) -> cgroups.CgroupPlan:
        try:
            plan = cgroups.recorded(self.layout.state_dir)
        except cgroups.CgroupError as exc:
            raise error(str(exc)) from exc
        if plan is None:
            reason = stack.no_cgroups_reason(self.layout)
            raise error(f"replica cgroups are not available in this lab: {reason}")
        return plan

    def _on_cgroups(self, selector: str,
                    change: Callable[[cgroups.CgroupPlan, str], object]) -> list[str]:
        plan = self._cgroup_plan()
        names = [r.name for r in self._replicas(selector)]
        try:
            for name in names:
                change(plan, name)
        except cgroups.CgroupError as exc:
            raise InjectionError(str(exc)) from exc
        return names

    def freeze(self, selector: str) -> list[str]:
        """Write FROZEN to the replicas' ``freezer.state`` and wait until they are."""
        return self._on_cgroups(selector, cgroups.freeze)

    def thaw(self, selector: str) -> list[str]:
        """Write THAWED to the replicas' ``freezer.state``; idempotent."""
        return self._on_cgroups(selector, cgroups.thaw)

    def throttle_cpu(self, selector: str, cores: float) -> list[str]:
        """Set the replicas' CFS quota to ``cores`` of a 100 ms period."""
        return self._on_cgroups(selector, lambda plan, name: cgroups.throttle(plan, name, cores))

    def unthrottle_cpu(self, selector: str) -> list[str]:
        """Set the replicas' CFS quota back to unlimited (-1); idempotent."""
        return self._on_cgroups(selector, cgroups.unthrottle)

    def limit_memory(self, selector: str, headroom_mib: int, leak_mib_per_s: int) -> list[str]:
        """Set the replicas' ``memory.limit_in_bytes`` to their usage plus
        ``headroom_mib`` and start a leak charged to their memory cgroup
        (:func:`lab.cgroups.limit_memory`)."""
        return self._on_cgroups(selector, lambda plan, name: cgroups.limit_memory(
            plan, name, headroom_mib, leak_mib_per_s))

    def unlimit_memory(self, selector: str) -> list[str]:
        """End the replicas' leak and lift their memory limit; idempotent."""
        return self._on_cgroups(selector, cgroups.unlimit_memory)

    def cgroup_figures(self, selector: str) -> dict[str, dict[str, Any]]:
        """Freezer state, CPU quota and throttling counters, memory use, limit and OOM
        kills of each matching replica."""
        plan = self._cgroup_plan(MeasurementError)
        try:
            return {r.name: {"freezer_state": cgroups.freezer_state(plan, r.name),
                             **cgroups.throttle_figures(plan, r.name),
                             **cgroups.memory_figures(plan, r.name)}
                    for r in self._replicas(selector)}
        except cgroups.CgroupError as exc:
            raise MeasurementError(str(exc)) from exc

    def _cgroup_problems(self, status: stack.LabStatus) -> list[str]:
        """Replicas left frozen or throttled, or outside their cgroups; none without."""
        try:
            plan = cgroups.recorded(self.layout.state_dir)
            running = {r.name: r.pid for r in status.replicas if r.running}
            return [] if plan is None else cgroups.faults_left(plan, running)
        except cgroups.CgroupError as exc:
            raise MeasurementError(f"cannot check the replicas' cgroups for leftovers: "
                                   f"{exc}") from exc

    def broker_url(self) -> str:
        """The broker simulator's API."""
        return self.layout.url("broker")

    def state_dir(self) -> Path:
        """The lab's state directory (holds ``injected.jsonl``)."""
        return self.layout.state_dir

    def fault_proxy_url(self) -> str:
        """The fault proxy's Toxiproxy-compatible API."""
        return self.layout.url("fault_proxy")

    def prometheus_url(self) -> str:
        """The lab's Prometheus."""
        return self.layout.url("prometheus")

    def prometheus(self) -> Prometheus:
        """The lab's Prometheus, queried in the names of the service the lab runs."""
        return Prometheus(self.prometheus_url(), naming=self.naming())

    def broker_admin_url(self) -> str:
        """The broker simulator's admin API."""
        return self.layout.url("broker_admin")

    def entry_url(self) -> str:
        """HAProxy's entry point in front of the replicas."""
        return self.layout.url("entry")

    def own_processes(self) -> tuple[list[int], list[str]] | None:
        """The lab's supervisord (every part of the lab descends from it) and the lab's
        replica cgroups; None when the lab does not run."""
        try:
            root = stack.client(self.layout).pid()
            plan = cgroups.recorded(self.layout.state_dir)
        except (SupervisorUnavailable, cgroups.CgroupError):
            return None
        return [root], [plan.parent] if plan is not None else []

    def release_gray(self) -> list[str]:
        """Thaw, unthrottle and unlimit every replica cgroup of the lab, ending any leak;
        the faults that were in place, in words (none without cgroups)."""
        try:
            plan = cgroups.recorded(self.layout.state_dir)
            if plan is None:
                return []
            found = [problem for replica in plan.replicas
                     if all(d.is_dir() for d in plan.replica_dirs(replica))
                     for problem in cgroups.gray_faults_in_place(plan, replica)]
            cgroups.release_all(self.layout.state_dir)
        except cgroups.CgroupError as exc:
            raise InjectionError(str(exc)) from exc
        return found

    def leftovers(self) -> list[str]:
        """Faults still injected and parts not running; raises if the lab cannot be read
        (MeasurementError, also when an admin API refuses this process' admin token)."""
        proxies = _admin_get("fault proxy", f"{self.fault_proxy_url()}/proxies")
        mode = _admin_get("broker simulator", f"{self.broker_admin_url()}/admin/mode")
        problems = proxy_problems(proxies) + _mode_problems(mode)
        problems += self._netns_problems()
        status = self.running_status()
        problems += self._cgroup_problems(status)
        problems += [f"process {n} is {s}" for n, s in status.processes.items() if s != "RUNNING"]
        return problems

    def _netns_problems(self) -> list[str]:
        """Partitions left as iptables rules, in netns mode; none otherwise."""
        try:
            recorded = netns.recorded_layout(self.layout.state_dir)
            return [] if recorded is None else netns.cut_links(recorded, netns.require_tools())
        except netns.NetnsError as exc:
            raise MeasurementError(f"cannot check the lab's namespaces for leftovers: "
                                   f"{exc}") from exc


def _netns_call(func: Callable[[LabLayout, str, netns.Tools], None],
                kernel: tuple[LabLayout, netns.Tools], link: str) -> None:
    layout, tools = kernel
    try:
        func(layout, link, tools)
    except netns.NetnsError as exc:
        raise InjectionError(str(exc)) from exc


def _admin_get(what: str, url: str) -> Any:
    """The JSON body of GET ``url`` on an admin API; MeasurementError when it cannot be
    read, naming the admin token on a 401."""
    try:
        return admin_call(what, "GET", url, error=MeasurementError).body
    except MeasurementError as exc:
        raise MeasurementError(f"cannot check the lab for leftovers: {exc}") from None


def _mode_problems(mode: Any) -> list[str]:
    if isinstance(mode, dict) and mode.get("mode") == "normal":
        return []
    return [f"broker simulator is in mode {mode!r}, not normal"]


def servers_up(metrics_text: str, backend: str = "replicas") -> set[str]:
    """Servers of ``backend`` that HAProxy's Prometheus exporter reports UP (pure)."""
    up = set()
    for family in text_string_to_metric_families(metrics_text):
        if family.name != "haproxy_server_status":
            continue
        for sample in family.samples:
            labels = sample.labels
            if labels.get("proxy") == backend and labels.get("state") == "UP" and sample.value:
                up.add(labels["server"])
    return up
