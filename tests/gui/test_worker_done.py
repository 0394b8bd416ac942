"""A worker's `done` is set before it signals the end, so a slot that reacts to the end can rely on it
(the downloads panel counts a cancelled file as finished only once its worker has returned)."""

import threading

import pytest
from PySide6.QtCore import Qt, QThreadPool

from s2desktop.core.errors import CancelledError
from s2desktop.gui import workers


def _ok():
    return 42


def _cancelled():
    raise CancelledError("stopped")


def _fails():
    raise ValueError("boom")


@pytest.mark.parametrize("fn, signal", [(_ok, "result"), (_cancelled, "cancelled"), (_fails, "errored")])
def test_done_is_set_when_the_end_is_signalled(qtbot, fn, signal):
    worker = workers.Worker(fn)
    seen: dict[str, bool] = {}
    lock = threading.Lock()

    def record(name):
        with lock:  # runs in the worker's thread, at the moment of the emit (direct connection)
            seen[name] = worker.done.is_set()

    getattr(worker.signals, signal).connect(lambda *_: record(signal), Qt.ConnectionType.DirectConnection)
    worker.signals.finished.connect(lambda: record("finished"), Qt.ConnectionType.DirectConnection)
    with qtbot.waitSignal(worker.signals.finished, timeout=10000):
        QThreadPool.globalInstance().start(worker)
    assert seen == {signal: True, "finished": True}


def test_shutdown_does_not_count_queued_workers_it_cleared_as_running(qtbot):
    """Quitting while workers wait in a pool's queue: the pool drops them, and the registry must not report them
    as still running (the application would take them for stuck tasks)."""
    pool = QThreadPool()
    pool.setMaxThreadCount(1)
    release = threading.Event()
    registry = workers.WorkerRegistry()
    first = registry.start(workers.Worker(release.wait, 10), pool)
    queued = [registry.start(workers.Worker(_ok), pool) for _ in range(3)]
    qtbot.waitUntil(first.running.is_set, timeout=5000)

    assert registry.shutdown(200) is False  # the first is still running: not stopped in time
    assert registry.active == [first]
    assert not any(w.running.is_set() for w in queued)
    release.set()
    assert pool.waitForDone(5000)
    assert registry.active == []
