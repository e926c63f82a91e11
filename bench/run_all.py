"""Run every ``bench/bench_*.py`` in turn (``make bench``); each prints its own figures.

A benchmark whose ``main()`` returns a non-zero number missed its goal (issue #20: each
figure at least its peer's, measured in the same run); every benchmark still runs, and
``make bench`` then exits 1, naming those that missed.
"""

from __future__ import annotations

import runpy
import sys
from pathlib import Path


def main() -> int:
    """Run each benchmark module's ``main()`` in name order; 1 if any missed its goal."""
    missed = []
    for path in sorted(Path(__file__).parent.glob("bench_*.py")):
        print(f"== {path.stem}", flush=True)
        module = runpy.run_path(str(path))
        if module["main"]():
            missed.append(path.stem)
    if missed:
        print(f"make bench: goal missed by {', '.join(missed)}", flush=True)
        return 1
    print("make bench: every goal met", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
