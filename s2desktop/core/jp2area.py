"""Small reads of JPEG 2000 files that decode only the code-blocks around them.

GDAL's JP2OpenJPEG driver exposes a tiled file's tiles as its blocks: reading one pixel decodes its whole tile
(1024 x 1024 px in Sentinel-2's files, ~0.15 s a band and date), and no open option or setting changes that
(``USE_TILE_AS_BLOCK`` and the 1024 px blocks through ``opj_set_decode_area`` apply only to single-tiled files).
OpenJPEG itself (>= 2.3) decodes only the code-blocks that a decode area needs, and glymur reads an area through
it (``Jp2k(path)[r0:r1, c0:c1]``): one pixel costs ~10 ms. The values are the same as GDAL's (the same library
decodes the same code-blocks; ``tests/core/test_jp2area.py`` compares them).

    reader = area_reader()                 # None: glymur or a libopenjp2 >= 2.4 is missing -- read with GDAL
    reader(path, Window(col, row, w, h), (h, w))  # -> (h, w) array, or None when the window is not a plain one
    ds = SmallReads(rasterio.open(path), reader)  # its small reads as GDAL reads them (fractional, upsampled:
    ds.read(1, window=..., out_shape=..., resampling=...)  # a 20 m band or SCL onto a 10 m grid), decoded so

glymur is given the libopenjp2 rasterio's wheel bundles (the one GDAL decodes with), else finds one as ctypes
does.
"""

from __future__ import annotations

import functools
import math
import os
import threading
from pathlib import Path

import numpy as np
from affine import Affine
from rasterio.windows import Window

__all__ = ["area_reader", "AreaReader", "SmallReads"]

MIN_OPENJPEG = (2, 4)  # glymur's own minimum
_PIXELS = Affine(1, 0, 0, 0, -1, 1e6)  # a decoded area's grid: any but the identity (rasterio warns on it)


@functools.cache
def _glymur():
    """The glymur module on a libopenjp2 it can use, or None."""
    import ctypes.util

    find = ctypes.util.find_library
    bundled = _bundled_openjp2()
    if bundled is not None:  # glymur looks it up when it is imported: GDAL's own, for the same decoding
        ctypes.util.find_library = lambda name: str(bundled) if name == "openjp2" else find(name)
    try:
        import glymur
    except Exception:  # noqa: BLE001 -- not installed, or no usable library: GDAL reads instead
        return None
    finally:
        ctypes.util.find_library = find
    version = getattr(glymur.version, "openjpeg_version_tuple", ())
    return glymur if tuple(version[:2]) >= MIN_OPENJPEG else None


def _bundled_openjp2() -> Path | None:
    """The libopenjp2 rasterio's wheel bundles (rasterio.libs on Linux and Windows, rasterio/.dylibs on macOS)."""
    import rasterio

    here = Path(rasterio.__file__).parent
    for folder in (here.parent / "rasterio.libs", here / ".dylibs", here.parent / "rasterio.libs" / "bin"):
        for lib in sorted(folder.glob("*openjp2*")) if folder.is_dir() else ():
            return lib
    return None


class AreaReader:
    """Reads a plain window (whole pixels, at full resolution) of a single-band JPEG 2000 file through
    OpenJPEG's decode area; a file's header is parsed once (kept per path, thread-safe)."""

    def __init__(self, glymur):
        self._glymur = glymur
        self._open: dict[tuple, object] = {}
        self._lock = threading.Lock()

    def __call__(self, path, window: Window, out_shape: tuple[int, int]) -> np.ndarray | None:
        """The window's pixels, or None when it is not a plain one (fractional, resampled) or the file not a
        single-band unsigned JPEG 2000 (the caller then reads with GDAL)."""
        if Path(str(path)).suffix.lower() not in (".jp2", ".j2k"):
            return None
        c0, r0, w, h = window.col_off, window.row_off, window.width, window.height
        if any(v != int(v) for v in (c0, r0, w, h)) or (int(h), int(w)) != tuple(out_shape):
            return None
        jp2 = self._jp2(str(path))
        if jp2 is None or len(jp2.shape) != 2 or not (0 <= c0 and 0 <= r0 and c0 + w <= jp2.shape[1]
                                                        and r0 + h <= jp2.shape[0]):
            return None
        data = jp2[int(r0):int(r0 + h), int(c0):int(c0 + w)]
        return data if data.dtype.kind == "u" else None

    def clear(self) -> None:
        """Forget the parsed headers (a few kB a file)."""
        with self._lock:
            self._open.clear()

    def _jp2(self, path: str):
        """The file's parsed header (again when the file was rewritten), None when glymur cannot parse it."""
        try:
            st = os.stat(path)
        except OSError:
            return None  # a GDAL URI, or gone: GDAL reads it (and says so)
        key = (path, st.st_mtime_ns, st.st_size)
        with self._lock:
            if key not in self._open:
                try:
                    self._open[key] = self._glymur.Jp2k(path)
                except Exception:  # noqa: BLE001 -- glymur cannot parse it: GDAL reads it
                    self._open[key] = None
            return self._open[key]


class SmallReads:
    """A JPEG 2000 dataset whose small reads decode only the code-blocks they need: ``read(band, window=...,
    out=, out_shape=, resampling=)`` of a window no larger than MAX_AREA px that is not reduced (the same size or
    upsampled: a 20 m band or SCL onto a 10 m grid) decodes the whole pixels under the window through the area
    reader into an in-memory GDAL dataset and reads it there with the same window (shifted by whole pixels) and
    resampling, so GDAL picks the same pixels; anything else (reduced reads, which GDAL may take from the
    file's reduced resolutions, boundless reads, other bands) is the dataset's own read. Other attributes are
    the dataset's."""

    MAX_AREA = 512 * 512

    def __init__(self, ds, reader: AreaReader):
        self._ds = ds
        self._reader = reader

    def __getattr__(self, name):
        return getattr(self._ds, name)

    def read(self, indexes=1, window=None, out=None, out_shape=None, resampling=None, boundless=False,
             fill_value=None):
        area = None
        if window is not None and not boundless and indexes == 1 and self._ds.count == 1:
            area = self._around(window, out.shape if out is not None else out_shape)
        if area is None:
            kw = {"resampling": resampling} if resampling is not None else {}
            return self._ds.read(indexes, window=window, out=out, out_shape=out_shape, boundless=boundless,
                                 fill_value=fill_value, **kw)
        data, inner = area
        if inner.width == window.width and inner.height == window.height and data.shape == (
                (out.shape if out is not None else tuple(out_shape or data.shape))):
            if out is None:
                return data
            out[...] = data
            return out
        from rasterio.io import MemoryFile

        kw = {"resampling": resampling} if resampling is not None else {}
        with MemoryFile() as mf, mf.open(driver="MEM", width=data.shape[1], height=data.shape[0], count=1,
                                         dtype=data.dtype.name, transform=_PIXELS) as mem:
            mem.write(data, 1)
            return mem.read(1, window=inner, out=out, out_shape=out_shape, **kw)

    def _around(self, window: Window, shape) -> tuple[np.ndarray, Window] | None:
        """(the whole pixels under ``window``, decoded; the window on them), or None: GDAL reads it."""
        c0, r0 = math.floor(window.col_off), math.floor(window.row_off)
        c1, r1 = math.ceil(window.col_off + window.width), math.ceil(window.row_off + window.height)
        if shape is None:
            shape = (round(window.height), round(window.width))
        reduced = shape[-2] < window.height - 1e-9 or shape[-1] < window.width - 1e-9
        if reduced or (c1 - c0) * (r1 - r0) > self.MAX_AREA or c0 < 0 or r0 < 0 or c1 > self._ds.width \
                or r1 > self._ds.height:
            return None
        try:
            data = self._reader(self._ds.name, Window(c0, r0, c1 - c0, r1 - r0), (r1 - r0, c1 - c0))
        except Exception:  # noqa: BLE001 -- OpenJPEG refused it: GDAL reads it (and names any damage)
            return None
        if data is None:
            return None
        shifted = Window(window.col_off - c0, window.row_off - r0, window.width, window.height)
        return data.astype(self._ds.dtypes[0], copy=False), shifted


def area_reader() -> AreaReader | None:
    """A reader of JPEG 2000 areas, or None when glymur or a recent enough libopenjp2 is not there."""
    glymur = _glymur()
    return AreaReader(glymur) if glymur is not None else None
