"""A remote Cloud-Optimised GeoTIFF read by its bytes: the header, the compressed tiles under a window, checked.

GDAL decodes a damaged DEFLATE tile without a word (it does not verify the stream's Adler-32) and takes a
header's georeferencing as it comes, so an area streamed through ``/vsis3/`` could come out wrong and say
nothing. Here the bytes are fetched by the caller (ranged GETs) and every one is checked before it is used:

- :func:`read_header` parses the IFDs with tifffile: each level's size, tile grid, tile offsets and byte counts,
  the compression, predictor and data type, and the georeferencing (EPSG code, transform);
- :func:`check_georef` refuses a header whose CRS, origin or extent is not its tile's in the Sentinel-2 grid (a
  flipped byte in a tiepoint or pixel scale would shift every pixel);
- :func:`tile_problem` checks one tile: its size against the header's byte count and, for DEFLATE, its
  zlib stream's own Adler-32 and decoded length (Python's zlib verifies both); uncompressed tiles by length;
- :func:`decode_tile` checks a tile as it decodes it; :func:`write_window` writes the window's pixels as a small
  GeoTIFF the compositor reads fast; for a compression not decoded here, :func:`write_piece` writes the tiles
  as they came (tifffile, no re-encoding), checked by size only.
"""

from __future__ import annotations

import io
import math
import zlib
from dataclasses import dataclass

from s2desktop.core.errors import RasterError

__all__ = ["Level", "CogHeader", "read_header", "check_georef", "tiles_under", "tile_problem", "decode_tile",
           "write_piece", "write_window",
           "HEADER_BYTES", "DEFLATE", "CHECKED"]

HEADER_BYTES = 64 << 10  # the first request: a COG's IFDs and tile index come before its data
MAX_HEADER_BYTES = 16 << 20
DEFLATE = (8, 32946)  # Adobe and old-style DEFLATE: a zlib stream with an Adler-32 of the decoded bytes
CHECKED = DEFLATE + (1,)  # compressions whose tiles are checked by content, not size alone
_GEOKEYS, _GEODOUBLES, _GEOASCII, _NODATA = 34735, 34736, 34737, 42113
_PIXEL_SCALE, _TIEPOINT = 33550, 33922
_RASTER_TYPE_KEY, _PROJECTED_KEY, _GEOGRAPHIC_KEY = 1025, 3072, 2048


@dataclass(frozen=True)
class Level:
    """One resolution of a COG: the full one (index 0) or an overview."""

    width: int
    height: int
    tile_width: int
    tile_height: int
    offsets: tuple[int, ...]  # of each tile, row-major
    counts: tuple[int, ...]
    transform: tuple[float, ...]  # affine (a, b, c, d, e, f) of this level's pixels

    @property
    def tiles_across(self) -> int:
        return -(-self.width // self.tile_width)


@dataclass(frozen=True)
class CogHeader:
    """What a COG's header says, as plain values (picklable, and kept as JSON in the window cache)."""

    size: int  # bytes of the object
    dtype: str
    compression: int  # TIFF Compression tag
    predictor: int
    epsg: int | None
    pixel_is_point: bool
    geokeys: tuple  # GeoKeyDirectory values
    geodoubles: tuple | None
    geoascii: str | None
    nodata: str | None
    levels: tuple[Level, ...]  # the full resolution first, then the overviews, finest first
    byteorder: str = "<"

    @property
    def data_start(self) -> int:
        return min((o for lv in self.levels for o, n in zip(lv.offsets, lv.counts) if n), default=self.size)

    @property
    def tile_bytes(self) -> dict:
        return {i: lv.tile_width * lv.tile_height * _itemsize(self.dtype) for i, lv in enumerate(self.levels)}


def _itemsize(dtype: str) -> int:
    import numpy as np

    return np.dtype(dtype).itemsize


def read_header(get, size: int, name: str) -> tuple[CogHeader, bytes]:
    """The header of the COG ``name`` of ``size`` bytes, and the bytes fetched from its start (the first tiles
    of its smallest overviews often come with them); ``get(start, length) -> bytes`` fetches a range.

    The first request takes HEADER_BYTES; when the first tile starts further in (a large tile index), the
    whole header is fetched and read again, so no IFD is read from bytes that were not fetched."""
    data = get(0, min(size, HEADER_BYTES))
    header = _parse(data, size, name)
    if header.data_start > len(data):
        if header.data_start > MAX_HEADER_BYTES:
            raise RasterError(f"{name}: its header is {header.data_start} bytes long; not a cloud-optimised "
                              "GeoTIFF this program reads")
        data = get(0, header.data_start)
        header = _parse(data, size, name)
    return header, data


def _parse(data: bytes, size: int, name: str) -> CogHeader:
    import tifffile

    try:
        with tifffile.TiffFile(io.BytesIO(data)) as tif:
            pages = [p for p in tif.pages if not (p.subfiletype & 4)]  # not transparency masks
            first = pages[0]
            tags = {code: first.tags[code].value for code in
                    (_GEOKEYS, _GEODOUBLES, _GEOASCII, _NODATA, _PIXEL_SCALE, _TIEPOINT) if code in first.tags}
            levels = [_level(p) for p in pages]
            dtype, compression, predictor = str(first.dtype), int(first.compression), int(first.predictor)
            byteorder = tif.byteorder
    except (tifffile.TiffFileError, ValueError, KeyError, IndexError, TypeError, OSError, EOFError) as exc:
        raise RasterError(f"{name}: its header is not a readable GeoTIFF ({exc})") from None
    if _GEOKEYS not in tags or _PIXEL_SCALE not in tags or _TIEPOINT not in tags:
        raise RasterError(f"{name}: its header has no georeferencing (GeoTIFF keys, pixel scale, tiepoint)")
    keys = _geokeys(tags[_GEOKEYS])
    point = keys.get(_RASTER_TYPE_KEY) == 2
    transform = _transform(tags[_PIXEL_SCALE], tags[_TIEPOINT], point)
    full = levels[0]
    levels = [_with_transform(lv, transform, full) for lv in levels]
    return CogHeader(size, dtype, compression, predictor, keys.get(_PROJECTED_KEY) or keys.get(_GEOGRAPHIC_KEY),
                     point, tuple(tags[_GEOKEYS]), tuple(tags[_GEODOUBLES]) if _GEODOUBLES in tags else None,
                     tags.get(_GEOASCII), tags.get(_NODATA), tuple(levels), byteorder)


def _level(page) -> Level:
    if not page.is_tiled:
        raise ValueError("its pixels are in strips, not tiles")
    return Level(int(page.imagewidth), int(page.imagelength), int(page.tilewidth), int(page.tilelength),
                 tuple(int(o) for o in page.dataoffsets), tuple(int(n) for n in page.databytecounts), ())


def _geokeys(values) -> dict:
    """{key id: value} of the GeoKeyDirectory's keys stored inline (the codes; strings are not needed)."""
    keys = {}
    for i in range(1, int(values[3]) + 1):
        key, location, _count, value = values[4 * i: 4 * i + 4]
        if location == 0:
            keys[int(key)] = int(value)
    return keys


def _transform(scale, tiepoint, pixel_is_point: bool) -> tuple:
    """The affine of the full resolution, as GDAL derives it (a PixelIsPoint tiepoint is a pixel's centre)."""
    sx, sy = float(scale[0]), float(scale[1])
    i, j, x, y = (float(v) for v in tiepoint[:2] + tiepoint[3:5])
    x0, y0 = x - i * sx, y + j * sy
    if pixel_is_point:
        x0, y0 = x0 - sx / 2, y0 + sy / 2
    return (sx, 0.0, x0, 0.0, -sy, y0)


def _with_transform(level: Level, full_transform: tuple, full: Level) -> Level:
    a, b, c, d, e, f = full_transform
    fx, fy = full.width / level.width, full.height / level.height
    return Level(level.width, level.height, level.tile_width, level.tile_height, level.offsets, level.counts,
                 (a * fx, b, c, d, e * fy, f))


def check_georef(header: CogHeader, footprint, name: str) -> None:
    """RasterError unless the header puts the raster exactly on its tile: the tile's UTM zone, its upper-left
    corner and its 109.8 km extent (a damaged tiepoint or pixel scale would shift or stretch every pixel)."""
    a, _b, c, _d, e, f = header.levels[0].transform
    full = header.levels[0]
    left, _bottom, right, top = footprint.utm_bounds
    problems = []
    if header.epsg != footprint.epsg:
        problems.append(f"EPSG:{header.epsg} instead of EPSG:{footprint.epsg}")
    if not (math.isclose(c, left, abs_tol=0.01) and math.isclose(f, top, abs_tol=0.01)):
        problems.append(f"its corner at {c:.2f}, {f:.2f} instead of {left}, {top}")
    if not (math.isclose(a, -e, rel_tol=1e-9) and math.isclose(a * full.width, right - left, abs_tol=0.5)
            and math.isclose(-e * full.height, right - left, abs_tol=0.5)):
        problems.append(f"{full.width} x {full.height} px of {a:g} x {-e:g} m, not the tile's {right - left} m")
    if problems:
        raise RasterError(f"{name}: its header does not place it on tile {footprint.id} ({'; '.join(problems)}): "
                          "refused")


def tiles_under(level: Level, window: tuple[int, int, int, int]) -> list[tuple[int, int]]:
    """(tile row, tile column) of each tile of a block-aligned ``window`` (col, row, width, height), row-major."""
    c0, r0, w, h = window
    tw, th = level.tile_width, level.tile_height
    return [(i, j) for i in range(r0 // th, -(-(r0 + h) // th)) for j in range(c0 // tw, -(-(c0 + w) // tw))]


def decode_tile(data: bytes, expected_count: int, header: CogHeader, level: int):
    """One tile's pixels (tile height x tile width), checked on the way: -> (array or None, problem or None).

    Its size must be the header's byte count; a DEFLATE stream must end with its own Adler-32 and decode to
    exactly one tile (Python's zlib verifies the checksum, which GDAL's decoder does not); an uncompressed tile
    must be one tile long. The horizontal predictor is undone. Other compressions are not decoded here (None,
    None): the caller keeps their bytes as they came, checked by size only."""
    import numpy as np

    lv = header.levels[level]
    if len(data) != expected_count:
        return None, f"{len(data)} bytes where the header says {expected_count}"
    shape, dtype = (lv.tile_height, lv.tile_width), np.dtype(header.dtype).newbyteorder(header.byteorder)
    if expected_count == 0:
        return np.zeros(shape, dtype.newbyteorder("=")), None  # a sparse tile: nodata
    decoded = header.tile_bytes[level]
    if header.compression in DEFLATE:
        d = zlib.decompressobj()
        try:
            raw = d.decompress(data, decoded + 1)
        except zlib.error as exc:  # a wrong Adler-32 or a broken stream
            return None, f"its DEFLATE stream is damaged ({exc})"
        if not d.eof or d.unconsumed_tail or len(raw) != decoded:
            return None, f"its DEFLATE stream decodes to {len(raw)} bytes, not {decoded}, or does not end"
    elif header.compression == 1:
        if len(data) != decoded:
            return None, f"{len(data)} bytes where a tile holds {decoded}"
        raw = data
    else:
        return None, None
    tile = np.frombuffer(raw, dtype).reshape(shape).astype(dtype.newbyteorder("="))
    if header.predictor == 2:
        np.cumsum(tile, axis=1, dtype=tile.dtype, out=tile)  # differences back to values (wrapping, as stored)
    elif header.predictor != 1:
        return None, f"predictor {header.predictor} is not one this program reads"
    return tile, None


def tile_problem(data: bytes, expected_count: int, header: CogHeader, level: int) -> str | None:
    """What is wrong with one tile's bytes (None: nothing that can be seen)."""
    return decode_tile(data, expected_count, header, level)[1]


def write_piece(path, header: CogHeader, level: int, window: tuple[int, int, int, int], tiles) -> None:
    """The window's tiles (``tiles``: their bytes, row-major, as :func:`tiles_under` lists them), still
    compressed, as a tiled GeoTIFF of the window: the source's compression, predictor, GeoTIFF keys and nodata;
    its pixel scale and tiepoint those of the window."""
    import tifffile

    lv = header.levels[level]
    c0, r0, w, h = window
    a, _b, c, _d, e, f = lv.transform
    x, y = c + c0 * a, f + r0 * e
    if header.pixel_is_point:
        x, y = x + a / 2, y + e / 2
    extratags = [(_PIXEL_SCALE, 12, 3, (a, -e, 0.0), True), (_TIEPOINT, 12, 6, (0.0, 0.0, 0.0, x, y, 0.0), True),
                 (_GEOKEYS, 3, len(header.geokeys), header.geokeys, True)]
    if header.geodoubles:
        extratags.append((_GEODOUBLES, 12, len(header.geodoubles), header.geodoubles, True))
    if header.geoascii:
        extratags.append((_GEOASCII, 2, 0, header.geoascii, True))
    if header.nodata is not None:
        extratags.append((_NODATA, 2, 0, header.nodata, True))
    with tifffile.TiffWriter(path, bigtiff=False) as out:
        out.write(iter((t, len(t)) for t in tiles), shape=(h, w), dtype=header.dtype,
                  tile=(lv.tile_height, lv.tile_width), compression=header.compression, predictor=header.predictor,
                  photometric="minisblack", extratags=extratags, metadata=None)


def write_window(path, header: CogHeader, level: int, window: tuple[int, int, int, int], tiles) -> None:
    """The window from its decoded tiles (``tiles``: arrays, row-major, as :func:`tiles_under` lists them) as a
    GeoTIFF the compositor reads fast: 512 px blocks, ZSTD (level 1) with the horizontal predictor, nodata 0.
    Written a row of tiles at a time."""
    import numpy as np
    import rasterio
    import rasterio.errors
    from affine import Affine
    from rasterio.crs import CRS
    from rasterio.windows import Window

    lv = header.levels[level]
    c0, r0, w, h = window
    a, b, c, d, e, f = lv.transform
    per_row = -(-(c0 + w) // lv.tile_width) - c0 // lv.tile_width
    profile = dict(driver="GTiff", width=w, height=h, count=1, dtype=header.dtype, crs=CRS.from_epsg(header.epsg),
                   nodata=0, transform=Affine(a, b, c + c0 * a, d, e, f + r0 * e), tiled=True, blockxsize=512,
                   blockysize=512, compress="ZSTD", zstd_level=1, predictor=2)
    tiles = list(tiles)
    with rasterio.open(path, "w", **profile) as out:
        for k in range(0, len(tiles), per_row):
            row = np.hstack(tiles[k: k + per_row])[:, :w]
            top = (k // per_row) * lv.tile_height
            height = min(lv.tile_height, h - top)
            out.write(row[:height], 1, window=Window(0, top, w, height))
    try:  # GDAL can fail to write (a full disk) without raising: read it all back before it is published
        with rasterio.open(path) as back:
            whole = (back.width, back.height) == (w, h) and back.read(1).shape == (h, w)
    except rasterio.errors.RasterioError as exc:
        raise OSError(f"{path} was not written whole ({str(exc).splitlines()[0]})") from None
    if not whole:
        raise OSError(f"{path} was not written whole")
