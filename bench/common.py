"""Shared benchmark helpers: a lab of its own, medians, printing figures."""

from __future__ import annotations

import statistics
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from gameday.targets.lab import LabTarget
from lab import stack
from lab.layout import LabLayout

BENCH_PORT_BASE = 26000


@contextmanager
def running_lab(port_base: int = BENCH_PORT_BASE,
                state_dir: Path | None = None) -> Iterator[LabLayout]:
    """A lab up for the duration of the block, its state in ``state_dir`` (kept
    afterwards) or, by default, in a temporary directory (removed afterwards)."""
    if state_dir is not None:
        with _lab(LabLayout(state_dir.resolve(), port_base=port_base)) as layout:
            yield layout
        return
    with tempfile.TemporaryDirectory(prefix="gameday-bench-") as tmp, \
            _lab(LabLayout(Path(tmp) / "state", port_base=port_base)) as layout:
        yield layout


@contextmanager
def _lab(layout: LabLayout) -> Iterator[LabLayout]:
    """Up, then down whatever happens (also when ``up`` itself is interrupted)."""
    try:
        stack.up(layout, LabTarget(layout).program())
        yield layout
    finally:
        stack.down(layout)


def median(values: list[float]) -> float:
    """Median of the runs."""
    return statistics.median(values)


def figure(name: str, value: float, unit: str, runs: list[float] | None = None) -> None:
    """Print one benchmark figure, with the individual runs when there were several."""
    detail = f"  (runs: {', '.join(f'{r:.3g}' for r in runs)})" if runs else ""
    print(f"{name:<58} {value:>10.3f} {unit}{detail}", flush=True)


_WRK_ORDERS = """
local counter = 0
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end
function request()
  counter = counter + 1
  local body = string.format(
    '{"client_order_id":"PREFIX-%s-%d-%d","instrument":"EUR_USD","units":1000,"price":1.0842}',
    "RUN", tid, counter)
  return wrk.format("POST", nil, {["Content-Type"] = "application/json"}, body)
end
"""


def wrk_orders_script(prefix: str, run_id: str, done: str = "") -> str:
    """A wrk Lua script POSTing orders with unique client order ids
    (``prefix-run_id-thread-n``), plus an optional ``done`` function."""
    return _WRK_ORDERS.replace("PREFIX", prefix).replace("RUN", run_id) + done
