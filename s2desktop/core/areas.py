"""Areas of interest: a lon/lat box or a GeoJSON polygon, the tiles under it, and the grid its composite is on.

    area = parse_bbox("12.40,47.70,12.55,47.80")          # or read_aoi("field.geojson")
    grid = output_grid(area, resolution=10)               # UTM zone of the area's centre, 10 m, snapped

The grid is the UTM zone of the area's centre at ``resolution`` metres (``crs`` overrides), its origin a
multiple of the resolution from the Sentinel-2 tiles' own origin, so that at 10 m in a tile's own zone the
area's pixels are the tile's pixels.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path

from s2desktop.core import tiles
from s2desktop.core.errors import InvalidInputError, NotFoundError

__all__ = ["Area", "OutputGrid", "parse_bbox", "read_aoi", "area_tiles", "output_grid", "geometry_in", "check_size",
           "reproject", "area_tags", "MAX_PIXELS", "MAX_TILES"]

MAX_PIXELS = 40_000 * 40_000  # per band of one composite: 3.2 GB of uint16 (a 400 km square at 10 m)
MAX_TILES = 200  # tiles one area may search (each costs LIST requests, billed on the requester-pays buckets)
MAX_AOI_BYTES = 20 << 20  # an --aoi file larger than this is refused before it is parsed
MAX_VERTICES = 200_000  # positions of all the rings of an --aoi


@dataclass(frozen=True)
class Area:
    """An area in lon/lat (EPSG:4326): a GeoJSON Polygon or MultiPolygon, with its bounds."""

    geometry: dict
    bounds: tuple[float, float, float, float]  # west, south, east, north
    name: str  # how the user gave it, for messages and tags

    @property
    def is_box(self) -> bool:
        return self.name.startswith("bbox ")


@dataclass(frozen=True)
class OutputGrid:
    crs: str  # 'EPSG:32633'
    transform: tuple  # affine coefficients (a, b, c, d, e, f)
    width: int
    height: int
    resolution: float


def parse_bbox(text: str) -> Area:
    """'W,S,E,N' in degrees -> Area; one-line InvalidInputError for anything else."""
    parts = [p.strip() for p in str(text).split(",")]
    try:
        w, s, e, n = (float(p) for p in parts)
    except ValueError:
        raise InvalidInputError(f"--bbox {text!r} is not four numbers W,S,E,N (lon/lat degrees)") from None
    if not all(math.isfinite(v) for v in (w, s, e, n)) or not (-180 <= w <= 180 and -180 <= e <= 180):
        raise InvalidInputError(f"--bbox {text}: longitudes must be within -180..180")
    if not (-90 <= s <= 90 and -90 <= n <= 90):
        raise InvalidInputError(f"--bbox {text}: latitudes must be within -90..90")
    if w >= e:
        raise InvalidInputError(f"--bbox {text}: west {w:g} is not west of east {e:g} (W,S,E,N; an area across "
                                "the antimeridian is not supported)")
    if s >= n:
        raise InvalidInputError(f"--bbox {text}: south {s:g} is not south of north {n:g} (W,S,E,N)")
    ring = [[w, s], [e, s], [e, n], [w, n], [w, s]]
    return Area({"type": "Polygon", "coordinates": [ring]}, (w, s, e, n), f"bbox {w:g},{s:g},{e:g},{n:g}")


def read_aoi(path) -> Area:
    """A GeoJSON file (a Polygon or MultiPolygon geometry, Feature or FeatureCollection of them) -> Area."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_AOI_BYTES:
            raise InvalidInputError(f"--aoi {path} is {size / 2**20:.0f} MB; an area file may be at most "
                                    f"{MAX_AOI_BYTES >> 20} MB: simplify its outline (e.g. to 10 m) first")
        doc = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise NotFoundError(f"--aoi {path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise InvalidInputError(f"--aoi {path} is not valid JSON ({exc})") from None
    polygons = _polygons(doc, path)
    if not polygons:
        raise InvalidInputError(f"--aoi {path} holds no Polygon or MultiPolygon")
    for rings in polygons:
        _check_rings(rings, path)
    vertices = sum(len(r) for rings in polygons for r in rings)
    if vertices > MAX_VERTICES:
        raise InvalidInputError(f"--aoi {path} has {vertices:,} vertices, more than the {MAX_VERTICES:,} an area may "
                                "have: simplify its outline first")
    lons = [x for rings in polygons for ring in rings for x, _y in ring]
    lats = [y for rings in polygons for ring in rings for _x, y in ring]
    geometry = {"type": "MultiPolygon", "coordinates": polygons}
    return Area(geometry, (min(lons), min(lats), max(lons), max(lats)), f"aoi {path.name}")


def _polygons(doc, path) -> list:
    """Every polygon (a list of rings) in a GeoJSON document."""
    kind = doc.get("type") if isinstance(doc, dict) else None
    if kind == "FeatureCollection":
        return [p for f in doc.get("features") or [] for p in _polygons(f, path)]
    if kind == "Feature":
        return _polygons(doc.get("geometry") or {}, path)
    if kind == "Polygon":
        return [doc.get("coordinates")]
    if kind == "MultiPolygon":
        return list(doc.get("coordinates") or [])
    if kind in ("Point", "MultiPoint", "LineString", "MultiLineString", "GeometryCollection"):
        raise InvalidInputError(f"--aoi {path}: a {kind} has no area; give a Polygon or MultiPolygon")
    raise InvalidInputError(f"--aoi {path} is not GeoJSON (no Polygon, MultiPolygon, Feature or FeatureCollection)")


def _check_rings(rings, path) -> None:
    try:
        ok = bool(rings) and all(len(r) >= 4 and r[0] == r[-1] for r in rings) and all(
            len(p) >= 2 and _number(p[0]) and _number(p[1]) and -180 <= p[0] <= 180 and -90 <= p[1] <= 90
            for r in rings for p in r)
    except TypeError:
        ok = False
    if not ok:
        raise InvalidInputError(f"--aoi {path}: a polygon ring must be closed, have at least 4 positions and "
                                "lon/lat coordinates (numbers, not strings) within -180..180, -90..90")


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def area_tiles(area: Area) -> list[str]:
    """The Sentinel-2 tiles whose footprint meets the area's bounds, nearest to its centre first."""
    found = [f.id for f in tiles.tiles_in_boxes(part_bounds(area))]
    if not found:
        raise NotFoundError(f"no Sentinel-2 tile under {area.name} (the grid does not cover the poles)")
    return found


def part_bounds(area: Area) -> list[tuple[float, float, float, float]]:
    """The bounds of each polygon of the area (a MultiPolygon's fields far apart need only their own tiles)."""
    geom = area.geometry
    polygons = geom["coordinates"] if geom["type"] == "MultiPolygon" else [geom["coordinates"]]
    out = []
    for rings in polygons:
        xs = [p[0] for p in rings[0]]
        ys = [p[1] for p in rings[0]]
        out.append((min(xs), min(ys), max(xs), max(ys)))
    return out


def check_size(area: Area, resolution: float | None = None, crs: str | None = None) -> OutputGrid | None:
    """Before any request: InvalidInputError when the area covers more tiles than one search may, or (given a
    ``resolution``) more pixels than one composite takes; -> its output grid (None without a resolution)."""
    n = tiles.count_in_boxes(part_bounds(area))
    if n > MAX_TILES:
        raise InvalidInputError(f"{area.name} covers {n:,} Sentinel-2 tiles, more than the {MAX_TILES} one area may "
                                "search: choose a smaller area (or several)")
    return None if resolution is None else output_grid(area, resolution, crs)


def _utm_epsg(lon: float, lat: float) -> int:
    zone = min(60, int((lon + 180) // 6) + 1)
    return (32600 if lat >= 0 else 32700) + zone


def output_grid(area: Area, resolution: float = 10.0, crs: str | None = None) -> OutputGrid:
    """The grid of the area's composite: ``crs`` (default: the UTM zone of the area's centre) at ``resolution``
    metres, covering the area; in a tile's own zone its pixel edges are the tile's (the origin is the nearest
    tile's upper-left corner plus whole pixels), elsewhere multiples of the resolution."""
    from rasterio.crs import CRS
    from rasterio.errors import CRSError
    from rasterio.warp import transform_bounds

    if not (resolution and math.isfinite(resolution) and resolution > 0):
        raise InvalidInputError(f"--resolution {resolution} must be a positive number of metres")
    w, s, e, n = area.bounds
    try:
        dst = CRS.from_user_input(crs) if crs else CRS.from_epsg(_utm_epsg((w + e) / 2, (s + n) / 2))
    except (CRSError, ValueError):
        raise InvalidInputError(f"--crs {crs!r} is not a coordinate reference system (e.g. EPSG:32633)") from None
    if not dst.is_projected:
        raise InvalidInputError(f"--crs {crs}: choose a projected CRS in metres (e.g. a UTM zone, EPSG:326xx)")
    left, bottom, right, top = transform_bounds("EPSG:4326", dst, w, s, e, n, densify_pts=21)
    ox, oy = _grid_origin(area, dst.to_epsg())
    x0 = ox + math.floor((left - ox) / resolution) * resolution
    y1 = oy - math.floor((oy - top) / resolution) * resolution
    width = max(1, math.ceil((right - x0) / resolution))
    height = max(1, math.ceil((y1 - bottom) / resolution))
    if width * height > MAX_PIXELS:
        raise InvalidInputError(
            f"{area.name} at {resolution:g} m is {width} x {height} px, more than the {MAX_PIXELS / 1e9:.1f} billion "
            "px a composite takes: choose a coarser --resolution or a smaller area")
    return OutputGrid(dst.to_string(), (resolution, 0.0, x0, 0.0, -resolution, y1), width, height, resolution)


def _grid_origin(area: Area, epsg: int | None) -> tuple[float, float]:
    """The upper-left corner of the nearest tile in zone ``epsg`` (Sentinel-2 pixels start there), else 0, 0."""
    for f in tiles.tiles_in_bbox(*area.bounds):
        if f.epsg == epsg:
            return float(f.utm_bounds[0]), float(f.utm_bounds[3])
    return 0.0, 0.0


def area_tags(area: Area, grid: OutputGrid, scale: int = 1) -> dict[str, str]:
    """GeoTIFF tags that say which area a composite is of and on which grid: the area as given, its lon/lat
    bounds and a SHA-256 of its geometry (two AOIs of the same name differ there), the grid's CRS, pixel size,
    upper-left corner and size; and the output's pixel (the grid's, times the composite's ``scale``) in metres
    and over the 10 m bands' as SCALE (8: an 80 m preview)."""
    a, _b, c, _d, _e, f = grid.transform
    canonical = json.dumps(area.geometry, sort_keys=True, separators=(",", ":"))
    return {
        "AREA": area.name,
        "AREA_BOUNDS": ",".join(f"{v:.6f}" for v in area.bounds),
        "AREA_GEOMETRY_SHA256": hashlib.sha256(canonical.encode("utf-8")).hexdigest(),
        "GRID_CRS": grid.crs,
        "GRID_RESOLUTION": f"{grid.resolution:g}",
        "GRID_ORIGIN": f"{c:.3f},{f:.3f}",
        "GRID_SIZE": f"{grid.width}x{grid.height}",
        "RESOLUTION": f"{grid.resolution * scale:g} m",
        "SCALE": f"{grid.resolution * scale / 10:g}",
    }


def geometry_in(area: Area, crs: str) -> dict:
    """The area's polygon in ``crs`` (its edges densified, so that a lon/lat box stays a box after projection)."""
    return reproject(area.geometry, "EPSG:4326", crs)


def reproject(geometry: dict, src_crs, dst_crs) -> dict:
    """A (Multi)Polygon from ``src_crs`` to ``dst_crs``, its edges densified first (a straight edge in one CRS
    is curved in another): -> a MultiPolygon."""
    from rasterio.warp import transform_geom

    return transform_geom(src_crs, dst_crs, _densified(geometry))


def _densified(geometry: dict, steps: int = 16, spacing: float = 0.01) -> dict:
    """The polygon with points every ``spacing`` degrees (at most ``steps`` per edge) along its edges: a long
    straight lon/lat edge is curved in UTM; a detailed outline's short edges are left as they are."""
    polygons = geometry["coordinates"] if geometry["type"] == "MultiPolygon" else [geometry["coordinates"]]

    def ring(r):
        pts = []
        for (x0, y0), (x1, y1) in zip(r[:-1], r[1:]):
            n = max(1, min(steps, math.ceil(math.hypot(x1 - x0, y1 - y0) / spacing)))
            pts += [[x0 + (x1 - x0) * i / n, y0 + (y1 - y0) * i / n] for i in range(n)]
        return pts + [list(r[-1])]

    return {"type": "MultiPolygon", "coordinates": [[ring(r) for r in poly] for poly in polygons]}
