"""The entry of the composite worker process (no Qt imports: the spawned child imports only this and the core).

It lowers the process's CPU priority before handing over to `core.composite.worker_main`, so the compositor's
pool (its children inherit the priority) saturates the cores without starving the window's GUI thread.
"""

from __future__ import annotations

import os

NICENESS = 5


def run(queue, cancel_event, kwargs: dict) -> None:
    try:
        if hasattr(os, "nice"):
            os.nice(NICENESS)
        else:  # Windows
            import ctypes

            BELOW_NORMAL_PRIORITY_CLASS = 0x4000
            handle = ctypes.windll.kernel32.GetCurrentProcess()
            ctypes.windll.kernel32.SetPriorityClass(handle, BELOW_NORMAL_PRIORITY_CLASS)
    except Exception:  # priority is a nicety; never fail the composite for it
        pass
    from s2desktop.core.compositing import worker_main

    worker_main(queue, cancel_event, kwargs)
