"""Composite inputs for an area: a :class:`~s2desktop.core.stack.Stack` of one observation per acquisition, whose
rasters are VRTs on the area's output grid (one per band).

For each acquisition (a date and an orbit, seen in one or more tiles) and each band, a GDAL VRT on the area's
grid is written to a scratch folder: one warped VRT per tile (``VRTWarpedDataset``, so tiles of another UTM zone
are reprojected on the fly) and, when the acquisition covers several tiles, a mosaic of them in which a pixel
takes the first tile that has data -- so an acquisition seen in two tiles is one observation, not two. What each
warped VRT reads is the caller's (``locate``): the window of a remote COG that :mod:`s2desktop.core.fetch` put
in the cache, a local COG mirror's file, or a downloaded JPEG 2000. A coarse grid reads the overview level that
matches (``vrt://...?ovr=n``) of a file that has overviews; fetched windows are already at that level.

Resampling: the scene classification (SCL) by nearest neighbour, always; reflectance by nearest neighbour where
output pixels coincide with the source's (same CRS, resolution and pixel edges: the values are copied
unchanged), else bilinear (nodata excluded).

Each observation carries its acquisition's facts (date, orbit, scenes, baseline and so the offset, the objects
read); the scratch folder holds only the VRTs.
"""


from __future__ import annotations

import math
import re
import xml.sax.saxutils as xml
from dataclasses import dataclass
from pathlib import Path

from s2desktop.core.areas import OutputGrid
from s2desktop.core.errors import NotFoundError, RasterError
from s2desktop.core.fetch import overview_level
from s2desktop.core.stack import MASK_BAND, RGB, Observation, Provenance, RasterRef, Stack, orbit_of, scene_offset

__all__ = ["Acquisition", "acquisitions", "object_path", "build_inputs"]

BLOCK = 512  # px: the VRTs' block size, which sets the compositor's windows


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


def object_path(source, key: str) -> str:
    """The file of an object of a local mirror (read in place)."""
    return str(Path(source.root) / key)


def build_inputs(acqs: list[Acquisition], grid: OutputGrid, locate, folder: Path, mask: bool = True) -> Stack:
    """The area's stack: the warped mosaics of every acquisition and band (and its SCL, when ``mask`` and every
    scene has one) written into ``folder``. ``locate(scene, band)`` is the GDAL path of that band's raster (a
    fetched window, a local COG, a downloaded JPEG 2000), or None where the scene has nothing under the area. An
    acquisition with no red under the area is left out."""
    acqs = [a for a in acqs if any(locate(s, "B04") for s in a.scenes)]
    if not acqs:
        raise NotFoundError("none of the scenes has data under the area")
    obs = []
    for i, a in enumerate(acqs):
        stem = f"{i:03d}_{a.date}"  # the scratch folder's own names: the facts travel in the observation
        rasters = {b: RasterRef(_mosaic(a, b, grid, folder, locate, stem), b) for b in RGB}
        scl = _mosaic(a, MASK_BAND, grid, folder, locate, stem) if mask and all(
            MASK_BAND in s.bands for s in a.scenes) else None
        offset, source = scene_offset(a.baseline)
        obs.append(Observation(
            date=a.date, rasters=rasters, mask=RasterRef(scl, MASK_BAND) if scl else None, offset=offset,
            offset_source=source, baseline=a.baseline, orbit=a.orbit, scenes=tuple(s.scene_id for s in a.scenes),
            tiles=tuple(s.tile for s in a.scenes), provenance=_provenance(a, locate, mask)))
    return Stack(tuple(obs), RGB, grid)


def _provenance(acq: Acquisition, locate, mask: bool) -> tuple[Provenance, ...]:
    """The objects an acquisition's rasters read: key, ETag and size from the search's listing."""
    bands = RGB + ((MASK_BAND,) if mask else ())
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
    """A VRTWarpedDataset of raster ``name`` on the grid, from the overview level that matches its resolution."""
    import rasterio
    from rasterio.enums import Resampling
    from rasterio.errors import RasterioIOError

    try:
        with rasterio.open(name) as full:
            level = overview_level(full, grid.resolution)
            exact = band != "SCL" and level is None and _aligned(full, grid)
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


def _aligned(ds, grid: OutputGrid) -> bool:
    """Whether the grid's pixels are the source's: same CRS, same resolution, edges a whole pixel apart."""
    res = grid.resolution
    if ds.crs is None or ds.crs.to_string() != grid.crs or not math.isclose(abs(ds.transform.a), res):
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
