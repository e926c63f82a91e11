"""Fault evidence (pure): a counter's exact increase, and the mode_hits probe's arguments
checked before a run."""

from __future__ import annotations

import pytest

from gameday.engine.argcheck import ArgContext, check_activity
from gameday.measurements.evidence import counter_increase, sample_step_s
from lab.procs import listening_inodes, stat_fields


@pytest.mark.parametrize(("points", "expected"), [
    ([], 0),
    ([(100.0, 7.0)], 0),
    ([(100.0, 7.0), (101.0, 9.0), (102.0, 12.0)], 5),
    ([(100.0, 7.0), (101.0, 9.0), (102.0, 1.0), (103.0, 4.0)], 2 + 1 + 3),  # a restart
    ([(103.0, 0.0), (104.0, 2.0)], 2),  # appeared at 0 after the start
    ([(103.0, 2.0), (104.0, 5.0)], 5),  # appeared after the start, already counting
    ([(100.0, 0.0), (101.0, 0.0)], 0),
])
def test_counter_increase_is_exact_and_survives_a_restart(
        points: list[tuple[float, float]], expected: int) -> None:
    assert counter_increase(points, 100.0) == expected


def test_the_sampling_step_covers_the_window_at_both_ends() -> None:
    assert sample_step_s(30.0) == 1.0
    assert sample_step_s(0.4) == 0.4
    assert sample_step_s(3600.0) == 3.6
    assert sample_step_s(25.5) == pytest.approx(25.5 / 26)


def _mode_hits(**arguments: object) -> dict[str, object]:
    return {"type": "python", "module": "probes.broker", "func": "mode_hits",
            "arguments": arguments}


@pytest.mark.parametrize(("arguments", "expected"), [
    ({"mode": "reply_lost"}, []),
    ({"mode": "error_after_fill", "since": 1700000000}, []),
    ({"mode": "reply-lost"}, ["probes.broker.mode_hits: unknown broker simulator mode "
                              "'reply-lost' (did you mean reply_lost?): valid are error, "
                              "rate_limit, slow, hang, flap, maintenance, duplicate, "
                              "reply_lost, error_after_fill"]),
    ({}, ["probes.broker.mode_hits: argument 'mode' is required"]),
])
def test_mode_hits_arguments_are_checked_before_the_run(
        arguments: dict[str, object], expected: list[str]) -> None:
    problems = check_activity(_mode_hits(**arguments), ArgContext({}, frozenset()))
    assert problems == expected


def test_proc_stat_fields_survive_a_command_name_with_spaces_and_parentheses() -> None:
    line = "4242 (my (odd) server) S 1 4242 4242 0 -1 4194560 " + " ".join(["0"] * 12) + \
        " 987654 rest"
    fields = stat_fields(line)
    assert fields[0] == "S"
    assert fields[2] == "4242"  # pgrp
    assert fields[19] == "987654"  # starttime


_LISTEN, _ESTABLISHED = "0A", "01"


def _row(local: str, state: str, inode: str) -> str:
    return f"   0: {local} 00000000:0000 {state} 00000000:00000000 00:00000000 0 0 0 {inode} 1"


HEADER = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt uid inode"
TCP = "\n".join([HEADER, _row("0100007F:5208", _LISTEN, "111"),
                 _row("0100007F:5208", _ESTABLISHED, "222"),
                 _row("0100007F:5209", _LISTEN, "333")])
TCP6 = "\n".join([HEADER, _row("0" * 32 + ":5208", _LISTEN, "444")])


def test_only_listening_sockets_on_the_port_are_the_replicas() -> None:
    assert listening_inodes([TCP, TCP6], 0x5208) == {"111", "444"}
    assert listening_inodes([TCP], 0x5209) == {"333"}
    assert listening_inodes([TCP], 1) == set()
