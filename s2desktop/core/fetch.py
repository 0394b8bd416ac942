"""The windows an area needs, fetched once from remote COGs: bytes known up front, reported as they arrive.

For each COG an area needs (one band of one scene) :func:`plan_pieces` opens it -- GDAL reads its header and
block index, not its pixels -- picks the overview level that matches the area's resolution and the window that
covers the area there (widened by a pixel for resampling and out to whole COG blocks, which is what GDAL
fetches anyway), and sums the compressed sizes of the blocks under it. :func:`fetch_pieces` then reads the
windows concurrently, a few block rows per read (GDAL merges consecutive blocks into one range and asks for the
ranges of a read at once), into GeoTIFFs in the :class:`~s2desktop.core.windowcache.WindowCache`, reporting
bytes as each read arrives. A window already in
the cache (same object, same ETag) is not fetched again. Nothing is fetched twice within a run: the compositor
then reads these local windows, not the network.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import json
import math
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from s2desktop.core.areas import OutputGrid
from s2desktop.core.errors import RasterError
from s2desktop.core.fsutil import atomic_path, write_json_atomic
from s2desktop.core.progress import Progress, ProgressFn, check_cancel, emit
from s2desktop.core.units import human_bytes
from s2desktop.core.windowcache import WindowCache

__all__ = ["Piece", "plan_pieces", "fetch_pieces", "overview_level", "CONNECTIONS"]

CONNECTIONS = 16  # COGs opened and windows read at once (GDAL releases the GIL while it waits)
PAD = 1  # source pixels around the area, for bilinear resampling at its edge
CHUNK = 64 << 20  # bytes of decoded pixels one read of a window may hold (a few 1024 px block rows)


@dataclass(frozen=True)
class Piece:
    """The window of one COG that an area needs, at the overview level of its resolution."""

    name: str  # GDAL path (/vsis3/bucket/key)
    etag: str | None
    level: int | None  # overview level (None: the full resolution)
    window: tuple[int, int, int, int]  # col_off, row_off, width, height in that level's pixels
    rows: tuple[tuple[int, int, int], ...]  # (row_off, height, compressed bytes) of each block row
    dtype: str

    @property
    def nbytes(self) -> int:
        return sum(n for _r, _h, n in self.rows)

    @property
    def identity(self) -> str:
        return f"{self.name}?level={self.level}&window={','.join(map(str, self.window))}"


def overview_level(ds, resolution: float) -> int | None:
    """The coarsest overview level of ``ds`` still at least as fine as ``resolution`` (None: the full one)."""
    base = abs(ds.transform.a)
    level = None
    for i, factor in enumerate(ds.overviews(1)):
        if base * factor <= resolution * (1 + 1e-6):
            level = i
    return level


def _env(options: dict):
    """GDAL options for this thread (rasterio sets a worker thread's options for that thread only)."""
    import rasterio

    return rasterio.Env(**options)


def _open(name: str, level: int | None):
    import rasterio

    return rasterio.open(name) if level is None else rasterio.open(name, overview_level=level)


def plan_piece(name: str, etag: str | None, grid: OutputGrid) -> Piece | None:
    """The piece of COG ``name`` under the grid (None: the COG does not reach the grid)."""
    import rasterio
    from rasterio.errors import RasterioIOError

    try:
        with rasterio.open(name) as full:
            level = overview_level(full, grid.resolution)
        with _open(name, level) as ds:
            window = _block_window(ds, grid)
            if window is None:
                return None
            return Piece(name, etag, level, window, _block_rows(ds, window), ds.dtypes[0])
    except RasterioIOError as exc:
        raise RasterError(f"{name}: cannot read ({str(exc).splitlines()[0]})") from None


def _block_window(ds, grid: OutputGrid):
    """The grid's bounds in ``ds``'s pixels, padded and widened to whole blocks, clipped to ``ds``; or None."""
    from rasterio.warp import transform_bounds
    from rasterio.windows import from_bounds

    a, _b, c, _d, e, f = grid.transform
    bounds = (c, f + e * grid.height, c + a * grid.width, f)
    win = from_bounds(*transform_bounds(grid.crs, ds.crs, *bounds, densify_pts=21), transform=ds.transform)
    bh, bw = ds.block_shapes[0]
    c0 = max(0, (math.floor(win.col_off) - PAD) // bw * bw)
    r0 = max(0, (math.floor(win.row_off) - PAD) // bh * bh)
    c1 = min(ds.width, -(-(math.ceil(win.col_off + win.width) + PAD) // bw) * bw)
    r1 = min(ds.height, -(-(math.ceil(win.row_off + win.height) + PAD) // bh) * bh)
    if c0 >= c1 or r0 >= r1:
        return None
    return c0, r0, c1 - c0, r1 - r0


def _block_rows(ds, window) -> tuple[tuple[int, int, int], ...]:
    """(row_off, height, compressed bytes of its blocks in the window) of each block row of the window."""
    c0, r0, w, h = window
    bh, bw = ds.block_shapes[0]
    rows = []
    for i in range(r0 // bh, -(-(r0 + h) // bh)):
        nbytes = sum(ds.block_size(1, i, j) for j in range(c0 // bw, -(-(c0 + w) // bw)))
        top = i * bh
        rows.append((top, min(bh, r0 + h - top), nbytes))
    return tuple(rows)


def plan_pieces(wanted: dict, grid: OutputGrid, env: dict, cache: WindowCache,
                progress: ProgressFn | None = None, cancel=None) -> dict:
    """{item: (GDAL path, ETag)} -> {item: Piece or None}, the COGs opened concurrently with GDAL options
    ``env``; a COG whose piece for this grid the cache remembers is not opened."""
    items = list(wanted)
    stop = _Stop(cancel)
    names = sorted({name for name, _etag in wanted.values()})
    with _env(env):  # the files' URLs are built from the endpoint in env
        forgotten = forget(names)
    if not forgotten:  # GDAL's library out of reach: keep its cache off these files instead
        env = {**env, "CPL_VSIL_CURL_NON_CACHED": ":".join(names)}
    emit(progress, Progress("plan", 0, len(items), message=f"reading the headers of {len(items)} COG(s)"))
    done = 0
    lock = threading.Lock()

    def one(item):
        nonlocal done
        check_cancel(stop, "cancelled")
        piece = _remembered(cache, *wanted[item], grid)
        if piece is None:
            with _env(env):
                piece = plan_piece(*wanted[item], grid)
            _remember(cache, *wanted[item], grid, piece)
        with lock:
            done += 1
            emit(progress, Progress("plan", done, len(items)))
        return piece

    with ThreadPoolExecutor(CONNECTIONS, thread_name_prefix="cog-header") as pool:
        return dict(zip(items, _all(pool, one, items, stop)))


def forget(names) -> bool:
    """Make GDAL drop what it keeps in memory of these remote files (``VSICurlPartialClearCache``).

    GDAL keeps the bytes it read of a remote file for the life of the process, whatever its ETag; a window
    fetched for a new ETag must not come from there. Within a run the headers then come once for the plan and
    the fetch alike. False when GDAL's library cannot be reached (rasterio does not wrap this call).
    """
    lib = _libgdal()
    if lib is None:
        return False
    clear = lib.VSICurlPartialClearCache
    clear.argtypes, clear.restype = [ctypes.c_char_p], None
    for name in names:
        clear(name.encode())
    return True


@functools.lru_cache(maxsize=1)
def _libgdal():
    """The GDAL library rasterio loaded (a wheel's bundled copy, or the system's), or None."""
    import rasterio

    candidates = []
    try:
        with open("/proc/self/maps", encoding="utf-8") as maps:  # Linux: exactly the one loaded
            candidates += [line.split()[-1] for line in maps if "libgdal" in line and "/" in line]
    except OSError:
        pass
    here = Path(rasterio.__file__).parent
    for folder in (here, here / ".dylibs", here.parent / "rasterio.libs"):
        candidates += [str(p) for p in sorted(folder.glob("*gdal*")) if p.suffix in (".so", ".dylib", ".dll")
                       or ".so." in p.name]
    candidates += [n for n in (ctypes.util.find_library("gdal"),) if n]
    for name in candidates:
        try:
            lib = ctypes.CDLL(name)
            lib.VSICurlPartialClearCache  # noqa: B018 (present?)
            return lib
        except (OSError, AttributeError):
            continue
    return None


def _plan_entry(cache: WindowCache, name: str, etag: str | None, grid: OutputGrid) -> Path | None:
    return cache.path(f"{name}?grid={grid.crs},{grid.transform},{grid.width},{grid.height}", etag, ".json")


def _remembered(cache: WindowCache, name: str, etag: str | None, grid: OutputGrid) -> Piece | None:
    """The piece the cache remembers for this COG and grid (None: not remembered, or it does not reach it)."""
    path = _plan_entry(cache, name, etag, grid)
    if not cache.hit(path):
        return None
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        return Piece(doc["name"], doc["etag"], doc["level"], tuple(doc["window"]),
                     tuple(tuple(r) for r in doc["rows"]), doc["dtype"])
    except (OSError, ValueError, KeyError, TypeError):  # unreadable: plan it again
        return None


def _remember(cache: WindowCache, name: str, etag: str | None, grid: OutputGrid, piece: Piece | None) -> None:
    path = _plan_entry(cache, name, etag, grid)
    if path is not None and piece is not None:
        write_json_atomic(path, asdict(piece), indent=None)


class _Stop:
    """Set by the caller's cancel, or when one task failed (so the others stop at their next block row)."""

    def __init__(self, cancel):
        self.cancel, self.failed = cancel, threading.Event()

    def is_set(self) -> bool:
        return self.failed.is_set() or (self.cancel is not None and self.cancel.is_set())


def _all(pool, fn, items, stop: _Stop) -> list:
    """fn over items on the pool; on the first error (a cancel, Ctrl-C) the others stop and it is raised."""
    futures = [pool.submit(fn, x) for x in items]
    try:
        return [f.result() for f in futures]
    except BaseException:
        stop.failed.set()
        for f in futures:
            f.cancel()
        raise


def fetch_pieces(pieces: dict, cache: WindowCache, scratch: Path, env: dict, progress: ProgressFn | None = None,
                 cancel=None) -> dict:
    """{item: Piece} -> {item: local GeoTIFF}: cached windows as they are, the others fetched into the cache
    (or ``scratch`` when they cannot be cached), concurrently, with 'fetch' progress in bytes."""
    paths = {item: cache.path(p.identity, p.etag) or Path(scratch) / f"piece-{i:04d}.tif"
             for i, (item, p) in enumerate(pieces.items())}
    todo = [item for item in pieces if not cache.hit(paths[item])]
    total = sum(pieces[i].nbytes for i in todo)
    cached = len(pieces) - len(todo)
    if total:
        cache.trim(room=total)  # make room first: the least recently used windows go
    state = {"bytes": 0, "pieces": 0}
    stop = _Stop(cancel)
    lock = threading.Lock()
    note = f" ({cached} more already cached)" if cached else ""
    emit(progress, Progress("fetch", 0, len(todo), 0, total, message=(
        f"fetching {len(todo)} window(s), {human_bytes(total)}{note}" if todo else
        f"all {cached} window(s) already cached: nothing to fetch")))

    def arrived(nbytes: int, finished: bool = False) -> None:
        with lock:
            state["bytes"] += nbytes
            state["pieces"] += finished
            emit(progress, Progress("fetch", state["pieces"], len(todo), state["bytes"], total))

    with ThreadPoolExecutor(CONNECTIONS, thread_name_prefix="cog-fetch") as pool:
        _all(pool, lambda item: _fetch(pieces[item], paths[item], env, arrived, stop), todo, stop)
    return paths


def _fetch(piece: Piece, dest: Path, env: dict, arrived, stop) -> None:
    """One window into ``dest`` (through a temporary name), a few block rows per read (GDAL asks for their
    ranges at once), so that memory stays bounded however large the window."""
    import rasterio
    from rasterio.errors import RasterioIOError
    from rasterio.windows import Window

    c0, r0, w, h = piece.window
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        with _env(env), _open(piece.name, piece.level) as src, atomic_path(dest) as tmp:
            profile = dict(driver="GTiff", width=w, height=h, count=1, dtype=piece.dtype, crs=src.crs, nodata=0,
                           transform=src.window_transform(Window(c0, r0, w, h)), tiled=True, blockxsize=512,
                           blockysize=512, compress="ZSTD", zstd_level=1, predictor=2)
            with rasterio.open(tmp, "w", **profile) as out:
                for top, height, nbytes in _chunks(piece.rows, w * np.dtype(piece.dtype).itemsize):
                    check_cancel(stop, "cancelled")
                    out.write(src.read(1, window=Window(c0, top, w, height)), 1,
                              window=Window(0, top - r0, w, height))
                    arrived(nbytes)
        arrived(0, finished=True)
    except RasterioIOError as exc:
        raise RasterError(f"{piece.name}: cannot read ({str(exc).splitlines()[0]})") from None


def _chunks(rows, row_bytes: int):
    """Consecutive block rows merged into reads of at most CHUNK bytes decoded (at least one block row each)."""
    merged: list[list[int]] = []
    for top, height, nbytes in rows:
        if merged and (merged[-1][1] + height) * row_bytes <= CHUNK:
            merged[-1][1] += height
            merged[-1][2] += nbytes
        else:
            merged.append([top, height, nbytes])
    return [tuple(m) for m in merged]
