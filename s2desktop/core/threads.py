"""Waiting on thread pools without going deaf to Ctrl-C.

The kernel hands a Ctrl-C (SIGINT) to whichever thread it picks. When that is a worker thread, Python only flags
it, and the main thread raises KeyboardInterrupt the next time it runs Python code -- which an untimed wait on a
future never does until the future is done. So the main thread waits in slices of WAKE_INTERVAL.
"""

from __future__ import annotations

from concurrent.futures import FIRST_EXCEPTION, Executor, wait
from typing import Callable, Iterable, TypeVar

T = TypeVar("T")
R = TypeVar("R")

WAKE_INTERVAL = 0.2  # s: the longest the waiting thread sleeps before it notices a Ctrl-C


def map_in_slices(pool: Executor, fn: Callable[[T], R], items: Iterable[T]) -> list[R]:
    """``list(pool.map(fn, items))`` that stays interruptible; on the first error (or Ctrl-C) the calls not yet
    started are cancelled and the error is raised."""
    futures = [pool.submit(fn, x) for x in items]
    try:
        pending = set(futures)
        while pending:
            done, pending = wait(pending, timeout=WAKE_INTERVAL, return_when=FIRST_EXCEPTION)
            failed = [f for f in futures if f in done and f.exception() is not None]
            if failed:
                raise failed[0].exception()
        return [f.result() for f in futures]
    finally:
        for f in futures:
            f.cancel()
