"""Waiting on thread pools without going deaf to Ctrl-C.

The kernel hands a Ctrl-C (SIGINT) to whichever thread it picks. When that is a worker thread, Python only flags
it, and the main thread raises KeyboardInterrupt the next time it runs Python code -- which an untimed wait on a
future never does until the future is done. So the main thread waits in slices of WAKE_INTERVAL.
"""

from __future__ import annotations

import threading
from concurrent.futures import FIRST_EXCEPTION, Executor, wait
from typing import Callable, Iterable, TypeVar

from s2desktop.core.progress import check_cancel

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


def run_abandonable(fn: Callable[[T], R], items: Iterable[T], workers: int, stop, name: str = "s2-worker") -> list[R]:
    """``[fn(x) for x in items]`` on ``workers`` daemon threads; the calling thread waits in slices.

    For network reads that can stall: when ``stop`` (an object with ``is_set()``, e.g. a cancel token) is set,
    or a call fails, or a Ctrl-C arrives, this returns (raising) at once instead of waiting for calls stuck in a
    read: their threads are daemons, check ``stop`` when the read returns and drop what they got, and never
    hold the process open. ``fn`` must leave nothing behind when it is abandoned (write to temporary names).
    Raises the first error (CancelledError when ``stop`` was set by the caller).
    """
    import queue

    items = list(items)
    results: list = [None] * len(items)
    todo: queue.SimpleQueue = queue.SimpleQueue()
    for i in range(len(items)):
        todo.put(i)
    done = queue.SimpleQueue()

    abandoned = threading.Event()

    def work() -> None:
        while not (stop.is_set() or abandoned.is_set()):
            try:
                i = todo.get_nowait()
            except queue.Empty:
                return
            try:
                results[i] = fn(items[i])
                done.put((i, None))
            except BaseException as exc:  # noqa: BLE001 -- handed to the waiting thread
                done.put((i, exc))

    for k in range(min(workers, len(items))):
        threading.Thread(target=work, name=f"{name}-{k}", daemon=True).start()
    left = len(items)
    try:
        while left:
            try:
                _i, exc = done.get(timeout=WAKE_INTERVAL / 2)
            except queue.Empty:
                check_cancel(stop, "cancelled")
                continue
            if exc is not None:
                raise exc
            left -= 1
    finally:
        abandoned.set()  # after an error or a Ctrl-C the threads take nothing more
    return results
