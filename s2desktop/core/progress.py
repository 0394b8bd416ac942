"""The typed contract every long job speaks: progress events and a cancel protocol.

Search, download, composite and the demo report through one callable, ``progress(event)``, where ``event`` is a
:class:`Progress`. Front ends render these events (a terminal line, a progress bar, a queue to another
process); they never parse text. The composite worker process puts the same dataclasses, and the terminal
:class:`Finished` / :class:`Failed` / :class:`Cancelled`, on its queue: both sides import this module.

Cancelling is one object, a :class:`CancelToken` (anything with ``is_set()`` and ``wait(timeout)`` works too:
a ``threading.Event`` or a ``multiprocessing.Event``). Work checks it between steps with :func:`check_cancel`
and raises :class:`~s2desktop.core.errors.CancelledError`; nothing partial is left under a final name. A token
can also cancel one item (one file of a download) without cancelling the rest: ``token.for_item(name)``.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Protocol

from s2desktop.core.errors import CancelledError

__all__ = [
    "Stage", "Progress", "FileProgress", "WindowPixels", "Finished", "Failed", "Cancelled", "ProgressFn", "Cancel",
    "CancelToken", "check_cancel", "emit", "Throttle", "Rate", "item_cancel",
]

Stage = str  # 'archive' | 'search' | 'plan' | 'download' | 'fetch' | 'composite' | 'render' | 'export'
STAGES = ("archive", "search", "plan", "download", "fetch", "composite", "render", "export")

# File states in download events.
QUEUED, RUNNING, DOWNLOADED, SKIPPED, FAILED, CANCELLED = (
    "queued", "running", "downloaded", "skipped", "failed", "cancelled")
FILE_DONE_STATES = (DOWNLOADED, SKIPPED, FAILED, CANCELLED)


@dataclass(frozen=True)
class FileProgress:
    """One file of a download: what an event is about when it is about one file."""

    name: str  # the destination path, as a string (the file's identity in the download)
    bytes_done: int
    bytes_total: int
    state: str = RUNNING  # queued | running | downloaded | skipped | failed | cancelled
    message: str = ""  # for 'failed': the one-line error

    @property
    def finished(self) -> bool:
        return self.state in FILE_DONE_STATES


PREVIEW_SIDE = 1024  # px: the longest side of the image a composite's finished windows are painted into


@dataclass(frozen=True)
class WindowPixels:
    """A finished window of a composite at the preview's size: what a front end can paint before the output is
    written (the command line ignores it).

    ``pixels`` (bands, h, w) uint16, nodata 0: the composite's display bands (true colour when it has them, else
    its first three, or its one band; named in ``bands``) over the window, decimated by ``factor`` -- the power of
    two that brings the output's longest side to at most PREVIEW_SIDE -- at (``row``, ``col``) of a preview image
    of ``height`` x ``width`` that covers the output's ``out_height`` x ``out_width`` pixels. ``resampling`` says
    how: 'average' (the COG's own overview of that level: GDAL's nodata-aware average) or 'nearest' (the top-left
    pixel of each ``factor`` x ``factor`` block of the output grid), where the window cannot compute the level
    exactly.
    """

    pixels: Any = field(compare=False, repr=False)
    row: int
    col: int
    height: int
    width: int
    factor: int
    out_height: int
    out_width: int
    bands: tuple[str, ...] = ()
    resampling: str = "average"


@dataclass(frozen=True)
class Progress:
    """Where a stage is: items (files, windows, dates) and bytes done of the totals known so far.

    ``bytes_total`` is known from the listing before a download starts, so a bar and an ETA built from
    ``bytes_done / bytes_total`` are right from the first event. ``file`` is set on download events that concern
    one file (its own bytes and state), for front ends that show one row per file. ``pixels`` is set on composite
    events that report a finished window (its pixels at the preview's size, `WindowPixels`).
    """

    stage: Stage
    items_done: int = 0
    items_total: int = 0
    bytes_done: int = 0
    bytes_total: int = 0
    message: str = ""
    file: FileProgress | None = None
    pixels: WindowPixels | None = None

    @property
    def fraction(self) -> float:
        """0..1: by bytes when the stage counts bytes, else by items."""
        if self.bytes_total:
            return min(1.0, self.bytes_done / self.bytes_total)
        if self.items_total:
            return min(1.0, self.items_done / self.items_total)
        return 0.0

    def with_message(self, message: str) -> "Progress":
        return replace(self, message=message, file=None, pixels=None)


@dataclass(frozen=True)
class Finished:
    """A job (or a process running one) ended well; ``result`` is the stage's plain-value result."""

    result: Any = None


@dataclass(frozen=True)
class Failed:
    """A job ended with an error: one line for the user, the traceback for the log."""

    message: str
    details: str = ""


@dataclass(frozen=True)
class Cancelled:
    """A job stopped because it was cancelled; nothing partial was left."""

    message: str = "cancelled"


ProgressFn = Callable[[Progress], None]


class Cancel(Protocol):
    def is_set(self) -> bool: ...

    def wait(self, timeout: float | None = None) -> bool: ...


class CancelToken:
    """Cancel a whole job (``set()``) or single items of it (``cancel_item(name)``). Thread-safe."""

    def __init__(self):
        self._event = threading.Event()
        self._items: set[str] = set()
        self._lock = threading.Lock()

    def set(self) -> None:
        self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        return self._event.wait(timeout)

    def cancel_item(self, name: str) -> None:
        with self._lock:
            self._items.add(str(name))

    def item_cancelled(self, name: str) -> bool:
        with self._lock:
            return str(name) in self._items

    def for_item(self, name: str) -> "_ItemCancel":
        """A cancel object that is set when the whole job or this one item is cancelled."""
        return _ItemCancel(self, str(name))


class _ItemCancel:
    def __init__(self, token: CancelToken, name: str):
        self._token, self._name = token, name

    def is_set(self) -> bool:
        return self._token.is_set() or self._token.item_cancelled(self._name)

    def wait(self, timeout: float | None = None) -> bool:
        # An item cancel is not an event of its own: poll it while waiting on the whole-job event.
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.is_set():
            left = 0.05 if deadline is None else min(0.05, deadline - time.monotonic())
            if left <= 0:
                return False
            self._token.wait(left)
        return True


def item_cancel(cancel, name: str):
    """The cancel object for one item of a job: the token's item view, or ``cancel`` itself."""
    return cancel.for_item(name) if isinstance(cancel, CancelToken) else cancel


def check_cancel(cancel, what: str = "cancelled") -> None:
    """Raise CancelledError when ``cancel`` (None, an Event or a CancelToken) is set."""
    if cancel is not None and cancel.is_set():
        raise CancelledError(what)


def emit(progress: ProgressFn | None, event: Progress) -> None:
    if progress is not None:
        progress(event)


class Throttle:
    """Pass events on at most ``rate`` per second; an event that ends a stage or a file, or brings a window's
    pixels, always passes."""

    def __init__(self, progress: ProgressFn | None, rate: float = 10.0):
        self._progress = progress
        self._interval = 1.0 / rate
        self._last = 0.0
        self._lock = threading.Lock()

    def __call__(self, event: Progress, force: bool = False) -> None:
        if self._progress is None:
            return
        final = (event.items_total and event.items_done >= event.items_total) or (
            event.file is not None and event.file.state != RUNNING) or event.pixels is not None
        now = time.monotonic()
        with self._lock:
            if not (force or final) and now - self._last < self._interval:
                return
            self._last = now
        self._progress(event)


class Rate:
    """Speed and time left of a stage, from its events.

    Bytes (downloads) are timed over the last ``window`` seconds, so the estimate follows the network; a file
    found already on disk adds its bytes at once and is not counted as speed. Items without bytes (composite
    windows) are timed from the first event.
    """

    def __init__(self, window: float = 5.0, clock: Callable[[], float] = time.monotonic):
        self.window = window
        self.clock = clock
        self.samples: list[tuple[float, int]] = []
        self.instant = 0  # bytes that arrived without transfer (files skipped)
        self.started = clock()
        self.last: Progress | None = None

    def update(self, event: Progress) -> None:
        now = self.clock()
        if event.file is not None and event.file.state == SKIPPED:
            self.instant += event.file.bytes_total
        self.last = event
        done = event.bytes_done - self.instant if event.bytes_total else event.items_done
        self.samples.append((now, done))
        if event.bytes_total:
            while len(self.samples) > 2 and now - self.samples[0][0] > self.window:
                self.samples.pop(0)

    @property
    def speed(self) -> float:
        """Bytes (or items) per second; 0 until two samples are apart in time."""
        if self.last is None or not self.samples:
            return 0.0
        if self.last.bytes_total:
            (t0, d0), (t1, d1) = self.samples[0], self.samples[-1]
            return (d1 - d0) / (t1 - t0) if t1 > t0 else 0.0
        elapsed = self.samples[-1][0] - self.started
        return self.last.items_done / elapsed if elapsed > 0 else 0.0

    def seconds_left(self) -> float | None:
        ev = self.last
        if ev is None:
            return None
        left = (ev.bytes_total - ev.bytes_done) if ev.bytes_total else (ev.items_total - ev.items_done)
        speed = self.speed
        if left <= 0:
            return 0.0
        return left / speed if speed > 0 else None
