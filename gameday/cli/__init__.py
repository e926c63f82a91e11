"""The `gameday` command: one module per group of subcommands (main: run, cleanup, judge,
report; lab: lab up|down|status|doctor; load: the load generator)."""
