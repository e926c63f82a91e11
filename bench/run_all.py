"""Run every ``bench/bench_*.py`` in turn (``make bench``); each prints its own figures."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path


def main() -> int:
    """Run each benchmark module's ``main()`` in name order."""
    for path in sorted(Path(__file__).parent.glob("bench_*.py")):
        print(f"== {path.stem}", flush=True)
        module = runpy.run_path(str(path))
        module["main"]()
    return 0


if __name__ == "__main__":
    sys.exit(main())
