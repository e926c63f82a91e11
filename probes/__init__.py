"""The probes gameday's experiments call (Chaos Toolkit Python activities).

``chaos discover --no-install gameday`` lists every probe and action (see :func:`discover`).
"""

from gameday.engine.activity import discover

__all__ = ["discover"]
