"""Ctrl-C on the command line, owned from the entry point's first line.

- Before a command starts running (Python still importing): the program exits at once with status 130; there
  is nothing to clean up and nothing to print a traceback about.
- The first press while a command runs raises KeyboardInterrupt in the main thread: the job cancels cleanly
  (transfers stop, temporary files are removed, stalled reads are abandoned) and the command exits with 130.
- A second press exits at once with 130, after removing every temporary file this process is writing
  (:func:`s2desktop.core.fsutil.remove_live_temps`) -- however stuck the first cancel is.
"""

from __future__ import annotations

import os
import signal
import sys

EXIT_CANCELLED = 130
_state = {"armed": False, "presses": 0}


def install():
    """Take SIGINT over (main thread only; elsewhere, e.g. in a test's worker thread, nothing changes);
    -> the handler it replaced (None: nothing was changed), for :func:`restore`."""
    try:
        return signal.signal(signal.SIGINT, _on_sigint)
    except ValueError:  # not the main thread
        return None


def restore(previous) -> None:
    """Give SIGINT back to ``previous`` (a command run inside another program, e.g. a test, has ended)."""
    _state["armed"], _state["presses"] = False, 0
    if previous is not None:
        try:
            signal.signal(signal.SIGINT, previous)
        except ValueError:
            pass


def arm() -> None:
    """A command is running now: the first press cancels it (KeyboardInterrupt) instead of exiting."""
    _state["armed"], _state["presses"] = True, 0


def _on_sigint(_signum, _frame) -> None:
    _state["presses"] += 1
    if _state["armed"] and _state["presses"] == 1:
        raise KeyboardInterrupt
    if _state["armed"]:
        try:
            from s2desktop.core.fsutil import remove_live_temps

            remove_live_temps()
        finally:
            _exit_now()
    _exit_now()


def _exit_now() -> None:
    try:
        sys.stderr.write("s2desktop: cancelled\n")
        sys.stderr.flush()
    finally:
        os._exit(EXIT_CANCELLED)
