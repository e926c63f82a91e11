"""Kernel-level partitions: replicas in network namespaces, links cut with iptables.

The pure parts (requirements, addresses, rendering, rules) always run. The lab tests
need root on Linux with ``ip`` and ``iptables`` and are skipped, with the reason,
elsewhere; they bring up their own lab with ``GAMEDAY_LAB_NETNS=1`` on its own port base.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from support.labs import ROOT, PortBases, RunningLab, lab_env, netns_unavailable

from gameday.contract import MeasurementError
from gameday.faults import inject
from gameday.faults.record import InjectionLog
from gameday.targets.lab import LabTarget
from lab import netns, stack
from lab.layout import LabLayout

CMD_TIMEOUT_S = 10.0
SWITCH_TIMEOUT_S = 6.0
LOSS_MARK = "gameday-lab-loss:"
LOSS_ON_WITHIN_S = 60.0
EXIT_WAIT_S = 90.0


UNSUPPORTED = netns_unavailable()
needs_netns = pytest.mark.skipif(bool(UNSUPPORTED), reason=f"netns mode unavailable here: "
                                                           f"{UNSUPPORTED}")


# --- pure parts ---------------------------------------------------------------------


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
def netns_lab(tmp_path_factory: pytest.TempPathFactory,
              port_bases: PortBases) -> Iterator[NetnsLab]:
    """The whole lab with each replica in a namespace, on its own base and state dir."""
    base, port_base = tmp_path_factory.mktemp("netns-lab"), port_bases.take()
    env = {**lab_env(base / "state", port_base, base / "reports"),
           "GAMEDAY_LAB_NETNS": "1"}
    lab = NetnsLab(RunningLab(env, base / "state"),
                   LabLayout(base / "state", port_base, netns=True),
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
                                      f"namespace gd{layout.port_base}-r2)"]
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


def _loss_rules_left(layout: LabLayout) -> list[str]:
    """Every loss rule line in the lab's namespaces."""
    return [line for name in layout.replica_names() for line in _cmd(
        "ip", "netns", "exec", layout.netns_name(name), "iptables", "-w", "3", "-S").splitlines()
            if LOSS_MARK in line]


@needs_netns
def test_packet_loss_drops_packets_counts_them_and_is_undone(netns_lab: NetnsLab) -> None:
    layout, target = netns_lab.layout, netns_lab.target()
    log = InjectionLog(layout.state_dir)
    assert inject.drop_packets(target, "service-broker", 50) == {
        "link": "service-broker", "loss_percent": 50.0}
    try:
        assert [i.kind for i in log.pending()] == ["packet-loss"]
        assert len(_loss_rules_left(layout)) == 6  # two ways, three namespaces
        # idempotent: the same loss again adds no rule; another rate replaces it
        inject.drop_packets(target, "service-broker", 50)
        inject.drop_packets(target, "service-broker", 40)
        assert len(_loss_rules_left(layout)) == 6
        assert all("--probability 0.39999" in line for line in _loss_rules_left(layout))
        statuses = [_order(target.entry_url(), f"ns-loss-{i}") for i in range(8)]
        assert set(statuses) <= {200, 502, 503, 504}, statuses
        assert target.dropped_packets("service-broker") > 0
        leftovers = target.leftovers()
        assert len(leftovers) == 6
        assert all("link service-broker drops 40.000% of its packets" in p for p in leftovers)
    finally:
        undone = inject.cleanup(target)
    assert undone and all(u.startswith("packet-loss {'link': 'service-broker'") for u in undone)
    assert log.pending() == []
    assert _loss_rules_left(layout) == []
    assert target.leftovers() == []
    with pytest.raises(MeasurementError, match="no packet loss is in place on link "
                                               "service-broker"):
        target.dropped_packets("service-broker")
    assert _order(target.entry_url(), "ns-loss-healed") == 200


@needs_netns
def test_cleanup_all_lifts_a_packet_loss_nobody_recorded(netns_lab: NetnsLab) -> None:
    layout, target = netns_lab.layout, netns_lab.target()
    netns.drop_packets(layout, "service-broker", 0.2, netns.require_tools())
    assert "drops 20.000% of its packets" in " ".join(target.leftovers())
    doctor = netns_lab.running.gameday("lab", "doctor", timeout_s=60)
    assert doctor.returncode != 0 and "drops 20.000%" in doctor.stdout + doctor.stderr
    cleanup = netns_lab.running.gameday("cleanup", "--all", timeout_s=120)
    assert cleanup.returncode == 0, cleanup.stdout + cleanup.stderr
    assert _loss_rules_left(layout) == []
    assert target.leftovers() == []


@needs_netns
def test_broker_packet_loss_passes_on_the_reference_lab_with_its_evidence(
        netns_lab: NetnsLab, tmp_path: Path) -> None:
    run = netns_lab.running.gameday("run", "experiments/broker-packet-loss.yaml",
                                    "--reports", str(tmp_path), timeout_s=300)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "1 passed, 0 failed" in run.stdout
    journal = json.loads(next(tmp_path.glob("broker-packet-loss-*.journal.json")).read_text())
    outputs = {r["activity"]["name"]: r.get("output") for r in journal["run"]}
    assert outputs["packets-dropped-on-the-broker-link"] > 0
    assert outputs["sla-held-through-the-loss-client-side"]["seconds"] >= 10
    assert _loss_rules_left(netns_lab.layout) == []


@needs_netns
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL],
                         ids=lambda s: s.name)
def test_an_interrupted_packet_loss_run_leaves_nothing_dropping(
        netns_lab: NetnsLab, tmp_path: Path, signum: signal.Signals) -> None:
    """Interrupted while the loss is on (Ctrl-C to the group, SIGTERM, or SIGKILL then
    ``gameday cleanup``): no loss rule is left and the lab doctor is satisfied."""
    layout, out = netns_lab.layout, tmp_path / "run.log"
    with out.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "gameday", "run", "experiments/broker-packet-loss.yaml",
             "--reports", str(tmp_path / "reports")],
            cwd=ROOT, env=netns_lab.running.env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True)
    try:
        _wait_for("losing packets", lambda: bool(_loss_rules_left(layout)),
                  timeout_s=LOSS_ON_WITHIN_S)
        time.sleep(1.0)
        if signum is signal.SIGINT:
            os.killpg(process.pid, signum)
        else:
            process.send_signal(signum)
        process.wait(timeout=EXIT_WAIT_S)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    if signum is signal.SIGKILL:
        cleanup = netns_lab.running.gameday("cleanup", timeout_s=120)
        assert cleanup.returncode == 0, cleanup.stdout + cleanup.stderr
    printed = out.read_text()
    assert InjectionLog(layout.state_dir).pending() == [], printed[-3000:]
    assert _loss_rules_left(layout) == [], printed[-3000:]
    doctor = netns_lab.running.gameday("lab", "doctor", timeout_s=60)
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr + printed[-3000:]


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
    prefix = f"gd{netns_lab.layout.port_base}-"
    assert prefix not in _cmd("ip", "netns", "list")
    assert prefix not in _cmd("ip", "-o", "link", "show")
    assert f" {netns_lab.layout.netns_gateway()}/" not in _cmd("ip", "-o", "-4", "addr", "show")
    assert not (netns_lab.layout.state_dir / netns.RECORD_FILE).exists()
    assert _cmd("iptables-save") == netns_lab.host_rules_before
