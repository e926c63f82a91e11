"""``gameday init DIR``: scaffold a resilience suite for your own service (see
:mod:`gameday.engine.scaffold` for what it writes)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from gameday.contract import ConfigError
from gameday.engine.scaffold import read_catalog, suite_files


def add_parser(subparsers: Any) -> None:
    """Register ``gameday init``."""
    parser = subparsers.add_parser(
        "init", help="scaffold a resilience suite for your service: a service spec to fill "
        "in, a copy of the catalog, an incident template, a CI workflow")
    parser.add_argument("directory", type=Path, metavar="DIR",
                        help="where to write the suite (created; existing files are kept "
                             "and make init refuse)")
    parser.add_argument("--name", default=None,
                        help="the service's name (default: DIR's name)")
    parser.set_defaults(func=_init)


def _init(args: argparse.Namespace) -> int:
    directory: Path = args.directory
    if directory.exists() and not directory.is_dir():
        raise ConfigError(f"{directory} is a file: name a directory for the suite")
    name = args.name or directory.resolve().name
    files = suite_files(name, read_catalog())
    taken = sorted(path for path in files if (directory / path).exists())
    if taken:
        raise ConfigError(f"{directory} already holds {', '.join(taken)}: init writes only "
                          "into a new or empty directory and overwrites nothing")
    for path, text in files.items():
        target = directory / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    experiments = sum(1 for path in files if path.startswith("experiments/"))
    print(f"wrote a resilience suite for {name} in {directory}: service.yaml, "
          f"{experiments} files in experiments/, .github/workflows/gameday.yml, README.md")
    print(f"next: fill in {directory / 'service.yaml'} (command), then, in {directory}:\n"
          "  gameday lab check-service service.yaml\n"
          "  gameday run --dry-run --service service.yaml\n"
          "  gameday run --service service.yaml")
    return 0
