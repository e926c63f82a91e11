"""Each experiment catches the failure it is about: against a deliberately broken lab it
fails, with the reason that names that failure.

Broken labs: one without breaker, health checks and idempotency, whose replicas
retry in a storm; one whose load balancer neither checks nor retries and whose breakers
retry the broker every 0.1 s; one whose breakers open but still let every order through;
one that answers "failed" for orders whose outcome it does not know (and the broker
filled); one that retries an order under a new id; one whose replicas bypass the link
the faults are injected on (INCONCLUSIVE: the fault never landed); one that keeps a
frozen replica in rotation (no health checks); one whose load balancer deals round robin
onto a CPU-starved replica, or, without health checks, onto a replica slow to answer;
one (in network namespaces) whose replicas open a new connection to the broker for every
call, so that packet loss costs them the 1 s of a lost handshake.

Each test starts its own lab, so the tests are spread over the lab workers.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from support.labs import PortBases, RunningLab, lab_env, netns_unavailable

from lab.layout import LayoutError
from lab.sabotage import Sabotage

BROKEN = "no-breaker,no-health-checks,no-idempotency,retry-storm"
EXIT_CODES = {"FAIL": 1, "INCONCLUSIVE": 4}
UNGUARDED = "no-lb-retries,no-health-checks,breaker-thrash"
LAB_PER_TEST = True  # tests/conftest.py: a pytest-xdist group per test, not per module


@contextmanager
def broken_lab(base: Path, port_base: int, sabotage: str,
               netns_mode: bool = False) -> Iterator[RunningLab]:
    """A lab started with ``GAMEDAY_LAB_SABOTAGE=sabotage`` (its replicas in network
    namespaces with ``netns_mode``), stopped afterwards."""
    env = {**lab_env(base / "state", port_base, base / "reports"),
           "GAMEDAY_LAB_SABOTAGE": sabotage, **({"GAMEDAY_LAB_NETNS": "1"} if netns_mode else {})}
    running = RunningLab(env, base / "state")
    up = running.gameday("lab", "up", timeout_s=120)
    assert up.returncode == 0, up.stdout + up.stderr
    assert "SABOTAGED lab" in up.stdout
    try:
        yield running
    finally:
        running.gameday("lab", "down", timeout_s=60)


SETTLE_S = 20.0


def _verdict(lab: RunningLab, reports: Path, name: str, kind: str = "FAIL") -> str:
    """Run one experiment in a game day of its own (its own traffic and warm-up); its
    verdict line and reasons. A sabotaged service may still be reeling from the previous
    experiment: when the baseline (before any fault) failed, the check this test is
    about never ran, so the experiment runs once more after ``SETTLE_S``."""
    # No safeguard floor: a sabotaged lab may lose every ready replica for a moment (no
    # health checks, a retry storm), and the safeguard would then end the experiment
    # before the check this test is about (e.g. no order filled twice) has run.
    for attempt in range(2):
        result = lab.gameday("run", f"experiments/{name}.yaml", "--reports",
                             str(reports / f"{name}-{attempt}"), "--var",
                             "safeguard_min_ready=0", timeout_s=600)
        block = result.stdout.split("running experiments/", 1)[-1]
        if "baseline (before):" not in block:
            break
        time.sleep(SETTLE_S)
    assert result.returncode == EXIT_CODES[kind], result.stdout[-3000:]
    assert f"\n{kind}  experiments/{name}.yaml" in block, block[-3000:]
    return block


def _verdicts(lab: RunningLab, reports: Path, *names: str) -> dict[str, str]:
    """Run each experiment on its own; each one's verdict line and reasons, by name."""
    return {name: _verdict(lab, reports, name) for name in names}


def test_without_breaker_broker_failures_fail(tmp_path: Path, port_bases: PortBases) -> None:
    with broken_lab(tmp_path, port_bases.take(), BROKEN) as lab:
        verdicts = _verdicts(lab, tmp_path / "reports", "broker-down", "broker-errors",
                             "broker-slow", "broker-partition")
    for name in ("broker-down", "broker-errors", "broker-slow", "broker-partition"):
        assert "method: breaker-opened-within-bound returned false" in verdicts[name], name


def test_without_health_checks_idempotency_or_retry_limits(tmp_path: Path,
                                                           port_bases: PortBases) -> None:
    with broken_lab(tmp_path / "a", port_bases.take(), BROKEN) as lab:
        verdicts = _verdicts(lab, tmp_path / "a" / "reports", "replica-partition",
                             "pod-kill-majority")
    # A lab of its own: after pod-kill-majority this broken service may answer nothing
    # for a while, and under the shared load the next experiment would then fail its
    # baseline instead of the check this test is about.
    with broken_lab(tmp_path / "b", port_bases.take(), BROKEN) as lab:
        verdicts |= _verdicts(lab, tmp_path / "b" / "reports", "broker-rate-limit")
    assert "method: replica-2-out-of-rotation returned 3" in verdicts["replica-partition"]
    majority = verdicts["pod-kill-majority"]
    assert "method: no-order-lost-or-filled-twice returned" in majority
    assert '"duplicated": 0' not in majority
    assert "filled twice or more by the broker" in majority  # the experiment's own orders
    assert "method: no-retry-storm returned" in verdicts["broker-rate-limit"]


def test_without_load_balancer_retries_and_with_a_thrashing_breaker(
        tmp_path: Path, port_bases: PortBases) -> None:
    with broken_lab(tmp_path, port_bases.take(), UNGUARDED) as lab:
        verdicts = _verdicts(lab, tmp_path / "reports", "pod-kill", "broker-flapping",
                             "replica-oom")
    assert "method: sla-held-through-the-kills-client-side returned availability" \
        in verdicts["pod-kill"]
    assert "method: no-errors-over-the-oom-kill-client-side returned" \
        in verdicts["replica-oom"]
    assert "method: breaker-does-not-thrash returned" in verdicts["broker-flapping"]


def test_a_breaker_that_opens_but_still_calls_the_broker_fails(tmp_path: Path,
                                                               port_bases: PortBases) -> None:
    # broker-slow, not broker-down: with the link cut at the proxy, a leaked call is
    # refused at once, so a leaking breaker still fails fast there and harms nothing; a
    # slow broker makes every leaked order wait for the timeout and reach the broker.
    with broken_lab(tmp_path, port_bases.take(), "breaker-leaks") as lab:
        slow = _verdict(lab, tmp_path / "reports", "broker-slow")
    assert "method: breaker-opened-within-bound returned" not in slow, "the metric opens"
    assert "method: breaker-fails-fast-while-open returned" in slow
    assert "over its maximum" in slow.split("breaker-fails-fast-while-open", 1)[1]


def test_an_unknown_outcome_answered_as_failed_fails_on_the_orders(
        tmp_path: Path, port_bases: PortBases) -> None:
    with broken_lab(tmp_path, port_bases.take(), "ambiguous-as-failed") as lab:
        slow = _verdict(lab, tmp_path / "reports", "broker-slow")
    assert "answered as failed to the client but filled by the broker" in slow


def test_a_retry_under_a_new_id_fails_on_the_orders(tmp_path: Path,
                                                     port_bases: PortBases) -> None:
    with broken_lab(tmp_path, port_bases.take(), "retry-new-id") as lab:
        lost = _verdict(lab, tmp_path / "reports", "broker-reply-lost")
    assert "fills under ids derived from the clients' but never sent by them" in lost


def test_a_fault_that_never_reaches_the_service_is_inconclusive(
        tmp_path: Path, port_bases: PortBases) -> None:
    with broken_lab(tmp_path, port_bases.take(), "fault-bypass") as lab:
        blip = _verdict(lab, tmp_path / "reports", "broker-blip", "INCONCLUSIVE")
    assert ("the fault left no evidence that it took effect: "
            "broker-link-carries-the-service-traffic returned 0") in blip


def test_a_frozen_replica_left_in_rotation_fails(tmp_path: Path,
                                                 port_bases: PortBases) -> None:
    with broken_lab(tmp_path, port_bases.take(), "no-health-checks") as lab:
        frozen = _verdict(lab, tmp_path / "reports", "replica-freeze")
    assert "method: replica-2-out-of-rotation returned 3" in frozen


def test_round_robin_onto_a_starved_replica_fails(tmp_path: Path,
                                                  port_bases: PortBases) -> None:
    with broken_lab(tmp_path, port_bases.take(), "lb-round-robin") as lab:
        starved = _verdict(lab, tmp_path / "reports", "replica-cpu-starved")
    assert "method: latency-held-while-throttled-client-side returned" in starved
    assert "p95_latency_s" in starved.split("latency-held-while-throttled-client-side", 1)[1]


def test_round_robin_without_health_checks_onto_a_slow_replica_fails(
        tmp_path: Path, port_bases: PortBases) -> None:
    with broken_lab(tmp_path, port_bases.take(), "lb-round-robin,no-health-checks") as lab:
        slow = _verdict(lab, tmp_path / "reports", "slow-replica")
    assert "method: latency-held-while-slow-client-side returned" in slow
    assert "p95_latency_s" in slow.split("latency-held-while-slow-client-side", 1)[1]


@pytest.mark.skipif(bool(netns_unavailable()),
                    reason=f"netns mode unavailable here: {netns_unavailable()}")
def test_a_new_broker_connection_per_call_fails_under_packet_loss(
        tmp_path: Path, port_bases: PortBases) -> None:
    """Without kept-alive connections every broker call starts with a handshake, and a
    lost SYN or SYN-ACK is retransmitted only after the kernel's initial 1 s timeout:
    past the service's 0.8 s broker timeout, so those orders fail (the reference keeps
    its connections open and only waits out 200 ms retransmissions)."""
    with broken_lab(tmp_path, port_bases.take(), "no-keepalive", netns_mode=True) as lab:
        lossy = _verdict(lab, tmp_path / "reports", "broker-packet-loss")
    assert "method: sla-held-through-the-loss-client-side returned" in lossy
    assert "error_rate" in lossy.split("sla-held-through-the-loss-client-side", 1)[1]
    logs = (tmp_path / "state" / "logs").glob("replica-*.log")
    assert any('"no answer in time"' in log.read_text() for log in logs)


def test_sabotage_kinds_are_checked() -> None:
    assert Sabotage.from_env({}).kinds == frozenset()
    sabotage = Sabotage.from_env({"GAMEDAY_LAB_SABOTAGE": f"{BROKEN},{UNGUARDED}"})
    argv = " ".join(sabotage.replica_argv())
    assert "--failure-threshold" in argv
    assert "--reset-timeout-s 0.1" in argv
    assert "--ignore-retry-after" in argv
    assert sabotage.broker_args() == " --no-idempotency" and sabotage.server_check() == ""
    assert sabotage.lb_retries() == 0 and Sabotage().lb_retries() == 2
    assert Sabotage().lb_balance() == "leastconn"
    assert Sabotage.from_env({"GAMEDAY_LAB_SABOTAGE": "lb-round-robin"}).lb_balance() == \
        "roundrobin"
    leaks = Sabotage.from_env({"GAMEDAY_LAB_SABOTAGE": "breaker-leaks,ambiguous-as-failed"})
    assert leaks.replica_argv() == ["--breaker-leaks", "--ambiguous-status", "500"]
    assert Sabotage.from_env({"GAMEDAY_LAB_SABOTAGE": "no-keepalive"}).replica_argv() == [
        "--no-keepalive"]
    with pytest.raises(LayoutError, match="valid are no-breaker, no-health-checks"):
        Sabotage.from_env({"GAMEDAY_LAB_SABOTAGE": "no-breakers"})
