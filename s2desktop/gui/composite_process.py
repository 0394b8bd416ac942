"""The entry of the window's composite worker process (no Qt imports: the spawned child imports only this and
the core).

The window starts :func:`run` in a ``spawn`` process with the job's stack and composite options (plain values)
and a queue. The process runs the same composite step as the command line (`core.pipeline.run_composite`) and
puts the core's own event dataclasses on the queue: :class:`Progress` while it works, then exactly one of
:class:`Finished` (the output path), :class:`Failed` (one line + traceback) or :class:`Cancelled`. It lowers
its CPU priority first, so the compositor's pool (its children inherit the priority) saturates the cores without
starving the window's GUI thread.

:func:`run_area` is the same for an area: it runs the job's area step (`Job(request).run_area(scenes)`: the
windows of the area streamed from COGs -- or, for the JPEG 2000 sources, the area's downloaded tiles --
composited on the area's grid and clipped to it) with the request as plain values (Request, Area and Scene are
picklable dataclasses), and speaks the same events.
"""

from __future__ import annotations

import os
import signal
import traceback

from s2desktop.core.errors import CancelledError, S2Error
from s2desktop.core.pipeline import CompositeOptions, Job, Request, run_composite
from s2desktop.core.progress import Cancelled, Failed, Finished, Throttle
from s2desktop.core.redact import redact
from s2desktop.core.stack import Stack

NICENESS = 5


def run(queue, cancel_event, inputs: Stack, options: CompositeOptions) -> None:
    """Composite the stack ``inputs`` per ``options``, reporting on ``queue``; stops when ``cancel_event`` is set or on
    SIGTERM (unwinding like a cancel, so temporaries and the pool are cleaned up)."""
    _report(queue, lambda progress: run_composite(inputs, options, progress=progress, cancel=cancel_event).path)


def run_area(queue, cancel_event, request: Request) -> None:
    """Composite the request's area from its chosen scenes, reporting on ``queue`` like :func:`run`."""
    _report(queue, lambda progress: Job(request, progress, cancel_event).run_area(request.scenes).composite.path)


def _report(queue, work) -> None:
    """Run ``work(progress)`` -> the output path; its events, then exactly one final event, go on ``queue``."""
    _lower_priority()
    previous = _sigterm_unwinds()
    try:
        path = work(Throttle(queue.put))
        queue.put(Finished(str(path)))
    except (CancelledError, KeyboardInterrupt):
        queue.put(Cancelled())
    except S2Error as exc:
        queue.put(Failed(_one_line(exc), redact(traceback.format_exc())))
    except BaseException as exc:  # every failure reaches the window as one line
        queue.put(Failed(f"{type(exc).__name__}: {_one_line(exc)}".rstrip(": "), redact(traceback.format_exc())))
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _one_line(exc: BaseException) -> str:
    """The exception's first line, without credentials (an S3 error body may echo them)."""
    return redact(str(exc).splitlines()[0]) if str(exc) else ""


def _sigterm_unwinds():
    def on_sigterm(signum, frame):  # Process.terminate(): unwind like Ctrl-C
        raise KeyboardInterrupt

    try:
        return signal.signal(signal.SIGTERM, on_sigterm)
    except ValueError:  # not the main thread (called in-process by a test): leave it
        return None


def _lower_priority() -> None:
    try:
        if hasattr(os, "nice"):
            os.nice(NICENESS)
        else:  # Windows
            import ctypes

            below_normal = 0x4000
            handle = ctypes.windll.kernel32.GetCurrentProcess()
            ctypes.windll.kernel32.SetPriorityClass(handle, below_normal)
    except Exception:  # priority is a nicety; never fail the composite for it
        pass
