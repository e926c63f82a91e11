"""``python -m gameday`` = the ``gameday`` command."""

import sys

from gameday.cli.entry import main

sys.exit(main())
