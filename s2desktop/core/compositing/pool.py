"""The process pool the windows run on: spawned workers, bounded work in flight, a teardown that leaves nothing.

Workers are started with the spawn method (forking after GDAL started can deadlock). At most 2 windows per
worker are in flight, so memory is bounded by dates x window x workers. On an error, cancel or Ctrl-C the pool
is killed: queued work cancelled, workers terminated, the executor's manager thread joined. A worker whose
parent dies goes with it (`_die_with_parent`), and the compositing processes keep freed memory for the next
window (`_keep_freed_memory`).
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
from typing import Any, Callable, Iterable

from s2desktop.core.errors import RasterError, S2Error
from s2desktop.core.progress import check_cancel

log = logging.getLogger(__name__)

CANCELLED = "composite cancelled"
_IN_FLIGHT_PER_WORKER = 2
# Fresh memory is what per-window arrays cost most: glibc hands a freed block above its mmap threshold back to the
# kernel, so every window's stack and kernel temporaries came back as new zero-filled pages -- ~7,000 page faults
# and ~140 ms of system time per 1024 px window on a 2-core VM, 5 % on top of the decode. The processes that
# composite keep freed memory for the next window instead (below), and the workers reuse their largest arrays.
_MALLOC_MMAP_THRESHOLD = 32 << 20  # glibc's largest: blocks up to this size come from the reusable heap
_MALLOC_TRIM_THRESHOLD = 256 << 20  # free heap kept before any is returned to the kernel


class Feed:
    """The tasks still to submit, in order, each only once its inputs are there (``arrivals.ready(task.source)``,
    `core.arrivals`: an area's windows still on their way; None: every input is there already)."""

    def __init__(self, tasks: Iterable, arrivals=None):
        self.todo = list(tasks)
        self.arrivals = arrivals

    def __len__(self) -> int:
        return len(self.todo)

    def next(self):
        """The first task whose inputs are in (None: none yet, or none left); raises the inputs' failure."""
        for i, task in enumerate(self.todo):
            if self.arrivals is None or self.arrivals.ready(task.source):
                return self.todo.pop(i)
        return None

    def wait(self) -> None:
        """Nothing to run until more inputs arrive: wait a little for them."""
        if self.arrivals is not None:
            self.arrivals.wait_some(0.1)


def _run_pool(tasks: Iterable, workers: int, fn: Callable, on_result: Callable[[Any], None], cancel,
              initializer: Callable, initargs: tuple, arrivals=None) -> None:
    """Run `fn(task)` for every task on a spawn pool of `workers`, each once its inputs are in (`Feed`);
    `on_result(result)` in this thread, as each completes. Raises S2Error subclasses (CancelledError when
    cancelled); the pool is gone when this returns."""
    feed = Feed(tasks, arrivals)
    ctx = multiprocessing.get_context("spawn")
    workers = max(1, min(workers, len(feed)))  # no idle processes to start for a handful of windows
    pool = cf.ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=initializer, initargs=initargs)
    clean = False
    try:
        if arrivals is not None:  # start the workers now: they are ready when the first window's inputs are in
            for _ in range(workers):
                pool.submit(os.getpid)
        pending: set[cf.Future] = set()
        limit = max(1, workers * _IN_FLIGHT_PER_WORKER)
        while True:
            check_cancel(cancel, CANCELLED)
            while len(pending) < limit and (task := feed.next()) is not None:
                pending.add(pool.submit(fn, task))
            if not pending:
                if not feed:
                    break
                feed.wait()
                continue
            finished, pending = cf.wait(pending, timeout=0.1, return_when=cf.FIRST_COMPLETED)
            for fut in finished:
                on_result(_result(fut))
        clean = True
    finally:
        if clean:
            pool.shutdown(wait=True)
        else:
            _kill_pool(pool)


def _result(fut: cf.Future):
    """A finished window's result, or its failure as an S2Error with a one-line message."""
    try:
        return fut.result()
    except S2Error:
        raise
    except cf.process.BrokenProcessPool:
        raise RasterError("a worker process died (out of memory or killed?)") from None
    except Exception as exc:
        raise RasterError(f"compositing failed: {type(exc).__name__}: "
                          f"{str(exc).splitlines()[0] if str(exc) else ''}") from None


def _kill_pool(pool: cf.ProcessPoolExecutor) -> None:
    """Stop a pool now: cancel queued work and terminate the worker processes (no orphans)."""
    procs = list((getattr(pool, "_processes", None) or {}).values())
    # shutdown(wait=False) drops the executor's references to its result queue and manager thread: keep them
    result_queue = getattr(pool, "_result_queue", None)
    thread = getattr(pool, "_executor_manager_thread", None)
    try:
        pool.shutdown(wait=False, cancel_futures=True)
    except Exception:  # pragma: no cover
        pass
    for p in procs:
        try:
            if p.is_alive():
                p.terminate()
        except Exception:  # pragma: no cover
            pass
    for p in procs:
        try:
            p.join(5)
            if p.is_alive():
                p.kill()
                p.join(2)
        except Exception:  # pragma: no cover
            pass
    # A worker killed halfway through sending a result leaves the executor's manager thread blocked reading the
    # rest of it, and interpreter exit joins that thread: close our end of the result pipe's write side so the
    # read ends with EOF (the workers, the only other writers, are gone), the pool turns "broken" and the
    # thread exits.
    try:
        result_queue._writer.close()  # CPython internals, guarded
    except Exception:
        pass
    if thread is not None:
        thread.join(5)
        if thread.is_alive():  # pragma: no cover
            log.warning("process pool manager thread did not stop")


def _die_with_parent(ppid: int | None) -> None:
    """Linux: the kernel sends SIGKILL when the parent dies (prctl PR_SET_PDEATHSIG); elsewhere a watchdog.

    `ppid` is the pool owner's pid as the owner saw it: a worker whose parent died while it was still starting
    up (before this runs) sees another parent already and exits at once.
    """
    if ppid is None:
        ppid = os.getppid()
    if os.getppid() != ppid:
        os._exit(1)
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            if libc.prctl(1, signal.SIGKILL, 0, 0, 0) == 0:  # 1 = PR_SET_PDEATHSIG
                if os.getppid() != ppid:  # the parent died before prctl took effect
                    os._exit(1)
                return
        except (OSError, AttributeError):
            pass

    def watch():
        while True:
            time.sleep(0.5)
            if os.getppid() != ppid:
                os._exit(1)

    threading.Thread(target=watch, daemon=True, name="s2desktop-parent-watch").start()


def _keep_freed_memory() -> None:
    """Keep freed memory in this process for reuse instead of returning it to the kernel (glibc's mallopt).

    Allocations up to 32 MB are served from the heap and up to 256 MB of free heap is kept, so arrays freed
    after one window are reused by the next without page faults. The process's RSS stays at its peak working
    set. A no-op where mallopt does not exist (not Linux, or not glibc).
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return
    m_trim_threshold, m_mmap_threshold = -1, -3  # from glibc's malloc.h
    mallopt(m_mmap_threshold, _MALLOC_MMAP_THRESHOLD)
    mallopt(m_trim_threshold, _MALLOC_TRIM_THRESHOLD)
