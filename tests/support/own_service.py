"""The README's results table (experiment x service) and the runs that check it.

The table sits between ``<!-- results:begin -->`` and ``<!-- results:end -->`` in the
README. Each cell is ``PASS``, ``FAIL: <probe> — <why>`` or ``not run`` (an experiment
newer than the service's runs; nothing to check): a FAIL names the probe whose result
fails the experiment, and the verdict of a real run must name it too.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from support.labs import ROOT, RunningLab, lab_env

README = ROOT / "README.md"
SPECS = {
    "reference": ROOT / "lab" / "service" / "service.yaml",
    "python-fastapi": ROOT / "examples" / "services" / "python-fastapi" / "service.yaml",
    "python-fastapi-fixed": ROOT / "examples" / "services" / "python-fastapi"
    / "service-fixed.yaml",
    "node-opossum": ROOT / "examples" / "services" / "node-opossum" / "service.yaml",
    "node-opossum-fixed": ROOT / "examples" / "services" / "node-opossum" / "service-fixed.yaml",
}
EXAMPLES = ("python-fastapi", "python-fastapi-fixed", "node-opossum", "node-opossum-fixed")
NOT_RUN = "not run"
_CELL = re.compile(r"^(PASS|FAIL): ([a-z0-9-]+) — .+$")


@dataclass(frozen=True)
class Expected:
    """One cell: the verdict, and for a FAIL the probe its reasons must name."""

    verdict: str
    probe: str = ""


def results_table(text: str | None = None) -> dict[str, dict[str, Expected]]:
    """The README's table: experiment -> service -> expected result."""
    body = (text or README.read_text(encoding="utf-8"))
    table = body.split("<!-- results:begin -->", 1)[1].split("<!-- results:end -->", 1)[0]
    rows = [[cell.strip() for cell in line.strip().strip("|").split("|")]
            for line in table.splitlines() if line.startswith("|")]
    header, rows = rows[0], rows[2:]
    services = [cell.strip("`") for cell in header[1:]]
    return {row[0].strip("`"): dict(zip(services, map(_expected, row[1:]), strict=True))
            for row in rows}


def _expected(cell: str) -> Expected:
    if cell in ("PASS", NOT_RUN):
        return Expected(cell)
    match = _CELL.match(cell)
    assert match, (f"README results cell {cell!r}: expected PASS, FAIL: <probe> — <why> "
                   f"or {NOT_RUN}")
    return Expected(match.group(1), match.group(2))


def to_run(table: dict[str, dict[str, Expected]], service: str) -> list[str]:
    """The experiments the table says fail for ``service`` or for its default variant
    (what a run must show: each finding, and that the fix removes it)."""
    default = service.removesuffix("-fixed")
    return [name for name, row in table.items()
            if "FAIL" in (row[service].verdict, row[default].verdict)]


@contextmanager
def service_lab(base: Path, port_base: int, service: str) -> Iterator[RunningLab]:
    """A lab running ``service``'s replicas (its spec set up first), stopped afterwards."""
    running = RunningLab(lab_env(base / "state", port_base, base / "reports"), base / "state")
    up = running.gameday("lab", "up", "--service", str(SPECS[service]), timeout_s=900)
    assert up.returncode == 0, up.stdout + up.stderr
    assert f"with {service} x3" in up.stdout, up.stdout
    try:
        yield running
    finally:
        running.gameday("lab", "down", timeout_s=60)


def verdict_of(lab: RunningLab, experiment: str, reports: Path) -> str:
    """Run one experiment on its own (its own traffic and warm-up) and return the verdict
    block it printed: ``PASS|FAIL  experiments/<name>.yaml ...`` and its reasons."""
    done = subprocess.run(
        [sys.executable, "-m", "gameday", "run", f"experiments/{experiment}.yaml",
         "--reports", str(reports)],
        cwd=ROOT, env=lab.env, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode in (0, 1), done.stdout[-3000:] + done.stderr[-3000:]
    found = re.search(rf"^(PASS|FAIL)  experiments/{experiment}\.yaml.*?(?=^\S|\Z)",
                      done.stdout, re.MULTILINE | re.DOTALL)
    assert found, done.stdout[-3000:]
    return found.group(0)


def check_cell(verdict: str, expected: Expected, where: str) -> None:
    """The run's verdict is the README's cell (a FAIL naming the cell's probe)."""
    assert verdict.split(maxsplit=1)[0] == expected.verdict, f"{where}: README says " \
        f"{expected.verdict}, the run said:\n{verdict}"
    if expected.verdict == "FAIL":
        assert re.search(rf"\b{re.escape(expected.probe)}\b", verdict), \
            f"{where}: README names {expected.probe}, the run said:\n{verdict}"
