"""Reports people read: one HTML page per experiment, the game day's index, history.

``gameday report JOURNAL... [-o DIR]`` (and :func:`write_reports` at the end of
``gameday run``) writes into DIR (default ``reports/``):

- ``<experiment>-<stamp>.html`` per journal: verdict and scorecard first, the timeline
  (client-side and Prometheus, fault windows, SLA thresholds), steady-state probes and
  every activity. Self-contained: it opens offline.
- ``index.html``: one row per experiment, with regressions and trends;
- ``history.jsonl``: one line per experiment run (appended; a run is recorded once);
- ``summary.md``: the same in Markdown, also appended to ``$GITHUB_STEP_SUMMARY`` when set.

Server-side series are queried from the target's Prometheus at report time (or the one
``--prometheus`` names), in the service's metric names (``GAMEDAY_SERVICE``'s spec); when
it cannot answer, the pages say so instead of drawing anything.
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from gameday.clients.prometheus import Prometheus
from gameday.contract import DEFAULT_SELECTOR, ConfigError, GamedayError, MetricNaming
from gameday.engine.journal import read_journal
from gameday.engine.results import ExperimentResult, exit_code, key_figures
from gameday.engine.runner import journal_verdict
from gameday.report.data import ExperimentData, experiment_data
from gameday.report.history import (
    RegressionPolicy,
    append_history,
    history_entry,
    regressions,
    trend,
)
from gameday.report.html import experiment_page
from gameday.report.index import IndexRow, index_page, markdown_summary
from gameday.report.prom import ServerSeries, fetch_server_series
from gameday.service_spec import load_spec
from gameday.settings import resolve

__all__ = ["ReportSettings", "add_arguments", "experiment_name", "run_report", "write_reports"]

STAMP = re.compile(r"-\d{8}T\d{6}$")
SUMMARY_ENV = "GITHUB_STEP_SUMMARY"


@dataclass(frozen=True)
class ReportSettings:
    """Where the server-side series come from (None: the current target's Prometheus,
    "" : do not query), the regression policy, and the service's metric names (None: the
    target's, or with a ``prometheus_url`` those of the spec ``GAMEDAY_SERVICE`` names)."""

    prometheus_url: str | None = None
    policy: RegressionPolicy = field(default_factory=RegressionPolicy)
    naming: MetricNaming | None = None


def experiment_name(journal_path: Path) -> str:
    """``reports/broker-down-20261127T143108.journal.json`` → ``broker-down``."""
    stem = journal_path.name.removesuffix(".json").removesuffix(".journal")
    return STAMP.sub("", stem)


def _prometheus(settings: ReportSettings) -> Prometheus | str:
    """The Prometheus to query, or why there is none."""
    if settings.prometheus_url == "":
        return "not asked for"
    from gameday.targets import get_target  # noqa: PLC0415 (only when asked)
    try:
        if settings.prometheus_url is None:
            prometheus = get_target(None).prometheus()
        else:
            service = resolve().service
            naming = load_spec(service).naming() if service else MetricNaming()
            prometheus = Prometheus(settings.prometheus_url, naming=naming)
    except (GamedayError, OSError) as exc:
        return str(exc)
    if settings.naming is None:
        return prometheus
    return replace(prometheus, naming=settings.naming)


def _server(data: ExperimentData,
            prometheus: Prometheus | str) -> tuple[ServerSeries, float]:
    window_s = float(data.configuration.get("sla_window_s", 10))
    if isinstance(prometheus, str):
        return ServerSeries(problem=f"no Prometheus to query ({prometheus})"), window_s
    selector = str(data.configuration.get("prometheus_service_selector", DEFAULT_SELECTOR))
    return fetch_server_series(
        prometheus, data.start_unix, data.end_unix, selector=selector,
        window_s=window_s), window_s


def _read_journal(path: Path) -> dict[str, Any]:
    journal = read_journal(path)
    if "start" not in journal:
        raise ConfigError(f"{path} is not a Chaos Toolkit journal (no start time)")
    return journal


def _page(result: ExperimentResult, out_dir: Path,
          prometheus: Prometheus | str) -> tuple[ExperimentData, str]:
    assert result.journal_path is not None
    journal = _read_journal(result.journal_path)
    data = experiment_data(result.path.stem, journal, result.verdict)
    server, window_s = _server(data, prometheus)
    name = result.journal_path.name.removesuffix(".json").removesuffix(".journal") + ".html"
    (out_dir / name).write_text(experiment_page(data, server, window_s), encoding="utf-8")
    return data, name


def _rows(pages: Sequence[tuple[ExperimentResult, ExperimentData | None, str]],
          history_path: Path, policy: RegressionPolicy) -> list[IndexRow]:
    entries = [history_entry(d, r.journal_path) if d else {} for r, d, _ in pages]
    history = append_history(history_path, [e for e in entries if e])
    rows = []
    for (result, _, href), entry in zip(pages, entries, strict=True):
        found = regressions(entry, history, policy) if entry else []
        trends = {m: trend(entry, history, m) for m in ("recover_s", "p95_ms")} if entry else {}
        rows.append(IndexRow(result.path.stem, href, result.verdict,
                             entry or dict(result.figures), found, trends))
    return rows


def write_reports(results: Sequence[ExperimentResult], out_dir: Path,
                  settings: ReportSettings | None = None) -> list[Path]:
    """Write every report of a game day into ``out_dir``; return the HTML files written
    (the index first). Appends the runs to ``out_dir/history.jsonl``."""
    settings = settings or ReportSettings()
    out_dir.mkdir(parents=True, exist_ok=True)
    prometheus = _prometheus(settings)
    pages: list[tuple[ExperimentResult, ExperimentData | None, str]] = []
    for result in results:
        if result.journal_path is None:
            pages.append((result, None, ""))
            continue
        data, name = _page(result, out_dir, prometheus)
        pages.append((result, data, name))
    rows = _rows(pages, out_dir / "history.jsonl", settings.policy)
    index = out_dir / "index.html"
    index.write_text(index_page(rows), encoding="utf-8")
    _write_summary(markdown_summary(rows), out_dir / "summary.md", os.environ)
    return [index, *(out_dir / name for _, _, name in pages if name)]


def _write_summary(text: str, path: Path, environ: Mapping[str, str]) -> None:
    path.write_text(text, encoding="utf-8")
    step_summary = environ.get(SUMMARY_ENV)
    if step_summary:
        with Path(step_summary).open("a", encoding="utf-8") as out:
            out.write(text)


def results_from_journals(paths: Sequence[Path]) -> list[ExperimentResult]:
    """The journals' verdicts as ``gameday judge`` gives them (the run's own, recorded in
    the journal; see :func:`gameday.engine.runner.journal_verdict`) into results for
    :func:`write_reports`."""
    results = []
    for path in paths:
        journal = _read_journal(path)
        verdict = journal_verdict(journal)
        name = Path(experiment_name(path) + ".yaml")
        results.append(ExperimentResult(name, verdict, path,
                                        float(journal.get("duration") or 0), key_figures(journal)))
    return results


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments of ``gameday report``."""
    parser.add_argument("journals", nargs="+", type=Path, metavar="JOURNAL",
                        help="Chaos Toolkit journals (reports/*.journal.json)")
    parser.add_argument("-o", "--out", type=Path, default=Path("reports"), metavar="DIR",
                        help="where to write the reports (default: reports/)")
    parser.add_argument("--prometheus", default=None, metavar="URL",
                        help="Prometheus for the server-side series (default: the target's;"
                             " '' for none)")
    parser.add_argument("--margin", type=float, default=RegressionPolicy.margin,
                        help="regression margin against the last passing run "
                             "(default: 0.25 = 25 %% worse)")


def run_report(args: argparse.Namespace) -> int:
    """``gameday report``: write the reports; exit 1 when an experiment failed."""
    results = results_from_journals(args.journals)
    settings = ReportSettings(args.prometheus, RegressionPolicy(margin=args.margin))
    written = write_reports(results, args.out, settings)
    for path in written:
        print(path)
    return exit_code(results)
