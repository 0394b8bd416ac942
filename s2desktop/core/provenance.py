"""A composite's provenance record: a STAC Item beside the output (``OUT.json``) that says what went in and how.

    record = provenance.write_record(result, stack, options, request)   # after the compositor returns
    doc = provenance.read_record("OUT.json")                           # -> Record
    stack = doc.stack()                                                # the observations again (files, tile)

The Item (STAC 1.0.0, with the projection, raster and processing extensions) holds the composite's grid and
bands, the rule, scale, mask choice, the software version and the command line; and, under
``s2desktop:observations``, every observation as the compositor saw it: its date, orbit, baseline, the offset
applied and where it came from, its mask (source and the classes masked), its rasters and, for each input, the
object it came from (key + ETag) and/or the local file (path + size; a loose file's SHA-256 as well). How the
stack was made is ``s2desktop:recipe``: 'stack' (a tile's downloads or loose files: the observations' own
files) or 'area' (an area streamed or clipped: the job's request, with the scenes it used, so the job can run
again). :mod:`s2desktop.core.pipeline`'s ``rerun`` redoes a composite from it, after :func:`check_files` /
:func:`check_objects` have refused inputs that are gone or changed; :mod:`s2desktop.core.explain` rebuilds the
stack from it to explain a pixel.

The record is written through a temporary name and renamed (never left partial), after the composite is.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import shlex
import threading
from dataclasses import asdict, dataclass
from pathlib import Path

from s2desktop import __version__
from s2desktop.core.areas import Area, OutputGrid
from s2desktop.core.compositing.plan import SCL_MASKED_CLASSES
from s2desktop.core.errors import InvalidInputError, NotFoundError
from s2desktop.core.fsutil import write_json_atomic
from s2desktop.core.redact import redact
from s2desktop.core.stack import MASK_BAND, Observation, Provenance, RasterRef, Stack

__all__ = ["record_path", "build_item", "write_record", "read_record", "summary_of", "Record", "check_files", "check_objects",
           "sha256_of", "SCL_CLASS_NAMES", "STAC_EXTENSIONS"]

STAC_EXTENSIONS = (
    "https://stac-extensions.github.io/projection/v1.1.0/schema.json",
    "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
    "https://stac-extensions.github.io/processing/v1.1.0/schema.json",
)
P = "s2desktop:"  # the prefix of this program's own properties
SCL_CLASS_NAMES = {0: "no data", 1: "saturated or defective", 2: "dark area / cast shadow", 3: "cloud shadow",
                   4: "vegetation", 5: "not vegetated", 6: "water", 7: "unclassified",
                   8: "cloud medium probability", 9: "cloud high probability", 10: "thin cirrus",
                   11: "snow or ice"}
QI_MASKS = {"MSKCLASSI": "L1C MSK_CLASSI_B00 (opaque clouds, cirrus)",
            "MSKCLOUDS": "L1C MSK_CLOUDS_B00.gml polygons (opaque clouds, cirrus)"}
_HASH_CHUNK = 1 << 20


def record_path(output) -> Path:
    """The record beside a composite: ``OUT.tif`` -> ``OUT.json``."""
    return Path(output).with_suffix(".json")


def sha256_of(path, fresh: bool = False) -> str:
    """A file's SHA-256 (hex). The digests of files this process hashed are remembered by path, size and
    modification time (`hash_loose_inputs` hashes a composite's loose files while it is made); fresh: hash again
    whatever is remembered (checking an input before a re-run)."""
    st = os.stat(path)
    key = (os.path.abspath(path), st.st_size, st.st_mtime_ns)
    if not fresh and key in _DIGESTS:
        return _DIGESTS[key]
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(_HASH_CHUNK), b""):
            h.update(chunk)
    if len(_DIGESTS) > 4096:
        _DIGESTS.clear()
    _DIGESTS[key] = h.hexdigest()
    return _DIGESTS[key]


_DIGESTS: dict[tuple, str] = {}


def hash_loose_inputs(stack: Stack, cancel=None) -> threading.Thread:
    """Hash the stack's loose files (those its record names by SHA-256) on a daemon thread, while the composite
    reads them: their digests are ready when the record is written (join the thread first) instead of adding
    a second pass over every input after the composite (2.4 s for a 5-date full-tile stack). Stops between
    files once ``cancel`` is set; a file that cannot be read is left to the record to report."""
    paths = [p.path for o in stack.observations for p in _with_mask(o) if p.key is None and p.path]

    def run() -> None:
        for path in paths:
            if cancel is not None and cancel.is_set():
                return
            try:
                sha256_of(path)
            except OSError:
                pass

    thread = threading.Thread(target=run, name="input checksums", daemon=True)
    thread.start()
    return thread


# --- writing ----------------------------------------------------------------------------------------------------


def write_record(result, stack: Stack, options, request=None) -> Path:
    """The composite's record beside it (atomically). result: the compositor's CompositeResult; options: the
    CompositeOptions it ran with; request: the job's Request for an area (None: the stack's own files)."""
    return write_json_atomic(record_path(result.path), build_item(result, stack, options, request))


def build_item(result, stack: Stack, options, request=None) -> dict:
    """The STAC Item of a composite (see the module's docstring)."""
    import rasterio
    from rasterio.warp import transform_bounds, transform_geom

    with rasterio.open(result.path) as ds:
        crs, transform, shape, bounds = ds.crs, ds.transform, ds.shape, ds.bounds
    w, s, e, n = transform_bounds(crs, "EPSG:4326", *bounds, densify_pts=21)
    box = {"type": "Polygon", "coordinates": [[[bounds.left, bounds.bottom], [bounds.right, bounds.bottom],
                                               [bounds.right, bounds.top], [bounds.left, bounds.top],
                                               [bounds.left, bounds.bottom]]]}
    dates = sorted(stack.dates)
    mode = "area" if request is not None and request.area is not None else "stack"
    props = {
        "datetime": None, "start_datetime": f"{dates[0][:10]}T00:00:00Z", "end_datetime": f"{dates[-1][:10]}T23:59:59Z",
        "created": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "proj:epsg": crs.to_epsg() if crs else None, "proj:wkt2": None if crs is None or crs.to_epsg() else crs.to_wkt(),
        "proj:shape": list(shape), "proj:transform": list(transform)[:6], "proj:bbox": list(bounds),
        "processing:software": {"s2desktop": __version__},
        "processing:lineage": _lineage(options, result),
        f"{P}command": [redact(a) for a in options.command] if getattr(options, "command", None) else None,
        f"{P}rule": result.method, f"{P}bands": list(stack.bands), f"{P}scale": result.scale,
        f"{P}window_size": options.window_size, f"{P}mask": _mask_summary(stack, options),
        f"{P}grid": asdict(stack.grid) if stack.grid else None,
        f"{P}area": _area_doc(request.area) if mode == "area" else None,
        f"{P}recipe": {"mode": mode, "request": _request_doc(request) if mode == "area" else None},
        f"{P}observations": [_observation_doc(o, mode, options) for o in stack.observations],
        f"{P}tags": dict(result.tags),
    }
    return {
        "type": "Feature", "stac_version": "1.0.0", "stac_extensions": list(STAC_EXTENSIONS),
        "id": Path(result.path).stem, "bbox": [w, s, e, n],
        "geometry": transform_geom(crs, "EPSG:4326", box) if crs else None,
        "properties": props, "links": [], "assets": _assets(result, stack),
    }


def _lineage(options, result) -> str:
    command = getattr(options, "command", None)
    how = f"`{redact(shlex.join(command))}`" if command else "the window"
    return (f"temporal {result.method} composite of {result.dates} Sentinel-2 observation(s) by s2desktop "
            f"{__version__}, run from {how}")


def _mask_summary(stack: Stack, options) -> dict:
    kinds = sorted({o.mask.band for o in stack.observations if o.mask is not None})
    classes = tuple(getattr(options, "mask_classes", SCL_MASKED_CLASSES))
    return {"sources": kinds, "scl_classes": list(classes) if MASK_BAND in kinds else [],
            "buffer_m": float(getattr(options, "mask_buffer", 0.0)),
            "unmasked_dates": [o.date for o in stack.observations if o.mask is None]}


def _observation_doc(o: Observation, mode: str, options=None) -> dict:
    return {
        "date": o.date, "orbit": o.orbit, "baseline": o.baseline, "offset": o.offset,
        "offset_source": o.offset_source, "scenes": list(o.scenes), "tiles": list(o.tiles),
        "footprint": o.footprint,
        "rasters": {b: {"path": _absolute(r.path), "overview": r.overview} for b, r in o.rasters.items()},
        "mask": None if o.mask is None else {"path": _absolute(o.mask.path), "band": o.mask.band,
                                             "source": QI_MASKS.get(o.mask.band, "L2A scene classification (SCL)"),
                                             **_mask_classes(o.mask.band, getattr(options, "mask_classes", SCL_MASKED_CLASSES))},
        "inputs": [_input_doc(p, mode) for p in _with_mask(o)],
    }


def _absolute(path: str) -> str:
    """A local file's absolute path (a record may be used from another folder); a GDAL URI as it is."""
    p = Path(path)
    return str(p.resolve()) if p.exists() else path


def _with_mask(o: Observation) -> tuple[Provenance, ...]:
    """The observation's inputs, its mask file too when its provenance does not list it (loose files)."""
    listed = {p.band for p in o.provenance}
    if o.mask is None or o.mask.band in listed or not Path(o.mask.path).is_file():
        return o.provenance
    return o.provenance + (Provenance(o.mask.band, path=o.mask.path, size=Path(o.mask.path).stat().st_size),)


def _mask_classes(band: str, classes=SCL_MASKED_CLASSES) -> dict:
    if band == MASK_BAND:
        return {"classes": list(classes), "class_names": [SCL_CLASS_NAMES[c] for c in classes]}
    return {"classes": ["opaque clouds", "cirrus"]}


def _input_doc(p: Provenance, mode: str) -> dict:
    """An input: its object (key + ETag) and/or local file (path + size); a loose file (no object) its SHA-256."""
    doc = {"band": p.band, "key": p.key, "etag": p.etag, "path": _absolute(p.path) if p.path else None,
           "size": p.size}
    if mode == "stack" and p.key is None and p.path and Path(p.path).is_file():
        doc["sha256"] = sha256_of(p.path)
    return doc


def _assets(result, stack: Stack) -> dict:
    bands = [{"name": b, "data_type": "uint16", "nodata": 0, "scale": 0.0001, "offset": 0} for b in stack.bands]
    assets = {"composite": {"href": Path(result.path).name, "type": "image/tiff; application=geotiff; "
                            "profile=cloud-optimized", "roles": ["data"], "raster:bands": bands}}
    if result.count_path:
        assets["count"] = {"href": Path(result.count_path).name, "type": "image/tiff; application=geotiff",
                           "roles": ["metadata"], "title": "valid observations per pixel",
                           "raster:bands": [{"data_type": "uint8", "nodata": None}]}
    if result.date_path:
        assets["dates"] = {"href": Path(result.date_path).name, "type": "image/tiff; application=geotiff",
                           "roles": ["metadata"], "title": "date of each pixel's observation (days since 1970-01-01)",
                           "raster:bands": [{"data_type": "uint16", "nodata": 0}]}
    return assets


def _area_doc(area: Area) -> dict:
    return {"geometry": area.geometry, "bounds": list(area.bounds), "name": area.name}


def _request_doc(r) -> dict:
    """The parts of an area's request that decide its pixels, and the scenes it used (their listing too)."""
    return {
        "source": asdict(r.source), "area": _area_doc(r.area), "resolution": r.resolution, "crs": r.crs,
        "start": r.start.isoformat() if r.start else None, "end": r.end.isoformat() if r.end else None,
        "max_cloud": r.max_cloud, "bands": list(r.bands), "mask": r.mask, "download_dir": str(r.download_dir),
        "cache_dir": str(r.cache_dir) if r.cache_dir else None,
        "scenes": [_scene_doc(s) for s in (r.scenes or ())],
    }


def _scene_doc(s) -> dict:
    return {**s.to_dict(), "objects": {k: list(v) for k, v in (s.objects or {}).items()}}


# --- reading ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Record:
    """A provenance record read back: the STAC Item and where it is."""

    path: Path
    item: dict

    @property
    def props(self) -> dict:
        return self.item["properties"]

    @property
    def mode(self) -> str:
        return self.props[f"{P}recipe"]["mode"]

    @property
    def rule(self) -> str:
        return self.props[f"{P}rule"]

    @property
    def mask_rules(self) -> dict:
        """How the masks were applied: {'mask_classes': SCL classes, 'mask_buffer': metres} (CompositeOptions'
        fields; a record without them: the defaults)."""
        mask = self.props.get(f"{P}mask") or {}
        rules = {"mask_buffer": float(mask.get("buffer_m") or 0.0)}
        if mask.get("scl_classes"):
            rules["mask_classes"] = tuple(int(c) for c in mask["scl_classes"])
        return rules

    @property
    def observations(self) -> list[dict]:
        return self.props[f"{P}observations"]

    def stack(self) -> Stack:
        """The observations the composite read, as a Stack (a 'stack' record: the rasters are the files)."""
        obs = tuple(_observation(o) for o in self.observations)
        grid = self.props.get(f"{P}grid")
        return Stack(obs, tuple(self.props[f"{P}bands"]), OutputGrid(**{**grid, "transform": tuple(grid["transform"])})
                     if grid else None)

    def inputs(self) -> list[dict]:
        return [i for o in self.observations for i in o["inputs"]]

    def request_fields(self) -> dict:
        """An area record's Request fields (source, area, dates, ...; scenes as catalog.Scene values)."""
        from s2desktop.core.catalog import Scene

        r = self.props[f"{P}recipe"]["request"]
        scenes = tuple(Scene(**{**{k: v for k, v in s.items() if k != "scene_id"},
                                "date": _dt.date.fromisoformat(s["date"]),
                                "objects": {k: tuple(v) for k, v in s["objects"].items()}}) for s in r["scenes"])
        return {"area": Area(r["area"]["geometry"], tuple(r["area"]["bounds"]), r["area"]["name"]),
                "resolution": r["resolution"], "crs": r["crs"], "start": _dt.date.fromisoformat(r["start"]),
                "end": _dt.date.fromisoformat(r["end"]), "max_cloud": r["max_cloud"], "bands": tuple(r["bands"]),
                "mask": r["mask"], "download_dir": Path(r["download_dir"]), "scenes": scenes,
                "cache_dir": Path(r["cache_dir"]) if r["cache_dir"] else None, "source": r["source"]}


def summary_of(raster) -> dict | None:
    """What the window's attributes show of a raster's record (None: it has none, or not a readable one): the
    rule, the software and command, and per date its baseline, offset, mask and inputs."""
    try:
        rec = read_record(raster)
    except (NotFoundError, InvalidInputError):
        return None
    props = rec.props
    count = rec.item.get("assets", {}).get("count")
    return {
        "record": str(rec.path), "rule": rec.rule,
        "count": str(rec.path.with_name(count["href"])) if count else None, "bands": props.get(f"{P}bands"),
        "scale": props.get(f"{P}scale"), "software": props.get("processing:software"),
        "command": " ".join(props.get(f"{P}command") or []) or "the window",
        "observations": {o["date"]: {"baseline": o["baseline"], "offset": o["offset"],
                                     "mask": (o["mask"] or {}).get("source", "none"),
                                     "inputs": [i["key"] or i["path"] for i in o["inputs"]]}
                         for o in rec.observations},
    }


def read_record(path) -> Record:
    """The record at ``path`` (an OUT.json, or the composite OUT.tif beside it). One-line errors."""
    p = Path(path)
    if p.suffix.lower() != ".json":
        p = record_path(p)
    try:
        item = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise NotFoundError(f"{p}: no provenance record (composites write one beside them: OUT.json)") from None
    except (OSError, ValueError) as exc:
        raise InvalidInputError(f"{p}: not a readable provenance record ({exc})") from None
    props = item.get("properties") if isinstance(item, dict) else None
    if not isinstance(props, dict) or f"{P}observations" not in props or f"{P}recipe" not in props:
        raise InvalidInputError(f"{p}: not an s2desktop provenance record (no {P}observations)")
    return Record(p, item)


def _observation(o: dict) -> Observation:
    mask = o.get("mask")
    return Observation(
        date=o["date"], rasters={b: RasterRef(r["path"], b, r.get("overview")) for b, r in o["rasters"].items()},
        mask=RasterRef(mask["path"], mask["band"]) if mask else None, offset=int(o["offset"]),
        offset_source=o["offset_source"], baseline=o["baseline"], orbit=o["orbit"], scenes=tuple(o["scenes"]),
        tiles=tuple(o["tiles"]), footprint=o["footprint"],
        provenance=tuple(Provenance(i["band"], i["key"], i["etag"], i["path"], i["size"]) for i in o["inputs"]))


# --- checking the inputs again ----------------------------------------------------------------------------------


def check_files(record: Record) -> None:
    """InvalidInputError naming the first local input that is gone or changed: not there, another size, another
    SHA-256 (a loose file), or no longer the verified download of its object's ETag (a tile's download)."""
    from s2desktop.core.download import vouches_for

    for i in record.inputs():
        p = Path(i["path"])
        if not p.is_file():
            raise InvalidInputError(f"input {p} is gone: the composite cannot be made again from its record")
        size = p.stat().st_size
        if i["size"] is not None and size != i["size"]:
            raise InvalidInputError(f"input {p} changed: {size} bytes, {i['size']} when the composite was made")
        if i.get("sha256") and sha256_of(p, fresh=True) != i["sha256"]:
            raise InvalidInputError(f"input {p} changed: its SHA-256 is not the one recorded")
        if i.get("key") and i.get("etag") and not vouches_for(p, i["key"], i["etag"]):
            raise InvalidInputError(f"input {p} changed: no longer the verified download of {i['key']} "
                                    f"(ETag {i['etag']})")


def check_objects(record: Record, scenes) -> None:
    """InvalidInputError naming the first object an area read that the source no longer has as recorded: gone,
    or another ETag or size. ``scenes``: the source's listing now (catalog.Scene values)."""
    now = {k: v for s in scenes for k, v in (s.objects or {}).items()}
    for i in record.inputs():
        if not i.get("key"):
            continue
        if i["key"] not in now:
            raise InvalidInputError(f"input {i['key']} is gone from the source")
        size, etag = now[i["key"]]
        if (i["etag"] and etag != i["etag"]) or (i["size"] is not None and size != i["size"]):
            raise InvalidInputError(f"input {i['key']} changed: ETag {etag}, {size} bytes; recorded ETag "
                                    f"{i['etag']}, {i['size']} bytes")
