"""``explore pairs`` (pure): which pairs run, which are skipped and why, what is found."""

from __future__ import annotations

from gameday.engine.pairs import SINGLES, Outcome, findings, plan_pairs, skip_reason

BY_NAME = {s.name: s for s in SINGLES}


def test_pruning_leaves_the_pairs_that_can_tell_something() -> None:
    run, skipped = plan_pairs(SINGLES, failed=set())
    names = {(a.name, b.name) for a, b in run}
    assert ("broker-slow", "pod-kill") in names and ("broker-down", "replica-partition") in names
    assert len(run) + len(skipped) == len(SINGLES) * (len(SINGLES) - 1) // 2
    why = dict(skipped)
    assert why[("broker-slow", "broker-errors")] == \
        "both set the broker simulator's mode (one at a time)"
    assert why[("broker-down", "broker-flapping")].startswith("the same as broker-down alone")
    assert all(a != b for a, b in names) and len(names) == len(run), "each pair once"


def test_a_fault_that_fails_alone_is_not_paired() -> None:
    run, skipped = plan_pairs(SINGLES, failed={"pod-kill"})
    assert all("pod-kill" not in (a.name, b.name) for a, b in run)
    assert skip_reason(BY_NAME["replica-partition"], BY_NAME["pod-kill"], {"pod-kill"}) == \
        "pod-kill already fails alone"
    assert sum("already fails alone" in why for _, why in skipped) == len(SINGLES) - 1


def test_a_finding_is_a_pair_failing_where_each_fault_holds() -> None:
    singles = [Outcome(("broker-slow",), 0.01, 9.0, True), Outcome(("pod-kill",), 0.06, 0.5,
                                                                   True),
               Outcome(("replica-partition",), 0.05, None, False)]
    pairs = [Outcome(("broker-slow", "pod-kill"), 1.4, 9.9, False),
             Outcome(("replica-partition", "pod-kill"), 1.2, None, False),
             Outcome(("broker-slow", "replica-partition"), 0.01, 9.0, True)]
    assert findings(singles, pairs) == [
        "broker-slow + pod-kill fails together (p95 1400 ms during, recovered in 9.9 s) "
        "while each holds alone"]
