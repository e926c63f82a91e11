"""``python -m gameday`` = the ``gameday`` command."""

import sys

from gameday.cli import main

sys.exit(main())
