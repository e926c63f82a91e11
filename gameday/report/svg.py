"""Small inline SVG charts for the reports (pure: data in, SVG text out, no assets).

Every chart shares the experiment's time axis (seconds since its start), shades the
fault windows and can draw an SLA threshold. Series are ``<polyline class="series">``
and bands ``<rect class="band">``, so tests (and people) can tell a drawn chart.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

from gameday.report.data import FaultWindow

__all__ = ["Band", "Chart", "Line", "band_chart", "line_chart"]

WIDTH, HEIGHT = 1100, 190
LEFT, RIGHT, TOP, BOTTOM = 70, 20, 30, 26
BAND_HEIGHT = 90
STATE_COLORS = {"closed": "#2e9d5b", "half_open": "#e0a100", "open": "#d62728",
                "unknown": "#bbbbbb"}


@dataclass(frozen=True)
class Line:
    """A series to draw: its legend label, colour and (x_s, y) points."""

    label: str
    color: str
    points: Sequence[tuple[float, float]]
    dashed: bool = False


@dataclass(frozen=True)
class Chart:
    """A chart's frame: id, title, x range in s, faults, y-axis formatter, threshold."""

    chart_id: str
    title: str
    x_range: tuple[float, float]
    faults: Sequence[FaultWindow]
    y_format: Callable[[float], str] = lambda v: f"{v:g}"
    threshold: tuple[float, str] | None = None
    height: int = HEIGHT
    span: tuple[float, float] | None = None
    x_unit: str = "s"


@dataclass(frozen=True)
class Band:
    """A state band: (x_s, state) steps, each lasting until the next one."""

    label: str
    steps: Sequence[tuple[float, str]]


def nice_step(span: float, ticks: int = 5) -> float:
    """A round tick step (1, 2 or 5 times a power of 10): about ``ticks`` ticks over ``span``."""
    if span <= 0:
        return 1.0
    raw = span / ticks
    power = 10.0 ** math.floor(math.log10(raw))
    return float(next(m * power for m in (1, 2, 5, 10) if m * power >= raw))


def _x(chart: Chart, x_s: float) -> float:
    low, high = chart.x_range
    return LEFT + (x_s - low) / max(high - low, 1e-9) * (WIDTH - LEFT - RIGHT)


def _y(chart: Chart, value: float, y_max: float) -> float:
    plot = chart.height - TOP - BOTTOM
    return TOP + plot - min(max(value, 0.0), y_max) / y_max * plot


def _outside(chart: Chart) -> list[str]:
    """Grey out the time before and after the experiment (other experiments may run)."""
    if chart.span is None:
        return []
    bottom, (low, high) = chart.height - BOTTOM, chart.x_range
    parts = []
    for begin, end in ((low, chart.span[0]), (chart.span[1], high)):
        if end > begin:
            x0, x1 = _x(chart, begin), _x(chart, end)
            parts.append(f'<rect class="outside" x="{x0:.1f}" y="{TOP}" width="{x1 - x0:.1f}" '
                         f'height="{bottom - TOP}"><title>outside this experiment</title></rect>')
    return parts


def _frame(chart: Chart) -> list[str]:
    bottom = chart.height - BOTTOM
    parts = [f'<text x="{LEFT}" y="18" class="title">{escape(chart.title)}</text>',
             *_outside(chart)]
    for fault in chart.faults:
        x0, x1 = _x(chart, fault.start_s), _x(chart, fault.end_s)
        if fault.end_s > fault.start_s:
            parts.append(f'<rect class="fault" x="{x0:.1f}" y="{TOP}" width="{x1 - x0:.1f}" '
                         f'height="{bottom - TOP}"><title>{escape(fault.label)}</title></rect>')
        else:
            parts.append(f'<line class="fault-instant" x1="{x0:.1f}" x2="{x0:.1f}" y1="{TOP}" '
                         f'y2="{bottom}"><title>{escape(fault.label)}</title></line>')
    low, high = chart.x_range
    suffix = f" {chart.x_unit}" if chart.x_unit else ""
    step = nice_step(high - low, 10)
    tick = math.ceil(low / step) * step
    while tick <= high:
        x = _x(chart, tick)
        parts.append(f'<line class="grid" x1="{x:.1f}" x2="{x:.1f}" y1="{TOP}" y2="{bottom}"/>'
                     f'<text class="tick" x="{x:.1f}" y="{bottom + 14}" '
                     f'text-anchor="middle">{tick:g}{suffix}</text>')
        tick += step
    return parts


def _y_axis(chart: Chart, y_max: float) -> list[str]:
    parts = []
    step = nice_step(y_max, 4)
    value = 0.0
    while value <= y_max + 1e-12:
        y = _y(chart, value, y_max)
        parts.append(f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" '
                     f'y2="{y:.1f}"/><text class="tick" x="{LEFT - 6}" y="{y + 4:.1f}" '
                     f'text-anchor="end">{escape(chart.y_format(value))}</text>')
        value += step
    return parts


def _legend(lines: Sequence[Line]) -> list[str]:
    parts, x = [], WIDTH - RIGHT
    for line in reversed(lines):
        x -= 10 + 7 * len(line.label) + 22
        dash = ' stroke-dasharray="5 3"' if line.dashed else ""
        parts.append(f'<line x1="{x}" x2="{x + 18}" y1="14" y2="14" stroke="{line.color}" '
                     f'stroke-width="2.5"{dash}/><text class="legend" x="{x + 22}" '
                     f'y="18">{escape(line.label)}</text>')
    return parts


def _polyline(chart: Chart, line: Line, y_max: float) -> str:
    points = " ".join(f"{_x(chart, x):.1f},{_y(chart, y, y_max):.1f}" for x, y in line.points)
    dash = ' stroke-dasharray="5 3"' if line.dashed else ""
    return (f'<polyline class="series" data-series="{escape(line.label)}" fill="none" '
            f'stroke="{line.color}" stroke-width="2"{dash} points="{points}"/>')


def _threshold(chart: Chart, y_max: float) -> list[str]:
    if chart.threshold is None:
        return []
    value, label = chart.threshold
    y = _y(chart, value, y_max)
    return [f'<line class="threshold" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" '
            f'y2="{y:.1f}"/><text class="threshold-label" x="{LEFT + 4}" '
            f'y="{y - 4:.1f}">{escape(label)}</text>']


def _svg(chart: Chart, parts: Sequence[str]) -> str:
    return (f'<svg class="chart" data-chart="{escape(chart.chart_id)}" role="img" '
            f'viewBox="0 0 {WIDTH} {chart.height}" width="100%" '
            f'xmlns="http://www.w3.org/2000/svg">{"".join(parts)}</svg>')


def line_chart(chart: Chart, lines: Sequence[Line]) -> str:
    """A line chart of ``lines`` (empty ones are left out) on ``chart``'s frame."""
    drawn = [line for line in lines if line.points]
    values = [y for line in drawn for _, y in line.points]
    if chart.threshold:
        values.append(chart.threshold[0])
    y_max = max(values, default=1.0) * 1.1 or 1.0
    parts = [*_frame(chart), *_y_axis(chart, y_max), *_threshold(chart, y_max)]
    parts += [_polyline(chart, line, y_max) for line in drawn]
    return _svg(chart, [*parts, *_legend(drawn)])


def band_chart(chart: Chart, band: Band) -> str:
    """A state band: one coloured rectangle per step, with a legend of the states."""
    frame = Chart(chart.chart_id, chart.title, chart.x_range, chart.faults,
                  height=BAND_HEIGHT, span=chart.span)
    parts = _frame(frame)
    steps = list(band.steps)
    for (x, state), nxt in zip(steps, [*steps[1:], (steps[-1][0] + 1, "")], strict=True):
        x0, x1 = _x(frame, x), _x(frame, nxt[0])
        parts.append(f'<rect class="band" data-state="{state}" x="{x0:.1f}" y="{TOP + 8}" '
                     f'width="{max(x1 - x0, 0.5):.1f}" height="{BAND_HEIGHT - TOP - BOTTOM - 16}"'
                     f' fill="{STATE_COLORS.get(state, "#bbbbbb")}"><title>{x:.0f} s: {state}'
                     f"</title></rect>")
    legend = [Line(state, color, ()) for state, color in STATE_COLORS.items()
              if any(s == state for _, s in steps)]
    return _svg(frame, [*parts, *_legend(legend)])
