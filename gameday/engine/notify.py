"""``gameday run --notify URL``: tell the team's chat when a game day starts, when an
experiment does not pass, and when the game day ends.

Each message is one JSON object POSTed to the URL: ``text`` (what Slack, Mattermost and
Microsoft Teams' incoming webhooks show) and ``gameday``, the structured result::

    {"text": "gameday: FAIL broker-down ...",
     "gameday": {"event": "experiment", "experiment": "broker-down", "verdict": "FAIL",
                 "reasons": [...], "duration_s": 41.2, "report": "file:///.../x.html"}}

``event`` is ``start``, ``experiment`` (sent for FAIL and INCONCLUSIVE only) or ``end``.
``report`` links to the HTML report, under ``--report-url`` when given (where CI
publishes the reports directory), else as a ``file://`` URL on this machine.

The URL may also come from ``$GAMEDAY_NOTIFY_URL`` (a webhook URL is a secret: keep it out
of shell history and process listings). It is never printed or written anywhere; messages
about it name only its scheme and host. A notification that fails is reported on stderr
and never fails or delays the game day beyond its timeout (5 s).
"""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gameday.contract import ConfigError
from gameday.engine.results import ExperimentResult, counts, exit_code

__all__ = ["NOTIFY_ENV", "Notifier", "end_message", "experiment_message", "notifier",
           "report_link", "start_message"]

NOTIFY_ENV = "GAMEDAY_NOTIFY_URL"
NOTIFY_TIMEOUT_S = 5.0
REASONS_IN_TEXT = 3


@dataclass(frozen=True)
class Notifier:
    """Where messages go (``url``) and how reports are linked (``report_url``: a base URL
    for the reports directory, or empty for ``file://`` links)."""

    url: str
    report_url: str = ""
    timeout_s: float = NOTIFY_TIMEOUT_S

    @property
    def shown(self) -> str:
        """The URL as it may be shown: scheme and host only (the path holds the secret)."""
        parts = urllib.parse.urlsplit(self.url)
        return f"{parts.scheme}://{parts.hostname or '?'}"

    def send(self, message: Mapping[str, Any]) -> bool:
        """POST ``message``; on any failure say so on stderr and return False."""
        data = json.dumps(message).encode()
        request = urllib.request.Request(self.url, data=data, method="POST",
                                         headers={"Content-Type": "application/json"})
        event = message.get("gameday", {}).get("event", "?")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                response.read()
        except urllib.error.HTTPError as exc:
            _warn(f"notification '{event}' to {self.shown} was refused: HTTP {exc.code}")
            return False
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            _warn(f"notification '{event}' to {self.shown} failed: {reason}")
            return False
        return True


def _warn(text: str) -> None:
    print(f"gameday: {text} (the game day goes on)", file=sys.stderr, flush=True)


def notifier(url: str | None, report_url: str | None,
             environ: Mapping[str, str]) -> Notifier | None:
    """The notifier for ``--notify`` (else ``$GAMEDAY_NOTIFY_URL``), or None when neither
    is set; a URL that is not http(s)://host... raises ConfigError before anything runs."""
    chosen = url or environ.get(NOTIFY_ENV, "")
    if not chosen:
        if report_url:
            raise ConfigError("--report-url is only used with --notify URL "
                              f"(or ${NOTIFY_ENV}): name where to send the messages")
        return None
    where = "--notify" if url else f"${NOTIFY_ENV}"
    _check_url(chosen, where, secret=True)
    if report_url:
        _check_url(report_url, "--report-url", secret=False)
    return Notifier(chosen, (report_url or "").rstrip("/"))


def _check_url(url: str, where: str, *, secret: bool) -> None:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        shown = f"{parts.scheme or 'no scheme'}://{parts.hostname or 'no host'}" if secret \
            else repr(url)
        raise ConfigError(f"{where} must be an http:// or https:// URL with a host, "
                          f"got {shown}")


def report_link(path: Path, report_url: str) -> str:
    """Where the report ``path`` can be opened: under ``report_url`` when given, else a
    ``file://`` URL."""
    if report_url:
        return f"{report_url}/{urllib.parse.quote(path.name)}"
    return path.resolve().as_uri()


def experiment_page(result: ExperimentResult) -> Path | None:
    """The HTML report the game day writes for ``result`` (None without a journal)."""
    journal = result.journal_path
    if journal is None:
        return None
    return journal.with_name(journal.name.removesuffix(".json").removesuffix(".journal")
                             + ".html")


def start_message(experiments: Sequence[Path], target: str, service: str,
                  index: Path, report_url: str) -> dict[str, Any]:
    """The message when a game day starts."""
    names = [path.stem for path in experiments]
    text = (f"gameday: game day started — {len(names)} experiment"
            f"{'s' if len(names) != 1 else ''} against {target} ({service}): "
            + ", ".join(names))
    return {"text": text, "gameday": {
        "event": "start", "target": target, "service": service, "experiments": names,
        "report": report_link(index, report_url)}}


def experiment_message(result: ExperimentResult, report_url: str) -> dict[str, Any]:
    """The message when an experiment fails or is inconclusive."""
    verdict = result.verdict
    name = result.path.stem
    page = experiment_page(result)
    link = report_link(page, report_url) if page is not None else None
    reasons = list(verdict.shown)
    text = f"gameday: {verdict.kind} {name} — {verdict.title}"
    text += "".join(f"\n• {reason}" for reason in reasons[:REASONS_IN_TEXT])
    if len(reasons) > REASONS_IN_TEXT:
        text += f"\n• … and {len(reasons) - REASONS_IN_TEXT} more"
    if link:
        text += f"\nreport: {link}"
    return {"text": text, "gameday": {
        "event": "experiment", "experiment": name, "verdict": verdict.kind,
        "title": verdict.title, "reasons": reasons, "duration_s": round(result.duration_s, 1),
        "orders": result.figures.get("orders"),
        "report": link}}


def end_message(results: Sequence[ExperimentResult], interrupted: bool, duration_s: float,
                index: Path, report_url: str) -> dict[str, Any]:
    """The message when the game day ends (also after an interruption)."""
    summary = counts(results)
    link = report_link(index, report_url)
    text = (f"gameday: game day {'interrupted' if interrupted else 'ended'} — {summary} "
            f"in {duration_s:.0f} s\nreport: {link}")
    return {"text": text, "gameday": {
        "event": "end", "summary": summary, "interrupted": interrupted,
        "exit_code": exit_code(results), "duration_s": round(duration_s, 1),
        "results": [{"experiment": r.path.stem, "verdict": r.verdict.kind,
                     "duration_s": round(r.duration_s, 1)} for r in results],
        "report": link}}
