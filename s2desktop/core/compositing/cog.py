"""Writing the product: the windows' tiles spilled as they arrive, the small overview levels, the COG, the rename.

Each window task hands back its tiles already compressed (`tiles.window_tiles`): full resolution and the overview
levels whose tiles lie inside one window. The parent appends them to a temporary spill file per output as they
arrive (`CogWriter.add`), and keeps, as pixels, only the levels the windows cannot tile: for a 10980 px tile in
1024 px windows the 2745 px level, 1/16 of the output. After the windows it builds the smaller levels from the
last one the windows computed exactly (GDAL's average overviews, nodata-aware; GDAL builds each level from the
one before, so they are the levels it builds from the full resolution), encodes their tiles, and assembles each
COG: an empty header written by tifffile (the IFDs of every level, then the tile offsets patched, as odc-geo's
`save_cog_with_dask` does), GDAL's structural metadata ("ghost" area: LAYOUT=COG to GDAL), then the tiles in COG
order -- smallest level first, row-major, each with GDAL's 4-byte size leader and trailer -- copied from the spill
file without decoding them again. The COG is written under a temporary name and renamed over the output on
success; every temporary is removed however it ends.

The product's tags, band descriptions, nodata and georeferencing are GDAL's own: a one-pixel GTiff written with
rasterio lends its GeoTIFF and GDAL metadata tags to the header.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import logging
import os
import struct
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
import rasterio.windows
from affine import Affine
from rasterio.enums import ColorInterp, Resampling
from rasterio.io import MemoryFile
from tifffile import FileHandle, TiffFile, TiffWriter

from s2desktop.core import fsutil
from s2desktop.core.bands import band_info
from s2desktop.core.compositing.plan import DATE_BAND_ENCODING, CompositePlan
from s2desktop.core.compositing.tiles import TILE, Layer, Pyramid, WindowTiles, encode_tile

log = logging.getLogger(__name__)

LEVEL_IN_MEMORY = 256 << 20  # bytes of a level the parent keeps in memory; a larger one is a mapped file
PARENT_CACHEMAX_MB = 32  # the small levels are built in memory: a larger cache would hold them twice
# The tiles are compressed with ZSTD level 1 + predictor 2 by default: on a full 10980 px RGB composite GDAL's
# copy with DEFLATE level 1 took 7.9 s where ZSTD level 1 took 2.6 s, for the same size; every GDAL >= 2.3 based
# reader (QGIS, rasterio, the GDAL tools) opens ZSTD. `compress="DEFLATE"` is there for old libtiff-only readers.
_AREA_TAGS = ("RESOLUTION", "AREA", "AREA_BOUNDS", "AREA_GEOMETRY_SHA256", "GRID_CRS", "GRID_RESOLUTION",
              "GRID_ORIGIN", "GRID_SIZE")
_COUNT_TAGS = ("TILE", "DATES", "MASK", "SCALE", "METHOD") + _AREA_TAGS
_DATE_TAGS = ("TILE", "DATES", "MASK", "SCALE", "METHOD", "METHOD_RULE") + _AREA_TAGS
_GEO_TAGS = (33550, 33922, 34264, 34735, 34736, 34737, 42112, 42113)  # GeoTIFF, GDAL_METADATA, GDAL_NODATA
_GHOST = ("LAYOUT=IFDS_BEFORE_DATA\nBLOCK_ORDER=ROW_MAJOR\nBLOCK_LEADER=SIZE_AS_UINT4\n"
          "BLOCK_TRAILER=LAST_4_BYTES_REPEATED\nKNOWN_INCOMPATIBLE_EDITION=NO\n ")  # what GDAL's COG driver writes


@dataclass(frozen=True)
class Output:
    """One output file: its layer, its final path, the spill file of its tiles and the COG being written."""

    layer: Layer
    path: Path
    spill: Path
    part: Path


@dataclass(frozen=True)
class Temporaries:
    """The outputs by layer name ('values', 'count', 'date'), each with its temporary names beside it."""

    outputs: tuple[Output, ...]

    def all(self) -> list[Path]:
        return [p for o in self.outputs for p in (o.spill, o.part)]


def plan_outputs(plan: CompositePlan) -> list[tuple[Layer, Path]]:
    """Each layer of the plan with the file it goes to."""
    paths = {"values": plan.output, "count": plan.count_path, "date": plan.date_path}
    return [(layer, paths[layer.name]) for layer in plan.inputs.layers]


def temporaries(outputs) -> Temporaries:
    """Temporary names beside each (layer, path) of `outputs`: its spill file and its COG being written."""
    token = uuid.uuid4().hex[:8]
    temps = Temporaries(tuple(Output(layer, path, path.parent / f".{path.name}.{token}.tiles",
                                     path.parent / f".{path.name}.{token}.part") for layer, path in outputs))
    fsutil.track(temps.all())  # a second Ctrl-C removes them before it exits
    return temps


def parent_env() -> rasterio.Env:
    """GDAL settings of the writing process: all cores for the overview levels, a bounded block cache."""
    return rasterio.Env(GDAL_NUM_THREADS="ALL_CPUS", GDAL_CACHEMAX=PARENT_CACHEMAX_MB)


class CogWriter:
    """The outputs being assembled: `add` each window's tiles as they arrive, then `build_levels` and
    `write_cogs`; `close` always. `extratags`: per layer name, the TIFF tags of its full resolution's IFD
    (`template_tags`)."""

    def __init__(self, pyramid: Pyramid, temps: Temporaries, extratags: dict[str, list],
                 in_memory: int | None = None):
        self.pyramid, self.temps, self.extratags = pyramid, temps, extratags
        self.files = {o.layer.name: open(o.spill, "wb") for o in temps.outputs}
        self.index: dict[str, dict] = {name: {} for name in self.files}  # (level, row, col) -> (offset, size)
        self.levels: dict[str, dict[int, np.ndarray]] = {name: {} for name in self.files}
        # bytes of a kept level held in memory (default LEVEL_IN_MEMORY); larger ones are files (`_level`)
        self.in_memory = LEVEL_IN_MEMORY if in_memory is None else in_memory
        self.backing: list[Path] = []  # those files, removed by `close`

    def add(self, result: WindowTiles) -> None:
        """Spill a window's tiles and keep its pixels of the levels the parent tiles or builds from."""
        for name, level, row, col, data in result.tiles:
            self._spill(name, (level, row, col), data)
        for name, level, row, col, arr in result.pieces:
            target = self._level(name, level)
            target[:, row:row + arr.shape[1], col:col + arr.shape[2]] = arr

    def _spill(self, name: str, key: tuple, data: bytes) -> None:
        fh = self.files[name]
        self.index[name][key] = (fh.tell(), len(data))
        fh.write(data)

    def _level(self, name: str, level: int) -> np.ndarray:
        """A level kept as pixels: in memory, or -- larger than `in_memory` (a large area's) -- a temporary file
        beside the output mapped into memory, whose pages the system writes out and drops as it needs, so the
        parent's memory stays bounded whatever the output's size."""
        arr = self.levels[name].get(level)
        if arr is None:
            out = next(o for o in self.temps.outputs if o.layer.name == name)
            shape = (out.layer.bands, *self.pyramid.shape(level))
            arr = self.levels[name][level] = self._array(out.spill.with_name(f"{out.spill.name}.{level}"), shape,
                                                         out.layer.dtype)
        return arr

    def _array(self, path: Path, shape: tuple, dtype) -> np.ndarray:
        if np.dtype(dtype).itemsize * int(np.prod(shape)) <= self.in_memory:
            return np.zeros(shape, dtype)
        fsutil.track([path])
        self.backing.append(path)
        return np.memmap(path, dtype=dtype, mode="w+", shape=shape)  # zeros: a new file reads as zeros

    def build_levels(self) -> None:
        """The levels the windows did not tile: built here (GDAL from the last exact level), tiled, spilled."""
        p = self.pyramid
        for out in self.temps.outputs:
            name = out.layer.name
            if p.exact < p.levels:
                self.levels[name].update(_gdal_levels(self._level(name, p.exact - 1), out.layer, p.exact,
                                                      p.levels - p.exact, self._array, out.spill))
            for level in range(p.tiled, p.levels):
                arr = self._level(name, level)
                rows, cols = p.grid(level)
                for r, c in itertools.product(range(rows), range(cols)):
                    part = arr[:, r * TILE:(r + 1) * TILE, c * TILE:(c + 1) * TILE]
                    self._spill(name, (level, r, c), encode_tile(part, p.code))
            self.levels[name].clear()

    def write_cogs(self) -> None:
        """Each output's COG under its temporary name: header, then the tiles in COG order."""
        for out in self.temps.outputs:
            self.files[out.layer.name].close()
            _write_cog(out, self.pyramid, self.index[out.layer.name], self.extratags[out.layer.name])

    def close(self) -> None:
        for fh in self.files.values():
            fh.close()
        self.levels = {name: {} for name in self.files}  # the mapped files' views, before they go
        for path in self.backing:
            path.unlink(missing_ok=True)
        fsutil.untrack(self.backing)


def _gdal_levels(arr: np.ndarray, layer: Layer, first: int, count: int, array=None,
                 beside: Path | None = None) -> dict[int, np.ndarray]:
    """Levels first .. first + count - 1, GDAL's overviews of `arr` (the level before them), into arrays made by
    ``array(path, shape, dtype)`` (default: in memory). A mapped `arr` (a large area's) goes through a
    temporary GTiff beside ``beside`` in strips, not a copy in memory."""
    bands, h, w = arr.shape
    profile = dict(driver="GTiff", width=w, height=h, count=bands, dtype=layer.dtype, tiled=True,
                   blockxsize=TILE, blockysize=TILE, interleave="band",
                   transform=Affine(1, 0, 0, 0, -1, h))  # any grid: the values do not depend on it
    if layer.nodata is not None:
        profile["nodata"] = layer.nodata
    array = array or (lambda _path, shape, dtype: np.zeros(shape, dtype))
    mapped = isinstance(arr, np.memmap) and beside is not None
    with (contextlib.nullcontext(_temporary_tif(beside)) if mapped else MemoryFile()) as mem:
        name = str(mem) if mapped else mem.name
        with (rasterio.open(name, "w", **profile) if mapped else mem.open(**profile)) as ds:
            for r in range(0, h, TILE):  # in strips: a mapped level is never read whole into memory
                ds.write(np.asarray(arr[:, r:r + TILE]), window=rasterio.windows.Window(0, r, w, min(TILE, h - r)))
            ds.build_overviews([2 ** j for j in range(1, count + 1)], Resampling[layer.resampling])
        out = {}
        for j in range(count):
            with rasterio.open(name, overview_level=j) as ds:
                path = beside.with_name(f"{beside.name}.o{first + j}") if beside is not None else None
                target = array(path, (ds.count, ds.height, ds.width), layer.dtype)
                ds.read(out=target)
                out[first + j] = target
        if mapped:
            Path(name).unlink(missing_ok=True)
            fsutil.untrack([Path(name)])
    return out


def _temporary_tif(beside: Path) -> Path:
    path = beside.with_name(f"{beside.name}.levels.tif")
    fsutil.track([path])
    return path


def template_tags(plan: CompositePlan) -> dict[str, list[tuple]]:
    """Per output (layer name) the GeoTIFF and GDAL metadata tags GDAL writes for it."""
    return {layer.name: _template_tags(layer, plan) for layer in plan.inputs.layers}


def _template_tags(layer: Layer, plan: CompositePlan) -> list[tuple]:
    """The GeoTIFF and GDAL metadata tags GDAL writes for this output (georeferencing, nodata, the product's
    tags, band descriptions), taken from a one-pixel GTiff written with the same settings."""
    profile = dict(driver="GTiff", width=1, height=1, count=layer.bands, dtype=layer.dtype, crs=plan.crs,
                   transform=plan.out_transform)
    if layer.nodata is not None:
        profile["nodata"] = layer.nodata
    if layer.bands == 3:
        profile["photometric"] = "RGB"
    with MemoryFile() as mem:
        with mem.open(**profile) as dst:
            _describe(dst, layer, plan)
        with TiffFile(io.BytesIO(mem.read())) as tif:
            return [(t.code, int(t.dtype), t.count, t.value, True) for t in tif.pages.first.tags.values()
                    if t.code in _GEO_TAGS]


def _describe(dst, layer: Layer, plan: CompositePlan) -> None:
    """An output's band descriptions and tags."""
    if layer.name == "values":
        describe_bands(dst, plan.stack.bands)
        dst.update_tags(**plan.tags)
    elif layer.name == "count":
        dst.descriptions = ("valid observations",)
        dst.update_tags(**{k: v for k, v in plan.tags.items() if k in _COUNT_TAGS})
    else:  # the medoid's date band: days since 1970-01-01 of the observation each pixel holds, nodata 0
        dst.descriptions = ("acquisition date (days since 1970-01-01)",)
        dst.update_tags(**{k: v for k, v in plan.tags.items() if k in _DATE_TAGS})
        dst.update_tags(DATE_ENCODING=DATE_BAND_ENCODING, DATE_EPOCH="1970-01-01", DATE_UNIT="days")
        dst.update_tags(1, BAND="DATE")


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


def _write_cog(out: Output, pyramid: Pyramid, index: dict, extratags: list[tuple]) -> None:
    """The COG of `out` from its spilled tiles: header (IFDs, offsets patched), then the tiles in COG order."""
    order = [(level, r, c) for level in reversed(range(pyramid.levels))
             for r, c in itertools.product(*(range(n) for n in pyramid.grid(level)))]
    missing = [k for k in order if k not in index]
    if missing:
        raise RuntimeError(f"{out.path.name}: tile {missing[0]} was never written")
    header = _header(out.layer, pyramid, extratags, [index[k][1] for k in order])
    with open(out.spill, "rb") as spill, open(out.part, "wb", buffering=0) as dst:
        src, fd = spill.fileno(), dst.fileno()
        _write_all(fd, header)
        for key in order:
            offset, size = index[key]
            trailer = os.pread(src, 4, offset + size - 4)  # GDAL's trailer: the tile's last 4 bytes again
            _write_all(fd, struct.pack("<I", size))  # GDAL's leader: the tile's size
            _copy_range(src, fd, offset, size)
            _write_all(fd, trailer)


def _copy_range(src: int, dst: int, offset: int, size: int) -> None:
    """`size` bytes of `src` from `offset` to `dst` at its position: in the kernel where it can
    (copy_file_range), else read and written."""
    copy = getattr(os, "copy_file_range", None)
    while size > 0:
        try:
            n = copy(src, dst, size, offset) if copy else 0
        except OSError:  # e.g. across file systems on an old kernel
            n, copy = 0, None
        if not n:
            data = os.pread(src, min(size, 16 << 20), offset)
            if not data:
                raise OSError(f"the spill file ended {size} bytes early")
            _write_all(dst, data)
            n = len(data)
        offset, size = offset + n, size - n


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _header(layer: Layer, pyramid: Pyramid, extratags: list[tuple], sizes: list[int]) -> bytes:
    """The COG's header for tiles of `sizes` (in COG order): the TIFF header, GDAL's ghost area, the IFDs."""
    bigtiff = _uncompressed(layer, pyramid) > 2 ** 32 - 2 ** 28  # GDAL's BIGTIFF=IF_SAFER, roughly
    head = 16 if bigtiff else 8
    ghost = f"GDAL_STRUCTURAL_METADATA_SIZE={len(_GHOST):06d} bytes\n{_GHOST}".encode()
    ghost += b"\0" * (len(ghost) % 2)
    buf = io.BytesIO()
    buf.write(b"\0" * len(ghost))  # tifffile writes its header here, its first IFD right after the ghost area
    with TiffWriter(FileHandle(buf, mode="w", offset=0), bigtiff=bigtiff, shaped=False) as tw:
        samples = dict(photometric="minisblack")  # one band
        if layer.bands > 1:  # pixel-interleaved, as GDAL's COG driver writes several bands
            samples = dict(photometric="rgb" if layer.bands == 3 else "minisblack", planarconfig="contig",
                           extrasamples=None if layer.bands == 3 else [0] * (layer.bands - 1))
        for level in range(pyramid.levels):
            shape = pyramid.shape(level) + ((layer.bands,) if layer.bands > 1 else ())
            tw.write(itertools.repeat(b""), shape=shape, dtype=layer.dtype, tile=(TILE, TILE), **samples,
                     compression=pyramid.code, predictor=2, software=False, metadata=None,
                     extratags=extratags if level == 0 else [t for t in extratags if t[0] == 42113],
                     subfiletype=1 if level else 0)
    data = buf.getbuffer()
    data[:head] = bytes(data[len(ghost):len(ghost) + head])
    data[head:head + len(ghost)] = ghost
    del data
    return _patch_offsets(buf, pyramid, sizes)


def _patch_offsets(buf: io.BytesIO, pyramid: Pyramid, sizes: list[int]) -> bytes:
    """Fill in each level's tile offsets and byte counts: the tiles follow the header in COG order, each after
    its 4-byte leader."""
    size = len(buf.getbuffer())
    position, offsets = size, []
    for n in sizes:
        offsets.append(position + 4)
        position += n + 8
    per_level, start = {}, 0
    for level in reversed(range(pyramid.levels)):
        rows, cols = pyramid.grid(level)
        per_level[level] = (offsets[start:start + rows * cols], sizes[start:start + rows * cols])
        start += rows * cols
    buf.seek(0)
    with TiffFile(buf, mode="r+", name=":mem:") as tif:
        for level, page in enumerate(tif.pages):
            page.tags[324].overwrite(per_level[level][0])
            page.tags[325].overwrite(per_level[level][1])
    if len(buf.getbuffer()) != size:
        raise RuntimeError("the COG header grew while its tile offsets were written")
    return bytes(buf.getbuffer())


def _uncompressed(layer: Layer, pyramid: Pyramid) -> int:
    item = np.dtype(layer.dtype).itemsize * layer.bands
    return sum(item * h * w for h, w in (pyramid.shape(level) for level in range(pyramid.levels)))


def publish(temps: Temporaries) -> None:
    """Rename the finished COG(s) over the output(s)."""
    for out in temps.outputs:
        os.replace(out.part, out.path)


def remove(temps: Temporaries) -> None:
    """Remove every temporary left."""
    for t in temps.all():
        try:
            t.unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:  # pragma: no cover
            log.warning("could not remove %s: %s", t, exc)
    fsutil.untrack(temps.all())
