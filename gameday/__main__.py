"""``python -m gameday`` = the ``gameday`` command."""

import sys

from gameday.entry import main

sys.exit(main())
