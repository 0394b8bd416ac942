"""Exports from the viewer: the composite GeoTIFF as it is, or an 8-bit rendering with explicit levels.

- `copy_raster(src, dst)`: a byte copy (the composite is already a COG) through a temp name then rename
  (:func:`s2desktop.core.fsutil.atomic_path`, as every write here).
- `write_rendered(src, dst, levels, gamma)`: the full-resolution rendering (`core.render.apply_levels`), read and written window by window
  (never the whole image in memory): a GeoTIFF (RGBA uint8, georeference kept, alpha = valid) or a PNG
  (RGBA, written by GDAL from a temporary GeoTIFF, with a world file).
- `lonlat_grid(crs_wkt, transform, width, height, n)`: lon/lat of an n×n lattice of pixel positions, so a
  viewer can interpolate lon/lat under the cursor without calling GDAL/PROJ per mouse move.
"""

from __future__ import annotations

import glob
import os
import shutil
import threading
from pathlib import Path
from typing import Sequence

import numpy as np

from s2desktop.core.errors import OutputError
from s2desktop.core.fsutil import (
    atomic_path,
    check_output_file,
    ensure_writable_dir,
    remove_with_side_files,
    temp_name,
)
from s2desktop.core.progress import Progress, ProgressFn, check_cancel, emit

__all__ = ["copy_raster", "write_rendered", "lonlat_grid", "interpolate_lonlat"]


def _check_destination(dst: Path, overwrite: bool) -> None:
    ensure_writable_dir(dst.parent, "folder")
    check_output_file(dst, overwrite=overwrite, what="export")


def copy_raster(src, dst, overwrite: bool = True) -> Path:
    """Copy a file to `dst` (temp name, then rename); returns dst."""
    src, dst = Path(src), Path(dst)
    if src.resolve() == dst.resolve():
        raise OutputError(f"{dst} is the file being exported; choose another name")
    _check_destination(dst, overwrite)
    try:
        with atomic_path(dst) as tmp:
            shutil.copyfile(src, tmp)
    except OSError as exc:
        raise OutputError(f"cannot write {dst}: {exc.strerror or exc}") from None
    return dst


def _valid_of(src, data: np.ndarray) -> np.ndarray:
    if src.nodata is not None:
        return np.any(data != src.nodata, axis=0)
    if np.issubdtype(data.dtype, np.unsignedinteger):
        return np.any(data != 0, axis=0)
    return np.ones(data.shape[1:], dtype=bool)


def write_rendered(src, dst, levels: Sequence[tuple[float, float]], gamma: float = 1.0, bands=None,
                   driver: str | None = None, overwrite: bool = True, classes: bool = False,
                   progress: ProgressFn | None = None, cancel: threading.Event | None = None) -> Path:
    """Render `src` at full resolution with `levels`/`gamma` (or, with `classes`, a scene classification in its
    class colours) into an RGBA uint8 GeoTIFF or PNG at `dst`; an 'export' Progress event per block window."""
    src_path, dst = Path(src), Path(dst)
    if driver is None:
        driver = "PNG" if dst.suffix.lower() == ".png" else "GTiff"
    _check_destination(dst, overwrite)
    render_args = dict(levels=levels, gamma=gamma, bands=bands, classes=classes, progress=progress, cancel=cancel)
    try:
        if driver == "GTiff":
            with atomic_path(dst) as tmp:
                _render_tiff(src_path, tmp, **render_args)
        else:
            scratch = temp_name(dst)
            try:
                _render_tiff(src_path, scratch, **render_args)
                _convert(scratch, dst, driver)
            finally:
                remove_with_side_files(scratch)
    except OSError as exc:
        raise OutputError(f"cannot write {dst}: {exc.strerror or exc}") from None
    return dst


def _render_tiff(src_path: Path, out_path: Path, *, levels, gamma, bands, classes, progress, cancel) -> None:
    """The RGBA uint8 rendering as a tiled GeoTIFF, one source block window at a time."""
    import rasterio
    from rasterio.enums import ColorInterp

    from s2desktop.core import render
    from s2desktop.core.rasterinfo import open_raster

    with open_raster(src_path) as ds:
        if bands is None:
            bands = [1, 2, 3] if ds.count >= 3 else [1, 1, 1]
        profile = dict(driver="GTiff", width=ds.width, height=ds.height, count=4, dtype="uint8",
                       crs=ds.crs, transform=ds.transform, tiled=True, blockxsize=512, blockysize=512,
                       compress="deflate", photometric="RGB", BIGTIFF="IF_SAFER")
        windows = [w for _, w in ds.block_windows(1)]
        with rasterio.open(out_path, "w", **profile) as out:
            out.colorinterp = [ColorInterp.red, ColorInterp.green, ColorInterp.blue, ColorInterp.alpha]
            for i, win in enumerate(windows, 1):
                check_cancel(cancel, "export cancelled; nothing was written")
                data = ds.read(list(bands), window=win)
                valid = _valid_of(ds, data)
                if classes:
                    rgba = render.classes(data[:1], valid)
                    out.write(np.moveaxis(rgba, -1, 0), [1, 2, 3, 4], window=win)
                else:
                    out.write(render.apply_levels(data, valid, levels, gamma), [1, 2, 3], window=win)
                    out.write((valid * 255).astype(np.uint8), 4, window=win)
                emit(progress, Progress("export", i, len(windows)))


def _convert(tiff: Path, dst: Path, driver: str) -> None:
    """GDAL CreateCopy of the rendering to `driver` (PNG) with a world file; the side files GDAL writes beside
    the temp name (``.wld``, ``.aux.xml``) follow it to `dst`'s name."""
    import rasterio.shutil

    with atomic_path(dst) as tmp:
        rasterio.shutil.copy(tiff, tmp, driver=driver, WORLDFILE="YES")
        for side in tmp.parent.glob(glob.escape(tmp.stem) + ".*"):
            ext = side.name[len(tmp.stem):]
            if side != tmp:
                target = dst.name + ext[len(tmp.suffix):] if ext.startswith(tmp.suffix) else dst.stem + ext
                os.replace(side, dst.with_name(target))


def lonlat_grid(crs_wkt: str | None, transform: Sequence[float], width: int, height: int, n: int = 17):
    """-> (cols (n,), rows (n,), lon (n, n), lat (n, n)) at evenly spaced full-resolution pixel positions;
    None when the raster has no CRS. `transform` is (a, b, c, d, e, f) in rasterio Affine order."""
    if not crs_wkt:
        return None
    from rasterio.crs import CRS
    from rasterio.warp import transform as warp_transform

    a, b, c, d, e, f = list(transform)[:6]
    cols = np.linspace(0, width, n)
    rows = np.linspace(0, height, n)
    cc, rr = np.meshgrid(cols, rows)
    xs = a * cc + b * rr + c
    ys = d * cc + e * rr + f
    lon, lat = warp_transform(CRS.from_wkt(crs_wkt), CRS.from_epsg(4326), xs.ravel().tolist(), ys.ravel().tolist())
    return cols, rows, np.asarray(lon).reshape(n, n), np.asarray(lat).reshape(n, n)


def interpolate_lonlat(grid, col: float, row: float) -> tuple[float, float] | None:
    """Bilinear interpolation in a `lonlat_grid` result (accurate to well under a pixel for UTM tiles)."""
    if grid is None:
        return None
    cols, rows, lon, lat = grid
    i = int(np.clip(np.searchsorted(cols, col) - 1, 0, len(cols) - 2))
    j = int(np.clip(np.searchsorted(rows, row) - 1, 0, len(rows) - 2))
    tx = (col - cols[i]) / (cols[i + 1] - cols[i])
    ty = (row - rows[j]) / (rows[j + 1] - rows[j])

    def bil(g):
        return ((1 - tx) * (1 - ty) * g[j, i] + tx * (1 - ty) * g[j, i + 1]
                + (1 - tx) * ty * g[j + 1, i] + tx * ty * g[j + 1, i + 1])

    return float(bil(lon)), float(bil(lat))
