"""Writing the product: window results into a temporary raw GeoTIFF, its overviews, the COG copy, the rename.

The parent writes results as they complete into a temporary uncompressed tiled GTiff in the destination folder
and builds its overviews there (average, nodata-aware): the COG driver building them itself from a compressed
source costs 2-4x more. GDAL's COG driver then copies it (ZSTD or DEFLATE, predictor 2, the existing overviews)
to another temporary name, renamed over the output on success. Every temporary is removed however it ends.

The first overview level is half of all the overview work, and GDAL builds it in one serial pass over the whole
raw file after the windows. When every window covers whole 2 x 2 blocks (`halves_in_windows`), the workers
average each window's own blocks instead (`average_2x2`: what GDAL's average computes for a factor of 2 of an
even size, exactly) and the parent writes them into the raw file's external overview file (`raw.tif.ovr`,
GDAL's own convention: its first image is the first level); GDAL builds the smaller levels from it as it would
from its own first level, each from the one before.
"""

from __future__ import annotations

import logging
import math
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
import rasterio.shutil
from affine import Affine
from rasterio.enums import ColorInterp, Resampling
from rasterio.windows import Window

from s2desktop.core.compositing.plan import BANDS, CompositePlan

log = logging.getLogger(__name__)

PARENT_CACHEMAX_MB = 128
# The COG copy is the one serial step after the decoding. On a full 10980 px RGB composite (963 MB with
# overviews) ZSTD level 1 + predictor 2 took 2.6 s where DEFLATE level 1 took 7.9 s, for the same size; every
# GDAL >= 2.3 based reader (QGIS, rasterio, the GDAL tools) opens ZSTD. `compress="DEFLATE"` is there for old
# libtiff-only readers.
COG_LEVEL = 1
_COUNT_TAGS = ("TILE", "DATES", "MASK", "SCALE")


@dataclass(frozen=True)
class Temporaries:
    """The temporary names beside the outputs: raw (uncompressed, being written) and COG (being copied)."""

    output: Path
    raw: Path
    cog: Path
    count_path: Path | None = None
    count_raw: Path | None = None
    count_cog: Path | None = None

    def all(self) -> list[Path]:
        return [t for t in (self.raw, self.cog, self.count_raw, self.count_cog) if t is not None]


def temporaries(output: Path, count_path: Path | None) -> Temporaries:
    token = uuid.uuid4().hex[:8]

    def names(path: Path):
        return path.parent / f".{path.name}.{token}.raw.tif", path.parent / f".{path.name}.{token}.part"

    count = names(count_path) if count_path is not None else (None, None)
    return Temporaries(output, *names(output), count_path, *count)


def parent_env() -> rasterio.Env:
    """GDAL settings of the writing process: all cores, a bounded block cache (the default, 5 % of RAM, would
    hold the whole output in dirty blocks), and directory reads on: the raw file's overviews may be in the .ovr
    beside it, which GDAL does not look for when told not to read directories (as area inputs on /vsis3/ are)."""
    return rasterio.Env(GDAL_NUM_THREADS="ALL_CPUS", GDAL_CACHEMAX=PARENT_CACHEMAX_MB,
                        GDAL_DISABLE_READDIR_ON_OPEN="FALSE")


def halves_in_windows(plan: CompositePlan) -> bool:
    """Whether the windows bring the first overview level (`average_2x2` of their own pixels): when the output
    has overviews and every window's offset and size are even, so each 2 x 2 block lies inside one window."""
    if not overview_factors(*plan.out_shape):
        return False
    return all(int(v) % 2 == 0 for t in plan.tasks
               for v in (t.output.row_off, t.output.col_off, t.output.height, t.output.width))


def average_2x2(arr: np.ndarray, nodata: int | None = None) -> np.ndarray:
    """The mean of each 2 x 2 block of `arr` (..., h, w), h and w even, rounded half up, as GDAL's average
    overviews have it: nodata 0 -> over the nonzero pixels only (none: 0); None -> over all four."""
    if nodata not in (None, 0):
        raise ValueError("nodata must be 0 or None")
    total = _sum_2x2(arr, np.uint32)
    if nodata is None:
        total += 2
        total >>= 2
        return total.astype(arr.dtype)
    n = _sum_2x2((arr != 0).view(np.uint8), np.uint8)
    if n.min() == 4:  # the usual block: no division
        total += 2
        total >>= 2
        return total.astype(arr.dtype)
    n = n.astype(np.uint32)
    total += n >> 1
    total //= np.maximum(n, 1)  # no valid pixel: its total is 0 as well
    return total.astype(arr.dtype)


def _sum_2x2(arr: np.ndarray, dtype) -> np.ndarray:
    """The sum of each 2 x 2 block (four strided adds: several times faster than a reshaped sum)."""
    total = arr[..., 0::2, 0::2].astype(dtype)
    total += arr[..., 0::2, 1::2]
    total += arr[..., 1::2, 0::2]
    total += arr[..., 1::2, 1::2]
    return total


class RawOutput:
    """The temporary raw GeoTIFF(s) the windows are written into: RGB with the product's tags, and the count;
    with `halves`, their first overview levels too (`.ovr` beside each), from the windows' `average_2x2`."""

    def __init__(self, plan: CompositePlan, temps: Temporaries, halves: bool = False):
        self.dst = _open_raw(temps.raw, 3, "uint16", plan, 0)
        self.cdst = self.half = self.chalf = None
        try:
            self.dst.colorinterp = [ColorInterp.red, ColorInterp.green, ColorInterp.blue]
            self.dst.descriptions = ("red (B04)", "green (B03)", "blue (B02)")
            self.dst.update_tags(**plan.tags)
            for i, band in enumerate(BANDS, start=1):
                self.dst.update_tags(i, BAND=band)
            if temps.count_raw is not None:
                self.cdst = _open_raw(temps.count_raw, 1, "uint8", plan, None)
                self.cdst.descriptions = ("valid observations",)
                self.cdst.update_tags(**{k: v for k, v in plan.tags.items() if k in _COUNT_TAGS})
            if halves:
                self.half = _open_raw(_ovr(temps.raw), 3, "uint16", plan, 0, half=True)
                if temps.count_raw is not None:
                    self.chalf = _open_raw(_ovr(temps.count_raw), 1, "uint8", plan, None, half=True)
        except BaseException:
            self.close()
            raise

    def write(self, result) -> None:
        """One window's result from `window._process_window`."""
        win = result.window
        self.dst.write(result.rgb, window=win)
        if self.cdst is not None:
            self.cdst.write(result.count, 1, window=win)
        if self.half is not None:
            hwin = Window(win.col_off // 2, win.row_off // 2, win.width // 2, win.height // 2)
            self.half.write(result.rgb_half, window=hwin)
            if self.chalf is not None:
                self.chalf.write(result.count_half, 1, window=hwin)

    def build_overviews(self) -> None:
        """The overview levels GDAL builds: all of them, or those after the first one the windows brought."""
        factors = overview_factors(self.dst.height, self.dst.width)
        if not factors:
            return
        if self.half is not None:
            targets, factors = (self.half, self.chalf), [f // 2 for f in factors[1:]]
        else:
            targets = (self.dst, self.cdst)
        for ds in targets:
            if ds is not None and factors:
                ds.build_overviews(factors, Resampling.average)  # averages skip nodata 0

    def close(self) -> None:
        for ds in (self.dst, self.cdst, self.half, self.chalf):
            if ds is not None:
                ds.close()

    def __enter__(self) -> "RawOutput":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def overview_factors(height: int, width: int, block: int = 512) -> list[int]:
    """2, 4, 8, ... until a level fits in one block (what the COG driver's OVERVIEWS=AUTO makes)."""
    factors, f = [], 2
    while math.ceil(max(height, width) / (f // 2)) > block:
        factors.append(f)
        f *= 2
    return factors


def _ovr(path: Path) -> Path:
    """The external overview file GDAL reads beside `path` (its first image is the first level)."""
    return path.with_name(path.name + ".ovr")


def _open_raw(path: Path, count: int, dtype: str, plan: CompositePlan, nodata, half: bool = False):
    """A raw tiled GTiff on the output grid, or with `half` on the grid of its first overview level."""
    h, w = plan.out_shape
    transform = plan.out_transform
    if half:
        h, w, transform = h // 2, w // 2, transform * Affine.scale(2)
    profile = dict(driver="GTiff", width=w, height=h, count=count, dtype=dtype, crs=plan.crs,
                   transform=transform, tiled=True, blockxsize=512, blockysize=512, bigtiff="IF_SAFER",
                   interleave="pixel")
    if nodata is not None:
        profile["nodata"] = nodata
    if count == 3:
        profile["photometric"] = "RGB"
    return rasterio.open(path, "w", **profile)


def to_cogs(temps: Temporaries, compress: str) -> None:
    """Copy the raw file(s) to COGs under their second temporary names."""
    _to_cog(temps.raw, temps.cog, compress)
    if temps.count_raw is not None:
        _to_cog(temps.count_raw, temps.count_cog, compress)


def _to_cog(src_path: Path, dst_path: Path, compress: str = "ZSTD") -> None:
    with parent_env():
        rasterio.shutil.copy(
            src_path, dst_path, driver="COG", compress=compress, predictor="2", level=str(COG_LEVEL),
            blocksize="512",
            overviews="FORCE_USE_EXISTING", bigtiff="IF_SAFER", num_threads="ALL_CPUS",
        )


def publish(temps: Temporaries) -> None:
    """Rename the finished COG(s) over the output(s)."""
    os.replace(temps.cog, temps.output)
    if temps.count_path is not None:
        os.replace(temps.count_cog, temps.count_path)


def remove(temps: Temporaries) -> None:
    """Remove every temporary left (and GDAL's side files of them)."""
    for t in temps.all():
        for extra in (t, Path(str(t) + ".aux.xml"), Path(str(t) + ".msk"), _ovr(t)):
            try:
                extra.unlink()
            except FileNotFoundError:
                pass
            except OSError as exc:  # pragma: no cover
                log.warning("could not remove %s: %s", extra, exc)
