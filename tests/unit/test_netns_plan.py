"""Kernel-level partitions: replicas in network namespaces, links cut with iptables.

The pure parts (requirements, addresses, rendering, rules) always run. The lab tests
need root on Linux with ``ip`` and ``iptables`` and are skipped, with the reason,
elsewhere; they bring up their own lab with ``GAMEDAY_LAB_NETNS=1`` on its own port base.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from gameday.contract import PACKET_LOSS_FAULT, ConfigError
from gameday.engine.plan import plan_of
from gameday.engine.runner import load_experiment, not_runnable
from gameday.engine.verdict import EVIDENCE_PROBES
from gameday.faults.inject import UNDO, check_loss_percent, fault_kind
from gameday.targets.kubernetes.target import PACKET_LOSS_NOT_YET
from gameday.targets.lab import LabTarget
from lab import netns, stack
from lab.layout import LabLayout
from lab.render import Executables, all_files

EXE = Executables("/venv/bin/python", "/usr/sbin/haproxy", "/usr/bin/prometheus", "/sbin/ip")
NETNS_PORT_BASE = 23500  # never started: the plan only
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
        stack.up(layout, LabTarget(layout).program())
    assert not (tmp_path / "state").exists()


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
    layout = LabLayout(tmp_path, 30000, netns=True)
    files = all_files(layout, EXE, tmp_path, LabTarget(layout).program())
    assert ("command=/sbin/ip netns exec gd30000-r2 /venv/bin/python -m lab.service "
            "--host 0.0.0.0 --port 30022 --broker-url http://10.231.76.1:30010 "
            "--name replica-2 ") in files["supervisord.conf"]
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


def test_loss_rules_are_the_partition_matches_with_a_random_statistic(tmp_path: Path) -> None:
    layout = LabLayout(tmp_path, 30000, netns=True)
    rules = netns.loss_rules(layout, "service-broker", 0.03)
    assert rules[0] == netns.Rule("gd30000-r1", "OUTPUT", (
        "-d", "10.231.76.1", "-p", "tcp", "--dport", "30010",
        "-m", "statistic", "--mode", "random", "--probability", "0.03000000000",
        "-m", "comment", "--comment", "gameday-lab-loss:service-broker"))
    assert [(r.namespace, r.chain) for r in rules] == [
        (f"gd30000-r{n}", chain) for n in (1, 2, 3) for chain in ("OUTPUT", "INPUT")]
    assert [r.match[:6] for r in rules] == [r.match[:6] for r in
                                            netns.partition_rules(layout, "service-broker")]
    lb = netns.loss_rules(layout, "lb-replica-2", 1)
    assert [(r.namespace, r.chain, r.match[-1]) for r in lb] == [
        ("gd30000-r2", "INPUT", "gameday-lab-loss:lb-replica-2"),
        ("gd30000-r2", "OUTPUT", "gameday-lab-loss:lb-replica-2")]


@pytest.mark.parametrize("probability", [0, -0.1, 1.5, True, "0.1", float("nan")])
def test_loss_rules_refuse_a_probability_outside_0_to_1(tmp_path: Path,
                                                        probability: object) -> None:
    layout = LabLayout(tmp_path, 30000, netns=True)
    with pytest.raises(netns.NetnsError, match=r"probability=.* out of range: valid is 0 < p"):
        netns.loss_rules(layout, "service-broker", probability)  # type: ignore[arg-type]


LOSS = ("-m statistic --mode random --probability {p} -m comment --comment "
        '"gameday-lab-loss:{link}" -c {packets} {bytes} -j DROP')
LISTING = "\n".join([
    "-P INPUT ACCEPT -c 0 0",
    "-P OUTPUT ACCEPT -c 0 0",
    "-A INPUT -s 10.231.76.1/32 -p tcp -m tcp --sport 30010 " + LOSS.format(
        p="0.02999999981", link="service-broker", packets=17, bytes=9120),
    "-A OUTPUT -d 10.231.76.1/32 -p tcp -m tcp --dport 30010 -m comment --comment "
    '"gameday-lab:service-broker" -c 5 300 -j DROP',
    "-A OUTPUT -d 10.231.76.1/32 -p tcp -m tcp --dport 30010 " + LOSS.format(
        p="0.02999999981", link="service-broker", packets=21, bytes=1302),
    "-A OUTPUT -s 10.231.76.12/32 -p tcp -m tcp --sport 30022 " + LOSS.format(
        p="0.50000000000", link="lb-replica-2", packets=0, bytes=0)])


def test_parse_loss_rules_reads_each_rules_number_probability_and_counter() -> None:
    assert netns.parse_loss_rules(LISTING) == [
        netns.LossRule("INPUT", 1, "service-broker", 0.02999999981, 17),
        netns.LossRule("OUTPUT", 2, "service-broker", 0.02999999981, 21),
        netns.LossRule("OUTPUT", 3, "lb-replica-2", 0.5, 0)]
    assert netns.parse_loss_rules("-P OUTPUT ACCEPT -c 0 0\n") == []


def test_parse_loss_rules_refuses_a_loss_rule_without_its_counter() -> None:
    listing = ('-A OUTPUT -m statistic --mode random --probability 0.1 -m comment '
               '--comment "gameday-lab-loss:service-broker" -j DROP')
    with pytest.raises(netns.NetnsError, match="cannot read the drop probability and "
                                               "packet counter"):
        netns.parse_loss_rules(listing)


def test_packet_loss_is_offered_only_by_a_lab_in_namespaces(tmp_path: Path) -> None:
    userspace = LabTarget(LabLayout(tmp_path / "a", 30000)).unsupported_faults()
    assert "bring it up with GAMEDAY_LAB_NETNS=1" in userspace[PACKET_LOSS_FAULT]
    kernel = LabTarget(LabLayout(tmp_path / "b", 30000, netns=True)).unsupported_faults()
    assert PACKET_LOSS_FAULT not in kernel
    assert "GAMEDAY_LAB_NETNS=1" in PACKET_LOSS_NOT_YET


def test_broker_packet_loss_is_not_runnable_without_the_fault_and_said_first() -> None:
    path = Path("experiments/broker-packet-loss.yaml")
    experiment = load_experiment(path)
    assert not_runnable(experiment, {}) == []
    assert not_runnable(experiment, {PACKET_LOSS_FAULT: "no namespaces"}) == [
        "not runnable here: drop-packets-on-the-broker-link needs the packet-loss fault: "
        "no namespaces"]
    plan = plan_of(path, {"loss_percent": 5}, {PACKET_LOSS_FAULT: "no namespaces"})
    assert plan.steps[0].blast == ("5 % of the packets at random on the link to the broker, "
                                   "for every replica (all orders)")
    assert plan.not_runnable and [s.kind for s in plan.steps].count("undo") == 1
    # the other link faults are not packet loss
    assert not_runnable(load_experiment(Path("experiments/broker-partition.yaml")),
                        {PACKET_LOSS_FAULT: "no namespaces"}) == []


def test_packet_loss_is_undone_by_heal_and_its_drops_are_evidence() -> None:
    provider = {"module": "actions.network", "func": "drop_packets",
                "arguments": {"link": "service-broker"}}
    assert fault_kind(provider) == PACKET_LOSS_FAULT
    assert PACKET_LOSS_FAULT in UNDO
    assert ("probes.network", "packets_dropped") in EVIDENCE_PROBES
    assert check_loss_percent(3) == 3.0
    for bad in (0, -1, 100.5, True, "3"):
        with pytest.raises(ConfigError, match=r"loss_percent=.* valid is 0 < loss_percent"):
            check_loss_percent(bad)  # type: ignore[arg-type]


# --- a real lab in namespaces -------------------------------------------------------


