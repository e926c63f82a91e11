"""The page and the history line of a ``gameday explore`` sweep (pure)."""

from __future__ import annotations

from typing import Any

from gameday.report.envelope import edge_moves, envelope_page, knees_entry


def _sweep() -> dict[str, Any]:
    steps = [{"value": v, "availability": 1.0 if v < 0.8 else 0.0,
              "error_rate": 0.0 if v < 0.8 else 1.0, "p50_s": v + 0.03, "p95_s": v + 0.07,
              "p99_s": v + 0.09, "sent": 1000, "breakers_open": 0 if v < 0.8 else 3,
              "late_share": 0.002} for v in (0.2, 0.55, 0.725, 0.9, 1.25)]
    return {"parameter": "broker-latency", "unit": "s", "range": [0.2, 1.25],
            "resolution": 0.1, "hold_s": 6, "stopped": "every knee found to the resolution",
            "duration_s": 77.4, "started_unix": 1796300000.0, "steps": steps,
            "knees": [{"property": "sla", "value": 0.8125, "uncertainty": 0.0875,
                       "holds_throughout": False},
                      {"property": "orders_ok", "value": None, "uncertainty": None,
                       "holds_throughout": True}]}


def test_the_page_names_the_knees_and_draws_the_figures() -> None:
    html = envelope_page(_sweep())
    assert "<h1>Envelope: broker-latency</h1>" in html
    assert "<b>sla</b>: changes at 0.812 ± 0.087 s" in html
    assert "<b>orders_ok</b>: held over the whole range" in html
    assert html.count('<polyline class="series"') == 6  # p50 p95 p99, errors availability, breakers
    assert html.count('<rect class="fault"') == 3, "the knee shaded on each chart"
    assert html.count("<tr><td class=num>") == 5 and "0.725" in html
    assert "1.25 s</text>" in html or "1.2 s</text>" in html, "the x axis is in seconds"


def test_the_history_line_keeps_the_knees() -> None:
    assert knees_entry(_sweep()) == {
        "experiment": "explore-broker-latency", "started_unix": 1796300000.0,
        "range": [0.2, 1.25], "resolution": 0.1,
        "stopped": "every knee found to the resolution",
        "knees": {"sla": [0.8125, 0.0875], "orders_ok": [None, None]}}


def test_a_knee_moves_only_beyond_both_uncertainties() -> None:
    before = knees_entry(_sweep())
    same = {**before, "knees": {"sla": [0.85, 0.05], "orders_ok": [None, None]}}
    moved = {**before, "knees": {"sla": [0.45, 0.05], "orders_ok": [0.5, 0.05]}}
    assert edge_moves(before, same) == [
        "sla: 0.812 ± 0.087 before, 0.850 ± 0.050 now: within the uncertainty",
        "orders_ok: no knee in the range before, no knee in the range now"]
    assert edge_moves(before, moved)[0] == \
        "sla: 0.812 ± 0.087 before, 0.450 ± 0.050 now: MOVED by -0.362"
    assert edge_moves(None, moved) == ["no earlier sweep of this parameter to compare with"]
