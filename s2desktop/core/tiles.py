"""Sentinel-2 tile ids: parse, validate, normalise; point -> tiles from the real ESA grid.

A tile id is an MGRS 100 km square: UTM zone (1-60), latitude band (C-X without I and O) and two square
letters (column, row). People write it as ``33UUP``, ``T33UUP``, ``t33uup`` or with a zero-padded zone
(``01CCV``); the canonical form has no ``T`` and no leading zero (``1CCV``), as in the bucket keys.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

import numpy as np

from s2desktop.core.errors import InvalidInputError, InvalidTileError, NotFoundError
from s2desktop.core.resources import resource_path

__all__ = [
    "TileFootprint",
    "all_tile_ids",
    "footprint",
    "parse_tile",
    "split_tile",
    "tiles_at",
    "tiles_in_bbox",
]

LATITUDE_BANDS = "CDEFGHJKLMNPQRSTUVWX"
# MGRS 100 km column letters repeat every three zones: zone % 3 == 1 -> A-H, 2 -> J-R, 0 -> S-Z (no I, O).
_COLUMN_SETS = {1: "ABCDEFGH", 2: "JKLMNPQR", 0: "STUVWXYZ"}
_COLUMN_SET_NAMES = {1: "A-H", 2: "J-R", 0: "S-Z"}
_ROW_LETTERS = "ABCDEFGHJKLMNPQRSTUV"

_TILE_RE = re.compile(r"T?(\d{1,2})([A-Z])([A-Z])([A-Z])")


def split_tile(tile: str) -> tuple[int, str, str]:
    """``'T33UUP'`` -> ``(33, 'U', 'UP')``; raises InvalidTileError like :func:`parse_tile`."""
    if not isinstance(tile, str):
        raise InvalidTileError(f"{tile!r} is not a tile id (expected text such as 33UUP)")
    text = tile.strip()
    m = _TILE_RE.fullmatch(text.upper())
    if m is None:
        shown = text if len(text) <= 40 else text[:37] + "..."
        raise InvalidTileError(f"'{shown}' is not a tile id (expected e.g. 33UUP)")
    zone_text, band, col, row = m.groups()
    zone = int(zone_text)
    if not 1 <= zone <= 60:
        raise InvalidTileError(f"zone {zone} is out of range 1-60")
    if band in "IO":
        raise InvalidTileError(f"latitude band '{band}' does not exist")
    if band not in LATITUDE_BANDS:
        raise InvalidTileError(
            f"latitude band '{band}' is not covered by Sentinel-2 tiles (bands C-X without I and O)"
        )
    columns = _COLUMN_SETS[zone % 3]
    if col not in columns:
        raise InvalidTileError(
            f"100 km square column '{col}' does not exist in zone {zone} "
            f"(zone {zone} uses {_COLUMN_SET_NAMES[zone % 3]} without I and O)"
        )
    if row not in _ROW_LETTERS:
        raise InvalidTileError(f"100 km square row '{row}' does not exist (rows are A-V without I and O)")
    return zone, band, col + row


def parse_tile(text: str) -> str:
    """Validate a tile id and return its canonical form: ``' t01ccv '`` -> ``'1CCV'``."""
    zone, band, square = split_tile(text)
    return f"{zone}{band}{square}"


# --------------------------------------------------------------------------------------------------------------
# The real grid: footprints and point -> tiles
# --------------------------------------------------------------------------------------------------------------

GRID_RESOURCE = ("grid", "s2_grid.npz")
TILE_SIZE_M = 109_800


@dataclass(frozen=True, eq=False)
class TileFootprint:
    """A tile's footprint from the ESA grid.

    ``ring`` is the closed lon/lat polygon (5 x 2: UL, LL, LR, UR, UL), unwrapped across the antimeridian (a tile
    there runs from ~177 to ~181 rather than jumping to -179). ``bbox`` is (lon_min, lat_min, lon_max, lat_max) of
    that ring, so lon_max can exceed 180. ``centre`` is (lon, lat) with lon in [-180, 180).
    ``utm_bounds`` is (left, bottom, right, top) in the tile's UTM CRS ``epsg``.
    """

    id: str
    epsg: int
    ring: np.ndarray
    bbox: tuple[float, float, float, float]
    centre: tuple[float, float]
    utm_bounds: tuple[int, int, int, int]

    def __repr__(self) -> str:
        return f"TileFootprint({self.id!r}, epsg={self.epsg}, centre=({self.centre[0]:.4f}, {self.centre[1]:.4f}))"


class _Grid:
    """The grid resource in memory, with a latitude-sorted index for point look-ups."""

    def __init__(self, path) -> None:
        with np.load(path) as z:
            self.ids = z["ids"]  # S5, sorted
            self.epsg = z["epsg"]
            self.utm_ul = z["utm_ul"]
            corners = z["corners"].astype(np.float64)  # (n, 4, 2)
        self.corners = corners
        lon, lat = corners[:, :, 0], corners[:, :, 1]
        self.lon_min, self.lon_max = lon.min(axis=1), lon.max(axis=1)
        self.lat_min, self.lat_max = lat.min(axis=1), lat.max(axis=1)
        self.centre_lon = _wrap(lon.mean(axis=1))
        self.centre_lat = lat.mean(axis=1)
        # Latitude index: tiles sorted by their southern edge; a point at `lat` can only be in tiles whose
        # lat_min lies in [lat - max_height, lat].
        self.by_lat = np.argsort(self.lat_min, kind="stable")
        self.lat_min_sorted = self.lat_min[self.by_lat]
        self.max_height = float((self.lat_max - self.lat_min).max())

    def index_of(self, tile: str) -> int:
        key = tile.encode("ascii")
        i = int(np.searchsorted(self.ids, key))
        if i >= len(self.ids) or self.ids[i] != key:
            return -1
        return i

    def footprint(self, i: int) -> TileFootprint:
        ring = np.vstack([self.corners[i], self.corners[i, :1]])
        ulx, uly = (int(v) for v in self.utm_ul[i])
        return TileFootprint(
            id=self.ids[i].decode("ascii"),
            epsg=int(self.epsg[i]),
            ring=ring,
            bbox=(float(self.lon_min[i]), float(self.lat_min[i]), float(self.lon_max[i]), float(self.lat_max[i])),
            centre=(float(self.centre_lon[i]), float(self.centre_lat[i])),
            utm_bounds=(ulx, uly - TILE_SIZE_M, ulx + TILE_SIZE_M, uly),
        )

    def at(self, lon: float, lat: float) -> np.ndarray:
        """Indices of the tiles containing (lon, lat), nearest centre first."""
        lo = np.searchsorted(self.lat_min_sorted, lat - self.max_height, side="left")
        hi = np.searchsorted(self.lat_min_sorted, lat, side="right")
        cand = self.by_lat[lo:hi]
        cand = cand[self.lat_max[cand] >= lat]
        # Rings are unwrapped to lon in [-180, ~190]: a point at -179 may sit in a ring stored at 181.
        hits = []
        for x in (lon, lon + 360.0) if lon < 0 else (lon,):
            c = cand[(self.lon_min[cand] <= x) & (x <= self.lon_max[cand])]
            if len(c):
                hits.append(c[_points_in_quads(self.corners[c], x, lat)])
        if not hits:
            return np.empty(0, dtype=np.intp)
        found = np.unique(np.concatenate(hits))
        return found[np.argsort(self.distance(found, lon, lat), kind="stable")]

    def distance(self, idx: np.ndarray, lon: float, lat: float) -> np.ndarray:
        """Approximate angular distance (degrees) from (lon, lat) to the centres of tiles `idx`."""
        dlon = _wrap(self.centre_lon[idx] - lon) * np.cos(np.radians(lat))
        dlat = self.centre_lat[idx] - lat
        return np.hypot(dlon, dlat)


def _wrap(lon):
    """Longitudes into [-180, 180)."""
    return (np.asarray(lon) + 180.0) % 360.0 - 180.0


def _points_in_quads(quads: np.ndarray, x: float, y: float) -> np.ndarray:
    """Even-odd ray casting of one point against k polygons (k, m, 2) at once; boundary points count as inside
    for the tiles' straight edges in practice (ties are measure-zero)."""
    xs, ys = quads[:, :, 0], quads[:, :, 1]
    xs2, ys2 = np.roll(xs, -1, axis=1), np.roll(ys, -1, axis=1)
    crosses = (ys > y) != (ys2 > y)
    with np.errstate(divide="ignore", invalid="ignore"):
        x_at = xs + (y - ys) * (xs2 - xs) / (ys2 - ys)
    inside = crosses & (x < x_at)
    return (inside.sum(axis=1) % 2) == 1


@functools.cache
def _grid() -> _Grid:
    return _Grid(resource_path(*GRID_RESOURCE))


def footprint(tile: str) -> TileFootprint:
    """The footprint of a tile from the ESA grid; NotFoundError if the (valid) id is not a Sentinel-2 tile."""
    tid = parse_tile(tile)
    g = _grid()
    i = g.index_of(tid)
    if i < 0:
        raise NotFoundError(f"tile {tid} is not in the Sentinel-2 tiling grid")
    return g.footprint(i)


def tiles_at(lon: float, lat: float) -> list[str]:
    """Every tile whose footprint contains the point (lon, lat in degrees), nearest tile centre first.

    Usually one to four tiles overlap (five can meet where two UTM zones' tiles overlap at a corner); the list
    is empty only on the polar caps, which the grid does not cover. Longitudes are taken modulo 360.
    """
    lon, lat = float(lon), float(lat)
    if not (np.isfinite(lon) and np.isfinite(lat)) or not -90.0 <= lat <= 90.0:
        raise InvalidInputError(f"({lon}, {lat}) is not a lon/lat position (latitude must be within -90..90)")
    g = _grid()
    return [g.ids[i].decode("ascii") for i in g.at(float(_wrap(lon)), lat)]


def tiles_in_bbox(
    lon_min: float, lat_min: float, lon_max: float, lat_max: float, limit: int | None = None
) -> list[TileFootprint]:
    """Footprints of the tiles whose bounding box meets the box, nearest to the box centre first.

    Longitudes may run past +-180 (a map view over the antimeridian): a tile matches if it meets the box shifted
    by a multiple of 360 degrees. Footprints are returned as stored; callers drawing a view beyond +-180 shift
    rings by 360 themselves. ``limit`` keeps only the ``limit`` tiles nearest to the centre of the box.
    """
    g = _grid()
    idx = np.flatnonzero(_bbox_mask(g, lon_min, lat_min, lon_max, lat_max))
    cx, cy = (lon_min + lon_max) / 2.0, (lat_min + lat_max) / 2.0
    idx = idx[np.argsort(g.distance(idx, float(_wrap(cx)), cy), kind="stable")]
    if limit is not None:
        idx = idx[: max(0, int(limit))]
    return [g.footprint(int(i)) for i in idx]


def tiles_in_boxes(boxes) -> list[TileFootprint]:
    """Footprints of the tiles that meet any of ``boxes`` (lon_min, lat_min, lon_max, lat_max), nearest to the
    centre of all of them first (the parts of a MultiPolygon: far apart, they need only their own tiles)."""
    g = _grid()
    boxes = list(boxes)
    idx = np.flatnonzero(_boxes_mask(g, boxes))
    w, s = min(b[0] for b in boxes), min(b[1] for b in boxes)
    e, n = max(b[2] for b in boxes), max(b[3] for b in boxes)
    idx = idx[np.argsort(g.distance(idx, float(_wrap((w + e) / 2)), (s + n) / 2), kind="stable")]
    return [g.footprint(int(i)) for i in idx]


def count_in_boxes(boxes) -> int:
    """How many tiles :func:`tiles_in_boxes` would return (without building their footprints)."""
    return int(_boxes_mask(_grid(), list(boxes)).sum())


def _boxes_mask(g: _Grid, boxes) -> np.ndarray:
    mask = np.zeros(len(g.ids), dtype=bool)
    for box in boxes:
        mask |= _bbox_mask(g, *box)
    return mask


def _bbox_mask(g: _Grid, lon_min: float, lat_min: float, lon_max: float, lat_max: float) -> np.ndarray:
    if lon_max < lon_min or lat_max < lat_min:
        raise InvalidInputError(f"empty box: ({lon_min}, {lat_min}) .. ({lon_max}, {lat_max})")
    lat_ok = (g.lat_max >= lat_min) & (g.lat_min <= lat_max)
    if lon_max - lon_min >= 360.0:
        return lat_ok
    mask = np.zeros_like(lat_ok)
    for shift in (-360.0, 0.0, 360.0):
        mask |= (g.lon_max + shift >= lon_min) & (g.lon_min + shift <= lon_max)
    return mask & lat_ok


def all_tile_ids() -> list[str]:
    """Every tile id of the grid (canonical, sorted as text)."""
    return [b.decode("ascii") for b in _grid().ids]
