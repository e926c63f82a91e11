"""Bring the lab up and down, and tell its status.

The lab is a supervisord instance (PyPI ``supervisor``) running the broker simulator,
the fault proxy, the replicas of the service under test (the reference service, or
the one a service spec describes: :class:`lab.render.ServiceProgram`), HAProxy and
Prometheus, all on 127.0.0.1
and all with state under the layout's state directory. With ``GAMEDAY_LAB_NETNS=1``
the replicas run in network namespaces created before supervisord starts and deleted
after it stops (see :mod:`lab.netns`). Where the machine offers them (root, cgroup v1
``freezer`` and ``cpu`` writable; ``GAMEDAY_LAB_CGROUPS=0`` turns them off) each replica
runs in cgroups of its own, created before supervisord starts, thawed and unthrottled
before it stops, removed after (see :mod:`lab.cgroups`); the lab's record says why
when they are not there.

The admin token (``GAMEDAY_ADMIN_TOKEN``, see :mod:`lab.admin_auth`) is never written to
the state directory: supervisord inherits this process' environment and passes it on
to the programs it starts (the templates empty it for all but the broker simulator and
the fault proxy). So a lab requires the token it was brought up with, until it is
brought down; the readiness checks use only endpoints that need no token.

``GAMEDAY_LAB_FAULT_PROXY=toxiproxy`` runs Toxiproxy's own server (built by ``make
setup``, see :mod:`lab.gocomponents`) in place of ``lab.faultproxy``, under the same
program name, port and links. Toxiproxy has no authentication, so it is refused
together with ``GAMEDAY_ADMIN_TOKEN`` (its API would be open while the lab claims a
token protects it).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from gameday.contract import LAB_RECORD_FILE, ConfigError, GamedayError, admin_token
from lab import cgroups, netns
from lab.gocomponents import TOXIPROXY, binary_path, missing_reason, recorded_error
from lab.layout import HOST, LabLayout
from lab.render import Executables, RenderError, ServiceProgram, all_files
from lab.sabotage import Sabotage
from lab.supervisor_client import SupervisorClient

READY_TIMEOUT_S = 45.0
STOP_TIMEOUT_S = 30.0
HTTP_TIMEOUT_S = 1.0
OS_PACKAGES = ("haproxy", "prometheus")
FAULT_PROXY_ENV = "GAMEDAY_LAB_FAULT_PROXY"
FAULT_PROXIES = ("faultproxy", "toxiproxy")


class LabError(GamedayError):
    """The lab could not be brought up or down; the message says why and what to do."""


class LabSettingError(LabError, ConfigError):
    """A lab setting that cannot be used as given (``gameday`` exits 2)."""


def fault_proxy_choice(env: Mapping[str, str]) -> str:
    """``faultproxy`` (the default) or ``toxiproxy``, from ``GAMEDAY_LAB_FAULT_PROXY``."""
    value = env.get(FAULT_PROXY_ENV, "").strip() or FAULT_PROXIES[0]
    if value not in FAULT_PROXIES:
        raise LabSettingError(f"{FAULT_PROXY_ENV}={value!r}: valid are "
                              f"{', '.join(FAULT_PROXIES)}")
    return value


def toxiproxy_server(env: Mapping[str, str]) -> str:
    """Toxiproxy's server for the lab; LabSettingError saying how to build it when it
    is missing, or when an admin token is set (Toxiproxy cannot require one)."""
    if env.get("GAMEDAY_ADMIN_TOKEN"):
        raise LabSettingError(
            f"{FAULT_PROXY_ENV}=toxiproxy cannot be combined with GAMEDAY_ADMIN_TOKEN: "
            f"Toxiproxy has no authentication, so its API would stay open to every "
            f"local process; unset one of the two")
    path = binary_path(TOXIPROXY, env)
    if not (path.is_file() and os.access(path, os.X_OK)):
        raise LabSettingError(
            f"{FAULT_PROXY_ENV}=toxiproxy: "
            f"{missing_reason(TOXIPROXY, env, recorded_error(TOXIPROXY, env))}")
    return str(path)


@dataclass(frozen=True)
class ReplicaStatus:
    """One service replica: name, base URL, PID (0 when not running), running."""

    name: str
    url: str
    pid: int
    running: bool


@dataclass(frozen=True)
class LabStatus:
    """Where the lab's parts are and whether they run."""

    running: bool
    entry_url: str
    prometheus_url: str
    fault_proxy_url: str
    broker_url: str
    broker_admin_url: str
    replicas: list[ReplicaStatus]
    processes: dict[str, str]


def _find_executable(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    if found is None:
        raise LabError(
            f"{name} is not installed; the lab needs the OS packages "
            f"{' '.join(OS_PACKAGES)} (apt-get install -y {' '.join(OS_PACKAGES)})"
        )
    return found


def executables(env: Mapping[str, str] | None = None) -> Executables:
    """The Python running gameday, the OS' HAProxy and Prometheus, and Toxiproxy's
    server when ``GAMEDAY_LAB_FAULT_PROXY=toxiproxy`` (in ``env``, default this
    process' environment)."""
    env = os.environ if env is None else env
    toxiproxy = toxiproxy_server(env) if fault_proxy_choice(env) == "toxiproxy" else None
    return Executables(sys.executable, _find_executable("haproxy"),
                       _find_executable("prometheus"), toxiproxy=toxiproxy)


def client(layout: LabLayout) -> SupervisorClient:
    """A supervisord client for this lab."""
    return SupervisorClient(layout.socket_path)


def _port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((HOST, port)) == 0


def _check_ports_free(layout: LabLayout) -> None:
    busy = [p for p in layout.all_ports() if _port_in_use(p)]
    if busy:
        raise LabError(
            f"ports {busy} on {HOST} are already in use by something that is not this lab "
            f"(state dir {layout.state_dir}); stop it or set GAMEDAY_LAB_PORT_BASE to another base"
        )


def _check_admin_token() -> None:
    """LabError (not quoting it) when ``GAMEDAY_ADMIN_TOKEN`` cannot be used."""
    try:
        admin_token()
    except ConfigError as exc:
        raise LabError(str(exc)) from None


def _write_configs(layout: LabLayout, exe: Executables, program: ServiceProgram,
                   plan: cgroups.CgroupPlan | None) -> None:
    layout.log_dir.mkdir(parents=True, exist_ok=True)
    try:
        files = all_files(layout, exe, Path.cwd(), program, Sabotage.from_env(), cgroups=plan)
    except RenderError as exc:
        raise LabError(str(exc)) from None
    for name, text in files.items():
        (layout.state_dir / name).write_text(text, encoding="utf-8")


def _start_supervisord(layout: LabLayout) -> None:
    """Start supervisord with this process' environment (the admin token included)."""
    supervisord = Path(sys.executable).parent / "supervisord"
    conf = layout.state_dir / "supervisord.conf"
    result = subprocess.run(
        [str(supervisord), "-c", str(conf)],
        capture_output=True, text=True, timeout=30, check=False,
    )
    if result.returncode != 0:
        raise LabError(f"supervisord failed to start: {result.stderr.strip() or result.stdout}")


@contextmanager
def _netns_errors() -> Iterator[None]:
    try:
        yield
    except netns.NetnsError as exc:
        raise LabError(str(exc)) from exc


def _netns_tools(layout: LabLayout) -> netns.Tools | None:
    """The commands netns mode needs when it is on (LabError if missing), else None."""
    recorded = netns.recorded_layout(layout.state_dir) is not None
    if client(layout).is_up() and recorded != layout.netns:
        raise LabError(
            f"the lab in {layout.state_dir} runs {'with' if recorded else 'without'} "
            f"network namespaces: set GAMEDAY_LAB_NETNS={int(recorded)} to use it, or "
            f"bring it down first"
        )
    return netns.require_tools() if layout.netns else None


@contextmanager
def _namespaces(layout: LabLayout, tools: netns.Tools | None) -> Iterator[None]:
    """Namespaces for the replicas while the body starts the lab; removed if it fails."""
    if tools is None:
        yield
        return
    netns.create(layout, tools)
    try:
        yield
    except BaseException:
        netns.remove(layout, tools)
        raise


def _remove_namespaces(layout: LabLayout) -> None:
    """Delete the namespaces the lab recorded at ``up`` (or would have, in netns mode)."""
    target = netns.recorded_layout(layout.state_dir) or (layout if layout.netns else None)
    if target is not None:
        netns.remove(target, netns.require_tools())


def _prepare_netns(layout: LabLayout, exe: Executables,
                   tools: netns.Tools | None) -> Executables:
    """Remove what a crashed netns lab left here (its record would mislead the target);
    the executables, with ``ip`` when netns mode is on."""
    with _netns_errors():
        _remove_namespaces(layout)
    return exe if tools is None else dataclasses.replace(exe, ip=tools.ip)


CGROUPS_ENV = "GAMEDAY_LAB_CGROUPS"
CGROUPS_OFF = ("0", "false", "no", "off")


def cgroup_plan(layout: LabLayout,
                environ: dict[str, str] | None = None) -> tuple[cgroups.CgroupPlan | None, str]:
    """The replicas' cgroups for a lab about to start, or None and why not (off by
    ``GAMEDAY_LAB_CGROUPS=0``, or what the machine lacks)."""
    env = dict(os.environ) if environ is None else environ
    if env.get(CGROUPS_ENV, "").strip().lower() in CGROUPS_OFF:
        return None, f"turned off by {CGROUPS_ENV}={env[CGROUPS_ENV]}"
    try:
        return cgroups.plan_for(layout.state_dir, layout.port_base,
                                layout.replica_names()), ""
    except cgroups.CgroupError as exc:
        return None, str(exc)


@contextmanager
def _cgroup_errors() -> Iterator[None]:
    try:
        yield
    except cgroups.CgroupError as exc:
        raise LabError(str(exc)) from exc


def _remove_cgroups(layout: LabLayout) -> None:
    """Remove the replica cgroups the lab recorded (left by a crashed lab, or at down)."""
    with _cgroup_errors():
        cgroups.remove(layout.state_dir)


def up(layout: LabLayout, program: ServiceProgram,
       ready_timeout_s: float = READY_TIMEOUT_S) -> bool:
    """Start the lab around ``program``'s replicas and wait until every part answers;
    False if it was already running."""
    with _netns_errors():
        tools = _netns_tools(layout)
    if client(layout).is_up():
        wait_ready(layout, ready_timeout_s, program.health_path)
        return False
    exe = executables()
    _check_admin_token()
    _check_ports_free(layout)
    exe = _prepare_netns(layout, exe, tools)
    _remove_cgroups(layout)
    plan, no_cgroups = cgroup_plan(layout)
    _write_configs(layout, exe, program, plan)
    _write_record(layout, program, "faultproxy" if exe.toxiproxy is None else "toxiproxy",
                  no_cgroups)
    with _netns_errors(), _namespaces(layout, tools):
        if plan is not None:
            with _cgroup_errors():
                cgroups.create(plan, layout.state_dir)
        _start_supervisord(layout)
        try:
            wait_ready(layout, ready_timeout_s, program.health_path)
        except LabError:
            down(layout)
            raise
    return True


def down(layout: LabLayout, timeout_s: float = STOP_TIMEOUT_S) -> bool:
    """Stop every lab process and supervisord; False if the lab was not running."""
    sup = client(layout)
    if not sup.is_up():
        with _netns_errors():
            _remove_namespaces(layout)
        _remove_cgroups(layout)
        (layout.state_dir / LAB_RECORD_FILE).unlink(missing_ok=True)
        return False
    with _cgroup_errors():
        cgroups.release_all(layout.state_dir)  # a frozen replica could not even stop
    pid = sup.pid()
    sup.shutdown()
    deadline = time.monotonic() + timeout_s
    while _pid_alive(pid):
        if time.monotonic() > deadline:
            raise LabError(f"supervisord (PID {pid}) did not stop within {timeout_s:.0f} s")
        time.sleep(0.1)
    with _netns_errors():
        _remove_namespaces(layout)
    _remove_cgroups(layout)
    (layout.state_dir / LAB_RECORD_FILE).unlink(missing_ok=True)
    return True


def _write_record(layout: LabLayout, program: ServiceProgram, fault_proxy: str,
                  no_cgroups: str) -> None:
    """The lab's record (``lab.json``): how commands run from anywhere find its ports,
    the spec of the service it runs, which fault proxy it runs, and why its replicas
    have no cgroups ("" when they have)."""
    record = {"port_base": layout.port_base, "replica_count": layout.replica_count,
              "netns": layout.netns, "started_unix": round(time.time(), 3),
              "service": str(program.spec_path) if program.spec_path else None,
              "fault_proxy": fault_proxy, "no_cgroups": no_cgroups}
    (layout.state_dir / LAB_RECORD_FILE).write_text(json.dumps(record) + "\n", encoding="utf-8")


def recorded_setup(layout: LabLayout) -> dict[str, str]:
    """How the running lab was set up, from its record, in words: which fault proxy,
    whether its replicas run in network namespaces and have cgroups (empty when there
    is no readable record)."""
    try:
        record = json.loads((layout.state_dir / LAB_RECORD_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(record, dict):
        return {}
    proxy = record.get("fault_proxy")
    return {"proxy program": "Toxiproxy's server" if proxy == "toxiproxy"
            else "lab.faultproxy" if proxy == "faultproxy" else str(proxy),
            "namespaces": "a network namespace per replica" if record.get("netns") else "off",
            "cgroups": f"none: {record['no_cgroups']}" if record.get("no_cgroups")
            else _cgroups_in_words(layout.state_dir)}


def _cgroups_in_words(state_dir: Path) -> str:
    """The controllers the lab's replicas have cgroups in, as ``lab status`` shows them."""
    try:
        plan = cgroups.recorded(state_dir)
    except cgroups.CgroupError as exc:
        return str(exc)
    controllers = plan.controllers() if plan is not None else []
    return f"{', '.join(controllers)} per replica" if controllers else "none recorded"


def no_cgroups_reason(layout: LabLayout) -> str:
    """Why the lab's replicas have no cgroups ("" when they have them): from its record,
    or, before the lab is brought up, why a lab started now would have none."""
    with _cgroup_errors():
        if cgroups.recorded(layout.state_dir) is not None:
            return ""
    try:
        record = json.loads((layout.state_dir / LAB_RECORD_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return cgroup_plan(layout)[1]
    reason = record.get("no_cgroups") if isinstance(record, dict) else None
    return str(reason or "the lab was brought up without replica cgroups")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=HTTP_TIMEOUT_S) as response:
            return 200 <= int(response.status) < 300
    except (urllib.error.URLError, OSError, ValueError):
        return False


RUNNER_METRICS_JOB = "gameday"


def _targets_up(prometheus_url: str, expected: int) -> bool:
    """Prometheus scrapes every part of the lab (not `gameday run`'s own metrics, which
    are there only while a game day runs)."""
    try:
        url = f"{prometheus_url}/api/v1/targets?state=active"
        with urllib.request.urlopen(url, timeout=HTTP_TIMEOUT_S) as response:
            targets = json.load(response)["data"]["activeTargets"]
    except (urllib.error.URLError, OSError, ValueError, KeyError):
        return False
    lab_targets = [t for t in targets
                   if t.get("labels", {}).get("job") != RUNNER_METRICS_JOB]
    return len(lab_targets) == expected and all(t.get("health") == "up" for t in lab_targets)


def readiness_checks(layout: LabLayout,
                     health_path: str = "/health") -> dict[str, Callable[[], bool]]:
    """Named checks that all pass when the lab is ready for an experiment."""
    checks: dict[str, Callable[[], bool]] = {
        "broker": lambda: _http_ok(layout.url("broker") + "/health"),
        "faultproxy": lambda: _http_ok(layout.url("fault_proxy") + "/version"),
    }
    for name in layout.replica_names():
        checks[name] = lambda n=name: _http_ok(layout.replica_url(n) + health_path)  # type: ignore[misc]
    checks["haproxy"] = lambda: _http_ok(layout.url("entry") + "/health")
    checks["prometheus"] = lambda: _http_ok(layout.url("prometheus") + "/-/ready")
    expected_targets = layout.replica_count + 3
    checks["scrape-targets"] = lambda: _targets_up(layout.url("prometheus"), expected_targets)
    return checks


def failing_checks(layout: LabLayout, health_path: str = "/health") -> list[str]:
    """Names of the readiness checks that fail right now."""
    checks = readiness_checks(layout, health_path)
    return [name for name, check in checks.items() if not check()]


def wait_ready(layout: LabLayout, timeout_s: float = READY_TIMEOUT_S,
               health_path: str = "/health") -> None:
    """Wait until every readiness check passes, or raise naming the ones that did not."""
    deadline = time.monotonic() + timeout_s
    failing = failing_checks(layout, health_path)
    while failing:
        if time.monotonic() > deadline:
            raise LabError(
                f"lab not ready after {timeout_s:.0f} s: {', '.join(failing)} not answering; "
                f"see the logs in {layout.log_dir}"
            )
        time.sleep(0.25)
        failing = failing_checks(layout, health_path)


def status(layout: LabLayout) -> LabStatus:
    """Where every part is, and which processes run (all stopped when the lab is down)."""
    sup = client(layout)
    running = sup.is_up()
    procs = {p.name: p for p in sup.processes()} if running else {}
    replicas = [
        ReplicaStatus(
            name=name,
            url=layout.replica_url(name),
            pid=procs[name].pid if name in procs and procs[name].running else 0,
            running=name in procs and procs[name].running,
        )
        for name in layout.replica_names()
    ]
    return LabStatus(
        running=running,
        entry_url=layout.url("entry"),
        prometheus_url=layout.url("prometheus"),
        fault_proxy_url=layout.url("fault_proxy"),
        broker_url=layout.url("broker"),
        broker_admin_url=layout.url("broker_admin"),
        replicas=replicas,
        processes={name: p.state for name, p in procs.items()},
    )
