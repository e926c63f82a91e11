"""Running and judging experiments: the runner, the `chaos run` child, pre-flight checks,
the strict verdict, incidents, the traffic control and the probes'/actions' glue."""
