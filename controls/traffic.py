"""Chaos Toolkit control: order traffic for the whole experiment, from the load generator.

Declare it in an experiment::

    controls:
      - name: gameday-traffic
        provider:
          type: python
          module: controls.traffic
          arguments: {rate_rps: 200, warmup_s: 12}

Before the experiment it starts ``gameday load`` against the target's entry point (or,
under ``gameday run``, joins the game day's shared traffic) and waits ``warmup_s`` so
that the SLA windows hold data; afterwards it stops its own load and adds the load
generator's figures for the experiment's seconds to the journal (extension
``gameday-traffic``), with how busy the machine was in each phase (``machine``: its
CPU sampled at each phase boundary, see :mod:`gameday.measurements.machine`). The work
is done by :mod:`gameday.engine.traffic`.
"""

from gameday.engine.traffic import (
    after_experiment_control,
    after_hypothesis_control,
    after_method_control,
    before_experiment_control,
    before_method_control,
)

__all__ = ["after_experiment_control", "after_hypothesis_control", "after_method_control",
           "before_experiment_control", "before_method_control"]
