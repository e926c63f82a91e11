"""``gameday run --notify``: which URL is used, and what each message says (pure)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gameday.contract import ConfigError
from gameday.engine.notify import (
    NOTIFY_ENV,
    end_message,
    experiment_message,
    notifier,
    report_link,
    start_message,
)
from gameday.engine.results import ExperimentResult
from gameday.engine.verdict import Verdict

HOOK = "https://hooks.example.test/services/T000/B000/s3cr3tPath"


def _failed(reasons: int = 2, journal: Path | None = Path("/r/broker-down-1.journal.json")
            ) -> ExperimentResult:
    verdict = Verdict("Broker down", tuple(f"reason {n}" for n in range(reasons)))
    return ExperimentResult(Path("experiments/broker-down.yaml"), verdict, journal, 41.24,
                            {"orders": "2000: 3 dup"})


def test_the_flag_wins_over_the_environment_and_neither_means_no_notifier() -> None:
    assert notifier(None, None, {}) is None
    assert notifier(None, None, {NOTIFY_ENV: HOOK}).url == HOOK  # type: ignore[union-attr]
    chosen = notifier("http://127.0.0.1:9/x", "https://ci.example.test/run/7/", {NOTIFY_ENV: HOOK})
    assert chosen is not None and chosen.url == "http://127.0.0.1:9/x"
    assert chosen.report_url == "https://ci.example.test/run/7"


@pytest.mark.parametrize("url", ["ftp://host/x", "hooks.example.test/x", "https:///path",
                                 "file:///tmp/x"])
def test_a_bad_url_is_refused_without_showing_its_path(url: str) -> None:
    with pytest.raises(ConfigError, match="must be an http:// or https:// URL") as refused:
        notifier(url, None, {})
    assert "/x" not in str(refused.value) and "path" not in str(refused.value)
    with pytest.raises(ConfigError, match=f"\\${NOTIFY_ENV} must be"):
        notifier(None, None, {NOTIFY_ENV: url})


def test_a_report_url_needs_a_notify_url_and_must_be_http() -> None:
    with pytest.raises(ConfigError, match="--report-url is only used with --notify"):
        notifier(None, "https://ci.example.test/", {})
    with pytest.raises(ConfigError, match=r"--report-url must be .* got 'ci/x'"):
        notifier(HOOK, "ci/x", {})


def test_only_scheme_and_host_are_ever_shown() -> None:
    chosen = notifier(HOOK, None, {})
    assert chosen is not None and chosen.shown == "https://hooks.example.test"


def test_report_links_are_file_urls_or_under_the_report_url() -> None:
    assert report_link(Path("/r/a b.html"), "") == "file:///r/a%20b.html"
    assert report_link(Path("/r/a b.html"), "https://ci.example.test/7") == \
        "https://ci.example.test/7/a%20b.html"


def test_the_start_message_names_the_experiments_target_and_service() -> None:
    message = start_message([Path("experiments/pod-kill.yaml"), Path("e/broker-down.yaml")],
                            "lab", "node-opossum", Path("/r/index.html"), "")
    assert message["gameday"] == {
        "event": "start", "target": "lab", "service": "node-opossum",
        "experiments": ["pod-kill", "broker-down"], "report": "file:///r/index.html"}
    assert message["text"].startswith("gameday: game day started — 2 experiments against "
                                       "lab (node-opossum): pod-kill, broker-down")


def test_a_failed_experiment_carries_its_reasons_and_report() -> None:
    message = experiment_message(_failed(5), "https://ci.example.test/7")
    body = message["gameday"]
    assert body == {
        "event": "experiment", "experiment": "broker-down", "verdict": "FAIL",
        "title": "Broker down", "reasons": [f"reason {n}" for n in range(5)],
        "duration_s": 41.2, "orders": "2000: 3 dup",
        "report": "https://ci.example.test/7/broker-down-1.html"}
    lines = message["text"].splitlines()
    assert lines[0] == "gameday: FAIL broker-down — Broker down"
    assert lines[1:4] == ["• reason 0", "• reason 1", "• reason 2"]
    assert lines[4] == "• … and 2 more"
    assert lines[5] == "report: https://ci.example.test/7/broker-down-1.html"


def test_an_inconclusive_experiment_without_a_journal_has_no_report_link() -> None:
    result = ExperimentResult(Path("experiments/blip.yaml"), Verdict("b", (), ("no trace",)),
                              None, 3.0)
    body = experiment_message(result, "")["gameday"]
    assert body["verdict"] == "INCONCLUSIVE" and body["reasons"] == ["no trace"]
    assert body["report"] is None and body["orders"] is None


def test_the_end_message_sums_up_and_gives_the_exit_code() -> None:
    passed = ExperimentResult(Path("experiments/pod-kill.yaml"), Verdict("k"), None, 20.04)
    message = end_message([passed, _failed()], False, 61.7, Path("/r/index.html"), "")
    body = message["gameday"]
    assert body["event"] == "end" and body["summary"] == "1 passed, 1 failed"
    assert body["exit_code"] == 1 and body["interrupted"] is False
    assert body["results"] == [
        {"experiment": "pod-kill", "verdict": "PASS", "duration_s": 20.0},
        {"experiment": "broker-down", "verdict": "FAIL", "duration_s": 41.2}]
    assert message["text"] == ("gameday: game day ended — 1 passed, 1 failed in 62 s\n"
                               "report: file:///r/index.html")
    stopped = end_message([passed], True, 5.0, Path("/r/index.html"), "")
    assert stopped["text"].startswith("gameday: game day interrupted — 1 passed, 0 failed")
    assert stopped["gameday"]["interrupted"] is True
