"""Chaos Toolkit controls that gameday's experiments name (``controls.traffic``)."""
