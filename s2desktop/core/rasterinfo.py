"""Attributes of any raster GDAL opens, decimated reads for thumbnails, and the scene metadata of band files.

Files are opened by content, never by extension (some real `.jp2` files are GeoTIFFs). `read_overview` never
decodes full resolution: it reads with `out_shape`, which GDAL serves from overviews or, for JPEG 2000, from
reduced-resolution levels of the codestream.

Scene metadata (processing baseline, data footprint, tile, date) of a band file is looked up, in order:
the download's `{out_dir}/metadata/{scene_id}.json` (files named `{tile}_{YYYY-MM-DD}_{seq}_{band}.ext`), then
metadata beside the file in the bucket layouts (`tileInfo.json`, `productInfo.json`, `tileinfo_metadata.json`,
a STAC item, `metadata.xml`).
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from s2desktop.core import scenefiles
# baseline_of, offset_for_baseline and parse_band_filename are re-exported: composite and demo import them here
from s2desktop.core.baseline import NEW_BASELINE_OFFSET, baseline_of, offset_for_baseline
from s2desktop.core.errors import NotFoundError, RasterError
from s2desktop.core.scenefiles import parse_band_filename
from s2desktop.core.units import human_bytes

log = logging.getLogger(__name__)

__all__ = [
    "RasterInfo",
    "raster_info",
    "read_overview",
    "open_raster",
    "parse_band_filename",
    "scene_metadata",
    "baseline_of",
    "offset_for_baseline",
    "file_offset",
    "NEW_BASELINE_OFFSET",
]



# --- opening ---------------------------------------------------------------------------------------------------


def gdal_error_text(exc: BaseException, default: str = "read failed") -> str:
    """The first line of what GDAL reported for a rasterio error.

    rasterio raises reads as "Read failed. See previous exception for details." with GDAL's own message
    ("... IReadBlock failed at X offset 0, Y offset 1: TIFFReadEncodedTile() failed.") chained as the cause.
    """
    text = str(exc).strip()
    cause = exc.__cause__ or exc.__context__
    if cause is not None and (not text or "previous exception" in text):
        inner = str(cause.args[-1] if getattr(cause, "args", None) else cause).strip()
        text = inner or text
    return text.splitlines()[0] if text else default


def open_raster(path, *, no_overviews: bool = False):
    """rasterio.open with a one-line RasterError / NotFoundError naming the file.

    no_overviews: decimated reads decode full resolution and pick the nearest pixel, never an overview -- for
    class rasters (SCL), whose JPEG 2000 reduced resolutions are wavelet averages that invent classes.
    """
    import rasterio
    from rasterio.errors import RasterioIOError

    p = Path(path)
    if not str(path).startswith("/vsi") and not p.exists():  # a GDAL virtual path (/vsimem/, /vsis3/): GDAL says
        raise NotFoundError(f"{p}: no such file")
    if p.is_dir():
        raise RasterError(f"{p}: is a folder, not a raster")
    import warnings

    from rasterio.errors import NotGeoreferencedWarning

    try:
        with warnings.catch_warnings():
            # a picture without georeferencing (preview.jpg) is fine to look at; its info says "CRS: none"
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            return rasterio.open(p, **({"OVERVIEW_LEVEL": "NONE"} if no_overviews else {}))
    except RasterioIOError as exc:
        msg = str(exc).splitlines()[0] if str(exc) else "unreadable"
        if "not recognized" in msg or "supported file format" in msg:
            msg = "not a raster GDAL can read"
        raise RasterError(f"{p}: cannot open ({msg})") from None


# --- attributes ------------------------------------------------------------------------------------------------


@dataclass
class RasterInfo:
    path: str
    driver: str
    width: int
    height: int
    count: int
    dtypes: list[str]
    crs_epsg: int | None
    crs_wkt: str | None
    transform: list[float]  # a, b, c, d, e, f (rasterio Affine order)
    resolution: tuple[float, float]
    bounds: tuple[float, float, float, float]  # left, bottom, right, top in the CRS
    bounds_lonlat: tuple[float, float, float, float] | None
    nodata: float | None
    block_shapes: list[tuple[int, int]]
    compression: str | None
    overviews: list[list[int]]
    colorinterp: list[str]
    descriptions: list[str | None]
    tags: dict[str, str]
    band_tags: list[dict[str, str]]
    file_size: int
    image_structure: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for k in ("resolution", "bounds", "bounds_lonlat"):
            if d[k] is not None:
                d[k] = list(d[k])
        d["block_shapes"] = [list(b) for b in self.block_shapes]
        return d

    def summary(self) -> str:
        """Human-readable multi-line text for `s2desktop info`."""
        lines = [
            f"File:          {self.path} ({human_bytes(self.file_size)})",
            f"Driver:        {self.driver}",
            f"Size:          {self.width} x {self.height}, {self.count} band(s), {', '.join(self.dtypes)}",
            f"CRS:           {'EPSG:%d' % self.crs_epsg if self.crs_epsg else (self.crs_wkt or 'none')}",
            "Transform:     " + ", ".join(f"{v:.10g}" for v in self.transform),
            f"Resolution:    {self.resolution[0]:g} x {self.resolution[1]:g}",
            "Bounds:        " + ", ".join(f"{v:.3f}" for v in self.bounds) + " (left, bottom, right, top)",
        ]
        if self.bounds_lonlat:
            lines.append("Bounds lon/lat: " + ", ".join(f"{v:.6f}" for v in self.bounds_lonlat))
        lines += [
            f"Nodata:        {self.nodata if self.nodata is not None else 'none declared'}",
            f"Blocks:        {', '.join(f'{h}x{w}' for h, w in self.block_shapes)} (rows x cols)",
            f"Compression:   {self.compression or 'none'}",
            "Overviews:     " + ("; ".join(",".join(map(str, o)) or "none" for o in self.overviews)),
            f"Colour interp: {', '.join(self.colorinterp)}",
            "Descriptions:  " + ", ".join(d or "-" for d in self.descriptions),
        ]
        if self.tags:
            lines.append("Tags:")
            lines += [f"  {k}={v}" for k, v in sorted(self.tags.items())]
        if self.crs_wkt:
            lines.append("CRS WKT:       " + self.crs_wkt)
        return "\n".join(lines)


def _info_from_dataset(src, path: Path) -> RasterInfo:
    from rasterio.warp import transform_bounds

    crs = src.crs
    epsg = None
    wkt = None
    if crs is not None:
        try:
            epsg = crs.to_epsg()
        except Exception:  # pragma: no cover - exotic CRS
            epsg = None
        wkt = crs.to_wkt()
    lonlat = None
    if crs is not None:
        try:
            lonlat = tuple(float(v) for v in transform_bounds(crs, "EPSG:4326", *src.bounds, densify_pts=21))
        except Exception as exc:  # pragma: no cover
            log.debug("no lon/lat bounds for %s: %s", path, exc)
    structure = {k: str(v) for k, v in src.tags(ns="IMAGE_STRUCTURE").items()}
    compression = src.compression.value if src.compression is not None else structure.get("COMPRESSION")
    if compression is None and src.driver.startswith("JP2"):
        rev = structure.get("COMPRESSION_REVERSIBILITY")
        compression = "JPEG2000" + (f" ({rev.lower()})" if rev else "")
    return RasterInfo(
        path=str(path),
        driver=src.driver,
        width=src.width,
        height=src.height,
        count=src.count,
        dtypes=list(src.dtypes),
        crs_epsg=epsg,
        crs_wkt=wkt,
        transform=[float(v) for v in tuple(src.transform)[:6]],
        resolution=(float(src.res[0]), float(src.res[1])),
        bounds=tuple(float(v) for v in src.bounds),
        bounds_lonlat=lonlat,
        nodata=None if src.nodata is None else float(src.nodata),
        block_shapes=[tuple(int(v) for v in b) for b in src.block_shapes],
        compression=compression,
        overviews=[list(src.overviews(b)) for b in src.indexes],
        colorinterp=[ci.name for ci in src.colorinterp],
        descriptions=list(src.descriptions),
        tags={k: str(v) for k, v in src.tags().items()},
        band_tags=[{k: str(v) for k, v in src.tags(b).items()} for b in src.indexes],
        file_size=path.stat().st_size,
        image_structure=structure,
    )


def raster_info(path) -> RasterInfo:
    """All attributes of a raster (any format GDAL opens, detected by content)."""
    p = Path(path)
    with open_raster(p) as src:
        return _info_from_dataset(src, p)


def finest_pixel_size(paths, env: dict | None = None) -> float | None:
    """The finest pixel size among the rasters (in their CRS's units: metres for UTM), from their headers only
    (a remote file's first bytes); None for no paths. ``env``: GDAL options (e.g. streaming.gdal_env)."""
    import rasterio
    from rasterio.errors import RasterioIOError

    sizes = []
    with rasterio.Env(**(env or {})):
        for p in paths:
            try:
                with rasterio.open(p) as ds:
                    sizes.append(min(abs(ds.res[0]), abs(ds.res[1])))
            except RasterioIOError as exc:
                raise RasterError(f"{p}: {gdal_error_text(exc)}") from exc
    return min(sizes) if sizes else None


def overview_shape(width: int, height: int, max_size: int, *, enlarge: bool = False) -> tuple[int, int]:
    """(h, w) with the longest side = max_size, aspect kept, each side at least 1.

    A raster smaller than max_size keeps its own size unless `enlarge` (thumbnails of an exact size do).
    """
    if max_size < 1:
        raise ValueError("size must be at least 1")
    f = max_size / max(width, height)
    if not enlarge:
        f = min(f, 1.0)
    return max(1, int(round(height * f))), max(1, int(round(width * f)))


def is_scene_classification(info: RasterInfo) -> bool:
    """An L2A scene classification (SCL): one 8-bit band called SCL (file name or band description)."""
    if info.count != 1 or info.dtypes[0] != "uint8":
        return False
    names = [Path(info.path).stem] + [d or "" for d in info.descriptions]
    return any(re.search(r"(?<![A-Za-z])SCL(?![A-Za-z])", n, re.IGNORECASE) for n in names)


def read_overview(path, max_size: int, bands=None, *, enlarge: bool = False):
    """Decimated read: -> (data (bands, h, w), valid (h, w) bool, RasterInfo); longest side = max_size
    (a smaller raster is read at its own size unless `enlarge`).

    `bands` are 1-based indexes (default: 1-3 for rasters with >= 3 bands, else 1). Valid = not nodata in at
    least one band; nodata is the declared value, else an alpha band, else 0 for unsigned integer data (the
    Sentinel-2 convention: JP2 band files declare none).
    """
    from rasterio.enums import ColorInterp, Resampling
    from rasterio.errors import RasterioIOError

    p = Path(path)
    src = open_raster(p)
    try:
        info = _info_from_dataset(src, p)
    except BaseException:
        src.close()
        raise
    if is_scene_classification(info):  # classes: nearest from full resolution, not the averaged overviews
        src.close()
        src = open_raster(p, no_overviews=True)
    with src:
        if bands is None:
            bands = [1, 2, 3] if src.count >= 3 else [1]
        bands = [int(b) for b in bands]
        for b in bands:
            if not 1 <= b <= src.count:
                raise RasterError(f"{p}: has no band {b} (it has {src.count})")
        h, w = overview_shape(src.width, src.height, max_size, enlarge=enlarge)
        try:
            data = src.read(bands, out_shape=(len(bands), h, w), resampling=Resampling.nearest)
            alpha = [i for i, ci in zip(src.indexes, src.colorinterp) if ci == ColorInterp.alpha]
            finite = None
            if np.issubdtype(data.dtype, np.floating):  # NaN / inf are never values (and NaN != NaN)
                finite = np.isfinite(data)
                data[~finite] = 0
            if src.nodata is not None:
                valid = np.any((data != src.nodata) if finite is None else (finite & (data != src.nodata)), axis=0)
            elif alpha:
                valid = src.read(alpha[0], out_shape=(h, w), resampling=Resampling.nearest) > 0
            elif finite is not None:
                valid = np.any(finite, axis=0)
            elif np.issubdtype(data.dtype, np.unsignedinteger):
                valid = np.any(data != 0, axis=0)
            else:
                valid = np.ones((h, w), dtype=bool)
        except RasterioIOError as exc:
            raise RasterError(f"{p}: cannot read ({gdal_error_text(exc)}; truncated or corrupt?)") from None
    return data, valid, info


# --- scene metadata of band files ------------------------------------------------------------------------------


def _read_json(p: Path) -> dict | None:
    try:
        with open(p, encoding="utf-8") as fh:
            data = json.load(fh)
        return data if isinstance(data, dict) else None
    except (OSError, ValueError):
        return None


def _from_download_metadata(p: Path) -> dict | None:
    """The metadata json a download wrote for the file's scene (``out/metadata/{scene_id}.json``), also when the
    file was moved one folder up or down from its band folder."""
    parsed = parse_band_filename(p)
    if not parsed:
        return None
    for folder in (p.parent.parent, p.parent, p.parent.parent.parent):
        md = _read_json(scenefiles.metadata_path(folder, parsed["scene_id"]))
        if md:
            return md
    return None


def _stac_baseline(d: dict) -> tuple[str | None, str | None]:
    props = d.get("properties") or {}
    b = baseline_of(props.get("s2:processing_baseline"))
    name = props.get("s2:product_uri") or props.get("sentinel:product_id") or d.get("id")
    return b or baseline_of(name), name


def scene_metadata(path) -> dict:
    """What is known about the scene of a band file: baseline, tile, date, product_name, data_geometry, source.

    Keys are present with None when unknown. `source` says where the baseline came from.
    """
    p = Path(path)
    out: dict[str, Any] = {"baseline": None, "tile": None, "date": None, "product_name": None,
                           "data_geometry": None, "source": None}
    parsed = parse_band_filename(p)
    if parsed:
        out["tile"], out["date"] = parsed["tile"], parsed["date"]

    md = _from_download_metadata(p)
    if md:
        out["baseline"] = baseline_of(md.get("baseline")) or baseline_of(md.get("product_name")) or baseline_of(
            md.get("productName"))
        out["product_name"] = md.get("product_name") or md.get("productName")
        out["data_geometry"] = md.get("tileDataGeometry") or md.get("data_geometry")
        out["tile"] = md.get("tile") or out["tile"]
        out["date"] = md.get("date") or out["date"]
        if out["baseline"]:
            said = md.get("offset_source")  # how the metadata came, where it was not downloaded ('streamed')
            out["source"] = said if isinstance(said, str) and said else "download metadata"
            return _fill_from_product_name(out)

    # Metadata beside loose files in the bucket layouts.
    folders = [p.parent]
    if p.parent.name in ("R10m", "R20m", "R60m"):
        folders.append(p.parent.parent)
    for folder in folders:
        for name in ("tileInfo.json", "tileinfo_metadata.json"):
            d = _read_json(folder / name)
            if d:
                out["data_geometry"] = out["data_geometry"] or d.get("tileDataGeometry")
                pn = d.get("productName")
                if pn:
                    out["product_name"] = out["product_name"] or pn
                    b = baseline_of(pn)
                    if b and not out["baseline"]:
                        out["baseline"], out["source"] = b, f"{name} beside the file"
        d = _read_json(folder / "productInfo.json")
        if d and not out["baseline"]:
            b = baseline_of(d.get("name"))
            if b:
                out["baseline"], out["source"] = b, "productInfo.json beside the file"
                out["product_name"] = out["product_name"] or d.get("name")
        if not out["baseline"]:
            for js in sorted(folder.glob("*.json")):
                if js.name in ("tileInfo.json", "tileinfo_metadata.json", "productInfo.json"):
                    continue
                d = _read_json(js)
                if d and d.get("type") == "Feature":
                    b, name = _stac_baseline(d)
                    if b:
                        out["baseline"], out["source"] = b, f"STAC item {js.name} beside the file"
                        out["product_name"] = out["product_name"] or name
                        break
        if not out["baseline"]:
            xml = folder / "metadata.xml"
            if xml.is_file():
                try:
                    with open(xml, encoding="utf-8", errors="replace") as fh:
                        head = fh.read(200_000)
                    m = re.search(r"<PROCESSING_BASELINE>\s*([\d.]+)\s*<", head) or re.search(
                        r"_N(\d{2})(\d{2})_", head)
                    if m:
                        b = baseline_of(m.group(1) if m.lastindex == 1 else m.group(0))
                        if b:
                            out["baseline"], out["source"] = b, "metadata.xml beside the file"
                except OSError:
                    pass
        if out["baseline"]:
            break
    return _fill_from_product_name(out)


def _fill_from_product_name(out: dict) -> dict:
    name = out.get("product_name") or ""
    if not out.get("tile"):
        m = re.search(r"_T(\d{2}[A-Z]{3})_", name)
        if m:
            out["tile"] = m.group(1).lstrip("0")
    if not out.get("date"):
        m = re.search(r"_(\d{4})(\d{2})(\d{2})T\d{6}_", name)
        if m:
            out["date"] = f"{m.group(1)}-{m.group(2)}-{m.group(3)}"
    return out


def file_offset(path) -> tuple[int | None, str | None, str | None]:
    """(offset, baseline, where it came from) for a band file; offset None when the baseline is unknown."""
    md = scene_metadata(path)
    return offset_for_baseline(md["baseline"]), md["baseline"], md["source"]

