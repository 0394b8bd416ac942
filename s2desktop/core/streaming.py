"""Composite inputs for an area: a :class:`~s2desktop.core.stack.Stack` of one observation per acquisition, whose
rasters are VRTs on the area's output grid (one per band).

For each acquisition (a date and an orbit, seen in one or more tiles) and each band, a GDAL VRT on the area's
grid is written to a scratch folder: one warped VRT per tile (``VRTWarpedDataset``, so tiles of another UTM zone
are reprojected on the fly) and, when the acquisition covers several tiles, a mosaic of them in which a pixel
takes the first tile that has data -- so an acquisition seen in two tiles is one observation, not two. Which
tile is first, and which tiles are not needed at all, is :func:`prioritise`'s: the grid's own zone first (its
pixels unresampled), never the order of the tiles' names. What each
warped VRT reads is the caller's (``locate``): the window of a remote COG that :mod:`s2desktop.core.fetch` put
in the cache, a local COG mirror's file, or a downloaded JPEG 2000. A coarse grid reads the overview level that
matches (``vrt://...?ovr=n``) of a file that has overviews; fetched windows are already at that level.

Resampling: the scene classification (SCL) by nearest neighbour, always; reflectance by nearest neighbour where
each output pixel lies within one of the source's (same CRS, the source's pixel the grid's or a whole multiple of
it -- a 20 m or 60 m band on a 10 m grid -- and pixel edges a whole output pixel apart: the values are copied,
or repeated, unchanged), else bilinear (nodata excluded).

Level-1C scenes (an area made of downloaded L1C tiles) have no SCL but their own cloud masks
(:mod:`s2desktop.core.qimasks`): an acquisition's are drawn onto the grid into one small GeoTIFF, its opaque
clouds and cirrus (the MSK_CLASSI raster by nearest neighbour, the MSK_CLOUDS polygons reprojected and
rasterised), read by the compositor as an MSK_CLASSI-like raster (band 1 > 0: masked).

Each observation carries its acquisition's facts (date, orbit, scenes, baseline and so the offset, the objects
read); the scratch folder holds only the VRTs and those mask rasters.
"""


from __future__ import annotations

import math
import re
import xml.sax.saxutils as xml
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np

from s2desktop.core import tiles
from s2desktop.core.areas import OutputGrid, reproject
from s2desktop.core.bands import RESAMPLING, finest
from s2desktop.core.baseline import offset_for_baseline
from s2desktop.core.errors import NotFoundError, RasterError
from s2desktop.core.fetch import overview_level
from s2desktop.core.stack import (
    MASK_BAND,
    MASK_BANDS,
    QI_BANDS,
    RGB,
    Observation,
    Provenance,
    RasterRef,
    Stack,
    orbit_of,
    scene_offset,
)

__all__ = ["Acquisition", "acquisitions", "prioritise", "gdal_env", "object_path", "finest_resolution",
           "build_inputs"]

BLOCK = 512  # px: the VRTs' block size, which sets the compositor's windows
CELLS = 512  # cells a side (at most) of the coarse grid on which a tile's part of the area is checked covered


@dataclass(frozen=True)
class Acquisition:
    """One pass of the satellite: the scenes of one date and relative orbit, one per tile."""

    date: str
    orbit: int | None
    scenes: tuple

    @property
    def baseline(self) -> str | None:
        return next((s.baseline for s in self.scenes if s.baseline), None)


def acquisitions(scenes) -> list[Acquisition]:
    """Scenes of several tiles grouped by acquisition (date + relative orbit from the product name), by date."""
    groups: dict[tuple, list] = {}
    for s in scenes:
        groups.setdefault((s.date.isoformat(), orbit_of(s.product_name)), []).append(s)
    return [Acquisition(d, o, tuple(g)) for (d, o), g in sorted(groups.items(), key=lambda kv: (kv[0][0],
                                                                                                  kv[0][1] or 0))]


def prioritise(acqs: list[Acquisition], grid: OutputGrid, region: dict) -> list[Acquisition]:
    """Each acquisition's scenes in the order its mosaic takes them, without those it does not need.

    A pixel of an acquisition comes from its first scene with data there: first the tiles in the grid's own
    UTM zone (their pixels copied, not resampled), then the others; among those, the tile whose centre is
    nearest the grid's. Where the first has no data (its footprint, an orbit edge) the next fills in. A scene
    whose data under ``region`` (the area's polygon in the grid's CRS) the scenes before it cover entirely, or
    that has no data there, adds no pixel: it is left out, so nothing of it is fetched or read. Coverage is
    judged from footprints (the scene's data geometry, else the whole tile where its data coverage is 100 %) on
    a grid of at most CELLS x CELLS cells, conservatively: a cell at the edge of a cover counts as not covered."""
    epsg = _epsg(grid.crs)
    cx, cy = _grid_centre(grid)
    cells = _Cells(grid)
    need_area = cells.touched(region)
    out = []
    for acq in acqs:
        ranked = sorted(acq.scenes, key=lambda s: _rank(s, epsg, grid.crs, cx, cy))
        kept, covered = [], ~need_area  # outside the area: nothing to give
        for scene in ranked:
            need = cells.touched(_data_footprint(scene, grid.crs, known_only=False))
            if not (need & ~covered).any():
                continue  # everything it has under the area is already someone else's pixel, or there is none
            kept.append(scene)
            valid = _data_footprint(scene, grid.crs, known_only=True)
            if valid is not None:
                covered = covered | cells.inside(valid)
        out.append(Acquisition(acq.date, acq.orbit, tuple(kept)))
    return out


def _epsg(crs: str) -> int | None:
    from rasterio.crs import CRS

    return CRS.from_string(crs).to_epsg()


def _grid_centre(grid: OutputGrid) -> tuple[float, float]:
    a, _b, c, _d, e, f = grid.transform
    return c + a * grid.width / 2, f + e * grid.height / 2


def _rank(scene, epsg: int | None, crs: str, cx: float, cy: float) -> tuple:
    """(not in the grid's zone, distance from the tile's centre to the grid's, tile): smaller ranks first."""
    from rasterio.warp import transform

    f = tiles.footprint(scene.tile)
    (x,), (y,) = transform("EPSG:4326", crs, [f.centre[0]], [f.centre[1]])
    return f.epsg != epsg, math.hypot(x - cx, y - cy), scene.tile


def _data_footprint(scene, crs: str, known_only: bool) -> dict | None:
    """Where the scene has data, in ``crs``: its data geometry (in its ``crs`` member, else the tile's zone),
    else the tile's square where its data coverage is 100 %; else (``known_only``) None, or the tile's square,
    which its data cannot reach past."""
    tile = tiles.footprint(scene.tile)
    geom = scene.data_geometry
    src = _geometry_crs(geom, tile.epsg) if isinstance(geom, dict) else None
    if src is not None and geom.get("type") in ("Polygon", "MultiPolygon"):
        return reproject(geom, src, crs)
    if known_only and (scene.data_coverage is None or scene.data_coverage < 100):
        return None
    left, bottom, right, top = tile.utm_bounds
    square = {"type": "Polygon", "coordinates": [[[left, bottom], [right, bottom], [right, top], [left, top],
                                                  [left, bottom]]]}
    return reproject(square, f"EPSG:{tile.epsg}", crs)


def _geometry_crs(geom: dict, epsg: int):
    """The CRS of a data geometry: its ``crs`` member (tileInfo.json's URN), else the tile's zone; None when
    the member names no CRS rasterio knows (the geometry is then not trusted)."""
    from rasterio.crs import CRS
    from rasterio.errors import CRSError

    name = ((geom.get("crs") or {}).get("properties") or {}).get("name")
    if not name:
        return CRS.from_epsg(epsg)
    try:
        return CRS.from_user_input(str(name))
    except (CRSError, ValueError):
        return None


class _Cells:
    """A coarse grid over the output grid (at most CELLS a side) on which footprints are rasterised."""

    def __init__(self, grid: OutputGrid):
        from affine import Affine

        a, b, c, d, e, f = grid.transform
        k = max(1, math.ceil(max(grid.width, grid.height) / CELLS))
        self.shape = (math.ceil(grid.height / k), math.ceil(grid.width / k))
        self.transform = Affine(a * k, b, c, d, e * k, f)

    def touched(self, geometry: dict):
        """Cells the geometry touches at all (all of them when it cannot be rasterised, e.g. projected out of
        bounds: wherever it is used, that errs on the side of fetching)."""
        import numpy as np
        from rasterio.features import rasterize

        try:
            return rasterize([geometry], self.shape, transform=self.transform, all_touched=True, dtype="uint8") > 0
        except ValueError:
            return np.ones(self.shape, bool)

    def inside(self, geometry: dict):
        """Cells wholly inside the geometry: their centre inside, and no edge of it through them."""
        from rasterio.features import rasterize

        centres = rasterize([geometry], self.shape, transform=self.transform, dtype="uint8") > 0
        polygons = geometry["coordinates"] if geometry["type"] == "MultiPolygon" else [geometry["coordinates"]]
        edges = {"type": "MultiLineString", "coordinates": [ring for poly in polygons for ring in poly]}
        return centres & ~self.touched(edges)


def gdal_env(source) -> dict:
    """GDAL options that let it read the source's objects through ``/vsis3/`` (a header or two; an area's tiles
    come through :mod:`s2desktop.core.fetch`): the endpoint and signing, no directory reads, and the same
    connect and stall time-outs and retries as the S3 client's."""
    from s2desktop.core.s3 import http_timeout, max_attempts

    timeout = http_timeout()
    env = {"GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR", "GDAL_HTTP_MAX_RETRY": str(max_attempts() - 1),
           "GDAL_HTTP_RETRY_DELAY": "0.5", "GDAL_HTTP_CONNECTTIMEOUT": str(int(min(10, timeout)) or 1),
           "GDAL_HTTP_LOW_SPEED_TIME": str(int(timeout) or 1), "GDAL_HTTP_LOW_SPEED_LIMIT": "1",
           "GDAL_INGESTED_BYTES_AT_OPEN": str(64 << 10)}
    if source.is_local:
        return env
    if source.unsigned:
        env["AWS_NO_SIGN_REQUEST"] = "YES"
    if source.requester_pays:
        env["AWS_REQUEST_PAYER"] = "requester"
    if source.region:
        env["AWS_REGION"] = source.region
    if source.profile:
        env["AWS_PROFILE"] = source.profile
    if source.endpoint_url:
        url = urlsplit(source.endpoint_url)
        env["AWS_S3_ENDPOINT"] = url.netloc or url.path
        env["AWS_HTTPS"] = "NO" if url.scheme == "http" else "YES"
        env["AWS_VIRTUAL_HOSTING"] = "FALSE"
    return env


def object_path(source, key: str) -> str:
    """The GDAL path of an object: the file of a local mirror (read in place), or /vsis3/bucket/key."""
    if source.is_local:
        return str(Path(source.root) / key)
    return f"/vsis3/{source.bucket}/{key}"


def finest_resolution(source, scenes, bands=RGB) -> float | None:
    """The finest pixel size of the scenes' finest band of ``bands`` (the red one of true colour), one scene per
    tile, from their headers only (e.g. 100 m for the demo archive): an area's default resolution."""
    from s2desktop.core.rasterinfo import finest_pixel_size

    band = finest(bands)
    one_per_tile = {s.tile: s for s in scenes if band in s.bands}
    paths = [object_path(source, s.bands[band]) for s in one_per_tile.values()]
    return finest_pixel_size(paths, gdal_env(source))


def build_inputs(acqs: list[Acquisition], grid: OutputGrid, locate, folder: Path,
                 masks: tuple[str, ...] = MASK_BANDS, origin: str | None = None, bands=RGB) -> Stack:
    """The area's stack of ``bands``: the warped mosaics of every acquisition and band (and its cloud mask, of
    the ``masks`` allowed (`stack.mask_bands_for`): its SCL when every scene has one, else its L1C cloud masks
    when every scene has one) written into ``folder``, each acquisition's scenes in the order given (see
    :func:`prioritise`: the first with data at a pixel gives it). ``locate(scene, band)`` is the GDAL path of that
    band's raster (a fetched window, a local COG, a downloaded JPEG 2000), or None where the scene has nothing
    under the area. An acquisition without one of the bands under the area is left out. ``origin`` says how the
    scenes' metadata came with their rasters (the OFFSET_SOURCES tag: 'streamed', 'local mirror metadata', ...)."""
    bands = tuple(bands)
    acqs = [a for a in acqs if all(any(locate(s, b) for s in a.scenes) for b in bands)]
    if not acqs:
        raise NotFoundError("none of the scenes has data under the area" + (
            "" if bands == RGB else f" in each of {', '.join(bands)}"))
    obs = []
    for i, a in enumerate(acqs):
        stem = f"{i:03d}_{a.date}"  # the scratch folder's own names: the facts travel in the observation
        rasters = {b: RasterRef(_mosaic(a, b, grid, folder, locate, stem), b) for b in bands}
        mask = _mask(a, grid, folder, locate, stem, masks, bands[0])
        offset, source = scene_offset(a.baseline)
        source = origin if origin and offset_for_baseline(a.baseline) is not None else source
        obs.append(Observation(
            date=a.date, rasters=rasters, mask=mask, offset=offset,
            offset_source=source, baseline=a.baseline, orbit=a.orbit, scenes=tuple(s.scene_id for s in a.scenes),
            tiles=tuple(s.tile for s in a.scenes), provenance=_provenance(a, locate, mask, bands)))
    return Stack(tuple(obs), bands, grid)


def resampling_tags(acqs: list[Acquisition], locate, bands, grid: OutputGrid) -> dict[str, str]:
    """BAND_RESAMPLING, for the bands whose pixels are coarser than the grid's (20 m, 60 m on 10 m), from the
    header of one raster of each band."""
    import rasterio

    coarse = []
    for b in bands:
        path = next((p for a in acqs for s in a.scenes if (p := locate(s, b))), None)
        if path is not None:
            with rasterio.open(path) as ds:
                if abs(ds.transform.a) > grid.resolution * (1 + 1e-6):
                    coarse.append(b)
    if not coarse:
        return {}
    return {"BAND_RESAMPLING": f"{', '.join(coarse)} upsampled to the {grid.resolution:g} m grid by {RESAMPLING} "
                               "(where the grid is in the tile's zone and on its pixel edges; else bilinear)"}


def _mask(acq: Acquisition, grid: OutputGrid, folder: Path, locate, stem: str, allowed,
          ref: str = "B04") -> RasterRef | None:
    """The acquisition's cloud mask on the grid: its SCL mosaic, else its L1C cloud masks drawn onto the grid;
    None when not every scene has one (composited unmasked: the plan said so)."""
    if MASK_BAND in allowed and all(MASK_BAND in s.bands for s in acq.scenes):
        scl = _mosaic(acq, MASK_BAND, grid, folder, locate, stem)
        return RasterRef(scl, MASK_BAND) if scl else None
    qi = [next((b for b in QI_BANDS if b in allowed and b in s.bands), None) for s in acq.scenes]
    if not all(qi):
        return None
    # the scenes with data under the area (in the first band) and their mask on disk; a tile of the acquisition
    # seen beside them is the same pass: its clouds are theirs, the union is drawn
    parts = [(s, b, p) for s, b in zip(acq.scenes, qi) if locate(s, ref) and (p := locate(s, b))]
    if not parts:
        return None
    return RasterRef(_qi_mask(parts, grid, folder / f"{stem}_QI.tif", locate, ref), QI_BANDS[0])


def _qi_mask(parts, grid: OutputGrid, path: Path, locate, ref: str = "B04") -> str:
    """One uint8 GeoTIFF on the grid of the scenes' L1C cloud masks (opaque clouds | cirrus bits; 0: clear),
    drawn in strips of rows: [(scene, band, path)]; a GML's polygons are in its tile's CRS, the band's."""
    import rasterio
    from affine import Affine
    from rasterio.warp import transform_geom
    from rasterio.windows import Window

    from s2desktop.core import qimasks

    sources = []
    for scene, band, name in parts:
        if band == "MSKCLASSI":
            sources.append((name, None))
            continue
        with rasterio.open(locate(scene, ref)) as ds:
            crs = ds.crs
        polygons = qimasks.parse_cloud_gml(Path(name).read_bytes(), name)
        sources.append((name, [(k, transform_geom(crs, grid.crs, g)) for k, g in polygons]))
    transform = Affine(*grid.transform)
    profile = dict(driver="GTiff", width=grid.width, height=grid.height, count=1, dtype="uint8", crs=grid.crs,
                   transform=transform, tiled=True, blockxsize=BLOCK, blockysize=BLOCK, compress="deflate")
    with rasterio.open(path, "w", **profile) as dst:
        for row in range(0, grid.height, 4 * BLOCK):
            shape = (min(4 * BLOCK, grid.height - row), grid.width)
            strip = transform * Affine.translation(0, row)
            bits = np.zeros(shape, np.uint8)
            for name, polygons in sources:
                bits |= (qimasks.read_classi(name, shape, strip, grid.crs) if polygons is None
                         else qimasks.rasterise_polygons(polygons, shape, strip))
            dst.write(bits & (qimasks.OPAQUE | qimasks.CIRRUS), 1, window=Window(0, row, grid.width, shape[0]))
    return str(path)


def _provenance(acq: Acquisition, locate, mask: RasterRef | None, bands=RGB) -> tuple[Provenance, ...]:
    """The objects an acquisition's rasters read: key, ETag and size from the search's listing."""
    bands = tuple(bands) + ((MASK_BAND,) if mask is not None and mask.band == MASK_BAND else
                   QI_BANDS if mask is not None else ())
    out = []
    for b in bands:
        for s in acq.scenes:
            key = (s.bands or {}).get(b)
            if key and locate(s, b):
                size, etag = (s.objects or {}).get(key) or (None, None)
                out.append(Provenance(b, key=key, etag=etag, size=size))
    return tuple(out)


def _mosaic(acq: Acquisition, band: str, grid: OutputGrid, folder: Path, locate, stem: str) -> str | None:
    """One VRT of ``band`` of the acquisition on the grid (``{stem}_{band}.vrt``): the tile's warped VRT, or a
    mosaic of them."""
    stem = f"{stem}_{band}"
    scenes = [(s, name) for s in acq.scenes if (name := locate(s, band))]
    if len(scenes) == 1:
        return _warped(scenes[0][1], band, grid, folder / f"{stem}.vrt")
    parts = [_warped(name, band, grid, folder / f"{stem}.{s.tile}.part.vrt") for s, name in scenes]
    if not parts:
        return None
    path = folder / f"{stem}.vrt"
    path.write_text(_mosaic_xml(parts, grid), encoding="utf-8")
    return str(path)


def _warped(name: str, band: str, grid: OutputGrid, path: Path) -> str:
    """A VRTWarpedDataset of raster ``name`` on the grid, from the overview level that matches its resolution.
    A VRT (the rows of a fetched window, `core.arrivals`) is already at its level: its overviews, which GDAL
    would look for in its first source, are not asked for -- that source may not have arrived yet, and GDAL
    remembers a source it failed to open."""
    import rasterio
    from rasterio.enums import Resampling
    from rasterio.errors import RasterioIOError

    try:
        with rasterio.open(name) as full:
            level = None if full.driver == "VRT" else overview_level(full, grid.resolution)
            exact = band != "SCL" and level is None and _within_pixels(full, grid)
            resampling = Resampling.nearest if band == "SCL" or exact else Resampling.bilinear
            if level is None:  # the full resolution: warp the dataset already open
                doc = _warped_xml(full, grid, resampling)
        if level is not None:  # an overview level, opened as a dataset of its own (georeferenced)
            with rasterio.open(f"vrt://{name}?ovr={level}") as src:
                doc = _warped_xml(src, grid, resampling)
    except RasterioIOError as exc:
        raise RasterError(f"{name}: cannot read ({str(exc).splitlines()[0]})") from None
    doc = re.sub(r"<BlockXSize>\d+</BlockXSize>", f"<BlockXSize>{BLOCK}</BlockXSize>", doc)
    doc = re.sub(r"<BlockYSize>\d+</BlockYSize>", f"<BlockYSize>{BLOCK}</BlockYSize>", doc)
    path.write_text(doc, encoding="utf-8")
    return str(path)


def _warped_xml(src, grid: OutputGrid, resampling) -> str:
    """GDAL's own XML of a warped VRT of ``src`` on the grid (nodata 0 in and out)."""
    from affine import Affine
    from rasterio.vrt import WarpedVRT

    with WarpedVRT(src, crs=grid.crs, transform=Affine(*grid.transform), width=grid.width, height=grid.height,
                   nodata=0, src_nodata=0, resampling=resampling) as vrt:
        return vrt.tags(ns="xml:VRT")["xml:VRT"]


def _within_pixels(ds, grid: OutputGrid) -> bool:
    """Whether each of the grid's pixels lies within one of the source's: same CRS, the source's pixel a whole
    number of the grid's (the same, or a 20 m / 60 m band on a 10 m grid), the grid's edges a whole number of its
    pixels from the source's. Nearest neighbour then copies (or repeats) the values unchanged."""
    res = grid.resolution
    ratio = abs(ds.transform.a) / res
    if ds.crs is None or ds.crs.to_string() != grid.crs or not (
            ratio > 1 - 1e-6 and math.isclose(ratio, round(ratio), abs_tol=1e-6)):
        return False
    dx, dy = (grid.transform[2] - ds.transform.c) / res, (grid.transform[5] - ds.transform.f) / res
    return math.isclose(dx, round(dx), abs_tol=1e-6) and math.isclose(dy, round(dy), abs_tol=1e-6)


def _mosaic_xml(parts: list[str], grid: OutputGrid) -> str:
    """A VRT on the grid whose pixel is the first part's with data (nodata 0 lets the next one through)."""
    from rasterio.crs import CRS

    a, b, c, d, e, f = grid.transform
    w, h = grid.width, grid.height
    sources = "".join(
        f'    <ComplexSource><SourceFilename relativeToVRT="0">{xml.escape(p)}</SourceFilename>'
        f'<SourceBand>1</SourceBand><SrcRect xOff="0" yOff="0" xSize="{w}" ySize="{h}"/>'
        f'<DstRect xOff="0" yOff="0" xSize="{w}" ySize="{h}"/><NODATA>0</NODATA></ComplexSource>\n'
        for p in reversed(parts))  # later sources are drawn over earlier ones: the first part wins
    return (f'<VRTDataset rasterXSize="{w}" rasterYSize="{h}">\n'
            f"  <SRS>{xml.escape(CRS.from_string(grid.crs).to_wkt())}</SRS>\n"
            f"  <GeoTransform>{c!r}, {a!r}, {b!r}, {f!r}, {d!r}, {e!r}</GeoTransform>\n"
            f'  <VRTRasterBand dataType="UInt16" band="1" blockXSize="{BLOCK}" blockYSize="{BLOCK}">\n'
            f"    <NoDataValue>0</NoDataValue>\n{sources}  </VRTRasterBand>\n</VRTDataset>\n")
