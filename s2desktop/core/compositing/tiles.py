"""The output's tiles: each layer's pyramid (levels and their 512 px tiles), the 2 x 2 reductions that make one
level from the one before, and the encoding of a tile as it lies in the COG (predictor 2, ZSTD or DEFLATE).

A window task encodes the tiles of every level whose tiles each lie inside one window (`Pyramid.tiled`: the
full resolution and, for 1024 px windows, the first overview level) and hands back, as pixels, the levels the
parent still needs (`Pyramid.pieces`): the first level it tiles itself, and the last level the windows can
compute exactly, from which GDAL builds the smaller ones. A level is exact in the windows while every window's
offset and size divide by its factor: then a window's 2 x 2 averages are what GDAL's average overviews give
(`average_2x2`), and GDAL builds each level from the one before, so the levels it builds from that last exact
level are those it builds from the full resolution (tests/core/test_composite.py checks both).

A window also hands back its values at the preview's level (`Pyramid.preview_level`: the output at most 1024 px a
side), for a front end to paint before the output is written (`core.progress.WindowPixels`): the level's piece when
it is one the windows compute exactly (the COG's own overview there), else the top-left pixel of each block of the
output grid that starts in the window (`preview_copy`; 0.01 ms a window, tests/benchmarks/bench_window_pixels.py).

The medoid's date band takes a pixel, not an average ('nearest'): the top-left one of each 2 x 2 block in the
windows, as GDAL's nearest does for a factor of 2, so its exact levels are GDAL's; the smaller levels are GDAL's
nearest of the last exact one, where GDAL used to pick from the full resolution -- at a fractional ratio
(2100 px -> 263) it rounds to another pixel of the same block, so those levels may hold the date of a
neighbouring pixel. Either is a date some pixel of the block holds; no level mixes dates.

Tiles are encoded with imagecodecs (tifffile's codecs), pixel-interleaved like GDAL's COG driver's:
horizontal differencing (TIFF predictor 2) per sample, then ZSTD level 1 or DEFLATE level 1; edge tiles padded
with zeros to the full 512 x 512.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import imagecodecs
import numpy as np
from rasterio.windows import Window

TILE = 512
LEVEL = 1  # ZSTD / DEFLATE level: why 1, see cog.py
_CODES = {"ZSTD": 50000, "DEFLATE": 8}  # TIFF compression tags
_ENCODERS = {50000: imagecodecs.zstd_encode, 8: imagecodecs.deflate_encode}  # DEFLATE: zlib-wrapped, as TIFF has it


@dataclass(frozen=True)
class Layer:
    """One output file's pixels: its name ('values', 'count', 'date'), bands, type and nodata, and how its
    overviews are made ('average', or 'nearest' for values no average can stand for, like dates)."""

    name: str
    bands: int
    dtype: str
    nodata: int | None
    resampling: str = "average"


@dataclass(frozen=True)
class Pyramid:
    """The levels of the output (full resolution and its overviews, each half the one before, rounded up), and
    which of them the windows bring: `tiled` levels as encoded tiles, `exact` levels computable from a window's
    own pixels."""

    height: int
    width: int
    levels: int  # full resolution + overviews
    exact: int
    tiled: int
    compress: str = "ZSTD"

    @classmethod
    def of(cls, shape: tuple[int, int], windows, compress: str) -> "Pyramid":
        """The pyramid of an output of `shape` made of `windows` (rasterio Windows on the output grid)."""
        h, w = shape
        levels = 1 + len(overview_factors(h, w))
        spans = [(int(v.row_off), int(v.col_off), int(v.height), int(v.width)) for v in windows]
        exact = 1
        while exact < levels and all(x % (2 ** exact) == 0 for s in spans for x in s):
            exact += 1
        tiled = 0
        while tiled < exact and all(_tiles_whole(s, tiled, h, w) for s in spans):
            tiled += 1
        return cls(h, w, levels, exact, tiled, compress)

    def shape(self, level: int) -> tuple[int, int]:
        return math.ceil(self.height / 2 ** level), math.ceil(self.width / 2 ** level)

    def grid(self, level: int) -> tuple[int, int]:
        """Tile rows and columns of `level`."""
        h, w = self.shape(level)
        return math.ceil(h / TILE), math.ceil(w / TILE)

    @property
    def pieces(self) -> tuple[int, ...]:
        """The levels the windows hand back as pixels: those after the tiled ones up to the last exact one, and
        the last exact one when GDAL builds smaller levels from it."""
        keep = set(range(self.tiled, self.exact))
        if self.exact < self.levels:
            keep.add(self.exact - 1)
        return tuple(sorted(keep))

    @property
    def code(self) -> int:
        return _CODES[self.compress]

    def preview_level(self, side: int) -> int:
        """The first level whose longest side is at most `side` px: the size a front end paints the finished
        windows at (`core.progress.WindowPixels`)."""
        level = 0
        while max(self.shape(level)) > side:
            level += 1
        return level


def overview_factors(height: int, width: int, block: int = TILE) -> list[int]:
    """2, 4, 8, ... until a level fits in one block (what the COG driver's OVERVIEWS=AUTO makes)."""
    factors, f = [], 2
    while math.ceil(max(height, width) / (f // 2)) > block:
        factors.append(f)
        f *= 2
    return factors


def _tiles_whole(span, level: int, height: int, width: int) -> bool:
    """Whether a window (row, col, h, w) at `level` is made of whole tiles (or reaches the image's edge)."""
    r, c, h, w = (x // 2 ** level for x in span)
    return (r % TILE == 0 and c % TILE == 0 and (h % TILE == 0 or r + h == math.ceil(height / 2 ** level))
            and (w % TILE == 0 or c + w == math.ceil(width / 2 ** level)))


@dataclass(frozen=True)
class WindowTiles:
    """What a window task hands back: its encoded tiles [(layer, level, tile row, tile col, bytes)] and the pixels
    of the levels the parent needs [(layer, level, row, col, array (bands, h, w))], on each level's grid; and
    its values at the preview's level when the pieces do not hold them (`preview`: (level, row, col, array,
    resampling) or None; `preview_pixels`)."""

    index: int
    tiles: tuple = ()
    pieces: tuple = ()
    preview: tuple | None = None

    @property
    def nbytes(self) -> int:
        extra = self.preview[3].nbytes if self.preview is not None else 0
        return sum(len(t[4]) for t in self.tiles) + sum(p[4].nbytes for p in self.pieces) + extra

    def preview_pixels(self, level: int):
        """The window's values at the preview's `level`: (row, col, array (bands, h, w), resampling) on that
        level's grid, or None (a window narrower than the decimation between two sampled pixels)."""
        for name, lv, row, col, arr in self.pieces:
            if name == "values" and lv == level:
                return row, col, arr, "average"
        if self.preview is not None and self.preview[0] == level:
            return self.preview[1:]
        return None


def window_tiles(index: int, pyramid: Pyramid, window: Window, layers: dict,
                 preview_level: int | None = None) -> WindowTiles:
    """Encode a window's result: `layers` {Layer: array (bands, h, w)} at `window` of the full resolution.
    preview_level: also hand back the values at that level when no piece holds them (`preview_copy`)."""
    tiles, pieces, preview = [], [], None
    last = max(pyramid.tiled, max(pyramid.pieces, default=-1) + 1)
    for layer, arr in layers.items():
        r0, c0 = int(window.row_off), int(window.col_off)
        full = arr
        for level in range(last):
            if level:
                arr = reduce_2x2(arr, layer)
                r0, c0 = r0 // 2, c0 // 2
            if level < pyramid.tiled:
                tiles += [(layer.name, level, *rc, data) for *rc, data in _encode_window(arr, r0, c0, pyramid)]
            if level in pyramid.pieces:
                pieces.append((layer.name, level, r0, c0, np.array(arr)))  # a copy: `arr` may be scratch
            elif layer.name == "values" and level == preview_level:
                preview = (level, r0, c0, np.array(arr), "average")
        if layer.name == "values" and preview_level is not None and preview_level >= last:
            preview = preview_copy(full, window, preview_level)
    return WindowTiles(index, tuple(tiles), tuple(pieces), preview)


def preview_copy(arr: np.ndarray, window: Window, level: int) -> tuple | None:
    """A level the window cannot compute exactly (its smaller overviews span other windows): the top-left pixel
    of each 2**level block of the output grid that starts in the window (nearest). -> (level, row, col, array,
    'nearest'), or None when no block starts in it."""
    f = 2 ** level
    r0, c0 = int(window.row_off), int(window.col_off)
    dr, dc = -r0 % f, -c0 % f
    part = arr[:, dr::f, dc::f]
    if not part.size:
        return None
    return level, (r0 + dr) // f, (c0 + dc) // f, np.ascontiguousarray(part), "nearest"


def _encode_window(arr: np.ndarray, r0: int, c0: int, pyramid: Pyramid):
    """-> (tile row, tile col, bytes) of every tile of `arr` (whole tiles, or the image's edge) at (r0, c0)."""
    _, h, w = arr.shape
    for y in range(0, h, TILE):
        for x in range(0, w, TILE):
            yield (r0 + y) // TILE, (c0 + x) // TILE, encode_tile(arr[:, y:y + TILE, x:x + TILE], pyramid.code)


def reduce_2x2(arr: np.ndarray, layer: Layer) -> np.ndarray:
    """The next level of an even-sized `arr` (bands, h, w): GDAL's average overview (nodata-aware), or for
    'nearest' the top-left pixel of each 2 x 2 block (what GDAL's nearest takes for a factor of 2)."""
    if layer.resampling == "nearest":
        return arr[:, ::2, ::2]
    return average_2x2(arr, layer.nodata)


def encode_tile(part: np.ndarray, code: int) -> bytes:
    """A tile as the COG stores it: `part` (bands, h <= 512, w <= 512), pixel-interleaved, padded with zeros,
    horizontal differencing, compressed (`code`: TIFF compression 50000 ZSTD or 8 DEFLATE)."""
    bands, h, w = part.shape
    tile = np.zeros((TILE, TILE, bands), dtype=part.dtype)
    tile[:h, :w] = np.moveaxis(part, 0, -1)
    return _ENCODERS[code](imagecodecs.delta_encode(tile, axis=1, out=tile), level=LEVEL)


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
