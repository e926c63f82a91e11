"""Run one ``chaos run`` child so that no interruption leaves a fault behind.

- The child runs in a session of its own, so a Ctrl-C at the terminal reaches only
  ``gameday``, which passes exactly one SIGINT on: Chaos Toolkit then stops the method
  and runs the rollbacks. (A second SIGINT would interrupt the rollbacks themselves.)
- ``gameday run`` turns SIGTERM and SIGHUP into the same interruption: Chaos Toolkit on
  its own treats SIGTERM inside an activity as that activity failing.
- While the rollbacks run, further Ctrl-C/SIGTERM/SIGHUP are noted, not obeyed, for up
  to ``grace_s`` seconds; after that the child is killed.
- Until Chaos Toolkit has finished importing (about a second), the child ignores SIGINT
  and tells ``gameday`` when it is ready through a pipe; an interruption before that
  stops the child outright (nothing can have been injected yet) instead of printing an
  import-time ``KeyboardInterrupt`` traceback.
- If ``gameday`` itself is killed outright (SIGKILL), the kernel kills the child at once
  (Linux ``PR_SET_PDEATHSIG``), so nothing more gets injected; ``gameday cleanup`` then
  undoes whatever the injection log still holds.
"""

from __future__ import annotations

import ctypes
import os
import select
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

PR_SET_PDEATHSIG = 1
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@dataclass(frozen=True)
class ChaosExit:
    """How a ``chaos run`` child ended: its exit code, and whether we interrupted it."""

    returncode: int
    interrupted: bool


def die_with_parent(parent_pid: int) -> Callable[[], None]:
    """A ``preexec_fn`` that has the kernel SIGKILL the child when ``parent_pid`` dies and
    starts it with SIGINT ignored: ``child_main`` takes SIGINT again once it is ready."""
    prctl = ctypes.CDLL(None, use_errno=True).prctl

    def arm() -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL))
        if os.getppid() != parent_pid:  # the parent died before the line above
            os._exit(1)

    return arm


@contextmanager
def signals_noted(message: str) -> Iterator[None]:
    """Within this block, stop signals print ``message`` instead of interrupting."""

    def note(signum: int, frame: FrameType | None) -> None:
        print(f"gameday: {signal.Signals(signum).name} received; {message}",
              file=sys.stderr, flush=True)

    previous = {sig: signal.signal(sig, note) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def run_chaos(arguments: Sequence[str], env: Mapping[str, str], grace_s: float,
              console_log: Path | None = None) -> ChaosExit:
    """Run ``chaos ARGUMENTS``; on KeyboardInterrupt (Ctrl-C, or SIGTERM/SIGHUP turned into
    one by the caller) pass one SIGINT on and wait up to ``grace_s`` for its rollbacks, or
    stop the child at once if Chaos Toolkit had not started yet. ``console_log``: where
    the child's console output goes instead of this process' stdout and stderr."""
    ready_r, ready_w = os.pipe()
    output = None if console_log is None else console_log.open("wb")
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", __name__, str(ready_w), *arguments], env=dict(env),
            start_new_session=True, pass_fds=(ready_w,), stdout=output,
            stderr=None if output is None else subprocess.STDOUT,
            preexec_fn=die_with_parent(os.getpid()))  # noqa: PLW1509
    finally:
        os.close(ready_w)
        if output is not None:
            output.close()
    with os.fdopen(ready_r, "rb") as ready:
        try:
            return ChaosExit(process.wait(), interrupted=False)
        except KeyboardInterrupt:
            if not _is_ready(ready.fileno()):
                process.kill()
                return ChaosExit(process.wait(), interrupted=True)
    with signals_noted(f"waiting up to {grace_s:.0f} s for the rollbacks to finish"):
        print("gameday: interrupted; Chaos Toolkit is running the rollbacks",
              file=sys.stderr, flush=True)
        process.send_signal(signal.SIGINT)
        try:
            code = process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            process.kill()
            code = process.wait()
    return ChaosExit(code, interrupted=True)


def _is_ready(fd: int) -> bool:
    """Whether the child wrote its ready byte (a read end at EOF means it ended)."""
    readable, _, _ = select.select([fd], [], [], 0)
    return bool(readable) and os.read(fd, 1) == b"1"


def child_main(argv: Sequence[str]) -> int:
    """In the child: import Chaos Toolkit with SIGINT still ignored, take SIGINT again,
    say so on the ready pipe, then run ``chaos`` (click turns a later Ctrl-C into
    "Aborted!", and during a run Chaos Toolkit into its rollbacks)."""
    ready_fd, *arguments = argv
    from chaostoolkit.__main__ import cli  # noqa: PLC0415  # imported while SIGINT is ignored

    signal.signal(signal.SIGINT, signal.default_int_handler)
    os.write(int(ready_fd), b"1")
    os.close(int(ready_fd))
    sys.argv = ["chaos", *arguments]
    cli()  # click exits with chaos's own code
    return 0


if __name__ == "__main__":
    sys.exit(child_main(sys.argv[1:]))
