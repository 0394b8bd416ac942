"""Small reads of JPEG 2000 files that decode only the code-blocks around them.

GDAL's JP2OpenJPEG driver exposes a tiled file's tiles as its blocks: reading one pixel decodes its whole tile
(1024 x 1024 px in Sentinel-2's files, ~0.15 s a band and date), and no open option or setting changes that
(``USE_TILE_AS_BLOCK`` and the 1024 px blocks through ``opj_set_decode_area`` apply only to single-tiled files).
OpenJPEG itself (>= 2.3) decodes only the code-blocks that a decode area needs, and glymur reads an area through
it (``Jp2k(path)[r0:r1, c0:c1]``): one pixel costs ~10 ms. The values are the same as GDAL's (the same library
decodes the same code-blocks; ``tests/core/test_jp2area.py`` compares them).

    reader = area_reader()                 # None: glymur or a libopenjp2 >= 2.4 is missing -- read with GDAL
    reader(path, Window(col, row, w, h))   # -> (h, w) array, or None when the window is not a plain one

glymur finds libopenjp2 as ctypes does; without one on the system, the one rasterio's wheel bundles (the one
GDAL decodes with) is used.
"""

from __future__ import annotations

import functools
import os
import threading
from pathlib import Path

import numpy as np
from rasterio.windows import Window

__all__ = ["area_reader", "AreaReader"]

MIN_OPENJPEG = (2, 4)  # glymur's own minimum


@functools.cache
def _glymur():
    """The glymur module on a libopenjp2 it can use, or None."""
    import ctypes.util

    find = ctypes.util.find_library
    bundled = _bundled_openjp2()
    if find("openjp2") is None and bundled is not None:  # glymur looks it up when it is imported
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


def area_reader() -> AreaReader | None:
    """A reader of JPEG 2000 areas, or None when glymur or a recent enough libopenjp2 is not there."""
    glymur = _glymur()
    return AreaReader(glymur) if glymur is not None else None
