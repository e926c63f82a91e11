"""The ``gameday`` command's entry point: a Ctrl-C (or SIGTERM) while Python is still
loading gameday ends quietly with exit code 130, like one during a run."""

from __future__ import annotations

import sys

EXIT_INTERRUPTED = 130


def main() -> int:
    """Load the command line and run it."""
    try:
        from gameday.cli.main import main as cli_main  # noqa: PLC0415 (a Ctrl-C here is caught)

        return cli_main()
    except KeyboardInterrupt:
        print("gameday: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
