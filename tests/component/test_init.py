"""``gameday init DIR``: a suite for your own service that a dry run refuses until its spec
is filled in, and accepts once it is; nothing is overwritten, nothing is started."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml
from support.labs import ROOT, PortBases, lab_env
from support.refusals import assert_refused

CATALOG = ROOT / "experiments"


def _gameday(cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gameday", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def _fill_in(spec: Path) -> None:
    """What a team does: name its service's command (here: the reference service's)."""
    text = spec.read_text().replace("workdir: .", f"workdir: {ROOT}").replace(
        "command: []", 'command: ["{python}", "-m", "lab.service", "--host", "{host}", '
        '"--port", "{port}", "--broker-url", "{broker_url}", "--name", "{name}"]')
    spec.write_text(text)


def test_init_writes_a_suite_the_dry_run_accepts_once_filled_in(
    tmp_path: Path, port_bases: PortBases
) -> None:
    env = lab_env(tmp_path / "state", port_bases.take(), tmp_path / "reports")
    suite = tmp_path / "payments-suite"
    made = _gameday(tmp_path, env, "init", str(suite), "--name", "payments")
    assert made.returncode == 0, made.stdout + made.stderr
    assert f"wrote a resilience suite for payments in {suite}" in made.stdout
    for catalog_file in [*CATALOG.glob("*.yaml"), CATALOG / "incidents" / "TEMPLATE.yaml"]:
        copy = suite / "experiments" / catalog_file.relative_to(CATALOG)
        assert copy.read_text() == catalog_file.read_text()
    workflow = yaml.safe_load((suite / ".github" / "workflows" / "gameday.yml").read_text())
    steps = workflow["jobs"]["gameday"]["steps"]
    assert any("gameday run --service service.yaml" in str(s.get("run")) for s in steps)
    assert yaml.safe_load((suite / "service.yaml").read_text())["name"] == "payments"

    unfilled = _gameday(suite, env, "run", "--dry-run", "--service", "service.yaml")
    assert_refused(unfilled, "command=[]: must be a list of non-empty strings")

    _fill_in(suite / "service.yaml")
    planned = _gameday(suite, env, "run", "--dry-run", "--service", "service.yaml")
    assert planned.returncode == 0, planned.stdout + planned.stderr
    assert "service: payments (service.yaml), 3 replicas, orders POST /orders" in planned.stdout
    names = [experiment.stem for experiment in CATALOG.glob("*.yaml")]
    assert all(f"\n{name} — " in planned.stdout for name in names), planned.stdout
    assert f"{len(names)} experiment(s)" in planned.stdout
    assert not (tmp_path / "state").exists(), "a dry run starts no lab"


def test_init_overwrites_nothing(tmp_path: Path, port_bases: PortBases) -> None:
    env = lab_env(tmp_path / "state", port_bases.take(), tmp_path / "reports")
    suite = tmp_path / "suite"
    (suite / "experiments").mkdir(parents=True)
    (suite / "service.yaml").write_text("mine")
    (suite / "experiments" / "pod-kill.yaml").write_text("mine too")
    refused = _gameday(tmp_path, env, "init", str(suite))
    assert_refused(refused, "already holds experiments/pod-kill.yaml, service.yaml: init "
                            "writes only into a new or empty directory")
    assert (suite / "service.yaml").read_text() == "mine"
    assert not (suite / "README.md").exists()
    (tmp_path / "a-file").write_text("x")
    assert_refused(_gameday(tmp_path, env, "init", str(tmp_path / "a-file")),
                   "is a file: name a directory")
    assert_refused(_gameday(tmp_path, env, "init", str(tmp_path / "x"), "--name", "9 lives"),
                   "--name '9 lives': the service's name must start with a letter")
