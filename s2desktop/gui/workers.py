"""Background work for the window: a `QRunnable` with its own `WorkerSignals` QObject (the superqt pattern).

Why not superqt's own `create_worker`: it would add a dependency and not remove code here -- what this module
is for is the core's conventions (an injected `cancel` event and typed `progress` callback, one-line errors from
`S2Error`, slots skipped once their widget is gone, and a registry that cancels and waits on quit), which
superqt's workers would still need around them.

A `QRunnable` is not a `QObject`, so each `Worker` owns a small `WorkerSignals` created on the GUI thread; its
signals are emitted from a pool thread and delivered to GUI slots through queued connections.

- `run()` turns every exception into `errored(message, details)`: the message is one line a user can act on
  (the core's `S2Error` text), the details are the traceback for the "details" part of a dialog and the log.
- Each worker carries a `core.progress.CancelToken` (`worker.cancel_event`, an Event that can also cancel one
  item of the work) that the core functions take as `cancel=`.
- `worker.report(event)` is the core's progress callback (a `core.progress.Progress`); it throttles to ~10
  signals a second but always lets an event that ends a stage or a file through.
- Started workers are kept referenced by the module-level `WorkerRegistry` until they finish, and
  `registry.shutdown()` (connected to `aboutToQuit`) cancels them and waits for the pools.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from typing import Any, Callable

import shiboken6
from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

from s2desktop.core.errors import CancelledError, S2Error
from s2desktop.core.progress import CancelToken, Throttle
from s2desktop.core.redact import redact

log = logging.getLogger(__name__)

PROGRESS_RATE = 10.0  # progress signals a second of one worker, at most


def one_line(exc: BaseException) -> str:
    """The text a user sees for an exception: the core's message, or the type and message for a bug."""
    if isinstance(exc, S2Error):
        text = str(exc)
    else:
        text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return redact(" ".join(text.split())) or type(exc).__name__


class WorkerSignals(QObject):
    started = Signal()
    progress = Signal(object)  # core.progress.Progress
    result = Signal(object)
    errored = Signal(str, str)  # one-line message, details (traceback)
    cancelled = Signal()
    finished = Signal()  # always last, after result/errored/cancelled


class Worker(QRunnable):
    """Run `fn(*args, **kwargs)` on a pool thread.

    Pass `progress=True` / `cancel=True` to have the worker inject its own `report` callback and
    `cancel_event` as the keyword arguments of those names (the core's convention).
    """

    def __init__(self, fn: Callable[..., Any], *args, progress: bool = False, cancel: bool = False,
                 name: str = "", **kwargs):
        super().__init__()
        # autoDelete stays on: QThreadPool.start() hands the C++ object to the pool, which deletes it after
        # run() has returned. (With autoDelete off, dropping the last Python reference from the GUI thread could
        # delete it while the pool thread is still returning from run().) The registry keeps the Python side.
        self.fn = fn
        self.args = args
        self.kwargs = kwargs
        self.name = name or getattr(fn, "__name__", "work")
        self.signals = WorkerSignals()
        self.cancel_event = CancelToken()  # an Event that can also cancel single items (one file of a download)
        self.report = Throttle(self._emit_progress, PROGRESS_RATE)
        self.done = threading.Event()
        self.running = threading.Event()  # run() was entered (a worker a pool clears before that never runs)
        if progress:
            self.kwargs["progress"] = self.report
        if cancel:
            self.kwargs["cancel"] = self.cancel_event

    # -- called from the GUI thread
    def cancel(self) -> None:
        self.cancel_event.set()

    @property
    def is_cancelled(self) -> bool:
        return self.cancel_event.is_set()

    # -- called from the worker thread (possibly from several transfer threads at once), through `report`
    def _emit_progress(self, event) -> None:
        try:
            self.signals.progress.emit(event)
        except RuntimeError:  # signals object already gone (window closed)
            pass

    def run(self) -> None:  # noqa: D401 - QRunnable API
        self.running.set()
        sig = self.signals
        try:
            sig.started.emit()
            try:
                try:
                    value = self.fn(*self.args, **self.kwargs)
                finally:
                    # The work has returned (its files are closed) before anyone hears that it ended: a slot
                    # reacting to `cancelled`/`finished` on the GUI thread may rely on `done`.
                    self.done.set()
            except CancelledError:
                sig.cancelled.emit()
            except Exception as exc:  # every failure becomes a signal, never a silent print
                details = redact(traceback.format_exc())
                if isinstance(exc, S2Error):  # an expected failure: whoever shows it logs it, in its words
                    log.debug("%s failed: %s", self.name, exc)
                else:
                    log.error("%s crashed:\n%s", self.name, details)
                if self.cancel_event.is_set():
                    sig.cancelled.emit()
                else:
                    sig.errored.emit(one_line(exc), details)
            else:
                if self.cancel_event.is_set() and value is None:
                    sig.cancelled.emit()
                else:
                    sig.result.emit(value)
            finally:
                sig.finished.emit()
        except RuntimeError:  # the QObject was deleted while we ran (interpreter shutting down)
            pass
        finally:
            self.done.set()


class WorkerRegistry:
    """Keeps started workers referenced until they finish; cancels and waits for all of them on quit."""

    def __init__(self):
        self._workers: set[Worker] = set()
        self._pools: set[QThreadPool] = set()
        self._lock = threading.Lock()

    def start(self, worker: Worker, pool: QThreadPool | None = None) -> Worker:
        pool = pool or QThreadPool.globalInstance()
        with self._lock:
            self._workers.add(worker)
            self._pools.add(pool)
        worker.signals.finished.connect(lambda w=worker: self._forget(w))
        pool.start(worker)
        return worker

    def _forget(self, worker: Worker) -> None:
        with self._lock:
            self._workers.discard(worker)

    @property
    def active(self) -> list[Worker]:
        with self._lock:
            return [w for w in self._workers if not w.done.is_set()]

    def cancel_all(self) -> None:
        for w in self.active:
            w.cancel()

    def shutdown(self, timeout_ms: int = 10000) -> bool:
        """Cancel every worker and wait for the pools; True when all stopped in time."""
        self.cancel_all()
        ok = True
        with self._lock:
            self._pools = {p for p in self._pools if shiboken6.isValid(p)}
            pools = list(self._pools)
        deadline = time.monotonic() + timeout_ms / 1000
        for pool in pools:
            left = max(0, int((deadline - time.monotonic()) * 1000))
            pool.clear()  # queued but not started: never run them
            ok = pool.waitForDone(left) and ok
        with self._lock:
            workers = list(self._workers)
        for w in workers:
            if w.done.is_set():
                continue
            if ok or not w.running.is_set():  # removed from its queue by clear(): it never ran, never will
                w.done.set()
                self._forget(w)
            else:
                log.warning("worker %s still running at shutdown", w.name)
        return ok


registry = WorkerRegistry()


def _guarded(slot: Callable, owner: QObject | None) -> Callable:
    """A slot that is skipped once its widget is gone (a result can arrive after the window closed)."""

    def call(*args):
        if owner is not None and not shiboken6.isValid(owner):
            return None
        try:
            return slot(*args)
        except RuntimeError as exc:
            if "already deleted" in str(exc):
                log.debug("result of a worker arrived after its widget was deleted")
                return None
            raise

    return call


def start(fn: Callable[..., Any], *args, pool: QThreadPool | None = None, on_result=None, on_error=None,
          on_progress=None, on_finished=None, on_cancelled=None, progress: bool = False,
          cancel: bool = False, name: str = "", owner: QObject | None = None, **kwargs) -> Worker:
    """Create a worker, connect the given slots, start it on `pool` (the global pool by default).

    Slots are skipped when `owner` (or the widget a slot touches) has been deleted by then.
    """
    w = Worker(fn, *args, progress=progress, cancel=cancel, name=name, **kwargs)
    for signal, slot in ((w.signals.result, on_result), (w.signals.errored, on_error),
                         (w.signals.progress, on_progress), (w.signals.cancelled, on_cancelled),
                         (w.signals.finished, on_finished)):
        if slot is not None:
            signal.connect(_guarded(slot, owner))
    return registry.start(w, pool)
