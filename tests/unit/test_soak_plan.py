"""The soak (``make soak``, ``python -m bench.soak``): its pure parts exhaustively (fault
schedule, memory growth and judging, option checks, verdict), then short real runs on
a lab of their own (tests/lab/test_soak.py): one to the end, one
interrupted with Ctrl-C in the middle of a fault."""

from __future__ import annotations

import itertools
import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
REPLICAS = ["replica-1", "replica-2", "replica-3"]
SMAPS = """55d0c8a00000-7ffd1e5f2000 ---p 00000000 00:00 0                          [rollup]
Rss:               43520 kB
Pss:               30000 kB
Pss_Anon:          26000 kB
Shared_Clean:      14000 kB
Shared_Dirty:          0 kB
Private_Clean:      1500 kB
Private_Dirty:     28020 kB
Referenced:        43520 kB
Swap:                  0 kB
"""


# --- the fault schedule ---

@pytest.mark.parametrize("duration_s", [15.0, 37.5, 120.0, 600.0])
@pytest.mark.parametrize("seed", range(40))
def test_schedule_stays_in_bounds(soak: SimpleNamespace, seed: int, duration_s: float) -> None:
    schedule = soak.plan.fault_schedule(seed, duration_s, REPLICAS)
    assert schedule, "the shortest soak still injects a fault"
    assert schedule[0].start_s >= 3.0
    for fault, following in itertools.pairwise(schedule):
        assert following.start_s >= fault.start_s + fault.hold_s + 3.0 - 1e-6
    for fault in schedule:
        assert 3.0 - 1e-6 <= fault.hold_s <= 10.0
    last = schedule[-1]
    assert last.start_s + last.hold_s <= duration_s - 3.0 + 1e-6  # a quiet gap ends the phase


def test_schedule_is_repeatable_by_seed(soak: SimpleNamespace) -> None:
    one = soak.plan.fault_schedule(7, 600, REPLICAS)
    assert one == soak.plan.fault_schedule(7, 600, REPLICAS)
    assert one != soak.plan.fault_schedule(8, 600, REPLICAS)
    assert 40 <= len(one) <= 80  # a fault every 6..18 s


def test_schedule_uses_every_kind_and_spares_the_first_replica(soak: SimpleNamespace) -> None:
    faults = [f for seed in range(20) for f in soak.plan.fault_schedule(seed, 600, REPLICAS)]
    assert {f.name for f in faults} == {k.name for k in soak.plan.FAULT_KINDS}
    kills = [f.params["selector"] for f in faults if f.action == "kill"]
    assert set(kills) == {"name=replica-2", "name=replica-3"}
    links = {f.params["link"] for f in faults if f.name == "replica-partition"}
    assert links == {f"lb-{r}" for r in REPLICAS}
    for fault in faults:
        if fault.action in ("partition", "degrade"):
            assert fault.params["link"] in ["service-broker", *(f"lb-{r}" for r in REPLICAS)]


def test_schedule_with_one_replica_never_kills(soak: SimpleNamespace) -> None:
    faults = [f for seed in range(20) for f in soak.plan.fault_schedule(seed, 600, ["r-1"])]
    assert faults and not [f for f in faults if f.action == "kill"]


def test_fault_kinds_are_valid_injections(soak: SimpleNamespace) -> None:
    from gameday.faults.inject import toxic_body  # noqa: PLC0415
    from lab.broker.modeparse import parse_mode  # noqa: PLC0415

    for kind in soak.plan.FAULT_KINDS:
        params = dict(kind.params)
        if kind.action == "degrade":
            toxic_body(params["toxic"], params["stream"], params["toxicity"], params["attributes"])
        elif kind.action == "broker":
            assert parse_mode(params).name == params["mode"]
        else:
            assert kind.action in ("partition", "kill")


def test_fault_describes_itself(soak: SimpleNamespace) -> None:
    fault = soak.plan.PlannedFault("broker-link-latency", "degrade",
                                   {"link": "service-broker", "toxic": "latency",
                                    "attributes": {"latency": 300}}, 3.0, 4.0)
    assert fault.describe() == ("broker-link-latency (link=service-broker, toxic=latency, "
                                "latency=300)")


# --- memory ---

def test_parse_smaps_rollup(soak: SimpleNamespace) -> None:
    sample = soak.memory.parse_smaps_rollup(42, SMAPS)
    assert sample == soak.memory.MemorySample(42, 43520, 30000, 1500 + 28020)
    with pytest.raises(ValueError, match="Private_Dirty"):
        soak.memory.parse_smaps_rollup(42, "Rss: 1 kB\nPss: 1 kB\nPrivate_Clean: 1 kB\n")


@pytest.mark.parametrize(("start", "end", "growth"),
                         [(100, 120, 20.0), (100, 100, 0.0), (200, 150, -25.0), (3, 4, 100 / 3)])
def test_growth_pct(soak: SimpleNamespace, start: float, end: float, growth: float) -> None:
    assert soak.memory.growth_pct(start, end) == pytest.approx(growth)


def test_growth_of_nothing_is_refused(soak: SimpleNamespace) -> None:
    with pytest.raises(ValueError, match="> 0"):
        soak.memory.growth_pct(0, 10)


def _sample(soak: SimpleNamespace, pid: int, rss: int) -> Any:
    return soak.memory.MemorySample(pid, rss, rss // 2, rss // 3)


def _samples(soak: SimpleNamespace, start: dict[str, Any], end: dict[str, Any],
             mid: dict[str, Any] | None = None) -> Any:
    return soak.memory.Samples(start, mid if mid is not None else start, end)


def test_memory_rows_judge_growth_below_the_limit(soak: SimpleNamespace) -> None:
    start = {"broker": _sample(soak, 1, 1000), "replica-1": _sample(soak, 2, 1000)}
    end = {"broker": _sample(soak, 1, 1199), "replica-1": _sample(soak, 2, 1200)}
    broker, replica = soak.memory.memory_rows(_samples(soak, start, end), {}, 20.0)
    assert (broker.judged, broker.ok) == (True, True)
    assert broker.growth_pct == pytest.approx(19.9)
    assert (replica.judged, replica.ok) == (True, False)  # exactly 20 % is not < 20 %


def test_memory_rows_restarts_and_missing_processes(soak: SimpleNamespace) -> None:
    start = {"replica-2": _sample(soak, 5, 1000), "replica-3": _sample(soak, 6, 1000),
             "haproxy": _sample(soak, 7, 1000)}
    end = {"replica-2": _sample(soak, 50, 3000), "replica-3": _sample(soak, 60, 900),
           "prometheus": _sample(soak, 8, 1000)}
    rows = {r.role: r for r in soak.memory.memory_rows(_samples(soak, start, end),
                                                      {"replica-2": 3}, 20.0)}
    assert list(rows) == ["replica-2", "replica-3", "haproxy", "prometheus"]
    killed = rows["replica-2"]
    assert (killed.judged, killed.ok) == (False, True) and "killed 3x" in killed.note
    crashed = rows["replica-3"]
    assert (crashed.judged, crashed.ok) == (False, False) and "crash" in crashed.note
    assert not rows["haproxy"].ok and "at the end" in rows["haproxy"].note
    assert not rows["prometheus"].ok and "at the start" in rows["prometheus"].note


def test_memory_rows_not_judged_are_shown_with_their_reason(soak: SimpleNamespace) -> None:
    start = {"prometheus": _sample(soak, 8, 1000)}
    end = {"prometheus": _sample(soak, 8, 1500)}
    [row] = soak.memory.memory_rows(_samples(soak, start, end), {}, 20.0,
                                    {"prometheus": "not judged: by design"})
    assert (row.judged, row.ok, row.note) == (False, True, "not judged: by design")
    assert row.growth_pct == pytest.approx(50.0)


def test_memory_table(soak: SimpleNamespace) -> None:
    start = {"broker": _sample(soak, 1, 2048), "replica-2": _sample(soak, 2, 2048)}
    mid = {"broker": _sample(soak, 1, 3072)}
    end = {"broker": _sample(soak, 1, 4096), "replica-2": _sample(soak, 3, 2048)}
    rows = soak.memory.memory_rows(_samples(soak, start, end, mid), {"replica-2": 1}, 20.0)
    lines = soak.memory.format_table(rows).splitlines()
    assert lines[0].split()[:7] == ["process", "pid", "rss_start", "rss_mid", "rss_end",
                                    "rss_%", "uss_%"]
    assert lines[1].split()[:8] == ["broker", "1", "2.0", "3.0", "4.0", "+100.0", "+100.1",
                                    "FAIL"]
    assert lines[2].split()[:5] == ["replica-2", "2->3", "2.0", "-", "2.0"]
    assert lines[2].split()[7] == "-"


def test_sample_reads_this_process(soak: SimpleNamespace) -> None:
    found = soak.memory.sample({"me": os.getpid(), "gone": 2**22 + 1}, readings=2,
                               interval_s=0.01)
    assert list(found) == ["me"]
    assert found["me"].rss_kib >= found["me"].uss_kib > 0


# --- options ---

def test_default_settings(soak: SimpleNamespace) -> None:
    settings = soak.plan.parse_settings([], draw_seed=lambda: 1234)
    assert (settings.seed, settings.duration_s, settings.rate_rps) == (1234, 600.0, 200.0)
    assert (settings.port_base, settings.warmup_s, settings.state_dir) == (20500, 30.0, None)
    assert settings.growth_limit_pct == 20.0 and settings.warmup_faults
    assert soak.plan.parse_settings(["--seed", "9"]).seed == 9
    assert not soak.plan.parse_settings(["--no-warmup-faults"]).warmup_faults


@pytest.mark.parametrize(("argv", "message"), [
    (["--rate", "0"], "--rate must be between 1 and 1000 orders/s, got 0"),
    (["--rate", "nan"], "--rate must be between"),
    (["--rate", "fast"], "invalid float value: 'fast'"),
    (["--duration-s", "5"], "--duration-s must be between 15 and 7200 seconds, got 5"),
    (["--duration-s", "-600"], "--duration-s must be between"),
    (["--duration-s", "inf"], "--duration-s must be between"),
    (["--warmup-s", "1"], "--warmup-s must be between 5 and 600"),
    (["--seed", "-1"], "--seed must be between 0 and 4294967295, got -1"),
    (["--seed", "1.5"], "invalid int value: '1.5'"),
    (["--port-base", "80"], "--port-base must be between 1024 and 65000"),
    (["--rate", "0", "--seed", "-1"], "orders/s, got 0; --seed must be"),
    (["--unknown"], "unrecognized arguments: --unknown"),
])
def test_bad_options_exit_2(soak: SimpleNamespace, capsys: pytest.CaptureFixture[str],
                            argv: list[str], message: str) -> None:
    with pytest.raises(SystemExit) as exited:
        soak.plan.parse_settings(argv)
    assert exited.value.code == 2
    assert message in capsys.readouterr().err


def test_state_dir_must_be_new_or_empty(soak: SimpleNamespace, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    assert soak.plan.parse_settings(["--state-dir", str(tmp_path / "new")]).state_dir
    assert soak.plan.parse_settings(["--state-dir", str(tmp_path)]).state_dir == tmp_path
    (tmp_path / "ledger").write_text("x")
    with pytest.raises(SystemExit) as exited:
        soak.plan.parse_settings(["--state-dir", str(tmp_path)])
    assert exited.value.code == 2
    assert "must be a new or empty directory" in capsys.readouterr().err


# --- the verdict ---

def _result(soak: SimpleNamespace, **changes: Any) -> Any:
    rows = soak.memory.memory_rows(_samples(soak, {"broker": _sample(soak, 1, 1000)},
                                            {"broker": _sample(soak, 1, 1010)}), {}, 20.0)
    faults = soak.faults.FaultRecord(injected={"broker-errors": 2})
    fields = {"rows": rows, "load": {"achieved_rps": 199.9},
              "reconciliation": {"acked": 10, "filled": 10, "lost": 0, "duplicated": 0,
                                 "unknown_outcome": 0},
              "faults": faults, "warmup": soak.faults.FaultRecord(),
              "recorded": {"injected": 2, "undone": 2, "pending": 0},
              "leftovers": [], **changes}
    return soak.main.SoakResult(**fields)


def test_reasons_of_a_clean_soak_are_none(soak: SimpleNamespace) -> None:
    settings = soak.plan.SoakSettings(seed=1)
    assert soak.main.reasons(_result(soak), settings) == []


@pytest.mark.parametrize(("changes", "reason"), [
    ({"reconciliation": {"lost": 1, "duplicated": 0}}, "1 lost, 0 duplicated"),
    ({"reconciliation": {"lost": 0, "duplicated": 2}}, "0 lost, 2 duplicated"),
    ({"reconciliation": {"lost": 0, "duplicated": 0, "failed_but_filled": 3}},
     "3 answered failed but filled"),
    ({"load": {"achieved_rps": 150.0}}, "150.0 orders/s achieved"),
    ({"leftovers": ["proxy service-broker is disabled"]}, "service-broker is disabled"),
    ({"recorded": {"pending": 1}}, "1 fault(s) still pending"),
])
def test_reasons_name_each_failure(soak: SimpleNamespace, changes: dict[str, Any],
                                   reason: str) -> None:
    settings = soak.plan.SoakSettings(seed=1)
    if "reconciliation" in changes:
        changes["reconciliation"] = {"acked": 1, "filled": 1, "unknown_outcome": 0,
                                     **changes["reconciliation"]}
    found = soak.main.reasons(_result(soak, **changes), settings)
    assert len(found) == 1 and reason in found[0]


def test_reasons_for_memory_and_faults(soak: SimpleNamespace) -> None:
    rows = soak.memory.memory_rows(_samples(soak, {"broker": _sample(soak, 1, 1000)},
                                            {"broker": _sample(soak, 1, 1300)}), {}, 20.0)
    faults = soak.faults.FaultRecord(errors=["broker-errors at 3.0 s: inject failed: 503"])
    warmup = soak.faults.FaultRecord(errors=["replica-kill at 3.0 s: heal failed: timeout"])
    found = soak.main.reasons(_result(soak, rows=rows, faults=faults, warmup=warmup),
                              soak.plan.SoakSettings(seed=1))
    assert found == ["memory: broker: RSS growth >= 20 %", "faults: none was injected",
                     "faults: replica-kill at 3.0 s: heal failed: timeout",
                     "faults: broker-errors at 3.0 s: inject failed: 503"]


def test_prometheus_is_shown_but_not_judged(soak: SimpleNamespace) -> None:
    assert list(soak.main.NOT_JUDGED) == ["prometheus"]


def test_plan_and_load_bound(soak: SimpleNamespace) -> None:
    settings = soak.plan.SoakSettings(seed=5, duration_s=600, warmup_s=30)
    plan = soak.main.make_plan(settings)
    assert plan.faults == soak.plan.fault_schedule(5, 600, REPLICAS)
    assert [f.name for f in plan.warmup] == [f.name for f in
                                             soak.plan.warmup_schedule(5, REPLICAS)]
    last = plan.warmup[-1]
    assert plan.load_bound_s(settings) == 30 + last.start_s + last.hold_s + 600 + 300
    quick = soak.plan.SoakSettings(seed=5, warmup_faults=False)
    assert soak.main.make_plan(quick).warmup == []


def test_warmup_round_has_every_kind_once(soak: SimpleNamespace) -> None:
    for seed in range(20):
        round_ = soak.plan.warmup_schedule(seed, REPLICAS, hold_s=5.0, gap_s=3.0)
        assert sorted(f.name for f in round_) == sorted(k.name for k in soak.plan.FAULT_KINDS)
        assert [f.start_s for f in round_] == [3.0 + 8.0 * i for i in range(len(round_))]
        assert all(f.hold_s == 5.0 for f in round_)
        kill = next(f for f in round_ if f.action == "kill")
        assert kill.params["selector"] != "name=replica-1"
    orders = {tuple(f.name for f in soak.plan.warmup_schedule(s, REPLICAS)) for s in range(5)}
    assert len(orders) > 1  # the order depends on the seed


# --- real runs ---

