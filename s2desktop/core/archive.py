"""Write a real Sentinel-2 scene folder in one of the AWS bucket layouts under a local root.

The key patterns and file names come from :mod:`s2desktop.core.layouts`, which the search reads with.

The test fixtures (seeding the local S3 server) and the built-in demo archive both use :func:`write_scene`, so
everything downstream (search, download, compositing) reads files shaped exactly like the buckets':

- ``l1c``:  ``tiles/{zone}/{band}/{sq}/{yyyy}/{m}/{d}/{seq}/B04.jp2`` + ``tileInfo.json``, ``productInfo.json``,
  ``preview.jpg``, and when given the scene's own cloud mask in ``qi/`` (:func:`write_qi_mask`:
  ``MSK_CLASSI_B00.jp2`` from baseline 04.00, ``MSK_CLOUDS_B00.gml`` polygons before)
- ``l2a``:  same folder; bands in ``R10m/`` (B02, B03, B04, B08), ``R20m/`` (B05-B07, B8A, B11, B12, SCL) and
  ``R60m/`` (B01, B09); quick-look ``qi/L2A_PVI.jp2``
- ``cogs``: ``sentinel-s2-l2a-cogs/{zone}/{band}/{sq}/{yyyy}/{m}/S2B_{tile}_{yyyymmdd}_{seq}_L2A/B04.tif`` +
  ``tileinfo_metadata.json``, the STAC item ``{id}.json`` and ``thumbnail.jpg``

Band files are real rasters: lossless JPEG 2000 (OpenJPEG, reversible 5/3 wavelet, 1024 px code blocks/tiles
like ESA's when the image is large, NBITS=15 when the values fit) or Cloud-Optimised GeoTIFFs (DEFLATE, nodata 0).
JP2 can only be written through CreateCopy, so each band is built in a MEM dataset and copied. Months and days
are not zero-padded, as in the buckets.
"""

from __future__ import annotations

import datetime as _dt
import io
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
import rasterio.features
import rasterio.shutil
from affine import Affine
from rasterio.crs import CRS

from s2desktop.core import layouts
from s2desktop.core.baseline import baseline_code, offset_for_baseline
from s2desktop.core.dates import parse_date
from s2desktop.core.errors import InvalidInputError, OutputError
from s2desktop.core.fsutil import atomic_path, write_bytes_atomic, write_json_atomic
from s2desktop.core.tiles import parse_tile, split_tile

__all__ = ["write_scene", "write_qi_mask", "scene_prefix", "product_name", "platform_for"]

_PREVIEW_SIZE = 343  # ESA's quick-look is 343 px square


def platform_for(date: _dt.date) -> str:
    """Deterministic satellite letter for synthetic scenes (the two satellites alternate in reality)."""
    return "S2A" if date.toordinal() % 2 == 0 else "S2B"


def product_name(layout: str, tile: str, date: _dt.date, sequence: int = 0, baseline: str = "02.06") -> str:
    """``S2B_MSIL1C_20230714T100559_N0509_R022_T33UUP_20230714T121150``-style name for a synthetic scene."""
    level = "MSIL1C" if layout == "l1c" else "MSIL2A"
    sensing = _dt.datetime.combine(date, _dt.time(10, 5, 59)) + _dt.timedelta(minutes=7 * sequence)
    generation = sensing + _dt.timedelta(hours=2, minutes=5, seconds=51)
    orbit = (date.toordinal() * 7) % 143 + 1
    return (
        f"{platform_for(date)}_{level}_{sensing:%Y%m%dT%H%M%S}_{baseline_code(baseline)}_R{orbit:03d}"
        f"_T{tile}_{generation:%Y%m%dT%H%M%S}"
    )


def scene_prefix(layout: str, tile: str, date: _dt.date, sequence: int = 0) -> str:
    """The scene folder's key prefix in the bucket (no trailing slash), as tileInfo.json's ``path``."""
    return layouts.scene_prefix(layout, tile, date, sequence, platform_for(date))


def _crs_urn(epsg: int | None) -> dict:
    return {"type": "name", "properties": {"name": f"urn:ogc:def:crs:EPSG:8.8.1:{epsg}"}}


def _write_raster(path: Path, array: np.ndarray, *, crs: CRS, transform: Affine, fmt: str,
                  resampling: str = "AVERAGE") -> None:
    """One band to ``path``: lossless JP2 or COG (overviews by ``resampling``), through a MEM dataset and
    CreateCopy."""
    height, width = array.shape
    path.parent.mkdir(parents=True, exist_ok=True)
    dtype = array.dtype.name
    with rasterio.Env(GDAL_PAM_ENABLED="NO"):  # no .aux.xml sidecars in the bucket layout
        with rasterio.MemoryFile() as mem:
            with mem.open(
                driver="GTiff", width=width, height=height, count=1, dtype=dtype, crs=crs, transform=transform,
                nodata=0 if fmt == "cog" else None,
            ) as ds:
                ds.write(array, 1)
            driver, opts = _creation_options(fmt, array, resampling)
            with mem.open() as src, atomic_path(path) as tmp:
                rasterio.shutil.copy(src, str(tmp), driver=driver, **opts)


def _creation_options(fmt: str, array: np.ndarray, resampling: str = "AVERAGE") -> tuple[str, dict]:
    """ESA-like lossless JP2 (1024 px blocks when large, NBITS=15 when the values fit) or a DEFLATE COG with
    overviews by ``resampling``."""
    height, width = array.shape
    if fmt == "jp2":
        # CODEC: the temp name's extension (.part) would otherwise make GDAL write a bare codestream, no georeference
        opts = {"CODEC": "JP2", "QUALITY": "100", "REVERSIBLE": "YES", "YCBCR420": "NO"}
        if max(width, height) > 1024:
            opts.update(BLOCKXSIZE="1024", BLOCKYSIZE="1024")
        if array.dtype == np.uint16 and array.size and int(array.max()) < 32768:
            opts["NBITS"] = "15"
        return "JP2OpenJPEG", opts
    block = 1024 if max(width, height) > 1024 else 512
    return "COG", {"COMPRESS": "DEFLATE", "PREDICTOR": "2", "BLOCKSIZE": str(block), "OVERVIEWS": "AUTO",
                   "RESAMPLING": resampling}


def _write_rgb_jp2(path: Path, rgb: np.ndarray, crs: CRS, transform: Affine) -> None:
    _write_jp2_bands(path, rgb, crs, transform)


def _write_jp2_bands(path: Path, data: np.ndarray, crs: CRS, transform: Affine) -> None:
    """(count, h, w) uint8 to a lossless multi-band JP2 (1024 px blocks when large), through MEM + CreateCopy."""
    path.parent.mkdir(parents=True, exist_ok=True)
    bands, height, width = data.shape
    opts = {"CODEC": "JP2", "QUALITY": "100", "REVERSIBLE": "YES"}
    if max(width, height) > 1024:
        opts.update(BLOCKXSIZE="1024", BLOCKYSIZE="1024")
    with rasterio.Env(GDAL_PAM_ENABLED="NO"):
        with rasterio.MemoryFile() as mem:
            with mem.open(driver="GTiff", width=width, height=height, count=bands, dtype="uint8",
                          crs=crs, transform=transform) as ds:
                ds.write(data)
            with mem.open() as src, atomic_path(path) as tmp:
                rasterio.shutil.copy(src, str(tmp), driver="JP2OpenJPEG", **opts)


# --- Level-1C cloud masks (qi/) -----------------------------------------------------------------------------------

_QI_CLASSI, _QI_GML = list(layouts.QI_MASKS["l1c"])  # 'qi/MSK_CLASSI_B00.jp2', 'qi/MSK_CLOUDS_B00.gml'


def write_qi_mask(folder, baseline: str, classes: np.ndarray, *, crs, transform) -> str:
    """Write a Level-1C scene's own cloud mask into its ``folder``, in the format its processing baseline calls
    for; return the path written, relative to the folder.

    ``classes`` is a 2-D uint8 array of :mod:`s2desktop.core.qimasks` bits (OPAQUE | CIRRUS | SNOW) on the grid
    of ``transform`` (real products: 60 m). From baseline 04.00: ``qi/MSK_CLASSI_B00.jp2``, one band per class
    (opaque clouds, cirrus, snow and ice; 1 where it is). Before: ``qi/MSK_CLOUDS_B00.gml``, an ``eop:Mask`` of
    OPAQUE and CIRRUS polygons in the tile's CRS traced along the pixel edges, as ESA's are (snow has no place
    there); a mask without clouds is a document without members.
    """
    from s2desktop.core.qimasks import CIRRUS, OPAQUE, SNOW

    classes = np.asarray(classes)
    if classes.ndim != 2:
        raise InvalidInputError(f"a cloud mask must be a 2-D array, got shape {classes.shape}")
    folder = Path(folder)
    crs = CRS.from_user_input(crs)
    transform = transform if isinstance(transform, Affine) else Affine(*transform)
    if baseline_code(baseline) >= "N0400":  # the raster from baseline 04.00 on ('N0206' < 'N0400' < 'N0509')
        bits = np.stack([(classes & bit) > 0 for bit in (OPAQUE, CIRRUS, SNOW)]).astype(np.uint8)
        _write_jp2_bands(folder / _QI_CLASSI, bits, crs, transform)
        return _QI_CLASSI
    features = [(label, (classes & bit) > 0) for label, bit in (("OPAQUE", OPAQUE), ("CIRRUS", CIRRUS))]
    (folder / _QI_GML).parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(folder / _QI_GML, _cloud_gml(features, transform, crs.to_epsg(), classes.shape))
    return _QI_GML


def _cloud_gml(features, transform: Affine, epsg: int | None, shape) -> bytes:
    """``MSK_CLOUDS_B00.gml``: one ``eop:MaskFeature`` per polygon of each (label, bool mask), pixel-edge rings."""
    left, bottom, right, top = rasterio.transform.array_bounds(shape[0], shape[1], transform)
    srs = f"urn:ogc:def:crs:EPSG:8.7:{epsg}"
    members = []
    for label, mask in features:
        if not mask.any():
            continue
        polygons = rasterio.features.shapes(mask.astype(np.uint8), mask=mask, transform=transform, connectivity=4)
        for n, (geom, _value) in enumerate(polygons):
            rings = [f'<gml:{"exterior" if i == 0 else "interior"}><gml:LinearRing><gml:posList srsDimension="2">'
                     f'{_pos_list(ring)}</gml:posList></gml:LinearRing></gml:{"exterior" if i == 0 else "interior"}>'
                     for i, ring in enumerate(geom["coordinates"])]
            members.append(
                f'<eop:MaskFeature gml:id="{label}.{n}"><eop:maskType codeSpace="urn:gs2:S2PDGS:maskType">{label}'
                f'</eop:maskType><eop:extentOf><gml:Polygon gml:id="{label}.{n}_Polygon">{"".join(rings)}'
                '</gml:Polygon></eop:extentOf></eop:MaskFeature>\n')
    body = f"<eop:maskMembers>\n{''.join(members)}</eop:maskMembers>\n" if members else ""
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<eop:Mask xmlns:eop="http://www.opengis.net/eop/2.0" '
            'xmlns:gml="http://www.opengis.net/gml/3.2" gml:id="MSK_CLOUDS_B00">\n'
            f'<gml:boundedBy><gml:Envelope srsName="{srs}"><gml:lowerCorner>{_num(left)} {_num(bottom)}'
            f'</gml:lowerCorner><gml:upperCorner>{_num(right)} {_num(top)}</gml:upperCorner></gml:Envelope>'
            f'</gml:boundedBy>\n{body}</eop:Mask>\n').encode("utf-8")


def _pos_list(ring) -> str:
    return " ".join(f"{_num(x)} {_num(y)}" for x, y in ring)


def _num(v: float) -> str:
    return f"{float(v):.3f}".rstrip("0").rstrip(".")


def _decimate(array: np.ndarray, size: int) -> np.ndarray:
    h, w = array.shape[-2:]
    step = max(1, int(np.ceil(max(h, w) / size)))
    return array[..., ::step, ::step]


def _default_preview(bands: dict[str, np.ndarray], offset: int) -> np.ndarray | None:
    """True colour quick-look (3, h, w) uint8 from B04/B03/B02: reflectance x 2.5 (DN 0..4000 -> 0..255)."""
    order = [b for b in ("B04", "B03", "B02") if b in bands]
    if not order:
        order = [next(iter(bands))] if bands else []
    if not order:
        return None
    chans = []
    for name in (order * 3)[:3] if len(order) < 3 else order:
        arr = _decimate(np.asarray(bands[name]), _PREVIEW_SIZE).astype(np.float32)
        valid = arr > 0
        val = np.clip((arr + offset) / 4000.0 * 255.0, 0, 255)
        chans.append(np.where(valid, val, 0).astype(np.uint8))
    shape = min(c.shape for c in chans)
    return np.stack([c[: shape[0], : shape[1]] for c in chans])


def _jpeg_bytes(rgb: np.ndarray) -> bytes:
    from PIL import Image

    if rgb.ndim == 3 and rgb.shape[0] in (1, 3) and rgb.shape[-1] not in (1, 3):
        rgb = np.moveaxis(rgb, 0, -1)
    elif rgb.ndim == 3 and rgb.shape[0] == 3 and rgb.shape[-1] == 3:
        rgb = np.moveaxis(rgb, 0, -1)  # (3, h, w) is our convention when ambiguous
    if rgb.ndim == 3 and rgb.shape[-1] == 1:
        rgb = rgb[..., 0]
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb.astype(np.uint8))).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def _data_geometry(mask: np.ndarray, transform: Affine, epsg: int | None, ref_bounds) -> dict:
    """GeoJSON polygon (UTM) of where the tile holds data, like tileInfo.json's ``tileDataGeometry``."""
    left, bottom, right, top = ref_bounds
    if mask.all() or not mask.any():
        ring = [[left + 1, top - 1], [right - 1, top - 1], [right - 1, bottom + 1], [left + 1, bottom + 1]]
    else:
        best, best_area = None, -1.0
        for geom, value in rasterio.features.shapes(mask.astype(np.uint8), mask=mask, transform=transform):
            if value != 1:
                continue
            ext = geom["coordinates"][0]
            xs, ys = np.asarray(ext).T
            area = abs(float(np.dot(xs, np.roll(ys, 1)) - np.dot(ys, np.roll(xs, 1)))) / 2
            if area > best_area:
                best, best_area = ext, area
        ring = [[float(x), float(y)] for x, y in best[:-1]]
    ring = ring + [ring[0]]
    return {"type": "Polygon", "crs": _crs_urn(epsg), "coordinates": [ring]}


@dataclass(frozen=True)
class _Place:
    """Where a scene goes: its tile parts, date, sequence, CRS and folder (created)."""

    layout: str
    tile: str
    zone: int
    lat_band: str
    square: str
    date: _dt.date
    sequence: int
    crs: CRS
    epsg: int | None
    prefix: str
    folder: Path


@dataclass(frozen=True)
class _Grid:
    """The finest band's pixel grid; coarser arrays get a transform scaled to cover the same extent."""

    transform: Affine
    ref_name: str
    ref_w: int
    ref_h: int
    bounds: tuple  # (left, bottom, right, top) of the finest band

    def transform_for(self, shape) -> Affine:
        h, w = shape
        return self.transform @ Affine.scale(self.ref_w / w, self.ref_h / h)


def write_scene(
    root,
    layout: str,
    tile: str,
    date,
    sequence: int,
    bands: dict[str, np.ndarray],
    *,
    crs,
    transform,
    baseline: str = "02.06",
    cloud_cover: float = 0.0,
    data_coverage: float = 100.0,
    scl: np.ndarray | None = None,
    preview_rgb: np.ndarray | None = None,
    data_geometry: dict | None = None,
    qi_mask: np.ndarray | None = None,
) -> str:
    """Write one scene folder under ``root`` in the bucket ``layout``; return its key prefix (no trailing slash).

    ``bands`` maps band names (``'B04'``) to 2-D uint16 arrays. ``transform`` is the affine of the finest array
    (the largest); coarser arrays (20 m, 60 m bands, SCL) get a transform scaled to cover the same extent.
    ``scl`` (uint8, L2A layouts only) goes to ``R20m/SCL.jp2`` / ``SCL.tif``; pass it at half the 10 m size for
    realism. ``preview_rgb`` is (3, h, w) or (h, w, 3) uint8; by default a true-colour quick-look is derived.
    ``data_geometry`` is a GeoJSON polygon in the tile's UTM CRS; by default the non-zero area of the finest band.
    ``qi_mask`` (``l1c`` only): the scene's own cloud mask, uint8 :mod:`s2desktop.core.qimasks` bits at any size
    over the tile (real products: 60 m), written by :func:`write_qi_mask` in its baseline's format.
    """
    layouts.check_layout(layout)
    if not bands:
        raise InvalidInputError("a scene needs at least one band")
    if qi_mask is not None and layout != "l1c":
        raise InvalidInputError(f"a Level-1C cloud mask (qi_mask) has no place in the {layout} layout")
    transform = transform if isinstance(transform, Affine) else Affine(*transform)
    place = _make_place(root, layout, tile, date, sequence, crs)
    arrays = {b.upper(): np.asarray(a) for b, a in bands.items()}
    grid = _finest_grid(arrays, transform)
    _write_bands(place, grid, arrays, scl)
    if qi_mask is not None:
        write_qi_mask(place.folder, baseline, qi_mask, crs=place.crs, transform=grid.transform_for(qi_mask.shape))

    name = product_name(layout, place.tile, place.date, place.sequence, baseline)
    offset = offset_for_baseline(baseline)
    if data_geometry is None:
        data_geometry = _default_data_geometry(arrays[grid.ref_name], grid, place.epsg)
    else:
        data_geometry = {**data_geometry, "crs": data_geometry.get("crs", _crs_urn(place.epsg))}
    tile_info, product_info = _scene_metadata(place, grid, name, baseline, cloud_cover, data_coverage,
                                              data_geometry)
    preview_rgb = _preview(preview_rgb, arrays, offset)
    if layout in ("l1c", "l2a"):
        _write_tiles_metadata(place, grid, tile_info, product_info, preview_rgb)
    else:
        _write_cog_metadata(place, grid, arrays, tile_info, name, baseline, cloud_cover, data_coverage,
                            scl is not None, preview_rgb)
    return place.prefix


def _make_place(root, layout: str, tile, date, sequence, crs) -> _Place:
    """The scene's validated facts and its folder, created (OutputError in one line when it cannot be)."""
    tile = parse_tile(tile)
    zone, lat_band, square = split_tile(tile)
    date = parse_date(date)
    sequence = int(sequence)
    crs = CRS.from_user_input(crs)
    prefix = scene_prefix(layout, tile, date, sequence)
    folder = Path(root) / prefix
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create {folder}: {exc.strerror or exc}") from exc
    return _Place(layout, tile, zone, lat_band, square, date, sequence, crs, crs.to_epsg(), prefix, folder)


def _finest_grid(arrays: dict[str, np.ndarray], transform: Affine) -> _Grid:
    ref_name = max(arrays, key=lambda b: arrays[b].shape[0] * arrays[b].shape[1])
    ref_h, ref_w = arrays[ref_name].shape
    ref_bounds = rasterio.transform.array_bounds(ref_h, ref_w, transform)  # (west, south, east, north)
    bounds = (ref_bounds[0], ref_bounds[1], ref_bounds[2], ref_bounds[3])
    return _Grid(transform, ref_name, ref_w, ref_h, bounds)


def _write_bands(place: _Place, grid: _Grid, arrays: dict[str, np.ndarray], scl: np.ndarray | None) -> None:
    """Each band (uint16) and, in the L2A layouts, the SCL, at their own resolution over the same extent."""
    layout, folder = place.layout, place.folder
    fmt = "cog" if layout == "cogs" else "jp2"
    for name, arr in arrays.items():
        if arr.ndim != 2:
            raise InvalidInputError(f"band {name} must be a 2-D array, got shape {arr.shape}")
        if arr.dtype != np.uint16:
            arr = arr.astype(np.uint16)
        _write_raster(folder / layouts.band_relpath(layout, name), arr, crs=place.crs,
                      transform=grid.transform_for(arr.shape), fmt=fmt)
    if scl is not None and layout in ("l2a", "cogs"):
        scl = np.asarray(scl).astype(np.uint8)
        # classes, not measurements: the overviews pick a class (NEAREST), as the real sentinel-cogs SCL's do; an
        # average of classes 4 and 8 would be 6, a class that is not there
        _write_raster(folder / layouts.band_relpath(layout, "SCL"), scl, crs=place.crs,
                      transform=grid.transform_for(scl.shape), fmt=fmt, resampling="NEAREST")


def _default_data_geometry(ref: np.ndarray, grid: _Grid, epsg: int | None) -> dict:
    """The non-zero area of the finest band, traced on a decimated copy."""
    small = _decimate(ref, 512)
    return _data_geometry(small > 0, grid.transform_for(small.shape), epsg, grid.bounds)


def _scene_metadata(place: _Place, grid: _Grid, name: str, baseline: str, cloud_cover: float,
                    data_coverage: float, data_geometry: dict) -> tuple[dict, dict]:
    """``tileInfo.json`` and ``productInfo.json`` as the buckets have them."""
    date, epsg = place.date, place.epsg
    left, bottom, right, top = grid.bounds
    sensing = _dt.datetime.strptime(name.split("_")[2], "%Y%m%dT%H%M%S")
    timestamp = sensing.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    product_path = f"products/{date.year}/{date.month}/{date.day}/{name}"
    level = "L1C" if place.layout == "l1c" else "L2A"
    generation = name.split("_")[-1]
    datastrip = {
        "id": f"{name[:3]}_OPER_MSI_{level}_DS_EPAE_{generation}_S{sensing:%Y%m%dT%H%M%S}_{baseline_code(baseline)[:3]}."
        f"{baseline_code(baseline)[3:]}",
        "path": f"{product_path}/datastrip/0",
    }
    tile_info = {
        "path": layouts.tiles_scene_prefix(place.tile, date, place.sequence),
        "timestamp": timestamp,
        "utmZone": place.zone,
        "latitudeBand": place.lat_band,
        "gridSquare": place.square,
        "datastrip": datastrip,
        "tileGeometry": {
            "type": "Polygon",
            "crs": _crs_urn(epsg),
            "coordinates": [[[left, top], [right, top], [right, bottom], [left, bottom], [left, top]]],
        },
        "tileDataGeometry": data_geometry,
        "tileOrigin": {"type": "Point", "crs": _crs_urn(epsg), "coordinates": [left, top]},
        "dataCoveragePercentage": round(float(data_coverage), 2),
        "cloudyPixelPercentage": round(float(cloud_cover), 2),
        "productName": name,
        "productPath": product_path,
    }
    product_info = {
        "name": name,
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, name)),
        "path": product_path,
        "timestamp": timestamp,
        "datatakeIdentifier": f"G{name[:3]}_{name.split('_')[2]}_{(date.toordinal() % 99999):06d}_{datastrip['id'][-6:]}",
        "sciHubIngestion": (sensing + _dt.timedelta(hours=5)).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "s3Ingestion": (sensing + _dt.timedelta(hours=5, minutes=24)).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "tiles": [{k: tile_info[k] for k in ("path", "timestamp", "utmZone", "latitudeBand", "gridSquare", "datastrip")}],
        "datastrips": [datastrip],
    }
    return tile_info, product_info


def _preview(preview_rgb, arrays: dict[str, np.ndarray], offset: int) -> np.ndarray | None:
    """The quick-look as (3, h, w) uint8: the caller's, or a true-colour one derived from the bands."""
    if preview_rgb is None:
        return _default_preview(arrays, offset)
    preview_rgb = np.asarray(preview_rgb, dtype=np.uint8)
    if preview_rgb.ndim == 3 and preview_rgb.shape[-1] == 3 and preview_rgb.shape[0] != 3:
        preview_rgb = np.moveaxis(preview_rgb, -1, 0)
    return preview_rgb


def _write_tiles_metadata(place: _Place, grid: _Grid, tile_info: dict, product_info: dict,
                          preview_rgb: np.ndarray | None) -> None:
    """L1C / L2A: tileInfo.json, productInfo.json and the quick-look (JPEG for L1C, georeferenced JP2 for L2A)."""
    layout, folder = place.layout, place.folder
    write_json_atomic(folder / layouts.METADATA_NAMES[layout], tile_info)
    write_json_atomic(folder / layouts.PRODUCT_INFO_NAME, product_info)
    if preview_rgb is None:
        return
    if layout == "l1c":
        write_bytes_atomic(folder / layouts.L1C_PREVIEW, _jpeg_bytes(preview_rgb))
    else:
        _write_rgb_jp2(folder / layouts.L2A_PREVIEW, preview_rgb, place.crs, grid.transform_for(preview_rgb.shape[-2:]))


def _write_cog_metadata(place: _Place, grid: _Grid, arrays: dict[str, np.ndarray], tile_info: dict, name: str,
                        baseline: str, cloud_cover: float, data_coverage: float, has_scl: bool,
                        preview_rgb: np.ndarray | None) -> None:
    """COGs: tileinfo_metadata.json, the thumbnail and the STAC item."""
    folder, prefix = place.folder, place.prefix
    write_json_atomic(folder / layouts.METADATA_NAMES[place.layout], tile_info)
    item_id = prefix.rsplit("/", 1)[-1]
    if preview_rgb is not None:
        write_bytes_atomic(folder / layouts.COG_THUMBNAIL, _jpeg_bytes(preview_rgb))
    timestamp = tile_info["timestamp"]
    write_json_atomic(folder / f"{item_id}.json", _stac_item(
        item_id, prefix, place.tile, place.zone, place.lat_band, place.square, place.date, place.sequence, name,
        baseline, cloud_cover, data_coverage, place.epsg, arrays, grid.transform, grid.ref_w, grid.ref_h, has_scl,
        preview_rgb is not None, timestamp))


def _stac_item(item_id, prefix, tile, zone, lat_band, square, date, sequence, name, baseline, cloud_cover,
               data_coverage, epsg, arrays, transform, ref_w, ref_h, has_scl, has_thumb, timestamp) -> dict:
    """A compact STAC item shaped like Element 84's (sentinel-cogs) with relative asset hrefs."""
    common = {"B01": "coastal", "B02": "blue", "B03": "green", "B04": "red", "B05": "rededge1",
              "B06": "rededge2", "B07": "rededge3", "B08": "nir", "B8A": "nir08", "B09": "nir09",
              "B11": "swir16", "B12": "swir22"}
    assets = {}
    for band, arr in arrays.items():
        h, w = arr.shape
        t = transform @ Affine.scale(ref_w / w, ref_h / h)
        assets[common.get(band, band.lower())] = {
            "href": f"./{band}.tif",
            "type": "image/tiff; application=geotiff; profile=cloud-optimized",
            "title": band,
            "proj:shape": [h, w],
            "proj:transform": [t.a, t.b, t.c, t.d, t.e, t.f],
            "raster:bands": [{"nodata": 0, "data_type": "uint16", "scale": 0.0001,
                              "offset": offset_for_baseline(baseline) / 10000}],
            "roles": ["data", "reflectance"],
        }
    if has_scl:
        assets["scl"] = {"href": "./SCL.tif", "type": "image/tiff; application=geotiff; profile=cloud-optimized",
                         "roles": ["data"]}
    if has_thumb:
        assets["thumbnail"] = {"href": f"./{layouts.COG_THUMBNAIL}", "type": "image/jpeg", "roles": ["thumbnail"]}
    assets["tileinfo_metadata"] = {"href": f"./{layouts.METADATA_NAMES['cogs']}", "type": "application/json",
                                   "roles": ["metadata"]}
    return {
        "type": "Feature",
        "stac_version": "1.0.0",
        "id": item_id,
        "properties": {
            "datetime": timestamp.replace(".000Z", ".000000Z"),
            "platform": "sentinel-2a" if item_id.startswith("S2A") else "sentinel-2b",
            "constellation": "sentinel-2",
            "eo:cloud_cover": float(cloud_cover),
            "proj:epsg": epsg,
            "mgrs:utm_zone": zone,
            "mgrs:latitude_band": lat_band,
            "mgrs:grid_square": square,
            "grid:code": f"MGRS-{tile}",
            "s2:nodata_pixel_percentage": round(100.0 - float(data_coverage), 4),
            "s2:processing_baseline": baseline,
            "s2:product_uri": f"{name}.SAFE",
            "s2:sequence": str(sequence),
            "earthsearch:s3_path": f"s3://sentinel-cogs/{prefix}",
        },
        "geometry": None,
        "links": [],
        "assets": assets,
        "collection": "sentinel-2-l2a",
    }
