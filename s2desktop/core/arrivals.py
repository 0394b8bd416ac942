"""An area's COG windows arriving while the compositor works on the windows already in.

Each COG's piece (the window of it the area needs, :mod:`s2desktop.core.fetch`) is cut into its rows of tiles
(:func:`fetch.strips`), fetched northernmost first across all the area's COGs, each row checked and cached on its
own. Before a byte of them has arrived, each piece is already a VRT of its rows (:func:`_piece_vrt`: the rows'
local files declared with their size and type, so GDAL opens none of them until it reads there): the area's stack
(:mod:`s2desktop.core.streaming`) and the composite's plan are made at once, the worker processes start, and each
window task is submitted as soon as every row it reads is in (:meth:`Arrivals.ready`) -- the windows over the top
of the area are composited while the rows below are still on the link. A row's file appears under the name its
VRT reads only once it is complete and checked (a link to, or a copy of, the cache's entry).

Reading is conservative: a window waits for every row of every piece within ``margin`` metres (the mask buffer)
plus 8 of the row's pixels of it, wider than any resampling kernel GDAL's warper adds. A fetch that fails fails the
composite with its own one-line error; a cancel stops both.
"""

from __future__ import annotations

import os
import shutil
import threading
from dataclasses import replace
from pathlib import Path

from s2desktop.core import fetch
from s2desktop.core.areas import OutputGrid
from s2desktop.core.progress import Progress, ProgressFn, emit

__all__ = ["Arrivals"]

SLACK_PX = 8  # source pixels around a window that its reads may touch (GDAL's warper takes 1-2)


class _Stop:
    """Set when the caller cancels or the arrivals are closed."""

    def __init__(self, cancel):
        self.cancel, self.closed = cancel, threading.Event()

    def is_set(self) -> bool:
        return self.closed.is_set() or (self.cancel is not None and self.cancel.is_set())

    def wait(self, timeout: float | None = None) -> bool:
        return self.closed.wait(timeout)


class Arrivals:
    """The rows of ``pieces`` ({item: Piece}) fetched on a thread of their own into ``scratch``'s row files (or
    found in ``cache``); :meth:`path` is each piece's VRT, there from the start; :meth:`ready` says whether a
    window of ``grid`` can be read. ``progress`` gets the fetch's events; :meth:`progress` passes the composite's
    on, holding back its window counts while rows are still arriving (one stage at a time for the front ends)."""

    def __init__(self, store, pieces: dict, cache, scratch: Path, grid: OutputGrid,
                 progress: ProgressFn | None = None, cancel=None, margin: float = 0.0):
        self.store, self.cache, self.grid, self.sink = store, cache, grid, progress
        self.folder = Path(scratch) / "rows"
        self.folder.mkdir(parents=True, exist_ok=True)
        self.margin = float(margin)
        self.stop = _Stop(cancel)
        self.cond = threading.Condition()
        self.arrived: set = set()
        self.error: BaseException | None = None
        self.finished = threading.Event()
        self.held: Progress | None = None
        self.last_fetch = Progress("fetch")
        self.pieces = dict(pieces)
        self.rows: dict = {}  # (item, k) -> the row's Piece
        self.files: dict = {}  # (item, k) -> the local file its piece's VRT reads
        self.vrts: dict = {}  # item -> its piece's VRT
        self.counts: dict = {}  # item -> how many rows its piece has
        for n, (item, piece) in enumerate(pieces.items()):
            parts = fetch.strips(piece)
            self.counts[item] = len(parts)
            for k, row in enumerate(parts):
                self.rows[(item, k)] = row
                self.files[(item, k)] = self.folder / f"{n:04d}-{k:03d}.tif"
            self.vrts[item] = self.folder / f"{n:04d}.vrt"
            _piece_vrt(piece, [self.files[(item, k)] for k in range(len(parts))], self.vrts[item])
        self.bounds = {key: _row_bounds(row) for key, row in self.rows.items()}
        self.needs: dict = {}
        self.thread = threading.Thread(target=self._run, name="s2desktop-arrivals", daemon=True)

    def path(self, item) -> str | None:
        vrt = self.vrts.get(item)
        return None if vrt is None else str(vrt)

    def start(self) -> "Arrivals":
        self.thread.start()
        return self

    def _run(self) -> None:
        order = sorted(self.rows, key=self._north_first)
        try:
            fetch.fetch_pieces(self.store, {key: self.rows[key] for key in order}, self.cache, self.folder,
                               self.grid, self._fetched, self.stop, on_piece=self._arrived)
        except BaseException as exc:  # noqa: BLE001 -- handed to whoever waits on the windows
            self.error = exc
        finally:
            with self.cond:
                self.finished.set()
                held, self.held = self.held, None
                self.cond.notify_all()
            if held is not None and self.error is None and not self.stop.is_set():  # cancelled: nothing more
                emit(self.sink, held.with_message(
                    f"{held.items_done} of {held.items_total} window(s) composited while fetching")
                     if held.items_done else held)

    def _fetched(self, event: Progress) -> None:
        with self.cond:
            self.last_fetch = event.with_message("")
        emit(self.sink, event)

    def _north_first(self, key) -> tuple:
        from rasterio.warp import transform

        row = self.rows[key]
        x0, _y0, _x1, y1 = self.bounds[key][1]
        (_x,), (y,) = transform(f"EPSG:{row.header.epsg}", self.grid.crs, [x0], [y1])
        return -round(y), key[1]

    def _arrived(self, key, path) -> None:
        """A row is in (checked, cached or written to the scratch folder): under its VRT's name, atomically."""
        dest = self.files[key]
        tmp = dest.with_name(f".{dest.name}.part")
        try:
            os.link(path, tmp)
        except OSError:  # another file system, or no hard links there
            shutil.copyfile(path, tmp)
        os.replace(tmp, dest)
        with self.cond:
            self.arrived.add(key)
            self.cond.notify_all()
            complete = all((key[0], k) in self.arrived for k in range(self.counts[key[0]]))
        if complete and self.cache is not None:  # the next run over this grid reads no header of it
            fetch.remember(self.cache, self.pieces[key[0]], self.grid)

    def ready(self, window) -> bool:
        """Whether every row a window of the grid (a rasterio Window, fractional or not) reads is in; raises the
        fetch's error once it has failed."""
        if self.error is not None:
            raise self.error
        span = (window.col_off, window.row_off, window.width, window.height)
        needs = self.needs.get(span)
        if needs is None:
            needs = self.needs[span] = self._needs(window)
        with self.cond:
            return needs <= self.arrived

    def _needs(self, window) -> frozenset:
        from affine import Affine
        from rasterio.warp import transform_bounds
        from rasterio.windows import bounds

        box = bounds(window, Affine(*self.grid.transform))
        out, seen = set(), {}
        for key, (epsg, (x0, y0, x1, y1), pixel) in self.bounds.items():
            if epsg not in seen:
                seen[epsg] = transform_bounds(self.grid.crs, f"EPSG:{epsg}", *box, densify_pts=21)
            left, bottom, right, top = seen[epsg]
            pad = self.margin + SLACK_PX * pixel
            if x0 < right + pad and left - pad < x1 and y0 < top + pad and bottom - pad < y1:
                out.add(key)
        return frozenset(out)

    def wait_some(self, timeout: float = 0.1) -> None:
        """Sleep until a row arrives, the fetch ends or ``timeout`` passes; raises the fetch's error."""
        with self.cond:
            if not self.finished.is_set():
                self.cond.wait(timeout)
        if self.error is not None:
            raise self.error

    def wait(self) -> None:
        """Until every row is in; raises the fetch's error."""
        self.thread.join()
        if self.error is not None:
            raise self.error

    def close(self) -> None:
        """Stop fetching (rows no window needed any more, or after a failure) and wait for the fetch's threads to
        settle; nothing partial is left."""
        self.stop.closed.set()
        if self.thread.is_alive():
            self.thread.join(60)

    def progress(self, event: Progress) -> None:
        """The composite's events, for the front ends: its window counts are held back while rows are still
        arriving (the fetch's bytes say how far the job is), the last one passed on when they are all in; a
        finished window's pixels go on at once, on a copy of the fetch's latest event."""
        with self.cond:
            if event.stage == "composite" and not event.message and not self.finished.is_set():
                self.held = replace(event, pixels=None)
                if event.pixels is None:
                    return
                event = replace(self.last_fetch, pixels=event.pixels)
            else:
                self.held = None  # a later phase's message: the window count it would have said is past
        emit(self.sink, event)


def _row_bounds(row) -> tuple:
    """(EPSG, (left, bottom, right, top), pixel size) of a row of tiles in its COG's CRS."""
    lv = row.header.levels[row.level]
    a, _b, c, _d, e, f = lv.transform
    c0, r0, w, h = row.window
    return row.header.epsg, (c + c0 * a, f + (r0 + h) * e, c + (c0 + w) * a, f + r0 * e), abs(a)


def _piece_vrt(piece, files: list[Path], path: Path) -> None:
    """A VRT of the piece's window whose sources are its rows' files, none opened before a read reaches it."""
    sources, top = [], 0
    for name, row in zip(files, fetch.strips(piece)):
        sources.append((name, top, row.window[3]))
        top += row.window[3]
    path.write_text(fetch.window_vrt(piece, sources), encoding="utf-8")
