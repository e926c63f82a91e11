"""Run every ``bench/bench_*.py`` in turn (``make bench``); each prints its own figures.

Exits 1 when a benchmark's ``main()`` returned a non-zero status (a goal missed, e.g.
``bench_faultproxy``'s), after running the others.
"""

from __future__ import annotations

import runpy
import sys
from pathlib import Path


def main() -> int:
    """Run each benchmark module's ``main()`` in name order, all of them; 1 if any
    returned a non-zero status (it missed a goal), else 0 (``None`` counts as 0)."""
    missed = []
    for path in sorted(Path(__file__).parent.glob("bench_*.py")):
        print(f"== {path.stem}", flush=True)
        module = runpy.run_path(str(path))
        if module["main"]():
            missed.append(path.stem)
    if missed:
        print(f"goals missed: {', '.join(missed)}", flush=True)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
