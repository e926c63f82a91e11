"""``gameday init DIR``: a resilience suite for a team's own service, to fill in.

What it writes (nothing is overwritten; an existing file is an error naming it):

- ``service.yaml``: the service spec (docs/contract.md), with the command left empty:
  ``gameday run --dry-run --service service.yaml`` refuses it, naming ``command``, until
  it is filled in;
- ``experiments/``: a copy of gameday's catalog, and ``experiments/incidents/TEMPLATE.yaml``
  for post-incident verification;
- ``.github/workflows/gameday.yml``: a nightly CI job running the game day on a lab with
  the service, publishing the reports and the JUnit XML;
- ``README.md``: the next steps.

The files' contents are made here (pure); the command writes them.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from gameday.contract import ConfigError

__all__ = ["CATALOG_ROOT", "suite_files"]

CATALOG_ROOT = Path(__file__).resolve().parents[2] / "experiments"

SPEC = """\
# The service under test, for gameday (format: docs/contract.md of gameday, section
# "Service spec"). Fill in `command` (and whatever differs below), then check it:
#   gameday lab check-service service.yaml      # the contract, one replica
#   gameday run --dry-run --service service.yaml  # the game day's plan, nothing broken
name: {name}
description: our broker-integration service
# setup: ["sh", "setup.sh"]        # run once in workdir before the lab starts (optional)
workdir: .                         # relative to this file
# The program and its arguments (no shell). Placeholders: {{python}} {{host}} {{port}}
# {{broker_url}} {{name}} {{log_dir}}. The service must listen on {{host}}:{{port}} and
# send its broker calls to {{broker_url}}, e.g.
#   command: ["{{python}}", "-m", "myservice", "--port", "{{port}}", "--broker", "{{broker_url}}"]
command: []
env: {{}}                          # extra environment for every replica
replicas: 3
paths: {{health: /health, ready: /ready, metrics: /metrics}}
order:                             # how the load generator places one order
  method: POST
  path: /orders
  body: {{client_order_id: "{{client_order_id}}", instrument: "{{instrument}}",
         units: "{{units}}", price: "{{price}}"}}
  # What each answer means. `unknown`: the service cannot know whether the broker
  # filled the order (a timeout, a lost reply); never answer those as `failed`.
  statuses: {{filled: [200], rejected: [422], failed: [500], unknown: [502, 504],
             circuit_open: [503]}}
stop: {{signal: SIGTERM, grace_s: 10}}
metrics: {{}}                      # contract metric name -> your name, where they differ
labels: {{}}                       # contract label name -> your label name, where they differ
"""

WORKFLOW = """\
# A nightly game day: the service in gameday's lab (real processes on one runner),
# every experiment of experiments/, reports and JUnit XML kept as artifacts.
name: gameday
on:
  schedule:
    - cron: "17 3 * * *"
  workflow_dispatch: {}
jobs:
  gameday:
    runs-on: ubuntu-latest
    timeout-minutes: 45
    steps:
      - uses: actions/checkout@v4
      - uses: actions/setup-python@v5
        with:
          python-version: "3.11"
      - name: Install gameday and the lab's programs
        run: |
          sudo apt-get update && sudo apt-get install -y prometheus haproxy
          # Where your copy of gameday lives (a fork, a tag of it).
          pip install "gameday @ git+${{ vars.GAMEDAY_GIT_URL }}"
      - name: Game day
        run: gameday run --service SPEC --junit reports/junit.xml
        env:
          # Chat messages at start, on each failure and at the end (optional).
          GAMEDAY_NOTIFY_URL: ${{ secrets.GAMEDAY_NOTIFY_URL }}
      - uses: actions/upload-artifact@v4
        if: always()
        with:
          name: gameday-reports
          path: reports/
"""

README = """\
# Resilience suite: {name}

Made by `gameday init`. Next steps, in this directory:

1. Fill in `service.yaml`: at least `command` (how to start one replica of the service).
2. `gameday lab check-service service.yaml`: does the service meet gameday's contract
   (metrics, health, readiness, the client order id reaching the broker)?
3. `gameday run --dry-run --service service.yaml`: the game day's plan; nothing is broken.
4. `gameday run --service service.yaml`: the game day, on a lab running your service.

`experiments/` is a copy of gameday's catalog: drop what does not apply, tighten the
bounds in each experiment's `configuration`. After an incident, copy
`experiments/incidents/TEMPLATE.yaml` and fill it in from the review.
`.github/workflows/gameday.yml` runs the game day every night (set the repository
variable `GAMEDAY_GIT_URL` and, for chat messages, the secret `GAMEDAY_NOTIFY_URL`).
"""


def suite_files(name: str, catalog: Mapping[str, str]) -> dict[str, str]:
    """Relative path -> text of every file of a new suite for the service ``name``;
    ``catalog``: relative path (under experiments/) -> text of gameday's catalog."""
    _check_name(name)
    files = {"service.yaml": SPEC.format(name=name),
             ".github/workflows/gameday.yml": WORKFLOW.replace("SPEC", "service.yaml"),
             "README.md": README.format(name=name)}
    files.update({f"experiments/{path}": text for path, text in catalog.items()})
    return files


def _check_name(name: str) -> None:
    if not name or not all(c.isalnum() or c in "-_" for c in name) or not name[0].isalpha():
        raise ConfigError(f"--name {name!r}: the service's name must start with a letter and "
                          "hold only letters, digits, '-' and '_'")


def read_catalog(root: Path = CATALOG_ROOT) -> dict[str, str]:
    """gameday's catalog: every experiment and the incident template, by relative path."""
    if not root.is_dir():
        raise ConfigError(f"gameday's catalog is not at {root}: `gameday init` needs gameday "
                          "installed from its repository (pip install -e)")
    paths = [*sorted(root.glob("*.yaml")), root / "incidents" / "TEMPLATE.yaml"]
    return {str(p.relative_to(root)): p.read_text(encoding="utf-8")
            for p in paths if p.is_file()}
