"""Reports: the figures on the pages equal those computed from real journals, failures
show first, history flags regressions, the Markdown summary reaches CI."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from support.reports import FAILING, PASSING, POD_KILL, write_report

from gameday.cli.main import main
from gameday.engine.verdict import judge
from gameday.report.data import experiment_data, fault_windows, unix_time
from gameday.report.history import RegressionPolicy, passing_before, read_history, regressions
from gameday.report.html import experiment_page
from gameday.report.prom import ServerSeries
from gameday.report.write import (
    experiment_name,
)


def _journal(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def _figures(html: str) -> dict[str, str]:
    return dict(re.findall(r'data-figure="(\w+)" data-value="([^"]*)"', html))


def test_scorecard_figures_equal_those_computed_from_the_journal(tmp_path: Path) -> None:
    out = write_report(tmp_path, PASSING)
    figures = _figures((out / "broker-down-20261127T143108.html").read_text())
    journal = _journal(PASSING)
    runs = {r["activity"]["name"]: r["output"] for r in journal["run"]}
    summary = journal["extensions"][0]["summary"]
    failed = summary["errors"]["5xx"] + summary["errors"]["timeout"] \
        + summary["errors"]["connection"]
    assert float(figures["trip_s"]) == round(runs["time-to-trip"], 3)
    assert float(figures["recover_s"]) == round(runs["time-to-recover"], 3)
    assert float(figures["client_p95_ms"]) == summary["latency_ms"]["p95"]
    assert float(figures["worst_p95_ms"]) == max(e["p95_ms"] for e in summary["timeline"])
    assert int(figures["failed"]) == failed == summary["due"] - round(
        summary["due"] * summary["availability"])
    assert float(figures["budget_burned"]) == pytest.approx(failed / (summary["due"] * 0.005))


def test_orders_come_from_the_reconcile_probe(tmp_path: Path) -> None:
    out = write_report(tmp_path, POD_KILL)
    figures = _figures((out / "pod-kill-majority-20261127T143433.html").read_text())
    reconcile = next(r["output"] for r in _journal(POD_KILL)["run"]
                     if r["activity"]["provider"]["func"] == "reconcile")
    for key in ("acked", "lost", "duplicated", "unknown_outcome"):
        assert int(figures[key]) == reconcile[key]


def test_client_series_is_the_load_generators_timeline() -> None:
    journal = _journal(PASSING)
    data = experiment_data("broker-down", journal, judge(journal))
    timeline = journal["extensions"][0]["summary"]["timeline"]
    assert [c.answered for c in data.client] == [e["answered"] for e in timeline]
    assert [c.p95_ms for c in data.client] == [e["p95_ms"] for e in timeline]
    steps = {round(b.x_s - a.x_s, 6) for a, b in zip(data.client, data.client[1:], strict=False)}
    assert steps == {1.0}
    assert -1.0 <= data.client[0].x_s <= 1.0
    assert "±0.5 s" in data.client_note


def test_fault_windows_span_inject_to_undo() -> None:
    journal = _journal(PASSING)
    start = unix_time(journal["start"])
    (window,) = fault_windows(journal, start, unix_time(journal["end"]))
    down, heal = journal["run"][0], journal["run"][5]
    assert window.label == "take-broker-link-down" and window.undone
    assert window.start_s == pytest.approx(unix_time(down["start"]) - start)
    assert window.end_s == pytest.approx(unix_time(heal["end"]) - start)


def test_packet_loss_spans_its_drop_to_the_heal_of_its_link() -> None:
    journal = _journal(PASSING)
    provider = journal["run"][0]["activity"]["provider"]
    provider.update(func="drop_packets", arguments={"link": "service-broker",
                                                    "loss_percent": 2})
    start = unix_time(journal["start"])
    (window,) = fault_windows(journal, start, unix_time(journal["end"]))
    assert window.undone
    assert window.end_s == pytest.approx(unix_time(journal["run"][5]["end"]) - start)


def test_pod_kill_is_an_instant_fault() -> None:
    journal = _journal(POD_KILL)
    start = unix_time(journal["start"])
    (window,) = fault_windows(journal, start, unix_time(journal["end"]))
    assert window.start_s == window.end_s


def test_never_undone_fault_lasts_to_the_end() -> None:
    journal = _journal(PASSING)
    journal["run"] = [r for r in journal["run"] if r["activity"]["name"] != "restore-broker-link"]
    journal["rollbacks"] = []
    start, end = unix_time(journal["start"]), unix_time(journal["end"])
    (window,) = fault_windows(journal, start, end)
    assert not window.undone and window.end_s == pytest.approx(end - start)


def test_failed_experiment_shows_verdict_and_reasons_first(tmp_path: Path) -> None:
    out = write_report(tmp_path, FAILING)
    html = (out / "broker-down-20261127T153108.html").read_text()
    body = html[html.index("<body>"):]
    assert body.startswith('<body><header class="verdict fail" data-verdict="fail">')
    verdict = judge(_journal(FAILING), required_controls=["gameday-traffic"])
    header = body[: body.index("</header>")]
    assert "FAIL" in header
    for reason in verdict.reasons:
        assert reason.split(",")[0].replace('"', "&quot;") in header


def test_history_flags_a_regression_against_the_last_passing_run_and_bound(
        tmp_path: Path) -> None:
    out = write_report(tmp_path, PASSING, FAILING)
    history = read_history(out / "history.jsonl")
    assert [h["passed"] for h in history] == [True, False]
    index = (out / "index.html").read_text()
    row = index[index.index('data-experiment="broker-down"'):]
    assert "time to recover 27.5 s is over its bound 20 s" in index
    assert "vs 1.04 s in the last passing run" in index
    assert row.index("FAIL") < row.index("</tr>")


def test_a_run_is_recorded_once(tmp_path: Path) -> None:
    write_report(tmp_path, PASSING)
    out = write_report(tmp_path, PASSING)
    assert len(read_history(out / "history.jsonl")) == 1


def test_regression_margin_and_floor() -> None:
    policy = RegressionPolicy(margin=0.25, min_delta_s=0.5)
    assert not policy.worse("recover_s", 1.2, 1.0)
    assert not policy.worse("recover_s", 0.4, 0.1)
    assert policy.worse("recover_s", 2.0, 1.0)


def test_markdown_summary_goes_to_the_ci_step_summary(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    step = tmp_path / "step.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(step))
    out = write_report(tmp_path, POD_KILL, FAILING)
    text = step.read_text()
    assert text == (out / "summary.md").read_text()
    assert text.startswith("## ❌ Game day: 1 passed, 1 failed")
    assert "| broker-down | ❌ FAIL |" in text and "### ❌ broker-down" in text


def test_report_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shutil.copy(FAILING, tmp_path / FAILING.name)
    code = main(["report", str(tmp_path / FAILING.name), "-o", str(tmp_path / "out"),
                 "--prometheus", ""])
    assert code == 1
    assert (tmp_path / "out" / "index.html").exists()
    assert "broker-down-20261127T153108.html" in capsys.readouterr().out


def test_experiment_name_from_a_journal_path() -> None:
    assert experiment_name(PASSING) == "broker-down"
    assert experiment_name(Path("x/pod-kill-majority.journal.json")) == "pod-kill-majority"


def test_the_report_names_the_service_under_test() -> None:
    journal = _journal(PASSING)
    assert experiment_data("broker-down", journal, judge(journal)).service == "?"
    journal["extensions"][0]["service"] = "node-opossum-fixed"
    data = experiment_data("broker-down", journal, judge(journal))
    assert data.service == "node-opossum-fixed"
    page = experiment_page(data, ServerSeries(), 10.0)
    assert "service node-opossum-fixed ·" in page


def test_an_inconclusive_run_is_amber_skipped_and_exits_4(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    journal = _journal(PASSING)
    probe = {"type": "probe", "name": "broker-fault-hit-orders",
             "tolerance": {"type": "range", "range": [1, 1000000000]},
             "provider": {"type": "python", "module": "probes.broker", "func": "mode_hits",
                          "arguments": {"mode": "error"}}}
    journal["experiment"]["method"].append(probe)
    journal["run"].append({"activity": probe, "status": "succeeded", "output": 0})
    path = tmp_path / "broker-down-20261202T150000.journal.json"
    path.write_text(json.dumps(journal), encoding="utf-8")
    step = tmp_path / "step.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(step))
    code = main(["report", str(path), "-o", str(tmp_path / "out"), "--prometheus", ""])
    assert code == 4
    index = (tmp_path / "out" / "index.html").read_text()
    assert 'data-verdict="inconclusive"' in index and "0 passed, 0 failed, 1 inconclusive" in index
    page = (tmp_path / "out" / "broker-down-20261202T150000.html").read_text()
    assert "the fault left no evidence that it took effect: broker-fault-hit-orders" in page
    assert step.read_text().startswith("## ⚠️ Game day: 0 passed, 0 failed, 1 inconclusive")
    history = read_history(tmp_path / "out" / "history.jsonl")
    assert history[0]["verdict"] == "INCONCLUSIVE" and history[0]["passed"] is False


def _runs(metric: str, values: list[float], passed: bool = True) -> list[dict[str, object]]:
    return [{"experiment": "broker-down", "started_unix": 1000.0 + n, "passed": passed,
             "started": f"run {n}", metric: v} for n, v in enumerate(values)]


def test_with_enough_runs_a_change_is_judged_against_their_noise() -> None:
    policy = RegressionPolicy()
    history = _runs("recover_s", [4.3, 4.6, 4.1, 4.4, 4.9, 4.2])
    within = {**history[-1], "started_unix": 2000.0, "recover_s": 5.2}
    assert regressions(within, [*history, within], policy) == [], "inside the noise"
    doubled = {**within, "recover_s": 9.4}
    found = regressions(doubled, [*history, doubled], policy)
    assert len(found) == 1 and found[0].startswith(
        "time to recover 9.4 s vs a median of 4.35 s over the last 6 passing runs: +5.05 s")
    assert "their run-to-run noise (0.3 s); allowed +0.89 s" in found[0]


def test_a_noisy_figure_needs_a_bigger_change() -> None:
    history = _runs("p95_ms", [40.0, 90.0, 55.0, 120.0, 60.0])
    later = {**history[-1], "started_unix": 2000.0, "p95_ms": 140.0}
    assert regressions(later, [*history, later], RegressionPolicy()) == [], \
        "a 25 % rise is within this figure's own run-to-run noise"
    margin_only = regressions(later, [*history[-2:], later], RegressionPolicy())
    assert margin_only and "more than 25% worse" in margin_only[0], "two runs: the margin"


def test_identical_runs_and_failed_runs_do_not_move_the_baseline() -> None:
    history = _runs("trip_s", [0.06, 0.06, 0.06])
    same = {**history[0], "started_unix": 2000.0}
    assert regressions(same, [*history, same], RegressionPolicy()) == []
    failed = _runs("trip_s", [9.0, 9.0, 9.0], passed=False)
    assert passing_before(same, [*failed, same]) == []
