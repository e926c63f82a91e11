"""Kernel-level partitions: replicas in network namespaces, links cut with iptables.

The pure parts (requirements, addresses, rendering, rules) always run. The lab tests
need root on Linux with ``ip`` and ``iptables`` and are skipped, with the reason,
elsewhere; they bring up their own lab with ``GAMEDAY_LAB_NETNS=1`` on its own port base.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from conftest import LAB_PORT_BASE, RunningLab, lab_env

from gameday.targets.lab import LabTarget
from lab import netns, stack
from lab.layout import LabLayout, LayoutError, layout_from_env
from lab.render import Executables, all_files

EXE = Executables("/venv/bin/python", "/usr/sbin/haproxy", "/usr/bin/prometheus", "/sbin/ip")
NETNS_PORT_BASE = LAB_PORT_BASE + 2500
CMD_TIMEOUT_S = 10.0
SWITCH_TIMEOUT_S = 6.0


def _unsupported() -> str:
    try:
        netns.require_tools()
    except netns.NetnsError as exc:
        return str(exc)
    return ""


UNSUPPORTED = _unsupported()
needs_netns = pytest.mark.skipif(bool(UNSUPPORTED), reason=f"netns mode unavailable here: "
                                                           f"{UNSUPPORTED}")


# --- pure parts ---------------------------------------------------------------------


def test_missing_requirements_name_each_lack() -> None:
    found = {"ip": "/sbin/ip", "iptables": "/sbin/iptables"}
    assert netns.missing_requirements("Linux", 0, found) == []
    missing = netns.missing_requirements("Darwin", 501, {"ip": None, "iptables": None})
    assert missing == ["Linux (this is Darwin)", "root (running as user id 501)",
                       "the `ip` command (apt-get install -y iproute2)",
                       "the `iptables` command (apt-get install -y iptables)"]


def test_lab_up_without_root_fails_saying_what_is_missing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    layout = LabLayout(tmp_path / "state", NETNS_PORT_BASE, netns=True)
    with pytest.raises(stack.LabError, match=r"needs root \(running as user id 1000\).*"
                                             r"default userspace fault proxy.*none of this"):
        stack.up(layout)
    assert not (tmp_path / "state").exists()


@pytest.mark.parametrize(("raw", "on"), [("1", True), ("on", True), ("0", False), ("", False)])
def test_netns_switch_from_env(raw: str, on: bool, tmp_path: Path) -> None:
    assert layout_from_env({"GAMEDAY_LAB_DIR": str(tmp_path), "GAMEDAY_LAB_NETNS": raw}).netns is on
    assert layout_from_env({"GAMEDAY_LAB_DIR": str(tmp_path)}).netns is False


def test_bad_netns_switch_lists_the_valid_values() -> None:
    with pytest.raises(LayoutError, match=r"GAMEDAY_LAB_NETNS=.maybe.*1/true/yes/on"):
        layout_from_env({"GAMEDAY_LAB_NETNS": "maybe"})


def test_netns_addresses_come_from_the_port_base(tmp_path: Path) -> None:
    layout = LabLayout(tmp_path, 30000, netns=True)
    assert str(layout.netns_subnet()) == "10.231.76.0/26"  # 30000 % 1024 = 304th /26
    assert layout.netns_gateway() == "10.231.76.1"
    assert layout.replica_service_host("replica-2") == "10.231.76.12"
    assert layout.replica_host("replica-2") == "10.231.76.22"
    assert layout.replica_url("replica-2") == "http://10.231.76.22:30022"
    assert layout.netns_name("replica-2") == "gd30000-r2"
    assert layout.netns_bridge() == "gd30000-br"
    assert LabLayout(tmp_path, 30000).replica_url("replica-2") == "http://127.0.0.1:30022"


def test_netns_configs_put_replicas_in_their_namespaces(tmp_path: Path) -> None:
    files = all_files(LabLayout(tmp_path, 30000, netns=True), EXE, tmp_path)
    assert ("command=/sbin/ip netns exec gd30000-r2 /venv/bin/python -m lab.service "
            "--host 0.0.0.0 --port 30022 --name replica-2 "
            "--broker-url http://10.231.76.1:30010 ") in files["supervisord.conf"]
    assert "    server replica-2 10.231.76.12:30022 check" in files["haproxy.cfg"]
    assert '"10.231.76.22:30022"' in files["prometheus.yml"]
    assert json.loads(files["proxies.json"]) == [
        {"name": "service-broker", "listen": "10.231.76.1:30010",
         "upstream": "127.0.0.1:30004", "enabled": True}]


def test_partition_rules_drop_exactly_the_link(tmp_path: Path) -> None:
    layout = LabLayout(tmp_path, 30000, netns=True)
    comment = ("-m", "comment", "--comment", "gameday-lab:lb-replica-2")
    assert netns.partition_rules(layout, "lb-replica-2") == [
        netns.Rule("gd30000-r2", "INPUT",
                   ("-d", "10.231.76.12", "-p", "tcp", "--dport", "30022", *comment)),
        netns.Rule("gd30000-r2", "OUTPUT",
                   ("-s", "10.231.76.12", "-p", "tcp", "--sport", "30022", *comment))]
    broker_rules = netns.partition_rules(layout, "service-broker")
    assert [(r.namespace, r.chain) for r in broker_rules] == [
        (f"gd30000-r{n}", chain) for n in (1, 2, 3) for chain in ("OUTPUT", "INPUT")]
    with pytest.raises(netns.NetnsError, match="valid links are service-broker, lb-replica-1"):
        netns.partition_rules(layout, "lb-replica-4")


# --- a real lab in namespaces -------------------------------------------------------


@dataclass(frozen=True)
class NetnsLab:
    """A lab started with GAMEDAY_LAB_NETNS=1, and the host's iptables before it."""

    running: RunningLab
    layout: LabLayout
    host_rules_before: str

    def target(self) -> LabTarget:
        """The lab target for this lab."""
        return LabTarget(self.layout)


def _cmd(*argv: str) -> str:
    return subprocess.run(argv, capture_output=True, text=True, timeout=CMD_TIMEOUT_S,
                          check=True).stdout


@pytest.fixture(scope="module")
def netns_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NetnsLab]:
    """The whole lab with each replica in a namespace, on its own base and state dir."""
    base = tmp_path_factory.mktemp("netns-lab")
    env = {**lab_env(base / "state", NETNS_PORT_BASE, base / "reports"),
           "GAMEDAY_LAB_NETNS": "1"}
    lab = NetnsLab(RunningLab(env, base / "state"),
                   LabLayout(base / "state", NETNS_PORT_BASE, netns=True),
                   _cmd("iptables-save"))
    up = lab.running.gameday("lab", "up", timeout_s=90)
    assert up.returncode == 0, up.stdout + up.stderr
    try:
        yield lab
    finally:
        down = lab.running.gameday("lab", "down", timeout_s=60)
        assert down.returncode == 0, down.stdout + down.stderr


def _get_json(url: str) -> dict[str, object]:
    with urllib.request.urlopen(url, timeout=2.0) as response:
        return dict(json.load(response))


def _order(entry: str, order_id: str) -> int:
    body = {"client_order_id": order_id, "instrument": "EUR_USD", "units": 100, "price": 1.1}
    request = urllib.request.Request(entry + "/orders", json.dumps(body).encode(),
                                     {"content-type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=5.0) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def _served_by(entry: str, calls: int = 6) -> set[str]:
    return {str(_get_json(entry + "/health")["name"]) for _ in range(calls)}


def _wait_for(condition: str, check: Callable[[], bool],
              timeout_s: float = SWITCH_TIMEOUT_S) -> float:
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < timeout_s, f"not {condition} after {timeout_s} s"
        time.sleep(0.1)
    return time.monotonic() - started


def _connects(host: str, port: int, timeout_s: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except TimeoutError:
        return False


@needs_netns
def test_orders_flow_through_haproxy_to_replicas_in_namespaces(netns_lab: NetnsLab) -> None:
    entry = netns_lab.target().entry_url()
    assert [_order(entry, f"ns-{i}") for i in range(6)] == [200] * 6
    assert _served_by(entry) == {"replica-1", "replica-2", "replica-3"}
    for replica in stack.status(netns_lab.layout).replicas:
        namespace = _cmd("ip", "netns", "identify", str(replica.pid)).strip()
        assert namespace == netns_lab.layout.netns_name(replica.name)


@needs_netns
def test_partition_cuts_the_replica_off_and_heal_restores_it(netns_lab: NetnsLab) -> None:
    layout, target = netns_lab.layout, netns_lab.target()
    entry, port = target.entry_url(), layout.replica_port("replica-2")
    target.partition("lb-replica-2")
    try:
        _wait_for("out of rotation", lambda: "replica-2" not in _served_by(entry))
        assert not _connects(layout.replica_service_host("replica-2"), port)
        assert _get_json(layout.replica_url("replica-2") + "/health")["name"] == "replica-2"
        assert target.leftovers() == [f"link lb-replica-2 is cut (iptables DROP rules in "
                                      f"namespace gd{NETNS_PORT_BASE}-r2)"]
    finally:
        # Healing works whatever GAMEDAY_LAB_NETNS says: the lab recorded its namespaces.
        LabTarget(replace(layout, netns=False)).heal("lb-replica-2")
    target.heal("lb-replica-2")
    _wait_for("back in rotation", lambda: "replica-2" in _served_by(entry))
    assert _connects(layout.replica_service_host("replica-2"), port)
    assert target.leftovers() == []


@needs_netns
def test_broker_partition_fails_orders_fast_until_healed(netns_lab: NetnsLab) -> None:
    target = netns_lab.target()
    target.partition("service-broker")
    try:
        started = time.monotonic()
        assert _order(target.entry_url(), "ns-cut") in (503, 504)
        assert time.monotonic() - started < 2.0
        assert len(target.leftovers()) == 3
    finally:
        target.heal("service-broker")
    assert _order(target.entry_url(), "ns-healed") == 200
    assert target.leftovers() == []


@needs_netns
def test_lab_up_refuses_a_mode_other_than_the_running_labs(netns_lab: NetnsLab) -> None:
    env = {**netns_lab.running.env, "GAMEDAY_LAB_NETNS": "0"}
    result = RunningLab(env, netns_lab.running.state_dir).gameday("lab", "up", timeout_s=30)
    assert result.returncode == 3
    assert "runs with network namespaces: set GAMEDAY_LAB_NETNS=1" in result.stderr


@needs_netns
def test_lab_down_leaves_no_namespace_link_or_rule(netns_lab: NetnsLab) -> None:
    down = netns_lab.running.gameday("lab", "down", timeout_s=60)
    assert down.returncode == 0, down.stdout + down.stderr
    prefix = f"gd{NETNS_PORT_BASE}-"
    assert prefix not in _cmd("ip", "netns", "list")
    assert prefix not in _cmd("ip", "-o", "link", "show")
    assert f" {netns_lab.layout.netns_gateway()}/" not in _cmd("ip", "-o", "-4", "addr", "show")
    assert not (netns_lab.layout.state_dir / netns.RECORD_FILE).exists()
    assert _cmd("iptables-save") == netns_lab.host_rules_before
