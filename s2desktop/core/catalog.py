"""Search: tile + date range -> scenes with cloud cover, data coverage, baseline, band keys and preview key.

S3 can only filter by prefix, so the search walks the date levels with delimiter listings and enters only the
prefixes that can hold dates in the range (months and days are not zero-padded, so names are compared as
numbers, never as text):

- ``l1c``/``l2a``: ``tiles/{z}/{b}/{sq}/`` -> years -> months. A month wholly inside the range is listed once
  *without* a delimiter (a page per ~1000 keys: every day, sequence and key of the month); a month cut by the
  range is walked to its days and only the days in range are listed without a delimiter. Either way the listing
  returns every key of the scene (band files, ``tileInfo.json`` with its ETag), so band keys are exact and no
  per-scene listing is needed.
- ``cogs``: ``sentinel-s2-l2a-cogs/{z}/{b}/{sq}/`` -> years -> months; each month in range is listed once without a
  delimiter (one folder per acquisition, named ``S2A_{tile}_{yyyymmdd}_{seq}_L2A``).

A calendar month of one tile thus costs ~4 list requests, a year ~14-26, a few days 3 + (days with data); the
whole tile (10 years x ~100 scenes x ~90 keys) is never listed.

Metadata (``tileInfo.json`` / ``tileinfo_metadata.json``, or a COG folder's STAC item where it has no
``tileinfo_metadata.json``) is fetched concurrently and cached on disk keyed by
the ETag the listing already returned: a repeated search makes no metadata GETs at all, and a changed object (new
ETag) is fetched again.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import logging
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from s2desktop.core import layouts
from s2desktop.core.baseline import baseline_of
from s2desktop.core.dates import parse_date
from s2desktop.core.errors import InvalidInputError, NotFoundError, S2Error
from s2desktop.core.fsutil import write_bytes_atomic, write_json_atomic
from s2desktop.core.paths import user_cache_dir
from s2desktop.core.threads import map_in_slices
from s2desktop.core.tiles import parse_tile

__all__ = ["Scene", "search", "fetch_preview", "fetch_metadata", "BAND_RE"]

log = logging.getLogger(__name__)

BAND_RE = re.compile(r"^(B0[1-9]|B1[0-2]|B8A|TCI|SCL|AOT|WVP)$")
METADATA_WORKERS = 8


@dataclass(frozen=True)
class Scene:
    """One acquisition (date + sequence) of one tile in one source."""

    tile: str
    date: _dt.date
    sequence: int
    cloud_cover: float | None
    data_coverage: float | None
    baseline: str | None
    product_name: str | None
    prefix: str  # scene folder key prefix, no trailing slash
    bands: dict = field(default_factory=dict, hash=False)  # {'B04': key}
    preview: str | None = None
    metadata_key: str | None = None
    data_geometry: dict | None = field(default=None, hash=False, compare=False, repr=False)
    # {key: (size, etag)} of the band files, from the listing: lets downloads skip verified files for free.
    objects: dict = field(default_factory=dict, hash=False, compare=False, repr=False)
    # The metadata document itself (tileInfo.json content), written beside downloads.
    tile_info: dict | None = field(default=None, hash=False, compare=False, repr=False)

    @property
    def scene_id(self) -> str:
        return f"{self.tile}_{self.date.isoformat()}_{self.sequence}"

    def to_dict(self) -> dict:
        return {
            "scene_id": self.scene_id,
            "tile": self.tile,
            "date": self.date.isoformat(),
            "sequence": self.sequence,
            "cloud_cover": self.cloud_cover,
            "data_coverage": self.data_coverage,
            "baseline": self.baseline,
            "product_name": self.product_name,
            "prefix": self.prefix,
            "bands": dict(sorted(self.bands.items())),
            "preview": self.preview,
            "metadata_key": self.metadata_key,
            "data_geometry": self.data_geometry,
        }


def _numeric_children(prefixes: list[str]) -> list[tuple[int, str]]:
    """'tiles/.../2023/' style prefixes -> [(2023, prefix)] sorted as numbers (S3 returns '10/' before '6/')."""
    out = []
    for p in prefixes:
        name = p.rstrip("/").rsplit("/", 1)[-1]
        if name.isdigit():
            out.append((int(name), p))
    return sorted(out)


# --- metadata cache ------------------------------------------------------------------------------------------


class _MetadataCache:
    """tileInfo documents on disk, keyed by (storage, key) and valid for one ETag."""

    def __init__(self, source):
        digest = hashlib.sha1(source.cache_id.encode()).hexdigest()[:16]
        self.folder = user_cache_dir() / "metadata" / digest

    def _path(self, key: str) -> Path:
        return self.folder / (hashlib.sha1(key.encode()).hexdigest() + ".json")

    def get(self, key: str, etag: str | None):
        if not etag:
            return None
        try:
            entry = json.loads(self._path(key).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return entry.get("doc") if entry.get("etag") == etag else None

    def put(self, key: str, etag: str | None, doc) -> None:
        if not etag:
            return
        try:
            write_json_atomic(self._path(key), {"key": key, "etag": etag, "doc": doc}, indent=None)
        except OSError as exc:  # a cache that cannot be written only costs requests
            log.debug("metadata cache not written: %s", exc)


# --- the walk -------------------------------------------------------------------------------------------------


@dataclass
class _Candidate:
    date: _dt.date
    sequence: int
    prefix: str
    objects: list  # ObjectInfo under the prefix


def _walk_tiles_layout(store, tile: str, start: _dt.date, end: _dt.date, pool) -> list[_Candidate]:
    base = layouts.tile_root("l1c", tile)
    # (prefix listed without delimiter, fixed day or None when the prefix is a whole month)
    listings: list[tuple[str, int, int, int | None]] = []
    for year, yp in _numeric_children(store.list_prefixes(base)):
        if not start.year <= year <= end.year:
            continue
        for month, mp in _numeric_children(store.list_prefixes(yp)):
            if not 1 <= month <= 12 or not (start.year, start.month) <= (year, month) <= (end.year, end.month):
                continue
            first = _dt.date(year, month, 1)
            last = _dt.date(year + month // 12, month % 12 + 1, 1) - _dt.timedelta(days=1)
            if start <= first and last <= end:
                # The whole month is in range: one listing (a page per ~1000 keys) gets every day and sequence.
                listings.append((mp, year, month, None))
                continue
            for day, dp in _numeric_children(store.list_prefixes(mp)):
                try:
                    d = _dt.date(year, month, day)
                except ValueError:
                    continue
                if start <= d <= end:
                    listings.append((dp, year, month, day))
    out: list[_Candidate] = []
    for (prefix, year, month, day), objects in zip(listings, map_in_slices(pool, lambda x: store.list_objects(x[0]), listings)):
        groups: dict[tuple[int, int], list] = {}
        for obj in objects:
            parts = obj.key[len(prefix):].split("/")
            if day is None:
                if len(parts) < 3 or not (parts[0].isdigit() and parts[1].isdigit()):
                    continue
                d, seq = int(parts[0]), int(parts[1])
            else:
                if len(parts) < 2 or not parts[0].isdigit():
                    continue
                d, seq = day, int(parts[0])
            groups.setdefault((d, seq), []).append(obj)
        for (d, seq), objs in sorted(groups.items()):
            try:
                date = _dt.date(year, month, d)
            except ValueError:
                continue
            if start <= date <= end:
                out.append(_Candidate(date, seq, layouts.tiles_scene_prefix(tile, date, seq), objs))
    return out


def _walk_cogs_layout(store, tile: str, start: _dt.date, end: _dt.date, pool) -> list[_Candidate]:
    base = layouts.tile_root("cogs", tile)
    month_prefixes = []
    for year, yp in _numeric_children(store.list_prefixes(base)):
        if not start.year <= year <= end.year:
            continue
        for month, mp in _numeric_children(store.list_prefixes(yp)):
            if (start.year, start.month) <= (year, month) <= (end.year, end.month):
                month_prefixes.append(mp)
    out: list[_Candidate] = []
    for mp, objects in zip(month_prefixes, map_in_slices(pool, store.list_objects, month_prefixes)):
        by_scene: dict[str, list] = {}
        for obj in objects:
            rest = obj.key[len(mp):]
            if "/" in rest:
                by_scene.setdefault(rest.split("/", 1)[0], []).append(obj)
        for name, objs in by_scene.items():
            m = layouts.COG_SCENE_RE.match(name)
            if not m or m["tile"] != tile:
                continue
            try:
                d = _dt.datetime.strptime(m["date"], "%Y%m%d").date()
            except ValueError:
                continue
            if start <= d <= end:
                out.append(_Candidate(d, int(m["seq"]), mp + name, objs))
    return out


def _band_keys(layout: str, prefix: str, objects) -> tuple[dict, dict, str | None, object]:
    """-> (bands {band: key}, objects {key: (size, etag)}, preview key, metadata ObjectInfo)."""
    bands: dict[str, tuple[int, str]] = {}  # band -> (resolution rank, key)
    infos = {}
    previews: dict[int, str] = {}  # preference rank -> key
    metadata = stac = None
    preview_names = layouts.PREVIEW_NAMES[layout]
    stac_name = prefix.rsplit("/", 1)[-1] + ".json" if layout == "cogs" else None
    for obj in objects:
        rel = obj.key[len(prefix) + 1:]
        if rel == layouts.METADATA_NAMES[layout]:
            metadata = obj
        elif rel == stac_name:
            stac = obj
        elif rel in preview_names:
            previews[preview_names.index(rel)] = obj.key
        elif rel in layouts.QI_MASKS[layout]:  # an L1C cloud mask: fetched like a band when clouds are masked
            bands[layouts.QI_MASKS[layout][rel]] = (0, obj.key)
            infos[obj.key] = (obj.size, obj.etag)
        else:
            parsed = layouts.parse_band_relpath(layout, rel)
            if parsed is None or not BAND_RE.match(parsed[0]):
                continue
            name, rank = parsed
            if name not in bands or rank < bands[name][0]:
                bands[name] = (rank, obj.key)
                infos[obj.key] = (obj.size, obj.etag)
    band_keys = {b: k for b, (_r, k) in sorted(bands.items())}
    preview = previews[min(previews)] if previews else None
    return band_keys, {k: infos[k] for k in band_keys.values()}, preview, metadata or stac


def search(source, tile: str, start, end, max_cloud: float | None = None, stats: dict | None = None,
           workers: int | None = None) -> list["Scene"]:
    """Every acquisition of ``tile`` with a date in [start, end] (inclusive), sorted by date then sequence.

    ``max_cloud`` drops scenes whose cloud cover is above it. ``stats`` (a dict) receives counters:
    list_requests, metadata_gets, metadata_cached, scenes.
    """
    tile = parse_tile(tile)
    start, end = parse_date(start, "start date"), parse_date(end, "end date")
    if start > end:
        raise InvalidInputError(f"start date {start} is after end date {end}")
    if max_cloud is not None and not 0 <= float(max_cloud) <= 100:
        raise InvalidInputError(f"--max-cloud {max_cloud} is not a percentage between 0 and 100")
    store = source.store
    before = store.stats
    cache = _MetadataCache(source)
    counts = {"metadata_gets": 0, "metadata_cached": 0}
    lock = threading.Lock()

    with ThreadPoolExecutor(max_workers=workers or METADATA_WORKERS, thread_name_prefix="s2-search") as pool:
        if source.layout == "cogs":
            candidates = _walk_cogs_layout(store, tile, start, end, pool)
        else:
            candidates = _walk_tiles_layout(store, tile, start, end, pool)

        def build(cand: _Candidate) -> Scene:
            bands, infos, preview, meta = _band_keys(source.layout, cand.prefix, cand.objects)
            doc = None
            if meta is not None:
                doc = cache.get(meta.key, meta.etag)
                if doc is None:
                    raw = store.get_bytes(meta.key)
                    try:
                        doc = json.loads(raw)
                    except ValueError:
                        log.warning("%s is not valid JSON; scene kept without metadata", meta.key)
                        doc = None
                    else:
                        cache.put(meta.key, meta.etag, doc)
                    with lock:
                        counts["metadata_gets"] += 1
                else:
                    with lock:
                        counts["metadata_cached"] += 1
            return _scene_from(tile, cand, bands, infos, preview, meta, doc)

        scenes = map_in_slices(pool, build, candidates)

    if max_cloud is not None:
        scenes = [s for s in scenes if s.cloud_cover is None or s.cloud_cover <= float(max_cloud)]
    scenes.sort(key=lambda s: (s.date, s.sequence))
    if stats is not None:
        after = store.stats
        stats.update(counts)
        stats["list_requests"] = after["list"] - before["list"]
        stats["scenes"] = len(scenes)
    return scenes


def _num(value):
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


def _scene_from(tile, cand: _Candidate, bands, infos, preview, meta, doc) -> Scene:
    doc = doc if isinstance(doc, dict) else {}
    if "stac_version" in doc:  # a COG folder without tileinfo_metadata.json: its STAC item says the same
        doc = _tile_info_of_stac(doc)
    name = doc.get("productName")
    return Scene(
        tile=tile,
        date=cand.date,
        sequence=cand.sequence,
        cloud_cover=_num(doc.get("cloudyPixelPercentage")),
        data_coverage=_num(doc.get("dataCoveragePercentage")),
        baseline=baseline_of(name),
        product_name=name,
        prefix=cand.prefix,
        bands=bands,
        preview=preview,
        metadata_key=meta.key if meta is not None else None,
        data_geometry=doc.get("tileDataGeometry"),
        objects=infos,
        tile_info=doc or None,
    )


def _tile_info_of_stac(item: dict) -> dict:
    """The tileInfo.json keys a search reads, from a sentinel-cogs STAC item (Element 84's properties)."""
    props = item.get("properties") if isinstance(item.get("properties"), dict) else {}
    name = props.get("s2:product_uri") or props.get("sentinel:product_id")
    nodata = _num(props.get("s2:nodata_pixel_percentage"))
    return {k: v for k, v in (("productName", name.removesuffix(".SAFE") if isinstance(name, str) else None),
                              ("cloudyPixelPercentage", props.get("eo:cloud_cover")),
                              ("dataCoveragePercentage", None if nodata is None else 100 - nodata))
            if v is not None}


def fetch_metadata(source, scene: Scene) -> dict | None:
    """The scene's tileInfo document (from the scene, the cache or the store)."""
    if scene.tile_info:
        return scene.tile_info
    if not scene.metadata_key:
        return None
    return json.loads(source.store.get_bytes(scene.metadata_key))


def fetch_preview(source, scene: Scene) -> bytes:
    """The scene's quick-look as JPEG bytes, cached on disk (user_cache_dir()/previews)."""
    if not scene.preview:
        raise NotFoundError(f"scene {scene.scene_id} has no preview image")
    digest = hashlib.sha1(f"{source.cache_id}|{scene.preview}".encode()).hexdigest()
    path = user_cache_dir() / "previews" / f"{digest}.jpg"
    try:
        return path.read_bytes()
    except OSError:
        pass
    raw = source.store.get_bytes(scene.preview)
    data = raw if raw[:3] == b"\xff\xd8\xff" else _to_jpeg(raw, scene.preview)
    try:
        write_bytes_atomic(path, data)
    except OSError as exc:
        log.debug("preview cache not written: %s", exc)
    return data


def _to_jpeg(raw: bytes, key: str) -> bytes:
    """A JP2/TIFF quick-look (L2A's qi/L2A_PVI.jp2) re-encoded as JPEG."""
    import io

    import numpy as np
    import rasterio
    from PIL import Image

    try:
        with rasterio.MemoryFile(raw) as mem, mem.open() as ds:
            data = ds.read(indexes=list(range(1, min(ds.count, 3) + 1)))
    except Exception as exc:
        raise S2Error(f"preview {key} cannot be decoded: {exc}") from None
    if data.dtype != np.uint8:
        data = np.clip(data / 4000.0 * 255, 0, 255).astype(np.uint8)
    img = np.moveaxis(data, 0, -1) if data.shape[0] == 3 else data[0]
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(img)).save(buf, format="JPEG", quality=90)
    return buf.getvalue()
