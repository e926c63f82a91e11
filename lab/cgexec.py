"""Join cgroups, then become the given command: how a replica lands in its cgroups.

``python -m lab.cgexec DIR [DIR ...] -- COMMAND [ARG ...]`` writes this process' PID to
each ``DIR/cgroup.procs`` and then ``exec``s COMMAND (same PID, so supervisord still
watches the replica). supervisord starts every replica through it, at ``lab up`` and at
each restart, so a restarted replica lands in its cgroups again before it runs a line of
its own. Standard library only: it runs before every replica start.
"""

from __future__ import annotations

import os
import sys

USAGE = "usage: python -m lab.cgexec DIR [DIR ...] -- COMMAND [ARG ...]"
EXIT_USAGE = 2
EXIT_CGROUP = 3


def split_argv(argv: list[str]) -> tuple[list[str], list[str]]:
    """(cgroup directories, command) from the arguments (pure); ValueError without both."""
    if "--" not in argv:
        raise ValueError(USAGE)
    cut = argv.index("--")
    dirs, command = argv[:cut], argv[cut + 1:]
    if not dirs or not command:
        raise ValueError(USAGE)
    return dirs, command


def main(argv: list[str]) -> int:
    """Join the cgroups and exec the command; returns only when it cannot."""
    try:
        dirs, command = split_argv(argv)
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return EXIT_USAGE
    for directory in dirs:
        try:
            with open(os.path.join(directory, "cgroup.procs"), "w", encoding="ascii") as procs:
                procs.write(str(os.getpid()))
        except OSError as exc:
            print(f"lab.cgexec: cannot join cgroup {directory}: {exc}", file=sys.stderr)
            return EXIT_CGROUP
    os.execvp(command[0], command)
    return EXIT_CGROUP  # not reached: execvp raises if it cannot run the command


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
