"""How busy the machine was in each phase of an experiment (pure)."""

from __future__ import annotations

import pytest

from gameday.measurements.machine import (
    CpuSample,
    MachineLoad,
    ProcessFigures,
    load_between,
    phase_loads,
)


def _sample(label: str, unix_s: float, busy_s: float,
            ours: dict[int, tuple[float, float, float]]) -> CpuSample:
    return CpuSample(label, unix_s, busy_s, {p: ProcessFigures(*f) for p, f in ours.items()})


def test_others_are_the_machine_s_busy_time_less_ours() -> None:
    first = _sample("start", 100.0, 50.0, {1: (2.0, 2.0, 1.0), 2: (1.0, 1.0, 0.0)})
    # pid 2 ended (reaped by 1: its CPU moved into 1's), pid 3 started in between.
    last = _sample("end", 110.0, 65.0, {1: (8.0, 4.0, 4.0), 3: (1.0, 1.0, 3.0)})
    load = load_between(first, last, cores=2)
    assert load is not None
    assert load.busy_cores == pytest.approx(1.5)
    assert load.ours_cores == pytest.approx(0.6)  # (8 + 1) - (2 + 1) over 10 s
    assert load.others_cores == pytest.approx(0.9)
    # waits: pid 1 +3 s of 2 + 3 s runnable, pid 3 3 s of 4 s (new: counted from 0)
    assert load.wait_share == pytest.approx(6 / 9)


def test_no_time_no_load_and_ours_never_exceed_the_machine() -> None:
    sample = _sample("start", 100.0, 50.0, {})
    assert load_between(sample, sample, cores=2) is None
    over = load_between(sample, _sample("end", 101.0, 50.5, {1: (3.0, 0.0, 0.0)}), cores=2)
    assert over is not None and over.ours_cores == pytest.approx(0.5)
    assert over.others_cores == pytest.approx(0.0)


def test_phases_come_from_the_labelled_samples() -> None:
    samples = [_sample("start", 0.0, 0.0, {}), _sample("hypothesis", 10.0, 5.0, {}),
               _sample("method-before", 11.0, 6.0, {}), _sample("method-after", 31.0, 36.0, {}),
               _sample("hypothesis", 32.0, 37.0, {}), _sample("end", 33.0, 38.0, {})]
    loads = phase_loads(samples, cores=2)
    assert loads["baseline"].busy_cores == pytest.approx(0.5)  # the first check ends it
    assert loads["method"].busy_cores == pytest.approx(1.5)
    assert loads["experiment"].seconds == pytest.approx(33.0)
    assert "method" not in phase_loads(samples[:2], cores=2)


def test_samples_and_loads_survive_the_journal() -> None:
    sample = _sample("start", 1.5, 2.5, {7: (1.0, 0.5, 0.25)})
    assert CpuSample.from_json(sample.as_json()) == sample
    load = MachineLoad(10.0, 2, 1.9, 0.5, 1.4, 0.6)
    assert MachineLoad.from_json(load.as_json()) == load


@pytest.mark.parametrize(("busy", "others", "starved"), [
    (1.98, 1.4, True), (1.98, 0.4, False), (1.8, 1.4, False), (1.91, 0.51, True)])
def test_starved_takes_a_full_machine_much_of_it_other_work(busy: float, others: float,
                                                            starved: bool) -> None:
    load = MachineLoad(10.0, 2, busy, busy - others, others, 0.6)
    assert load.starved(0.25, 0.95) is starved
