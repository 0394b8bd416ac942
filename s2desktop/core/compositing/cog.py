"""Writing the product: window results into temporary raw GeoTIFFs, their overviews, the COG copy, the rename.

The parent creates the temporary raw files -- uncompressed, band-interleaved, tiled GTiffs in the destination
folder with the product's tags -- and closes them at once: GDAL lays out every block of an uncompressed file when
it creates it (a sparse file, no bytes written), so where each block lies is known (`BlockFile`). The workers
then write each window's result straight into those blocks with `os.pwrite` (`RawSink`): no result crosses a
pipe, and the parent does not copy 7.5 MB per window into GDAL while the workers decode. After the windows the
parent builds the overviews (average, nodata-aware; the COG driver building them itself from a compressed source
costs 2-4x more), and GDAL's COG driver copies the raw file (ZSTD or DEFLATE, predictor 2, the existing
overviews) to another temporary name, renamed over the output on success. Every temporary is removed however it
ends.

The first overview level is half of all the overview work, and GDAL builds it in one serial pass over the whole
raw file after the windows. When every window covers whole 2 x 2 blocks (`halves_in_windows`), the workers
average each window's own blocks instead (`average_2x2`: what GDAL's average computes for a factor of 2 of an
even size, exactly) and write them into the raw file's external overview file (`raw.tif.ovr`, GDAL's own
convention: its first image is the first level); GDAL builds the smaller levels from it as it would from its own
first level, each from the one before.
"""

from __future__ import annotations

import errno
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
from rasterio.enums import ColorInterp, Interleaving, Resampling
from rasterio.windows import Window

from s2desktop.core import fsutil
from s2desktop.core.bands import band_info
from s2desktop.core.compositing.plan import DATE_BAND_ENCODING, CompositePlan
from s2desktop.core.errors import output_error

log = logging.getLogger(__name__)

PARENT_CACHEMAX_MB = 128
# The COG copy is the one serial step after the decoding. On a full 10980 px RGB composite (963 MB with
# overviews) ZSTD level 1 + predictor 2 took 2.6 s where DEFLATE level 1 took 7.9 s, for the same size; every
# GDAL >= 2.3 based reader (QGIS, rasterio, the GDAL tools) opens ZSTD. `compress="DEFLATE"` is there for old
# libtiff-only readers.
COG_LEVEL = 1
RAW_BLOCK = 512
_AREA_TAGS = ("RESOLUTION", "AREA", "AREA_BOUNDS", "AREA_GEOMETRY_SHA256", "GRID_CRS", "GRID_RESOLUTION",
              "GRID_ORIGIN", "GRID_SIZE")
_COUNT_TAGS = ("TILE", "DATES", "MASK", "SCALE", "METHOD") + _AREA_TAGS
_DATE_TAGS = ("TILE", "DATES", "MASK", "SCALE", "METHOD", "METHOD_RULE") + _AREA_TAGS


@dataclass(frozen=True)
class Temporaries:
    """The temporary names beside the outputs: raw (uncompressed, being written) and COG (being copied)."""

    output: Path
    raw: Path
    cog: Path
    count_path: Path | None = None
    count_raw: Path | None = None
    count_cog: Path | None = None
    date_path: Path | None = None  # the medoid's date band
    date_raw: Path | None = None
    date_cog: Path | None = None

    def all(self) -> list[Path]:
        return [t for t in (self.raw, self.cog, self.count_raw, self.count_cog, self.date_raw, self.date_cog)
                if t is not None]


def temporaries(output: Path, count_path: Path | None, date_path: Path | None = None) -> Temporaries:
    token = uuid.uuid4().hex[:8]

    def names(path: Path | None):
        if path is None:
            return None, None
        return path.parent / f".{path.name}.{token}.raw.tif", path.parent / f".{path.name}.{token}.part"

    temps = Temporaries(output, *names(output), count_path, *names(count_path), date_path, *names(date_path))
    fsutil.track(temps.all())  # a second Ctrl-C removes them before it exits
    return temps


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
    out = total + np.uint32(2)
    out >>= 2  # four valid pixels, or none (a total of 0 gives 0)
    if nodata == 0:
        n = _sum_2x2((arr != 0).view(np.uint8), np.uint8)
        partial = np.flatnonzero((n.reshape(-1) - np.uint8(1)) < 3)  # 1 to 3 valid pixels: nodata edges only
        if partial.size:
            k = n.reshape(-1)[partial].astype(np.uint32)
            out.reshape(-1)[partial] = (total.reshape(-1)[partial] + (k >> 1)) // k
    return out.astype(arr.dtype)


def _sum_2x2(arr: np.ndarray, dtype) -> np.ndarray:
    """The sum of each 2 x 2 block: pairs of rows (contiguous), then pairs of columns of the half as many."""
    rows = np.add(arr[..., 0::2, :], arr[..., 1::2, :], dtype=dtype)
    return np.add(rows[..., 0::2], rows[..., 1::2])


class RawOutput:
    """The temporary raw GeoTIFF(s) the windows are written into: the bands with the product's tags, and the count;
    with `halves`, their first overview levels too (`.ovr` beside each), from the windows' `average_2x2`.
    Created (and closed) here; `sink` is what the workers write them with."""

    def __init__(self, plan: CompositePlan, temps: Temporaries, halves: bool = False):
        self.shape = plan.out_shape
        self.paths = [temps.raw, temps.count_raw]
        bands = tuple(plan.stack.bands)
        with _open_raw(temps.raw, len(bands), "uint16", plan, 0) as dst:
            dst.update_tags(**plan.tags)
            describe_bands(dst, bands)
        if temps.count_raw is not None:
            with _open_raw(temps.count_raw, 1, "uint8", plan, None) as cdst:
                cdst.descriptions = ("valid observations",)
                cdst.update_tags(**{k: v for k, v in plan.tags.items() if k in _COUNT_TAGS})
        self.date_raw = temps.date_raw
        if temps.date_raw is not None:
            _create_date_raw(temps.date_raw, plan)
        self.halves = [None, None]
        if halves:
            self.halves = [_ovr(p) if p is not None else None for p in self.paths]
            _open_raw(self.halves[0], len(bands), "uint16", plan, 0, half=True).close()
            if self.halves[1] is not None:
                _open_raw(self.halves[1], 1, "uint8", plan, None, half=True).close()
        self.sink = RawSink(*(BlockFile.of(p) if p is not None else None for p in (*self.paths, *self.halves)),
                            date=BlockFile.of(temps.date_raw) if temps.date_raw is not None else None)

    def build_overviews(self) -> None:
        """The overview levels GDAL builds: all of them, or those after the first one the windows brought."""
        factors = overview_factors(*self.shape)
        targets = self.paths
        if self.halves[0] is not None:
            targets, factors = self.halves, [f // 2 for f in factors[1:]]
        for path in targets:
            if path is not None and factors:
                with rasterio.open(path, "r+") as ds:
                    ds.build_overviews(factors, Resampling.average)  # averages skip nodata 0
        if self.date_raw is not None and overview_factors(*self.shape):
            with rasterio.open(self.date_raw, "r+") as ds:  # an average of dates is no date: nearest
                ds.build_overviews(overview_factors(*self.shape), Resampling.nearest)


def describe_bands(dst, bands) -> None:
    """Each band named (its GDAL description: ``B08``) and tagged: BAND (the name), BAND_DESCRIPTION (``NIR 842
    nm``), CENTRAL_WAVELENGTH_NM, NATIVE_RESOLUTION_M, and in GDAL's IMAGERY domain (GDAL >= 3.10 readers)
    CENTRAL_WAVELENGTH_UM and FWHM_UM. Three bands are shown as red, green, blue (true colour, or the false
    colour they were chosen for); other counts have no colour interpretation but grey for the first."""
    dst.descriptions = tuple(bands)
    if len(bands) == 3:
        dst.colorinterp = [ColorInterp.red, ColorInterp.green, ColorInterp.blue]
    for i, band in enumerate(bands, start=1):
        info = band_info(band)
        facts = {} if info is None else {"BAND_DESCRIPTION": info.description,
                                         "CENTRAL_WAVELENGTH_NM": str(info.wavelength),
                                         "NATIVE_RESOLUTION_M": str(info.resolution)}
        dst.update_tags(i, BAND=band, **facts)
        if info is not None:
            dst.update_tags(i, ns="IMAGERY", CENTRAL_WAVELENGTH_UM=f"{info.wavelength / 1000:g}",
                            FWHM_UM=f"{info.bandwidth / 1000:g}")


def _create_date_raw(path: Path, plan: CompositePlan) -> None:
    """The medoid's date band: uint16 days since 1970-01-01 of the observation each pixel holds, nodata 0,
    tagged with its encoding and the composite's dates and rule."""
    with _open_raw(path, 1, "uint16", plan, 0) as ddst:
        ddst.descriptions = ("acquisition date (days since 1970-01-01)",)
        ddst.update_tags(**{k: v for k, v in plan.tags.items() if k in _DATE_TAGS})
        ddst.update_tags(DATE_ENCODING=DATE_BAND_ENCODING, DATE_EPOCH="1970-01-01", DATE_UNIT="days")
        ddst.update_tags(1, BAND="DATE")


@dataclass(frozen=True)
class BlockFile:
    """Where the blocks of an uncompressed, band-interleaved tiled GTiff lie in its file (GDAL laid them all out
    when it created it): enough for any process to write pixels into it with `os.pwrite`, without GDAL."""

    path: str
    width: int
    dtype: str
    block: int
    offsets: tuple  # [band][block row][block column] -> byte offset of that block

    @classmethod
    def of(cls, path: Path) -> "BlockFile":
        with rasterio.open(path) as ds:
            (bh, bw), = set(ds.block_shapes)
            if bh != bw or ds.compression is not None or (ds.count > 1 and ds.interleaving != Interleaving.band):
                raise ValueError(f"{path}: not an uncompressed, band-interleaved, square-tiled GTiff")
            rows, cols = math.ceil(ds.height / bh), math.ceil(ds.width / bw)
            offsets = tuple(tuple(tuple(int(ds.get_tag_item(f"BLOCK_OFFSET_{c}_{r}", "TIFF", bidx=b) or 0)
                                        for c in range(cols)) for r in range(rows)) for b in ds.indexes)
            if not all(o for band in offsets for row in band for o in row):
                raise OSError(f"GDAL did not lay out every block of {path.name}")
            return cls(str(path), ds.width, ds.dtypes[0], bh, offsets)

    def write(self, fd: int, window: Window, arr: np.ndarray) -> None:
        """`arr` (bands, h, w) at `window`: each block's part in one write where it spans the block's width
        (or reaches the image's right edge: the rest of the block is padding), else row by row."""
        size = self.block
        little = np.dtype(self.dtype).newbyteorder("<")  # the raw files are little-endian (`_open_raw`)
        item = little.itemsize
        r0, c0 = int(window.row_off), int(window.col_off)
        r1, c1 = r0 + int(window.height), c0 + int(window.width)
        for br in range(r0 // size, (r1 - 1) // size + 1):
            for bc in range(c0 // size, (c1 - 1) // size + 1):
                y0, y1 = max(r0, br * size), min(r1, (br + 1) * size)  # the window's part of this block
                x0, x1 = max(c0, bc * size), min(c1, (bc + 1) * size)
                whole_rows = x0 == bc * size and (x1 == (bc + 1) * size or x1 == self.width)
                for b, band in enumerate(arr):
                    part = band[y0 - r0:y1 - r0, x0 - c0:x1 - c0]
                    start = self.offsets[b][br][bc] + ((y0 - br * size) * size + x0 - bc * size) * item
                    if whole_rows:
                        rows = np.zeros((y1 - y0, size), little)
                        rows[:, : x1 - x0] = part
                        _pwrite(fd, rows.data, start)
                    else:
                        for i, row in enumerate(part):
                            _pwrite(fd, np.ascontiguousarray(row, little).data, start + i * size * item)


def _pwrite(fd: int, data: memoryview, offset: int) -> None:
    if hasattr(os, "pwrite"):
        written = os.pwrite(fd, data, offset)
    else:  # Windows: each process has its own descriptor, so seeking it is safe
        os.lseek(fd, offset, os.SEEK_SET)
        written = os.write(fd, data)
    if written != data.nbytes:  # a regular file takes all of it, or the disk is full
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


class RawSink:
    """What the workers write a window's result with: the RGB and count raw files and, when the windows bring
    it, their first overview level. `open()` in each process (file descriptors), `close()` at the end."""

    def __init__(self, rgb: BlockFile, count: BlockFile | None, rgb_half: BlockFile | None = None,
                 count_half: BlockFile | None = None, date: BlockFile | None = None):
        self.files = (rgb, count, rgb_half, count_half, date)
        self.fds: list[int | None] = []

    def open(self) -> "RawSink":
        flags = os.O_WRONLY | getattr(os, "O_BINARY", 0)
        self.fds = [os.open(f.path, flags) if f is not None else None for f in self.files]
        return self

    def write(self, window: Window, rgb: np.ndarray, count: np.ndarray, date: np.ndarray | None = None) -> None:
        try:
            self._write(window, rgb, count)
            if self.files[4] is not None and date is not None:
                self.files[4].write(self.fds[4], window, date[None])
        except OSError as exc:  # in a worker: said here, in one line (the pool passes S2Errors on as they are)
            raise output_error(exc, f"the composite in {Path(self.files[0].path).parent}",
                               "choose another output folder") from None

    def _write(self, window: Window, rgb: np.ndarray, count: np.ndarray) -> None:
        rgb_file, count_file, rgb_half, count_half, _date = self.files
        rgb_file.write(self.fds[0], window, rgb)
        if count_file is not None:
            count_file.write(self.fds[1], window, count[None])
        if rgb_half is not None:
            half = Window(window.col_off // 2, window.row_off // 2, window.width // 2, window.height // 2)
            rgb_half.write(self.fds[2], half, average_2x2(rgb, nodata=0))
            if count_half is not None:
                count_half.write(self.fds[3], half, average_2x2(count)[None])

    def close(self) -> None:
        for fd in self.fds:
            if fd is not None:
                os.close(fd)
        self.fds = []

    def __getstate__(self):  # sent to the spawned workers without this process's file descriptors
        return {"files": self.files, "fds": []}


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
                   transform=transform, tiled=True, blockxsize=RAW_BLOCK, blockysize=RAW_BLOCK,
                   bigtiff="IF_SAFER", interleave="band", sparse_ok=False, endianness="LITTLE")
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
    if temps.date_raw is not None:
        _to_cog(temps.date_raw, temps.date_cog, compress)


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
    if temps.date_path is not None:
        os.replace(temps.date_cog, temps.date_path)


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
    fsutil.untrack(temps.all())
