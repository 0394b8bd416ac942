"""The work on one window, run in the spawned workers (or in-process with workers=0).

Each worker runs inside `rasterio.Env(GDAL_CACHEMAX=64 MB, GDAL_NUM_THREADS=cores // workers)` (`_init_worker`),
opens each input dataset the first time a window reads it (kept open for the next), and reuses its window arrays
(`_scratch`) instead of paying page faults for fresh memory every window. A window task is a plain value that
names all it reads (`plan.WindowTask`). Per window and date: read each band straight into the stack (`out_shape`
decimation for scale > 1, which GDAL serves from JP2 reduced-resolution levels / overviews; a 20 m or 60 m band
beside 10 m ones read over the same ground and upsampled by nearest neighbour, `core.bands.RESAMPLING`),
harmonise (DN - 1000, at least 1, for baseline >= 04.00), mask (the SCL's masked classes, 0, 1, 3, 8, 9, 10 by
default, or the L1C cloud mask; read with a halo and dilated by the mask buffer),
then the task's rule (`rules`: the median, a quantile, the medoid, the geometric median) on observations valid in
all bands. The result goes back to the parent as the output's tiles, compressed here (`tiles.window_tiles`: full
resolution and the overview levels whose tiles lie in the window), with the pixels of the smaller levels the
parent builds itself, and its values at the preview's size for a front end to paint at once (`WindowTiles.preview`).
"""

from __future__ import annotations

import math
import signal
import threading

import numpy as np
import rasterio
from rasterio.enums import Resampling
from rasterio.errors import RasterioIOError
from rasterio.windows import Window, from_bounds
from rasterio.windows import bounds as window_bounds

from s2desktop.core.compositing.plan import WindowInputs, WindowTask
from s2desktop.core.compositing.pool import _die_with_parent, _keep_freed_memory
from s2desktop.core.compositing.rules import reduce
from s2desktop.core.compositing.tiles import WindowTiles, window_tiles
from s2desktop.core.errors import InvalidInputError, RasterError, S2Error
from s2desktop.core.progress import PREVIEW_SIDE
from s2desktop.core.rasterinfo import gdal_error_text, open_raster
from s2desktop.core.remotereads import reading, unreadable

GDAL_CACHEMAX_MB = 64



class _ThreadState(threading.local):
    """A worker thread's open datasets, GDAL environment and scratch buffers, used like a dict: a pool
    process has one thread, a Dask worker may run windows on several."""

    def __getitem__(self, key):
        return self.__dict__[key]

    def __setitem__(self, key, value):
        self.__dict__[key] = value

    def __contains__(self, key) -> bool:
        return key in self.__dict__

    def get(self, key, default=None):
        return self.__dict__.get(key, default)

    def setdefault(self, key, default):
        return self.__dict__.setdefault(key, default)

    def values(self):
        return self.__dict__.values()

    def clear(self) -> None:
        self.__dict__.clear()


_W = _ThreadState()


def harmonise(arr: np.ndarray, offset: int) -> np.ndarray:
    """Bring DNs onto the pre-04.00 scale: offset -1000 -> DN - 1000, at least 1 (0 stays nodata)."""
    if not offset:
        return arr
    out = arr.copy()
    _harmonise_valid(out, offset)
    out[arr == 0] = 0
    return out


def _init_worker(threads: int, parent_pid: int | None = None) -> None:
    """Set this process up for windows: a GDAL environment of `threads` threads. parent_pid: set in a pool
    worker (the pool owner's pid)."""
    if parent_pid is not None:
        # Ctrl-C goes to the whole process group; the parent handles it and tears the pool down.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        # If the parent is killed outright (the GUI's composite process terminated), do not linger.
        _die_with_parent(parent_pid)
    _keep_freed_memory()
    # rasterio sets an int GDAL_CACHEMAX as bytes (GDALSetCacheMax64): 64 alone was a 64-byte cache, and a read
    # across blocks (a mask's halo, a reduced-resolution window) decoded its blocks again for every few rows
    env = rasterio.Env(GDAL_CACHEMAX=GDAL_CACHEMAX_MB << 20, GDAL_NUM_THREADS=str(threads), CPL_LOG_ERRORS="OFF")
    env.__enter__()
    _W.clear()
    _W["env"] = env
    _W["scratch"] = {}
    _W["datasets"] = {}


def _process_window_on_cluster(task: WindowTask, threads: int) -> WindowTiles:
    """A window on a Dask worker: the thread is set up for windows on its first one and stays so (datasets kept
    open for the next). Rasters read through /vsis3/ (`core.remotereads`): their documents in this process's
    /vsimem/, the source's GDAL options set around this window's reads only. An input it cannot read fails in
    one line naming the input (the object, for a document that reads one) and the worker."""
    if "env" not in _W:
        _init_worker(threads)
    remote = task.inputs.remote
    with reading(remote):
        try:
            return _process_window(task)
        except S2Error as exc:
            kind, message = type(exc), str(exc)
        if remote is not None and message.startswith("/vsimem/"):  # a document: the object it could not read
            failed, _, why = message.partition(": ")
            message = ": ".join(unreadable(remote, failed, why))
    from distributed import get_worker

    # raised outside the handler: no chained GDAL exception, which Dask could not send back as it is
    raise kind(f"{message} (on the Dask worker at {get_worker().address})")


def _dataset(path: str, classes: bool = False):
    """This worker's open dataset of `path`, opened on first use. classes: a class raster (SCL), read by
    nearest from full resolution (JP2 reduced resolutions average classes into others)."""
    ds = _W["datasets"].get((path, classes))
    if ds is None:
        ds = _W["datasets"][(path, classes)] = open_raster(path, no_overviews=classes)
    return ds


def _close_worker() -> None:
    for ds in _W.get("datasets", {}).values():
        ds.close()
    env = _W.get("env")
    if env is not None:
        env.__exit__(None, None, None)
    _W.clear()


def _scratch(name: str, shape: tuple[int, ...], dtype) -> np.ndarray:
    """A worker's reusable C-contiguous array of `shape`: the front of one buffer per name kept across windows
    (windows come in a few sizes; the largest allocates it). The contents are left over from the last use."""
    size = math.prod(shape)
    flat = _W["scratch"].get(name)
    if flat is None or flat.size < size or flat.dtype != np.dtype(dtype):
        flat = np.empty(size, dtype=dtype)
        _W["scratch"][name] = flat
    return flat[:size].reshape(shape)


def _read(ds, window, out, scale):
    """Read band 1 of `window` straight into `out` (its shape sets the decimation for scale > 1, and the
    upsampling of a coarser band: `scale` is then its factor, nearest neighbour either way)."""
    try:
        if scale == 1:
            return ds.read(1, window=window, out=out)
        return ds.read(1, window=window, out=out, resampling=Resampling.nearest)
    except RasterioIOError as exc:
        raise RasterError(f"{ds.name}: cannot read ({gdal_error_text(exc)}; truncated or corrupt?)") from None


def _read_scl(ds, out_bounds, out_shape, band: int = 1):
    win = from_bounds(*out_bounds, transform=ds.transform)
    inside = (win.col_off > -1e-6 and win.row_off > -1e-6 and win.col_off + win.width <= ds.width + 1e-6
              and win.row_off + win.height <= ds.height + 1e-6)
    try:
        if inside:  # the usual case: a plain windowed read (boundless reads go through a VRT)
            return ds.read(band, window=win, out_shape=out_shape, resampling=Resampling.nearest)
        return ds.read(band, window=win, out_shape=out_shape, resampling=Resampling.nearest, boundless=True,
                       fill_value=0)
    except Exception as exc:
        raise RasterError(f"{ds.name}: cannot read the scene classification ({gdal_error_text(exc)})") from None


def _masked(inp: WindowInputs, d: int, out_bounds, out_shape, dataset=None) -> np.ndarray:
    """Where date ``d``'s clouds are, on the window: its SCL's masked classes, or its L1C cloud mask (the
    MSK_CLASSI raster's opaque and cirrus bands, or the MSK_CLOUDS polygons rasterised here). dataset(path,
    classes=True): who opens the mask (default: this worker's open datasets; `core.explain` passes its own)."""
    from s2desktop.core import qimasks

    kind = inp.mask_bands[d] if inp.mask_bands else "SCL"
    if kind == "MSKCLOUDS":
        from rasterio.transform import from_bounds as transform_from_bounds

        polygons = _W.setdefault("gml", {})
        if inp.masks[d] not in polygons:
            with open(inp.masks[d], "rb") as fh:
                polygons[inp.masks[d]] = qimasks.parse_cloud_gml(fh.read(), inp.masks[d])
        transform = transform_from_bounds(*out_bounds, out_shape[1], out_shape[0])
        return qimasks.rasterise_polygons(polygons[inp.masks[d]], out_shape, transform) > 0
    ds = (dataset or _dataset)(inp.masks[d], classes=True)
    if kind == "MSKCLASSI":  # band 1 opaque clouds, band 2 cirrus (band 3, snow, is ground)
        bands = range(1, min(ds.count, 2) + 1)
        return np.logical_or.reduce([_read_scl(ds, out_bounds, out_shape, b) > 0 for b in bands])
    return np.isin(_read_scl(ds, out_bounds, out_shape), inp.mask_classes)


class _Halo:
    """The window grown by the mask buffer (whole output pixels, clipped to the output grid), so that a cloud
    just outside the window still masks the pixels within the buffer inside it: its mask is read on the grown
    window, dilated, and cut back to the window."""

    def __init__(self, window: Window, grown: Window, inp: WindowInputs, r: int):
        self.r = r
        self.bounds = window_bounds(grown, inp.out_transform)
        self.shape = (int(grown.height), int(grown.width))
        self.cut = (slice(int(window.row_off - grown.row_off), int(window.row_off - grown.row_off + window.height)),
                    slice(int(window.col_off - grown.col_off), int(window.col_off - grown.col_off + window.width)))
        self.metres, self.pixel = inp.mask_buffer, abs(inp.out_transform.a)

    @classmethod
    def around(cls, window: Window, inp: WindowInputs) -> "_Halo":
        from s2desktop.core.maskrules import buffer_pixels

        r = buffer_pixels(inp.mask_buffer, inp.out_transform.a)
        grown = window if not r else Window(window.col_off - r, window.row_off - r, window.width + 2 * r,
                                             window.height + 2 * r).intersection(
            Window(0, 0, inp.out_shape[1], inp.out_shape[0]))
        return cls(window, grown, inp, r)

    def buffered(self, masked: np.ndarray) -> np.ndarray:
        """A mask read on the grown window, dilated by the buffer, on the window."""
        if not self.r:
            return masked
        from s2desktop.core.qimasks import dilate

        return dilate(masked, self.metres, self.pixel)[self.cut]


def _process_window(task: WindowTask) -> WindowTiles:
    """Composite one window. -> its tiles, compressed, and the pixels of the levels the parent builds."""
    inp = task.inputs
    n, bands = inp.dates, len(inp.rasters)
    oh, ow = int(task.output.height), int(task.output.width)
    stacks = _scratch("stacks", (bands, n, oh, ow), np.uint16)  # skipped dates are invalid: values unused
    valid = _scratch("valid", (n, oh, ow), bool)
    halo = None
    for d in range(n):
        if d in task.skip:
            valid[d] = False
            continue
        v = _read_date(inp, task, d, stacks)
        if inp.masks[d] is not None:
            halo = halo or _Halo.around(task.output, inp)
            v &= ~halo.buffered(_masked(inp, d, halo.bounds, halo.shape))
        valid[d] = v
    if inp.clip is not None:
        valid &= _inside(inp.clip, task.output, inp.out_transform)
    out = reduce(task.rule, stacks, valid, scratch=_scratch("keys", (n + 1, oh, ow), np.uint16))
    results = {"values": out.values, "count": np.minimum(out.count, 255).astype(np.uint8)[None],
               "date": _date_band(inp, out)[None] if inp.date_days else None}
    return window_tiles(task.index, inp.pyramid, task.output, {layer: results[layer.name] for layer in inp.layers},
                        preview_level=inp.pyramid.preview_level(PREVIEW_SIDE))


def _date_band(inp: WindowInputs, out) -> np.ndarray:
    """The date each pixel's values come from, in days since 1970-01-01 (uint16); 0 where none is valid."""
    days = np.asarray(inp.date_days, dtype=np.uint16)[out.chosen]
    days[out.count == 0] = 0
    return days


def _inside(clip: dict, window: Window, transform) -> np.ndarray:
    """Where the window's pixel centres fall inside the clip polygon (bool, the window's shape)."""
    from rasterio.features import geometry_mask
    from rasterio.windows import transform as window_transform

    shape = (int(window.height), int(window.width))
    return geometry_mask([clip], out_shape=shape, transform=window_transform(window, transform), invert=True)


def _read_date(inp: WindowInputs, task: WindowTask, d: int, stacks: np.ndarray) -> np.ndarray:
    """Read date `d` of every band into `stacks`, harmonised. -> where all bands are valid (nonzero)."""
    valid = nonzero = None
    for b, paths in enumerate(inp.rasters):
        factor = inp.factors[b] if inp.factors else 1
        arr = _read(_dataset(paths[d]), _band_window(task.source, factor), stacks[b, d], inp.scale * factor)
        if valid is None:
            valid = np.not_equal(arr, 0)
            nonzero = np.empty_like(valid)
        else:
            valid &= np.not_equal(arr, 0, out=nonzero)
        if inp.offsets[d]:
            _harmonise_valid(arr, inp.offsets[d])
    return valid


def _band_window(window: Window, factor: float) -> Window:
    """The same ground as `window` (on the reference band's grid) on a band whose pixels are `factor` times as
    large (fractional where the window does not fall on its pixel edges: GDAL reads what lies under it)."""
    if factor == 1:
        return window
    return Window(window.col_off / factor, window.row_off / factor, window.width / factor,
                  window.height / factor)


def _harmonise_valid(arr: np.ndarray, offset: int) -> None:
    """`harmonise` in place for pixels already known valid: nodata 0 comes out 1 (its validity was taken before,
    so its value is never used) -- two passes instead of five, and no temporaries."""
    if offset != -1000:
        raise InvalidInputError(f"offset {offset} is not supported (use 0 or -1000)")
    np.maximum(arr, np.uint16(1001), out=arr)
    arr -= np.uint16(1000)
