"""Injecting faults through a target, recording each before it is injected so that
rollbacks and `gameday cleanup` can undo it."""
