"""The windows an area needs, fetched once from remote COGs as checked bytes, reported as they arrive.

For each COG an area needs (one band of one scene) :func:`plan_pieces` reads its header with ranged GETs
(:mod:`s2desktop.core.cogtiles`: the IFDs and tile index, checked against the tile's place in the Sentinel-2
grid), picks the overview level that matches the area's resolution and the window that covers the area there
(widened by a pixel for resampling and out to whole tiles), and lists the compressed tiles under it.
:func:`fetch_pieces` then fetches those tiles concurrently -- one ranged GET per run of consecutive tiles --
checks each one as it decodes it (its size, and its DEFLATE stream's own checksum), fetches a damaged range once
more and then reports it, and writes each window's pixels (512 px blocks, ZSTD: fast to read again) into the
:class:`~s2desktop.core.windowcache.WindowCache` (or the run's scratch folder when it cannot be kept there).

A window already in the cache (same object, same ETag, its own digest intact) is not fetched again, and a
second run over the same area reads no header either. Nothing is fetched twice within a run: the compositor
then reads these local windows, not the network. Every request goes through the source's S3 client (timeouts,
retries, requester pays); a cancel returns at once, even from a stalled read (its thread is abandoned and keeps
nothing).
"""

from __future__ import annotations

import errno
import math
import shutil
import threading
from dataclasses import dataclass, field
from pathlib import Path

from s2desktop.core import cogtiles, tiles
from s2desktop.core.areas import OutputGrid
from s2desktop.core.cogtiles import CogHeader, Level
from s2desktop.core.errors import IntegrityError, RasterError, output_error
from s2desktop.core.fsutil import atomic_path
from s2desktop.core.progress import Progress, ProgressFn, emit
from s2desktop.core.threads import run_abandonable
from s2desktop.core.units import human_bytes
from s2desktop.core.windowcache import WindowCache

__all__ = ["Remote", "Piece", "remote_of", "plan_pieces", "remember", "fetch_pieces", "strips", "window_vrt", "overview_level",
           "CONNECTIONS"]

_GDAL_TYPES = {"uint8": "Byte", "uint16": "UInt16", "int16": "Int16", "uint32": "UInt32", "int32": "Int32",
               "float32": "Float32", "float64": "Float64"}
# Headers read and ranges fetched at once. A stalled one does not hold the others up, and 8 keep a 100 Mbit/s
# link with 40 ms a request busy: on bench_area.py's link 24 did not fetch faster but made every request wait
# longer at the server (its time to first byte 0.7-1.3 s instead of 0.2 s), the 80 m preview 7.5 s instead of 5.9.
CONNECTIONS = 8
PAD = 1  # source pixels around the area, for bilinear resampling at its edge
GAP = 16 << 10  # tiles this close in the file are fetched in one range (GDAL's COGs leave 8 bytes between)


@dataclass(frozen=True)
class Remote:
    """One COG an area needs: its key in the source's bucket, ETag, size, and the tile it belongs to."""

    key: str
    etag: str | None
    size: int
    tile: str


def remote_of(store, scene, key: str) -> Remote:
    """The band object ``key`` of ``scene``: ETag and size from the listing the search made, else a HEAD."""
    size, etag = (scene.objects or {}).get(key) or (None, None)
    if size is None:
        info = store.head(key)
        size, etag = info.size, info.etag
    return Remote(key, etag, size, scene.tile)


@dataclass(frozen=True)
class Piece:
    """The window of one COG that an area needs, at the overview level of its resolution, with the header
    that locates and describes its tiles."""

    key: str
    etag: str | None
    header: CogHeader
    level: int  # index into header.levels (0: the full resolution)
    window: tuple[int, int, int, int]  # col_off, row_off, width, height in that level's pixels
    # the object's first bytes, fetched with its header in this run: tiles inside them need no request
    prefix: bytes = field(default=b"", compare=False, repr=False)

    @property
    def tiles(self) -> list[tuple[int, int, int]]:
        """(position in the window, offset, byte count) of each tile, row-major."""
        lv = self.header.levels[self.level]
        out = []
        for pos, (i, j) in enumerate(cogtiles.tiles_under(lv, self.window)):
            k = i * lv.tiles_across + j
            out.append((pos, lv.offsets[k], lv.counts[k]))
        return out

    @property
    def nbytes(self) -> int:
        return sum(n for _p, _o, n in self.tiles)

    @property
    def identity(self) -> str:
        return f"{self.key}?level={self.level}&window={','.join(map(str, self.window))}"


def strips(piece: Piece) -> list[Piece]:
    """The piece cut into its rows of tiles, top first: each is fetched, checked, cached and read on its own, so
    the compositor's windows over the first rows can run while the next rows are still on their way."""
    from dataclasses import replace

    c0, r0, w, h = piece.window
    th = piece.header.levels[piece.level].tile_height
    return [replace(piece, window=(c0, r, w, min(th, r0 + h - r))) for r in range(r0, r0 + h, th)]


def window_vrt(piece: Piece, sources, block: tuple[int, int] = (512, 512)) -> str:
    """A VRT of the piece's window of its COG level, georeferenced from the header, whose ``sources`` [(GDAL
    name, first row in the window, rows)] are each declared (size, type, blocks) so that GDAL opens none of them
    until a read reaches it: opening the VRT reads nothing."""
    import xml.sax.saxutils as xml

    from rasterio.crs import CRS

    lv = piece.header.levels[piece.level]
    c0, r0, w, h = piece.window
    a, b, c, d, e, f = lv.transform
    kind, (bw, bh) = _GDAL_TYPES[str(piece.header.dtype)], block
    rows = "".join(
        f'    <SimpleSource><SourceFilename relativeToVRT="0">{xml.escape(str(name))}</SourceFilename>'
        f'<SourceBand>1</SourceBand><SourceProperties RasterXSize="{w}" RasterYSize="{n}" DataType="{kind}" '
        f'BlockXSize="{bw}" BlockYSize="{bh}"/><SrcRect xOff="0" yOff="0" xSize="{w}" ySize="{n}"/>'
        f'<DstRect xOff="0" yOff="{top}" xSize="{w}" ySize="{n}"/></SimpleSource>\n' for name, top, n in sources)
    return (f'<VRTDataset rasterXSize="{w}" rasterYSize="{h}">\n'
            f"  <SRS>{xml.escape(CRS.from_epsg(piece.header.epsg).to_wkt())}</SRS>\n"
            f"  <GeoTransform>{c + c0 * a!r}, {a!r}, {b!r}, {f + r0 * e!r}, {d!r}, {e!r}</GeoTransform>\n"
            f'  <VRTRasterBand dataType="{kind}" band="1" blockXSize="{bw}" blockYSize="{bh}">\n'
            f"    <NoDataValue>0</NoDataValue>\n{rows}  </VRTRasterBand>\n</VRTDataset>\n")


def overview_level(ds, resolution: float) -> int | None:
    """The coarsest overview level of ``ds`` still at least as fine as ``resolution`` (None: the full one)."""
    base = abs(ds.transform.a)
    level = None
    for i, factor in enumerate(ds.overviews(1)):
        if base * factor <= resolution * (1 + 1e-6):
            level = i
    return level


def _level_for(header: CogHeader, resolution: float) -> int:
    """The coarsest level of the header still at least as fine as ``resolution`` (0: the full one), by the
    overview factors GDAL reports (the full width over the level's, rounded)."""
    full = header.levels[0]
    base, level = abs(full.transform[0]), 0
    for i, lv in enumerate(header.levels[1:], 1):
        if base * round(full.width / lv.width) <= resolution * (1 + 1e-6):
            level = i
    return level


def _block_window(level: Level, epsg: int, grid: OutputGrid):
    """The grid's bounds in the level's pixels, padded and widened to whole tiles, clipped to it; or None."""
    from affine import Affine
    from rasterio.warp import transform_bounds
    from rasterio.windows import from_bounds

    a, _b, c, _d, e, f = grid.transform
    bounds = (c, f + e * grid.height, c + a * grid.width, f)
    win = from_bounds(*transform_bounds(grid.crs, f"EPSG:{epsg}", *bounds, densify_pts=21),
                      transform=Affine(*level.transform))
    bh, bw = level.tile_height, level.tile_width
    c0 = max(0, (math.floor(win.col_off) - PAD) // bw * bw)
    r0 = max(0, (math.floor(win.row_off) - PAD) // bh * bh)
    c1 = min(level.width, -(-(math.ceil(win.col_off + win.width) + PAD) // bw) * bw)
    r1 = min(level.height, -(-(math.ceil(win.row_off + win.height) + PAD) // bh) * bh)
    if c0 >= c1 or r0 >= r1:
        return None
    return c0, r0, c1 - c0, r1 - r0


class _Stop:
    """Set by the caller's cancel, or when one task failed (so the others stop at their next step)."""

    def __init__(self, cancel):
        self.cancel, self.failed = cancel, threading.Event()

    def is_set(self) -> bool:
        return self.failed.is_set() or (self.cancel is not None and self.cancel.is_set())


def _grid_id(grid: OutputGrid) -> str:
    return f"grid={grid.crs},{grid.transform},{grid.width},{grid.height}"


def plan_pieces(store, wanted: dict, grid: OutputGrid, cache: WindowCache, progress: ProgressFn | None = None,
                cancel=None) -> dict:
    """{item: Remote} -> {item: Piece or None (the COG does not reach the grid)}, the headers read
    concurrently; a COG whose piece for this grid the cache remembers is not read again."""
    items = list(wanted)
    stop = _Stop(cancel)
    emit(progress, Progress("plan", 0, len(items), message=f"reading the headers of {len(items)} COG(s)"))
    done = [0]
    lock = threading.Lock()

    def one(item):
        remote = wanted[item]
        key = cache.key(f"{remote.key}?{_grid_id(grid)}", remote.etag)
        piece = _piece_of(cache.get_json(key))
        if piece is None:
            piece = plan_piece(store, remote, grid, stop)
        with lock:
            done[0] += 1
            emit(progress, Progress("plan", done[0], len(items)))
        return piece

    return dict(zip(items, run_abandonable(one, items, CONNECTIONS, stop, "cog-header")))


def plan_piece(store, remote: Remote, grid: OutputGrid, stop=None) -> Piece | None:
    """The piece of one COG under the grid, from its header (read and checked); None: it does not reach it."""
    url = store.url(remote.key)
    for attempt in (1, 2):  # a header damaged on the way is read once more, then reported
        try:
            header, prefix = cogtiles.read_header(
                lambda start, n: store.get_range(remote.key, start, n, etag=remote.etag, cancel=stop),
                remote.size, url)
            cogtiles.check_georef(header, tiles.footprint(remote.tile), url)
            break
        except RasterError:
            if attempt == 2:
                raise
    level = _level_for(header, grid.resolution)
    window = _block_window(header.levels[level], header.epsg, grid)
    return None if window is None else Piece(remote.key, remote.etag, header, level, window, prefix)


def _piece_of(doc) -> Piece | None:
    """A Piece from the JSON the cache remembers (None: nothing usable remembered)."""
    if not isinstance(doc, dict):
        return None
    try:
        h = dict(doc["header"])
        h["levels"] = tuple(Level(**{**lv, "offsets": tuple(lv["offsets"]), "counts": tuple(lv["counts"]),
                                     "transform": tuple(lv["transform"])}) for lv in h["levels"])
        h["geokeys"] = tuple(h["geokeys"])
        h["geodoubles"] = tuple(h["geodoubles"]) if h["geodoubles"] is not None else None
        return Piece(doc["key"], doc["etag"], CogHeader(**h), int(doc["level"]), tuple(doc["window"]))
    except (KeyError, TypeError, ValueError):
        return None


def remember(cache: WindowCache, piece: Piece, grid: OutputGrid) -> None:
    """Keep the piece's plan (its header and window) for the next run over this grid, once its rows are in the
    cache (`core.arrivals`); best effort."""
    from dataclasses import asdict

    key = cache.key(f"{piece.key}?{_grid_id(grid)}", piece.etag)
    if key is not None:
        try:
            cache.put_json(key, {k: v for k, v in asdict(piece).items() if k != "prefix"})
        except OSError:
            pass


def _zeros(piece: Piece):
    """A sparse tile's pixels: nodata."""
    import numpy as np

    lv = piece.header.levels[piece.level]
    return np.zeros((lv.tile_height, lv.tile_width), piece.header.dtype)


def ranges(piece: Piece) -> list[list[tuple[int, int, int]]]:
    """The piece's tiles grouped into runs that one ranged GET fetches (consecutive in the file)."""
    runs: list[list[tuple[int, int, int]]] = []
    for tile in sorted(piece.tiles, key=lambda t: t[1]):
        if tile[2] == 0:
            continue  # a sparse tile: nothing to fetch
        last = runs[-1][-1] if runs else None
        if last is not None and 0 <= tile[1] - (last[1] + last[2]) <= GAP:
            runs[-1].append(tile)
        else:
            runs.append([tile])
    return runs


def fetch_pieces(store, pieces: dict, cache: WindowCache, scratch: Path, grid: OutputGrid,
                 progress: ProgressFn | None = None, cancel=None, on_piece=None) -> dict:
    """{item: Piece} -> {item: local GeoTIFF}: cached windows (checked) as they are, the others fetched and
    checked, concurrently, in the order given, with 'fetch' progress in bytes; kept in the cache unless the
    area's windows do not fit its limit (then in ``scratch``, for this run only). ``on_piece(item, path)`` is
    called as each one is there (the cached ones first), from the fetching threads."""
    hits, todo = {}, {}
    for item, p in pieces.items():
        path = cache.get(cache.key(p.identity, p.etag))
        if path is not None:
            hits[item] = path
        else:
            todo[item] = p
    total = sum(p.nbytes for p in todo.values())
    keep = _make_room(cache, hits, total, progress)
    for item, path in hits.items():
        if on_piece is not None:
            on_piece(item, path)
    stop = _Stop(cancel)
    note = f" ({len(hits)} more already cached)" if hits else ""
    emit(progress, Progress("fetch", 0, len(todo), 0, total, message=(
        f"fetching {len(todo)} window(s), {human_bytes(total)}{note}" if todo else
        f"all {len(hits)} window(s) already cached: nothing to fetch")))
    run = _Run(store, cache if keep else None, Path(scratch), grid, todo, total, progress, stop, on_piece)
    for item, p in todo.items():
        if not ranges(p):  # every tile sparse: nothing to fetch, the window is written all the same
            run.complete(item)
    tasks = [(item, tiles) for item, p in todo.items() for tiles in ranges(p)]
    try:
        run_abandonable(run.fetch, tasks, CONNECTIONS, stop, "cog-fetch")
    finally:
        run.settle()  # reads still stalled are abandoned; a window being written is finished or removed
    return {**hits, **run.paths}


def _make_room(cache: WindowCache, hits: dict, total: int, progress) -> bool:
    """Trim the cache for ``total`` more bytes, never the entries this run counts on; -> whether the windows
    fetched now may be kept. An area whose windows exceed the limit streams through without keeping them."""
    if not cache.limit:
        return False
    counted = sum(p.stat().st_size for p in hits.values() if p.exists())
    if counted + total > cache.limit:
        emit(progress, Progress("fetch", message=(
            f"this area's windows ({human_bytes(counted + total)}) exceed the area cache's limit "
            f"({human_bytes(cache.limit)}): the new ones are used for this run and not kept")))
        cache.trim(keep=hits.values())
        return False
    if total:
        cache.trim(room=total, keep=hits.values())
    return True


class _Run:
    """The tiles of the pieces being fetched; each piece written out as soon as all its tiles are in."""

    def __init__(self, store, cache: WindowCache | None, scratch: Path, grid: OutputGrid, todo: dict, total: int,
                 progress, stop: _Stop, on_piece=None):
        self.store, self.cache, self.scratch, self.grid, self.todo = store, cache, scratch, grid, todo
        self.on_piece = on_piece
        self.total, self.progress, self.stop = total, progress, stop
        self.lock = threading.Lock()
        self.buffers = {item: {} for item in todo}
        self.expected = {item: sum(1 for _p, _o, n in p.tiles if n) for item, p in todo.items()}
        self.paths: dict = {}
        self.numbers = {item: i for i, item in enumerate(todo)}  # a scratch file's name
        self.bytes = 0
        self.disk_full = False
        self.writing = threading.Semaphore(CONNECTIONS)  # one slot per thread: all free when none is writing

    def settle(self, timeout: float = 30) -> None:
        """Wait until no thread is writing a window (each removes its temporary file when it stops)."""
        self.stop.failed.set()
        taken = 0
        for _ in range(CONNECTIONS):
            if self.writing.acquire(timeout=timeout):
                taken += 1
        for _ in range(taken):
            self.writing.release()

    def fetch(self, task) -> None:
        item, run = task
        piece = self.todo[item]
        data = self._checked(piece, run)
        with self.lock:
            self.buffers[item].update(data)
            self.bytes += sum(n for _pos, _off, n in run)
            finished = len(self.buffers[item]) == self.expected[item]
            if not finished:
                emit(self.progress, Progress("fetch", len(self.paths), len(self.todo), self.bytes, self.total))
        if finished:
            with self.writing:
                if not self.stop.is_set():  # cancelled or failed meanwhile: nothing more is written
                    self.complete(item)

    def _checked(self, piece: Piece, run) -> dict:
        """{position: tile bytes} of one run of tiles, each checked; a damaged range is fetched once more,
        then reported (IntegrityError, nothing kept)."""
        start = run[0][1]
        length = run[-1][1] + run[-1][2] - start
        url = self.store.url(piece.key)
        for attempt in (1, 2):
            if attempt == 1 and start + length <= len(piece.prefix):  # came with the header: checked all the same
                blob = piece.prefix[start: start + length]
            else:
                blob = self.store.get_range(piece.key, start, length, etag=piece.etag, cancel=self.stop)
            tiles, problems = {}, []
            for pos, off, n in run:
                data = blob[off - start: off - start + n]
                pixels, why = cogtiles.decode_tile(data, n, piece.header, piece.level)
                tiles[pos] = data if pixels is None else pixels  # a compression not decoded here: its bytes
                if why:
                    problems.append((pos, why))
            if not problems:
                return tiles
        pos, why = problems[0]
        raise IntegrityError(f"{url}: a tile of its window (level {piece.level}, tile {pos}) failed its check "
                             f"twice: {why}; nothing was kept")

    def complete(self, item) -> None:
        """Write the piece's tiles as its window's GeoTIFF: into the cache, or the scratch folder."""
        piece = self.todo[item]
        with self.lock:
            got = self.buffers.pop(item, {})
        tiles = [got.get(pos) for pos, _off, _n in piece.tiles]
        path = self._write(item, piece, tiles)
        with self.lock:
            self.paths[item] = path
            emit(self.progress, Progress("fetch", len(self.paths), len(self.todo), self.bytes, self.total))
        if self.on_piece is not None:
            self.on_piece(item, path)

    def _write(self, item, piece: Piece, tiles) -> Path:
        def write(tmp):
            if all(t is None or isinstance(t, bytes) for t in tiles):  # not decoded here: the tiles as they came
                cogtiles.write_piece(tmp, piece.header, piece.level, piece.window, [t or b"" for t in tiles])
            else:
                cogtiles.write_window(tmp, piece.header, piece.level, piece.window,
                                      [t if t is not None else _zeros(piece) for t in tiles])

        key = self.cache.key(piece.identity, piece.etag) if self.cache is not None and not self.disk_full else None
        if key is not None:
            try:
                return self.cache.put(key, write)
            except OSError as exc:  # GDAL's write errors too (RasterioIOError): the cache is only a help
                self._cache_unwritable(exc)
        dest = self.scratch / f"piece-{self.numbers[item]:04d}.tif"
        try:
            with atomic_path(dest) as tmp:
                write(tmp)
        except OSError as exc:
            raise output_error(exc, dest, "set TMPDIR to a folder with room") from None
        return dest

    def _cache_unwritable(self, exc: OSError) -> None:
        """From now on windows go to the scratch folder; said once."""
        with self.lock:
            said, self.disk_full = self.disk_full, True
        if said:
            return
        try:
            full = exc.errno in (errno.ENOSPC, errno.EDQUOT) or shutil.disk_usage(self.cache.folder).free < 64 << 20
        except OSError:
            full = False
        why = "is full" if full else f"cannot be written ({str(exc).splitlines()[0] if str(exc) else exc})"
        emit(self.progress, Progress("fetch", message=f"the disk of the area cache ({self.cache.folder}) {why}: the "
                                                       "windows are used for this run and not kept"))
