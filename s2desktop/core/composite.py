"""Windowed temporal median composite of Sentinel-2 band files, over a pool of spawned worker processes.

    result = composite(red_paths, green_paths, blue_paths, "out.tif", workers=2, scale=1, mask="auto",
                       progress=lambda done, total: ..., cancel=threading.Event())

How the work is laid out:
- Every check happens first (inputs present and consistent, destination writable, output not in the way),
  before any decoding.
- The image is cut into windows aligned to the inputs' internal blocks (1024 x 1024 for S2 JP2s; for `scale`
  > 1 a window spans `scale` blocks a side so the output window stays ~1024), so each compressed block of each
  input is decoded exactly once. With `scale` the reads use `out_shape`, which GDAL serves from JP2
  reduced-resolution levels / overviews.
- Windows go to a `ProcessPoolExecutor` with the spawn start method (forking after GDAL started can deadlock).
  Each worker opens all its datasets once (initializer) inside `rasterio.Env(GDAL_CACHEMAX=64 MB,
  GDAL_NUM_THREADS=cores // workers)`. At most 2 windows per worker are in flight, so memory is bounded by
  dates x window x workers. Workers reuse their window arrays and keep freed memory (glibc) instead of paying
  page faults for fresh memory every window.
- Per window and date: harmonise (DN - 1000, at least 1, for baseline >= 04.00), mask (SCL classes 0, 1, 3, 8,
  9, 10 when an L2A scene classification exists), then the median kernel of
  `s2desktop.core.compositing.rules` on observations valid in all three bands.
- The parent writes results as they complete into a temporary uncompressed tiled GTiff in the destination
  folder, builds its overviews (average, nodata-aware), then GDAL's COG driver copies it (ZSTD or DEFLATE,
  predictor 2, existing overviews) to another temporary name, renamed over the output on success. On an error,
  cancel or Ctrl-C the pool is torn down and every temporary file removed.
"""

from __future__ import annotations

import concurrent.futures as cf
import datetime as _dt
import logging
import math
import multiprocessing
import os
import signal
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from s2desktop.core.errors import (
    CancelledError,
    InvalidInputError,
    NotFoundError,
    OutputError,
    RasterError,
    S2Error,
)
from s2desktop.core.compositing.rules import median_bands

log = logging.getLogger(__name__)

__all__ = [
    "CompositeResult",
    "composite",
    "worker_main",
    "inputs_from_downloads",
    "find_scl",
    "check_output",
    "harmonise",
    "SCL_MASKED_CLASSES",
    "BANDS",
]

BANDS = ("B04", "B03", "B02")  # output order R, G, B
SCL_MASKED_CLASSES = (0, 1, 3, 8, 9, 10)
VALID_SCALES = (1, 2, 4, 8)
TARGET_WINDOW = 1024
GDAL_CACHEMAX_MB = 64
PARENT_CACHEMAX_MB = 128
_IN_FLIGHT_PER_WORKER = 2
# Fresh memory is what per-window arrays cost most: glibc hands a freed block above its mmap threshold back to the
# kernel, so every window's stack and kernel temporaries came back as new zero-filled pages -- ~7,000 page faults
# and ~140 ms of system time per 1024 px window on a 2-core VM, 5 % on top of the decode. The processes that
# composite keep freed memory for the next window instead (below), and the workers reuse their largest arrays.
_MALLOC_MMAP_THRESHOLD = 32 << 20  # glibc's largest: blocks up to this size come from the reusable heap
_MALLOC_TRIM_THRESHOLD = 256 << 20  # free heap kept before any is returned to the kernel
# The COG copy is the one serial step after the decoding. On a full 10980 px RGB composite (963 MB with
# overviews) ZSTD level 1 + predictor 2 took 2.6 s where DEFLATE level 1 took 7.9 s, for the same size; every
# GDAL >= 2.3 based reader (QGIS, rasterio, the GDAL tools) opens ZSTD. `compress="DEFLATE"` is there for old
# libtiff-only readers.
COMPRESSIONS = ("ZSTD", "DEFLATE")
COG_LEVEL = 1


@dataclass
class CompositeResult:
    path: Path
    count_path: Path | None
    width: int
    height: int
    dates: int
    windows: int
    seconds: float
    scale: int
    offsets: list[int]
    baselines: list[str | None]
    masked_dates: int
    tags: dict[str, str] = field(default_factory=dict)


# --- small pure helpers -----------------------------------------------------------------------------------------


def harmonise(arr: np.ndarray, offset: int) -> np.ndarray:
    """Bring DNs onto the pre-04.00 scale: offset -1000 -> DN - 1000, at least 1 (0 stays nodata)."""
    if not offset:
        return arr
    if offset != -1000:
        raise InvalidInputError(f"offset {offset} is not supported (use 0 or -1000)")
    out = arr - np.uint16(1000)
    out[arr <= 1000] = 1
    out[arr == 0] = 0
    return out


def find_scl(band_path) -> Path | None:
    """The L2A scene classification (SCL) file of a band file's scene, or None.

    Knows the download layout (`{out}/SCL/{tile}_{date}_{seq}_SCL.*` beside `{out}/red/...`), the L2A JP2
    bucket layout (`R10m/B04.jp2` -> `R20m/SCL.jp2`) and the COG layout (`SCL.tif` in the same folder).
    """
    from s2desktop.core.rasterinfo import parse_band_filename

    p = Path(band_path)
    parsed = parse_band_filename(p)
    candidates: list[Path] = []
    if parsed:
        stem = f"{parsed['scene_id']}_SCL"
        for folder in (p.parent.parent / "SCL", p.parent):
            candidates += sorted(folder.glob(stem + ".*"))
    if p.parent.name in ("R10m", "R20m", "R60m"):
        candidates += [p.parent.parent / "R20m" / "SCL.jp2", p.parent.parent / "R60m" / "SCL.jp2"]
    candidates.append(p.parent / f"SCL{p.suffix}")
    candidates += [p.parent / "SCL.tif", p.parent / "SCL.jp2"]
    for c in candidates:
        if c.is_file() and not c.name.endswith((".aux.xml", ".part", ".tmp")):
            return c
    return None


def _plan_windows(height: int, width: int, block: tuple[int, int], scale: int, target: int):
    """Block-aligned source windows + their output windows: list of (row, col, h, w, orow, ocol, oh, ow)."""
    bh, bw = block
    bh, bw = max(1, min(bh, height)), max(1, min(bw, width))
    # Reduced-resolution windows are cheap: aim at half-size output windows so the pool stays balanced.
    want = target * scale if scale == 1 else max(1, target // 2) * scale
    wh = bh * max(1, round(want / bh))
    ww = bw * max(1, round(want / bw))
    # Source windows must be multiples of scale so output offsets are whole pixels.
    wh = int(math.ceil(wh / scale) * scale)
    ww = int(math.ceil(ww / scale) * scale)
    out_h, out_w = int(math.ceil(height / scale)), int(math.ceil(width / scale))
    wins = []
    for r in range(0, height, wh):
        for c in range(0, width, ww):
            h, w = min(wh, height - r), min(ww, width - c)
            orow, ocol = r // scale, c // scale
            oh, ow = min(int(math.ceil(h / scale)), out_h - orow), min(int(math.ceil(w / scale)), out_w - ocol)
            wins.append((r, c, h, w, orow, ocol, oh, ow))
    return wins, (wh, ww), (out_h, out_w)


def _footprint_skips(geoms, transform, crs, wins, grid, dilate: bool = False) -> list[frozenset[int]]:
    """For each window, the dates whose data footprint (tileDataGeometry) does not touch it.

    dilate: the windows read may reach a few pixels into their neighbours (fractional reduced-resolution
    windows); skip a date only when its footprint touches neither the window nor a neighbour.
    """
    from affine import Affine
    from rasterio.features import rasterize

    wh, ww = grid
    nrows = len({w[0] for w in wins})
    ncols = len({w[1] for w in wins})
    grid_tf = transform @ Affine.scale(ww, wh)
    touched: dict[int, np.ndarray] = {}
    for d, geom in enumerate(geoms):
        if not geom or geom.get("type") not in ("Polygon", "MultiPolygon"):
            continue
        name = ((geom.get("crs") or {}).get("properties") or {}).get("name", "")
        epsg = crs.to_epsg() if crs is not None else None
        if name and (epsg is None or not name.endswith(str(epsg))):
            continue  # footprint in another CRS: do not risk skipping data
        try:
            g = {"type": geom["type"], "coordinates": geom["coordinates"]}
            t = rasterize([(g, 1)], out_shape=(nrows, ncols), transform=grid_tf, all_touched=True,
                          fill=0, dtype="uint8").astype(bool)
            if dilate:
                p = np.pad(t, 1)
                t = p[1:-1, 1:-1] | p[:-2, 1:-1] | p[2:, 1:-1] | p[1:-1, :-2] | p[1:-1, 2:]
                t |= p[:-2, :-2] | p[:-2, 2:] | p[2:, :-2] | p[2:, 2:]
            touched[d] = t
        except Exception as exc:  # a footprint we cannot use costs only speed
            log.debug("footprint of date %d unusable: %s", d, exc)
    skips = []
    for (r, c, *_rest) in wins:
        i, j = r // wh, c // ww
        skips.append(frozenset(d for d, t in touched.items() if not t[i, j]))
    return skips


# --- the worker side (runs in spawned processes, or in-process with workers=0) ----------------------------------

_W: dict[str, Any] = {}


def _init_worker(spec: dict, ignore_sigint: bool = True) -> None:
    import rasterio

    if ignore_sigint:
        # Ctrl-C goes to the whole process group; the parent handles it and tears the pool down.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        # If the parent is killed outright (the GUI's composite process terminated), do not linger.
        _die_with_parent(spec.get("parent_pid"))
    _keep_freed_memory()
    env = rasterio.Env(GDAL_CACHEMAX=GDAL_CACHEMAX_MB, GDAL_NUM_THREADS=str(spec["threads"]),
                       CPL_LOG_ERRORS="OFF")
    env.__enter__()
    _W.clear()
    _W["env"] = env
    _W["scratch"] = {}
    _W["spec"] = spec
    _W["bands"] = [[_open_named(p) for p in paths] for paths in spec["bands"]]
    # SCL: classes read by nearest from full resolution (JP2 reduced resolutions average classes into others)
    _W["scl"] = [(_open_named(p, no_overviews=True) if p else None) for p in spec["scl"]]


def _keep_freed_memory() -> None:
    """Keep freed memory in this process for reuse instead of returning it to the kernel (glibc's mallopt).

    Allocations up to 32 MB are served from the heap and up to 256 MB of free heap is kept, so arrays freed
    after one window are reused by the next without page faults. The process's RSS stays at its peak working
    set. A no-op where mallopt does not exist (not Linux, or not glibc).
    """
    import sys

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


def _scratch(name: str, shape: tuple[int, ...], dtype) -> np.ndarray:
    """A worker's reusable C-contiguous array of `shape`: the front of one buffer per name kept across windows
    (windows come in a few sizes; the largest allocates it). The contents are left over from the last use."""
    size = math.prod(shape)
    flat = _W["scratch"].get(name)
    if flat is None or flat.size < size or flat.dtype != np.dtype(dtype):
        flat = np.empty(size, dtype=dtype)
        _W["scratch"][name] = flat
    return flat[:size].reshape(shape)


def _die_with_parent(ppid: int | None) -> None:
    """Linux: the kernel sends SIGKILL when the parent dies (prctl PR_SET_PDEATHSIG); elsewhere a watchdog.

    `ppid` is the pool owner's pid as the owner saw it: a worker whose parent died while it was still starting
    up (before this runs) sees another parent already and exits at once.
    """
    import sys

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
    import threading

    def watch():
        while True:
            time.sleep(0.5)
            if os.getppid() != ppid:
                os._exit(1)

    threading.Thread(target=watch, daemon=True, name="s2desktop-parent-watch").start()


def _close_worker() -> None:
    for lst in _W.get("bands", []):
        for ds in lst:
            ds.close()
    for ds in _W.get("scl", []):
        if ds is not None:
            ds.close()
    env = _W.get("env")
    if env is not None:
        env.__exit__(None, None, None)
    _W.clear()


def _open_named(path: str, no_overviews: bool = False):
    from s2desktop.core.rasterinfo import open_raster

    return open_raster(path, no_overviews=no_overviews)


def _read(ds, window, out, scale):
    """Read band 1 of `window` straight into `out` (its shape sets the decimation for scale > 1)."""
    from rasterio.enums import Resampling
    from rasterio.errors import RasterioIOError

    try:
        if scale == 1:
            return ds.read(1, window=window, out=out)
        return ds.read(1, window=window, out=out, resampling=Resampling.nearest)
    except RasterioIOError as exc:
        from s2desktop.core.rasterinfo import gdal_error_text

        raise RasterError(f"{ds.name}: cannot read ({gdal_error_text(exc)}; truncated or corrupt?)") from None


def _read_scl(ds, out_bounds, out_shape):
    from rasterio.enums import Resampling
    from rasterio.windows import from_bounds

    win = from_bounds(*out_bounds, transform=ds.transform)
    inside = (win.col_off > -1e-6 and win.row_off > -1e-6 and win.col_off + win.width <= ds.width + 1e-6
              and win.row_off + win.height <= ds.height + 1e-6)
    try:
        if inside:  # the usual case: a plain windowed read (boundless reads go through a VRT)
            return ds.read(1, window=win, out_shape=out_shape, resampling=Resampling.nearest)
        return ds.read(1, window=win, out_shape=out_shape, resampling=Resampling.nearest, boundless=True,
                       fill_value=0)
    except Exception as exc:
        from s2desktop.core.rasterinfo import gdal_error_text

        raise RasterError(f"{ds.name}: cannot read the scene classification ({gdal_error_text(exc)})") from None


def _process_window(task):
    """Composite one window: -> (index, output window tuple, rgb uint16 (3, oh, ow), count uint8 (oh, ow))."""
    from rasterio.windows import Window
    from rasterio.windows import bounds as win_bounds

    idx, (r, c, h, w, orow, ocol, oh, ow), skip = task
    spec = _W["spec"]
    scale = spec["scale"]
    bands = _W["bands"]
    scls = _W["scl"]
    offsets = spec["offsets"]
    n = len(bands[0])
    window = Window(c, r, w, h)
    if scale > 1:
        # The source area of this output window on the output grid (pitch = size / output size, which is
        # `scale` exactly when the size divides; fractional windows otherwise, as a whole-image read makes).
        px, py = spec["pitch"]
        window = Window(ocol * px, orow * py, ow * px, oh * py)
    out_shape = (oh, ow)
    stacks = _scratch("stacks", (3, n, oh, ow), np.uint16)  # skipped dates are invalid: their values unused
    valid = _scratch("valid", (n, oh, ow), bool)
    out_bounds = None
    for d in range(n):
        if d in skip:
            valid[d] = False
            continue
        v = None
        for b in range(3):
            arr = _read(bands[b][d], window, stacks[b, d], scale)
            if offsets[b][d]:
                stacks[b, d] = harmonise(arr, offsets[b][d])
            nz = stacks[b, d] != 0
            v = nz if v is None else (v & nz)
        if spec["mask"] and scls[d] is not None:
            if out_bounds is None:
                out_bounds = win_bounds(Window(ocol, orow, ow, oh), spec["out_transform"])
            scl = _read_scl(scls[d], out_bounds, out_shape)
            v &= ~np.isin(scl, SCL_MASKED_CLASSES)
        valid[d] = v
    rgb, count = median_bands(stacks, valid, scratch=_scratch("keys", (n + 1, oh, ow), np.uint16))
    return idx, (orow, ocol, oh, ow), rgb, np.minimum(count, 255).astype(np.uint8)


# --- checks -----------------------------------------------------------------------------------------------------


def check_output(path, overwrite: bool = False, what: str = "output") -> None:
    """OutputError unless `path` can be written: not a folder, absent (or overwrite), folder writable."""
    _check_destination(Path(path), overwrite, what)


def _check_destination(path: Path, overwrite: bool, what: str) -> None:
    folder = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise OutputError(f"{what} {path} is a folder")
    if path.exists() and not overwrite:
        raise OutputError(f"{what} {path} already exists (use --overwrite to replace it)")
    if not folder.is_dir():
        raise OutputError(f"destination folder {folder} does not exist")
    try:
        fd, probe = tempfile.mkstemp(prefix=".s2desktop-probe-", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError:
        raise OutputError(f"destination folder {folder} is not writable") from None


def _normalise_offsets(offsets, n: int) -> list[list[int | None]]:
    """-> offsets[band][date]; None entries mean 'from metadata'."""
    if offsets is None:
        return [[None] * n for _ in range(3)]
    if isinstance(offsets, (int, np.integer)):
        offsets = [int(offsets)]
    offsets = [int(o) for o in offsets]
    for o in offsets:
        if o not in (0, -1000):
            raise InvalidInputError(f"offset {o} is not supported: use 0 (baseline < 04.00) or -1000 (>= 04.00)")
    if len(offsets) == 1:
        return [[offsets[0]] * n for _ in range(3)]
    if len(offsets) == n:
        return [list(offsets) for _ in range(3)]
    if len(offsets) == 3 * n:
        return [offsets[i * n:(i + 1) * n] for i in range(3)]
    raise InvalidInputError(
        f"{len(offsets)} offsets given for {n} date(s): give one, one per date ({n}) or one per file ({3 * n})")


def _scene_identity(path: Path, md: dict) -> tuple | None:
    """(tile, date, sequence or None) of a band file's scene when its name or metadata tell; else None."""
    from s2desktop.core.rasterinfo import parse_band_filename

    parsed = parse_band_filename(path)
    if parsed:
        return parsed["tile"], parsed["date"], parsed["seq"]
    if md.get("tile") and md.get("date"):
        return str(md["tile"]), str(md["date"]), None
    return None


def _check_same_scene(d: int, files: list[Path], ids: list[tuple | None]) -> None:
    """InvalidInputError when the red, green and blue files of one date are known to be different scenes."""
    known = [(f, i) for f, i in zip(files, ids) if i is not None]
    for f, i in known[1:]:
        f0, i0 = known[0]
        same = i[:2] == i0[:2] and (i[2] is None or i0[2] is None or i[2] == i0[2])
        if not same:
            def label(x):
                return "_".join(str(v) for v in x if v is not None)

            raise InvalidInputError(
                f"date {d + 1}: {f0.name} is scene {label(i0)} but {f.name} is {label(i)}: give the red, green "
                "and blue files in the same date order")


def _date_label(path: Path, md: dict) -> str:
    return str(md.get("date") or path.stem)


# --- the parent side --------------------------------------------------------------------------------------------


def composite(
    red: Sequence,
    green: Sequence,
    blue: Sequence,
    output,
    *,
    workers: int | None = None,
    scale: int = 1,
    mask: str = "auto",
    count_path=None,
    offsets=None,
    overwrite: bool = False,
    progress: Callable[[int, int], None] | None = None,
    cancel=None,
    scl: Sequence | None = None,
    window_size: int = TARGET_WINDOW,
    compress: str = "ZSTD",
) -> CompositeResult:
    """Median composite of co-registered band files (same date order per band) into a COG GeoTIFF.

    workers: processes in the pool (None: all cores; 0: run in this process, for debugging). scale: 1, 2, 4 or
    8. mask: 'auto' (use an L2A SCL where one exists beside the inputs, or the `scl` list given per date) or
    'none'. offsets: None (from the scene metadata), one value (0 or -1000), one per date or one per file.
    progress(done_windows, total_windows); cancel: any object with is_set() (threading/multiprocessing Event).
    compress: 'ZSTD' (default, fast) or 'DEFLATE' (for old libtiff-only readers), both with predictor 2.
    Raises S2Error subclasses with one-line messages; CancelledError when cancelled (no output left).
    """
    from s2desktop.core.rasterinfo import offset_for_baseline, open_raster, scene_metadata

    t0 = time.perf_counter()
    paths = [[Path(p) for p in (lst or [])] for lst in (red, green, blue)]
    names = ("red", "green", "blue")
    if not any(paths):
        raise InvalidInputError("no input files given")
    for name, lst in zip(names, paths):
        if not lst:
            raise InvalidInputError(f"no {name} input files given")
    counts = {name: len(lst) for name, lst in zip(names, paths)}
    if len(set(counts.values())) != 1:
        raise InvalidInputError(
            "bands have different numbers of dates: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    n = len(paths[0])
    if n > 255:
        raise InvalidInputError(f"{n} dates is more than the 255 a composite supports")
    if scale not in VALID_SCALES:
        raise InvalidInputError(f"scale {scale} is not one of 1, 2, 4, 8")
    if mask not in ("auto", "none"):
        raise InvalidInputError(f"mask {mask!r} is not 'auto' or 'none'")
    compress = str(compress).upper()
    if compress not in COMPRESSIONS:
        raise InvalidInputError(f"compression {compress!r} is not one of {', '.join(COMPRESSIONS)}")
    offsets_given = _normalise_offsets(offsets, n)
    if workers is None:
        workers = os.cpu_count() or 1
    workers = int(workers)
    if workers < 0:
        raise InvalidInputError("workers must be 0 or more")

    output = Path(output)
    count_path = Path(count_path) if count_path else None
    if count_path is not None and count_path.resolve() == output.resolve():
        raise InvalidInputError("the count raster cannot be the composite output itself")
    _check_destination(output, overwrite, "output")
    if count_path is not None:
        _check_destination(count_path, overwrite, "count output")
    all_inputs = [p for lst in paths for p in lst]
    if output.resolve() in {p.resolve() for p in all_inputs}:
        raise InvalidInputError(f"output {output} is one of the inputs")

    # Open every input once here: by content, with consistency checks naming the odd file.
    ref = None
    block = None
    for p in all_inputs:
        with open_raster(p) as ds:
            if ds.count < 1:
                raise RasterError(f"{p}: has no bands")
            if ds.dtypes[0] != "uint16":
                raise RasterError(f"{p}: is {ds.dtypes[0]}, expected uint16 Sentinel-2 band data")
            if ref is None:
                ref = {"path": p, "crs": ds.crs, "transform": ds.transform, "shape": (ds.height, ds.width)}
                block = ds.block_shapes[0]
            else:
                if (ds.height, ds.width) != ref["shape"]:
                    raise RasterError(f"{p}: is {ds.width}x{ds.height} px, the others {ref['shape'][1]}x"
                                      f"{ref['shape'][0]} (first: {ref['path'].name})")
                if ds.crs != ref["crs"]:
                    raise RasterError(f"{p}: CRS {ds.crs} differs from {ref['crs']} of {ref['path'].name}")
                if not ds.transform.almost_equals(ref["transform"], precision=1e-6):
                    raise RasterError(f"{p}: georeferencing (transform) differs from {ref['path'].name}")
            # Cheap integrity probe: the last block at reduced resolution (a truncated file fails here).
            from rasterio.enums import Resampling
            from rasterio.errors import RasterioIOError
            from rasterio.windows import Window

            bh, bw = ds.block_shapes[0]
            r0 = ((ds.height - 1) // bh) * bh
            c0 = ((ds.width - 1) // bw) * bw
            lw = Window(c0, r0, ds.width - c0, ds.height - r0)
            try:
                ds.read(1, window=lw, out_shape=(max(1, int(lw.height) // 8), max(1, int(lw.width) // 8)),
                        resampling=Resampling.nearest)
            except RasterioIOError as exc:
                from s2desktop.core.rasterinfo import gdal_error_text

                raise RasterError(f"{p}: cannot read ({gdal_error_text(exc)}; truncated or corrupt?)") from None
    height, width = ref["shape"]

    # Scene metadata per date (from the red file; the three bands of a date share a scene).
    metas = [scene_metadata(p) for p in paths[0]]
    offs: list[list[int]] = [[0] * n for _ in range(3)]
    baselines: list[str | None] = []
    offset_sources: list[str] = []
    unknown = []
    overridden = []
    for d in range(n):
        baselines.append(metas[d]["baseline"])
        scenes_of_date = []
        for b in range(3):
            # The scene's own metadata decides; a given offset fills in where the baseline is unknown.
            md = metas[d] if b == 0 else scene_metadata(paths[b][d])
            scenes_of_date.append(_scene_identity(paths[b][d], md))
            o = offset_for_baseline(md["baseline"])
            given = offsets_given[b][d]
            if o is not None:
                src = md["source"] or "metadata"
                if given is not None and given != o:
                    overridden.append(paths[b][d])
            elif given is not None:
                o, src = given, "--offset"
            else:
                unknown.append(paths[b][d])
                o, src = 0, "assumed (baseline unknown)"
            offs[b][d] = o
            if b == 0:
                offset_sources.append(src)
        _check_same_scene(d, [paths[b][d] for b in range(3)], scenes_of_date)
    if unknown:
        log.warning("processing baseline unknown for %d file(s) (e.g. %s): assuming offset 0; pass --offset",
                    len(unknown), unknown[0].name)
    if overridden:
        log.warning("--offset ignored for %d file(s) whose scene metadata gives the baseline (e.g. %s)",
                    len(overridden), overridden[0].name)

    # Scene classification masks.
    scl_paths: list[str | None] = [None] * n
    if mask == "auto":
        if scl is not None:
            if len(scl) != n:
                raise InvalidInputError(f"{len(scl)} SCL files given for {n} dates")
            scl_paths = [str(s) if s else None for s in scl]
            for s in scl_paths:
                if s and not _scl_fits(s, ref):
                    raise RasterError(f"{s}: scene classification does not cover the band files' grid")
        else:  # found beside the inputs: one that does not fit the bands is left out, not fatal
            scl_paths = [str(s) if (s := find_scl(p)) else None for p in paths[0]]
            for i, s in enumerate(scl_paths):
                if s and not _scl_fits(s, ref):
                    log.warning("ignoring %s: its CRS or extent does not match the band files", s)
                    scl_paths[i] = None

    from affine import Affine

    wins, grid, (out_h, out_w) = _plan_windows(height, width, block, scale, window_size)
    # The output grid covers the inputs' extent exactly (like GDAL's overviews): pixels are `scale` source
    # pixels a side when the size divides by `scale`, a little less otherwise (10980 / 8 -> 1373 px).
    pitch = (width / out_w, height / out_h)
    out_transform = ref["transform"] @ Affine.scale(*pitch)
    skips = _footprint_skips([m["data_geometry"] for m in metas], ref["transform"], ref["crs"], wins, grid,
                             dilate=pitch != (scale, scale))
    total = len(wins)

    tiles = sorted({m["tile"] for m in metas if m["tile"]})
    dates = [_date_label(p, m) for p, m in zip(paths[0], metas)]
    tags = {
        "S2DESKTOP_PRODUCT": "temporal median composite",
        "TILE": ",".join(tiles) if tiles else "unknown",
        "DATES": ",".join(dates),
        "DATE_COUNT": str(n),
        "BASELINES": ",".join(b or "unknown" for b in baselines),
        "OFFSETS_RED": ",".join(str(o) for o in offs[0]),
        "OFFSETS_GREEN": ",".join(str(o) for o in offs[1]),
        "OFFSETS_BLUE": ",".join(str(o) for o in offs[2]),
        "OFFSET_SOURCES": ",".join(offset_sources),
        "HARMONISATION": "inputs with offset -1000 (baseline >= 04.00) shifted by -1000 DN (min 1); output on "
        "the pre-04.00 scale: reflectance = DN / 10000",
        "OUTPUT_OFFSET": "0",
        "MEDIAN": "per pixel median of observations valid in all three bands (nonzero, not masked); even count: "
        "mean of the two middle values rounded half up; none valid: 0",
        "MASK": "SCL classes " + ",".join(map(str, SCL_MASKED_CLASSES)) + " masked on "
        + str(sum(1 for s in scl_paths if s)) + " date(s)" if mask == "auto" else "none",
        "SCALE": str(scale),
        "SOURCES_RED": ",".join(p.name for p in paths[0]),
        "SOURCES_GREEN": ",".join(p.name for p in paths[1]),
        "SOURCES_BLUE": ",".join(p.name for p in paths[2]),
        "CREATED": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }

    spec = {
        "bands": [[str(p) for p in lst] for lst in paths],
        "scl": scl_paths,
        "offsets": offs,
        "scale": scale,
        "mask": mask == "auto",
        "out_transform": out_transform,
        "pitch": pitch,
        "threads": max(1, (os.cpu_count() or 1) // max(1, workers)),
        "parent_pid": os.getpid(),
    }
    tasks = [(i, wins[i], skips[i]) for i in range(total)]

    token = uuid.uuid4().hex[:8]
    tmp_raw = output.parent / f".{output.name}.{token}.raw.tif"
    tmp_cog = output.parent / f".{output.name}.{token}.part"
    tmp_count_raw = tmp_count_cog = None
    if count_path is not None:
        tmp_count_raw = count_path.parent / f".{count_path.name}.{token}.raw.tif"
        tmp_count_cog = count_path.parent / f".{count_path.name}.{token}.part"
    temps = [t for t in (tmp_raw, tmp_cog, tmp_count_raw, tmp_count_cog) if t is not None]

    try:
        _run_windows(spec, tasks, workers, tmp_raw, tmp_count_raw, out_h, out_w, out_transform, ref["crs"],
                     tags, progress, cancel)
        _check_cancel(cancel)
        _to_cog(tmp_raw, tmp_cog, compress)
        if tmp_count_raw is not None:
            _to_cog(tmp_count_raw, tmp_count_cog, compress)
        _check_cancel(cancel)
        os.replace(tmp_cog, output)
        if count_path is not None:
            os.replace(tmp_count_cog, count_path)
    except OSError as exc:
        raise OutputError(f"cannot write {output}: {exc.strerror or exc}") from None
    finally:
        for t in temps:
            for extra in (t, Path(str(t) + ".aux.xml"), Path(str(t) + ".msk")):
                try:
                    extra.unlink()
                except FileNotFoundError:
                    pass
                except OSError as exc:  # pragma: no cover
                    log.warning("could not remove %s: %s", extra, exc)

    return CompositeResult(
        path=output,
        count_path=count_path,
        width=out_w,
        height=out_h,
        dates=n,
        windows=total,
        seconds=time.perf_counter() - t0,
        scale=scale,
        offsets=offs[0],
        baselines=baselines,
        masked_dates=sum(1 for s in scl_paths if s),
        tags=tags,
    )


def _scl_fits(path, ref) -> bool:
    """An SCL raster usable for the bands: same CRS, covering the bands' extent (any resolution)."""
    from rasterio.transform import array_bounds

    from s2desktop.core.rasterinfo import open_raster

    with open_raster(path) as ds:
        if ds.crs != ref["crs"]:
            return False
        left, bottom, right, top = ds.bounds
    h, w = ref["shape"]
    b_left, b_bottom, b_right, b_top = array_bounds(h, w, ref["transform"])
    tol = abs(ref["transform"].a)
    return left <= b_left + tol and right >= b_right - tol and bottom <= b_bottom + tol and top >= b_top - tol


def _check_cancel(cancel) -> None:
    if cancel is not None and cancel.is_set():
        raise CancelledError("composite cancelled")


def overview_factors(height: int, width: int, block: int = 512) -> list[int]:
    """2, 4, 8, ... until a level fits in one block (what the COG driver's OVERVIEWS=AUTO makes)."""
    factors, f = [], 2
    while math.ceil(max(height, width) / (f // 2)) > block:
        factors.append(f)
        f *= 2
    return factors


def _open_raw(path: Path, count: int, dtype: str, h: int, w: int, transform, crs, nodata):
    import rasterio

    profile = dict(driver="GTiff", width=w, height=h, count=count, dtype=dtype, crs=crs, transform=transform,
                   tiled=True, blockxsize=512, blockysize=512, bigtiff="IF_SAFER", interleave="pixel")
    if nodata is not None:
        profile["nodata"] = nodata
    if count == 3:
        profile["photometric"] = "RGB"
    return rasterio.open(path, "w", **profile)


def _run_windows(spec, tasks, workers, tmp_raw, tmp_count_raw, out_h, out_w, out_transform, crs, tags,
                 progress, cancel) -> None:
    import rasterio
    from rasterio.enums import ColorInterp
    from rasterio.windows import Window

    total = len(tasks)
    _keep_freed_memory()  # results arrive as fresh 6 MB arrays; GDAL's overview build and copy churn blocks too
    # A bounded block cache: the default (5 % of RAM) would hold the whole output in dirty blocks.
    with rasterio.Env(GDAL_NUM_THREADS="ALL_CPUS", GDAL_CACHEMAX=PARENT_CACHEMAX_MB):
        dst = _open_raw(tmp_raw, 3, "uint16", out_h, out_w, out_transform, crs, 0)
        cdst = None
        try:
            dst.colorinterp = [ColorInterp.red, ColorInterp.green, ColorInterp.blue]
            dst.descriptions = ("red (B04)", "green (B03)", "blue (B02)")
            dst.update_tags(**tags)
            for i, band in enumerate(BANDS, start=1):
                dst.update_tags(i, BAND=band)
            if tmp_count_raw is not None:
                cdst = _open_raw(tmp_count_raw, 1, "uint8", out_h, out_w, out_transform, crs, None)
                cdst.descriptions = ("valid observations",)
                cdst.update_tags(**{k: v for k, v in tags.items() if k in ("TILE", "DATES", "MASK", "SCALE")})

            def write(result):
                _idx, (orow, ocol, oh, ow), rgb, count = result
                win = Window(ocol, orow, ow, oh)
                dst.write(rgb, window=win)
                if cdst is not None:
                    cdst.write(count, 1, window=win)

            done = 0
            if progress:
                progress(0, total)
            if workers == 0:
                _init_worker(spec, ignore_sigint=False)
                try:
                    for task in tasks:
                        _check_cancel(cancel)
                        write(_process_window(task))
                        done += 1
                        if progress:
                            progress(done, total)
                finally:
                    _close_worker()
            else:
                _run_pool(spec, tasks, workers, write, progress, cancel)
            _check_cancel(cancel)
            # Overviews built here, on the uncompressed temporary file, then reused by the COG copy: the
            # COG driver building them itself from a compressed source costs 2-4x more.
            factors = overview_factors(out_h, out_w)
            if factors:
                from rasterio.enums import Resampling

                dst.build_overviews(factors, Resampling.average)  # averages skip nodata 0
                if cdst is not None:
                    cdst.build_overviews(factors, Resampling.average)
        finally:
            dst.close()
            if cdst is not None:
                cdst.close()


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


def _run_pool(spec, tasks, workers, write, progress, cancel) -> None:
    ctx = multiprocessing.get_context("spawn")
    workers = max(1, min(workers, len(tasks)))  # no idle processes to start for a handful of windows
    pool = cf.ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_init_worker,
                                  initargs=(spec,))
    total = len(tasks)
    done = 0
    clean = False
    try:
        pending: set[cf.Future] = set()
        it = iter(tasks)
        limit = max(1, workers * _IN_FLIGHT_PER_WORKER)
        exhausted = False
        while True:
            _check_cancel(cancel)
            while not exhausted and len(pending) < limit:
                task = next(it, None)
                if task is None:
                    exhausted = True
                    break
                pending.add(pool.submit(_process_window, task))
            if not pending:
                break
            finished, pending = cf.wait(pending, timeout=0.1, return_when=cf.FIRST_COMPLETED)
            for fut in finished:
                try:
                    result = fut.result()
                except S2Error:
                    raise
                except cf.process.BrokenProcessPool:
                    raise RasterError("a worker process died (out of memory or killed?)") from None
                except Exception as exc:
                    raise RasterError(f"compositing failed: {type(exc).__name__}: "
                                      f"{str(exc).splitlines()[0] if str(exc) else ''}") from None
                write(result)
                done += 1
                if progress:
                    progress(done, total)
        clean = True
    finally:
        if clean:
            pool.shutdown(wait=True)
        else:
            _kill_pool(pool)


def _to_cog(src_path: Path, dst_path: Path, compress: str = "ZSTD") -> None:
    import rasterio
    import rasterio.shutil

    with rasterio.Env(GDAL_NUM_THREADS="ALL_CPUS", GDAL_CACHEMAX=PARENT_CACHEMAX_MB):
        rasterio.shutil.copy(
            src_path, dst_path, driver="COG", compress=compress, predictor="2", level=str(COG_LEVEL),
            blocksize="512",
            overviews="FORCE_USE_EXISTING", bigtiff="IF_SAFER", num_threads="ALL_CPUS",
        )


# --- GUI process entry and download glue ------------------------------------------------------------------------


def worker_main(queue, cancel_event, kwargs: dict) -> None:
    """Entry of the GUI's dedicated spawn process (start it with daemon=False: it owns a process pool).

    kwargs are `composite()` keywords (red, green, blue, output, workers, scale, mask, count_path, offsets,
    overwrite). Sends ("progress", done, total), then ("done", path) / ("error", text) / ("cancelled",).
    """
    last = [0.0]

    def progress(done, total):
        now = time.monotonic()
        if done in (0, total) or now - last[0] >= 0.1:
            last[0] = now
            queue.put(("progress", done, total))

    def on_sigterm(signum, frame):  # Process.terminate(): unwind so temporaries and the pool are cleaned up
        raise KeyboardInterrupt

    previous = None
    try:
        previous = signal.signal(signal.SIGTERM, on_sigterm)
    except ValueError:  # not the main thread (called in-process by a test or a thread): leave it
        pass
    try:
        kw = dict(kwargs)
        kw.pop("progress", None)
        kw.pop("cancel", None)
        result = composite(progress=progress, cancel=cancel_event, **kw)
        queue.put(("done", str(result.path)))
    except CancelledError:
        queue.put(("cancelled",))
    except S2Error as exc:
        queue.put(("error", str(exc).splitlines()[0] if str(exc) else type(exc).__name__))
    except KeyboardInterrupt:
        queue.put(("cancelled",))
    except BaseException as exc:  # every failure reaches the window as one line
        text = str(exc).splitlines()[0] if str(exc) else ""
        queue.put(("error", f"{type(exc).__name__}: {text}".rstrip(": ")))
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def inputs_from_downloads(out_dir, scenes) -> tuple[list[Path], list[Path], list[Path]]:
    """(red, green, blue) paths of downloaded scenes, in the scenes' order; NotFoundError if one is missing."""
    out_dir = Path(out_dir)
    wanted = {"B04": [], "B03": [], "B02": []}
    try:
        from s2desktop.core import download

        tasks = download.plan(list(scenes), list(BANDS), out_dir)
        by_scene: dict[tuple, dict[str, Path]] = {}
        for t in tasks:
            by_scene.setdefault(_scene_key(t.scene), {})[t.band] = Path(t.dest)
        for s in scenes:
            files = by_scene.get(_scene_key(s), {})
            for band in BANDS:
                p = files.get(band)
                if p is None:
                    raise NotFoundError(f"no {band} planned for scene {getattr(s, 'scene_id', s)}")
                wanted[band].append(p)
    except (ImportError, AttributeError):
        folders = {"B04": "red", "B03": "green", "B02": "blue"}
        for s in scenes:
            sid = s.scene_id if hasattr(s, "scene_id") else str(s)
            for band in BANDS:
                hits = sorted((out_dir / folders[band]).glob(f"{sid}_{band}.*"))
                hits = [h for h in hits if not h.name.endswith((".aux.xml", ".part"))]
                wanted[band].append(hits[0] if hits else out_dir / folders[band] / f"{sid}_{band}.jp2")
    for band in BANDS:
        for p in wanted[band]:
            if not p.is_file():
                raise NotFoundError(f"{p}: not downloaded (run the download first)")
    return wanted["B04"], wanted["B03"], wanted["B02"]


def _scene_key(scene) -> tuple:
    sid = getattr(scene, "scene_id", None)
    return (sid,) if sid else (id(scene),)
