"""Why a composite's pixel has its value: every observation at that pixel, and what became of it.

    why = explain("out.tif", lonlat=(12.5, 48.1))          # or xy=(x, y) in the raster's CRS, pixel=(row, col)
    for d in why.dates:
        print(d.date, d.reason, d.values, d.mask_class)   # Reason.USED | Reason.OFFSET_APPLIED, (812, ...), None

The composite's provenance record (``OUT.json``, :mod:`s2desktop.core.provenance`) gives its stack: the
observations' own files (a tile's downloads, loose files) or, for an area, the job's area step run again on the
scenes it used, which reads the windows it fetched from the area cache. The pixel is read as the compositor read
it -- the same window tasks (`compositing.plan`: the window that holds it and the dates its footprints skip),
the same reads, harmonisation and masks (`compositing.window`), the same rule (`compositing.rules`) -- on a
1 x 1 window, and optionally a chip around it per date. Each date gets a :class:`Reason`, a small bitfield like
FORCE's QAI (so it could be written as a band): USED, or why not -- NODATA, MASKED (with the class: SCL 9
"cloud high probability", the L1C mask's "opaque clouds"), OUTSIDE_FOOTPRINT, OUTSIDE_AREA -- and
OFFSET_APPLIED where the baseline's -1000 DN offset was taken off. The composite's own value (read from it)
is returned beside the rule applied again to the USED values, and for a rule that picks a date, that date.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from enum import IntFlag
from pathlib import Path
from typing import Sequence

import numpy as np
import rasterio
from rasterio.windows import Window
from rasterio.windows import bounds as window_bounds

from s2desktop.core import jp2area, provenance, qimasks
from s2desktop.core.compositing.plan import SCL_MASKED_CLASSES, TARGET_WINDOW, WindowInputs, _factor, window_inputs
from s2desktop.core.compositing.rules import reduce
from s2desktop.core.compositing.window import _Halo, _band_window, _inside, _masked, _read, _read_scl, harmonise
from s2desktop.core.display_bands import default_indexes
from s2desktop.core.errors import InvalidInputError
from s2desktop.core.methods import parse_method
from s2desktop.core.rasterinfo import open_raster
from s2desktop.core.stack import Stack

__all__ = ["Reason", "DateWhy", "Explanation", "explain", "locate", "forget", "CHIP"]

CHIP = 64  # px a side of a chip, on the composite's grid
READERS = 8  # dates read at once
KEEP_OPEN = 256  # datasets kept open between explains of a composite of files (a tile's, loose files)


class Reason(IntFlag):
    """What became of one observation at one pixel (bits, so that they could be written as a band)."""

    USED = 1
    NODATA = 2  # a band is 0 there (an orbit edge, a gap)
    MASKED = 4  # its cloud mask masks it (the class in DateWhy.mask_class)
    OUTSIDE_FOOTPRINT = 8  # outside the scene's data footprint (the compositor skips its window when it can)
    OFFSET_APPLIED = 16  # baseline >= 04.00: its DNs were taken down by 1000 first
    OUTSIDE_AREA = 32  # outside the area's polygon: the composite is nodata there

    @property
    def names(self) -> list[str]:
        return [m.name for m in Reason if m in self]


@dataclass(frozen=True)
class DateWhy:
    """One observation at the pixel."""

    date: str
    orbit: int | None
    baseline: str | None
    reason: Reason
    raw: tuple[int, ...]  # per band, the DN read
    values: tuple[int, ...]  # per band, after the offset: what the rule sees
    mask: str | None = None  # the mask's kind: 'SCL', 'MSKCLASSI', 'MSKCLOUDS'; None: unmasked
    mask_value: int | None = None  # the SCL class (or the L1C mask's bits) at the pixel
    mask_class: str | None = None  # its name: 'cloud high probability', 'opaque clouds'
    chosen: bool = False  # the date whose values the composite holds (a rule that picks a date)
    chip: np.ndarray | None = field(default=None, compare=False, repr=False)  # (CHIP, CHIP, 3) uint8: chip_bands

    def to_dict(self) -> dict:
        return {"date": self.date, "orbit": self.orbit, "baseline": self.baseline, "reason": int(self.reason),
                "reasons": self.reason.names, "raw": list(self.raw), "values": list(self.values),
                "mask": self.mask, "mask_value": self.mask_value, "mask_class": self.mask_class,
                "chosen": self.chosen}


@dataclass(frozen=True)
class Explanation:
    """A composite's pixel explained: where it is, the composite's value, and every date's fate."""

    composite: str
    row: int
    col: int
    x: float
    y: float
    lon: float
    lat: float
    crs: str
    bands: tuple[str, ...]
    rule: str
    value: tuple[int, ...]  # the composite's value, read from it
    count: int | None  # its count layer's value (None: no count layer)
    recomputed: tuple[int, ...]  # the rule applied again to the USED dates' values
    dates: tuple[DateWhy, ...]
    chip_bands: tuple[str, ...] = ()  # the bands the chips show as R, G, B (none without chips)

    @property
    def used(self) -> int:
        return sum(1 for d in self.dates if Reason.USED in d.reason)

    @property
    def chosen_date(self) -> str | None:
        return next((d.date for d in self.dates if d.chosen), None)

    def to_dict(self) -> dict:
        return {"composite": self.composite, "row": self.row, "col": self.col, "x": self.x, "y": self.y,
                "lon": self.lon, "lat": self.lat, "crs": self.crs, "bands": list(self.bands), "rule": self.rule,
                "value": list(self.value), "count": self.count, "used": self.used,
                "recomputed": list(self.recomputed), "chosen_date": self.chosen_date,
                "reason_bits": {m.name: int(m) for m in Reason}, "dates": [d.to_dict() for d in self.dates]}


def explain(composite, *, pixel: tuple[int, int] | None = None, xy: tuple[float, float] | None = None,
            lonlat: tuple[float, float] | None = None, chips: bool = False,
            chip_bands: Sequence[int] | None = None) -> Explanation:
    """The pixel of ``composite`` (give one of pixel=(row, col), xy in its CRS, lonlat in degrees) explained
    from the composite's own inputs. chips: also a CHIP x CHIP chip around it per date, of the composite's
    bands ``chip_bands`` (1-based, as R, G, B: the ones a viewer shows; default, or when they are not all bands
    of the stack: true colour by the bands' names, else the first three). One-line S2Error subclasses (no
    record, a pixel outside the raster, an input gone)."""
    record = provenance.read_record(composite)
    path = Path(composite) if Path(composite).suffix.lower() != ".json" else \
        record.path.with_name(record.item["assets"]["composite"]["href"])
    with open_raster(path) as ds:
        row, col = locate(ds, pixel=pixel, xy=xy, lonlat=lonlat)
        value = tuple(int(v) for v in ds.read(window=Window(col, row, 1, 1))[:, 0, 0])
        where = _where(ds, row, col)
    count = _count_at(record, path, row, col)
    with _stack_of(record) as (stack, clip):
        inputs, task = _window_of(record, stack, clip, row, col)
        shown = _chip_bands(stack.bands, chip_bands) if chips else ()
        dates = _dates(stack, inputs, task, row, col, shown, keep=record.mode != "area")
    why = _explained(record, path, row, col, where, stack, value, count, dates)
    return replace(why, chip_bands=tuple(stack.bands[b] for b in shown))


def _chip_bands(names: Sequence[str], asked: Sequence[int] | None) -> tuple[int, ...]:
    """The stack's 0-based bands a chip shows as R, G, B: ``asked`` (1-based) when they are all the stack's,
    else true colour by the bands' names, else the first three (one or two bands: the first, as grey)."""
    if asked and len(asked) == 3 and all(1 <= i <= len(names) for i in asked):
        return tuple(i - 1 for i in asked)
    indexes = default_indexes(len(names), names)
    return tuple(i - 1 for i in (indexes * 3 if len(indexes) == 1 else indexes))


def locate(ds, *, pixel=None, xy=None, lonlat=None) -> tuple[int, int]:
    """(row, col) of a pixel given as (row, col), (x, y) in the raster's CRS or (lon, lat); InvalidInputError
    outside the raster or when not exactly one is given."""
    if sum(v is not None for v in (pixel, xy, lonlat)) != 1:
        raise InvalidInputError("give one of a pixel (row, col), x/y in the raster's CRS, or lon/lat")
    if lonlat is not None:
        from rasterio.warp import transform

        (x,), (y,) = transform("EPSG:4326", ds.crs, [lonlat[0]], [lonlat[1]])
        xy = (x, y)
    if xy is not None:
        row, col = ds.index(*xy)
    else:
        row, col = (int(v) for v in pixel)
    if not (0 <= row < ds.height and 0 <= col < ds.width):
        raise InvalidInputError(f"pixel row {row}, column {col} is outside {Path(ds.name).name} "
                                f"({ds.height} rows, {ds.width} columns)")
    return row, col


def _where(ds, row: int, col: int) -> tuple:
    """(x, y, lon, lat, crs) of the pixel's centre."""
    from rasterio.warp import transform

    x, y = ds.xy(row, col)
    (lon,), (lat,) = transform(ds.crs, "EPSG:4326", [x], [y])
    return x, y, lon, lat, ds.crs.to_string()


def _count_at(record, path: Path, row: int, col: int) -> int | None:
    count = record.item.get("assets", {}).get("count")
    p = path.with_name(count["href"]) if count else None
    if p is None or not p.is_file():
        return None
    with rasterio.open(p) as ds:
        return int(ds.read(1, window=Window(col, row, 1, 1))[0, 0])


@contextlib.contextmanager
def _stack_of(record):
    """-> (the composite's stack, its clip polygon or None): a 'stack' record's own files; an area's job step
    run again into a scratch folder (its windows from the area cache), removed afterwards."""
    if record.mode != "area":
        yield record.stack(), None
        return
    from s2desktop.core.pipeline import CompositeOptions, Job, Request, SourceSpec

    fields = record.request_fields()
    source = SourceSpec(**fields.pop("source"))
    scale = int(record.props["s2desktop:scale"])
    request = Request(source=source, composite=CompositeOptions("explain.tif", scale=scale), **fields)
    with tempfile.TemporaryDirectory(prefix="s2desktop-explain-") as scratch:
        area = Job(request).area_inputs(fields["scenes"], Path(scratch))
        yield area.inputs, area.options.clip


def _window_of(record, stack: Stack, clip, row: int, col: int):
    """The composite's window inputs and the window task that holds the pixel (the compositor's own plan of
    windows and of the dates each skips)."""
    ref, factors = _grids(stack)
    rules = {"mask_classes": SCL_MASKED_CLASSES, **record.mask_rules}
    inputs, cells = window_inputs(stack, ref, factors, scale=int(record.props["s2desktop:scale"]), clip=clip,
                                  window_size=record.props.get("s2desktop:window_size") or TARGET_WINDOW, **rules)
    for src, out, skip in cells:
        if out.row_off <= row < out.row_off + out.height and out.col_off <= col < out.col_off + out.width:
            return inputs, (src, out, skip)
    raise InvalidInputError(f"pixel row {row}, column {col} is in none of the composite's windows")


def _grids(stack: Stack) -> tuple[dict, tuple[float, ...]]:
    """-> (the windows' reference grid: the finest band's, on its first date; per band how many reference
    pixels one of its pixels spans) from one header per band (the composite checked every file)."""
    grids = []
    for b in stack.bands:
        path = stack.observations[0].rasters[b].path
        with open_raster(path) as ds:
            grids.append({"path": Path(path), "crs": ds.crs, "transform": ds.transform,
                          "shape": (ds.height, ds.width), "block": ds.block_shapes[0]})
    ref = max(grids, key=lambda g: g["shape"][1])
    return ref, tuple(_factor(g, ref) for g in grids)


@dataclass(frozen=True)
class _Pixel:
    """Where the pixel is, as the window reader needs it."""

    source: Window  # on the inputs' grid
    one: Window  # on the output grid
    bounds: tuple
    inside_area: bool


def _dates(stack: Stack, inp: WindowInputs, task, row: int, col: int, chips: tuple[int, ...],
           keep: bool) -> list[dict]:
    """Each date at the pixel: raw and harmonised values, nodata, mask (and its class), footprint, clip, and a
    chip of the bands ``chips`` (none: no chip) -- the dates read at once on a few threads (each date its own
    datasets: GDAL decodes outside the GIL). keep: the datasets stay open for the next explain (:class:`_Datasets`)."""
    src, out_window, skip = task
    pitch_x, pitch_y = (src.width / out_window.width, src.height / out_window.height) if inp.scale > 1 else (1, 1)
    one = Window(col, row, 1, 1)
    px = _Pixel(Window(col * pitch_x, row * pitch_y, pitch_x, pitch_y), one, window_bounds(one, inp.out_transform),
                inp.clip is None or bool(_inside(inp.clip, one, inp.out_transform)[0, 0]))
    obs = stack.observations
    with _KEPT.using() if keep else _Datasets() as datasets:
        with ThreadPoolExecutor(max(1, min(READERS, len(obs)))) as pool:
            return list(pool.map(lambda d: _date(inp, obs[d], d, px, d in skip, chips, datasets.open),
                                 range(len(obs))))


class _Datasets:
    """Open datasets by file (and its size and time: a file rewritten is opened again). Used as a context: a
    plain one closes them after; the module's :data:`_KEPT` keeps up to ``keep`` of them open between explains,
    least recently used closed first, so that GDAL's block cache still holds the tiles a pixel nearby needs --
    one explain at a time uses it. A JPEG 2000 file is opened as :class:`jp2area.SmallReads`: its small reads
    decode the code-blocks around them, not the whole 1024 px tiles GDAL would."""

    def __init__(self, keep: int = 0):
        self.keep = keep
        self.open_ = OrderedDict()
        self.lock = threading.Lock()  # the dict, between the threads of one explain
        self.busy = threading.Lock()  # one explain at a time (a kept store)

    def open(self, path: str, classes: bool = False):
        key = (path, classes, _stamp(path))
        with self.lock:
            ds = self.open_.get(key)
            if ds is not None:
                self.open_.move_to_end(key)
                return ds
        ds = open_raster(path, no_overviews=classes)  # a date's files are its own: no other thread opens them
        area = _JP2.reader() if ds.driver == "JP2OpenJPEG" else None
        if area is not None:  # small reads decode the code-blocks they need, not whole tiles (core.jp2area)
            ds = jp2area.SmallReads(ds, area)
        with self.lock:
            self.open_[key] = ds
        return ds

    @contextlib.contextmanager
    def using(self):
        with self.busy:
            try:
                yield self
            finally:
                self._close(len(self.open_) - self.keep)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._close(len(self.open_))

    def _close(self, n: int) -> None:
        for _ in range(max(0, n)):
            _key, ds = self.open_.popitem(last=False)
            ds.close()


def _stamp(path: str) -> tuple | None:
    try:
        st = os.stat(path)
    except OSError:
        return None  # not a file (a GDAL URI), or gone: open_raster says so
    return st.st_mtime_ns, st.st_size


_KEPT = _Datasets(keep=KEEP_OPEN)


def forget() -> None:
    """Close the datasets kept open between explains (their decoded tiles go with them) and forget the JPEG 2000
    headers parsed."""
    with _KEPT.busy:
        _KEPT._close(len(_KEPT.open_))
    _JP2.clear()


def _date(inp: WindowInputs, o, d: int, px: _Pixel, skipped: bool, chips: tuple[int, ...], dataset) -> dict:
    """One date at the pixel, read through ``dataset(path, classes)``."""
    raw = np.zeros((len(inp.rasters), 1, 1), np.uint16)
    for b, paths in enumerate(inp.rasters):
        factor = inp.factors[b] if inp.factors else 1
        _read(dataset(paths[d]), _band_window(px.source, factor), raw[b], inp.scale * factor)
    fact = {"raw": raw, "skipped": skipped, "inside_area": px.inside_area,
            "footprint": _in_footprint(o.footprint, px.one, inp.out_transform), "offset": inp.offsets[d]}
    if inp.masks[d] is not None:
        halo = _Halo.around(px.one, inp)  # the mask buffer: clouds around the pixel mask it too
        fact["masked"] = bool(halo.buffered(_masked(inp, d, halo.bounds, halo.shape, dataset))[0, 0])
        fact["mask_value"], fact["mask_class"] = _mask_class(inp, d, px.bounds, dataset)
    if chips:
        fact["chip"] = _chip(inp, d, px.source, chips, dataset)
    return fact


class _Jp2Reader:
    """The module's one JPEG 2000 area reader, made at its first use (importing glymur takes ~0.2 s)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._reader = self._made = None

    def reader(self):
        with self._lock:
            if not self._made:
                self._reader, self._made = jp2area.area_reader(), True
            return self._reader

    def clear(self) -> None:
        with self._lock:
            if self._reader is not None:
                self._reader.clear()


_JP2 = _Jp2Reader()


def _in_footprint(footprint, window: Window, transform) -> bool | None:
    """Whether the pixel's centre is inside the data footprint (None: no usable footprint)."""
    if not footprint or footprint.get("type") not in ("Polygon", "MultiPolygon"):
        return None
    geom = {"type": footprint["type"], "coordinates": footprint["coordinates"]}
    return bool(_inside(geom, window, transform)[0, 0])


def _mask_class(inp: WindowInputs, d: int, bounds, dataset) -> tuple[int | None, str | None]:
    """The mask's value at the pixel and its name: an SCL class, or the L1C mask's classes there."""
    kind = inp.mask_bands[d]
    if kind == "MSKCLOUDS":
        from rasterio.transform import from_bounds

        with open(inp.masks[d], "rb") as fh:
            polygons = qimasks.parse_cloud_gml(fh.read(), inp.masks[d])
        bits = int(qimasks.rasterise_polygons(polygons, (1, 1), from_bounds(*bounds, 1, 1))[0, 0])
    elif kind == "MSKCLASSI":
        ds = dataset(inp.masks[d], True)
        bits = sum(1 << i for i in range(min(ds.count, 3)) if _read_scl(ds, bounds, (1, 1), i + 1)[0, 0] > 0)
    else:
        value = int(_read_scl(dataset(inp.masks[d], True), bounds, (1, 1))[0, 0])
        return value, provenance.SCL_CLASS_NAMES.get(value, f"class {value}")
    names = [n for bit, n in qimasks.CLASS_NAMES.items() if bits & bit]
    return bits, ", ".join(names) if names else "clear"


def _chip(inp: WindowInputs, d: int, source: Window, shown: tuple[int, ...], dataset) -> np.ndarray:
    """A CHIP x CHIP chip centred on the pixel of the bands ``shown`` as R, G, B, harmonised, with the true
    colour stretch (outside the raster: black); a coarser band is read onto the output grid as the compositor
    reads it. The part inside the raster is read as it is (a boundless read would decode through a second
    dataset)."""
    from s2desktop.core.render import truecolor

    half = CHIP // 2
    bands = np.zeros((3, CHIP, CHIP), np.uint16)
    for k, b in enumerate(shown):
        factor = inp.factors[b] if inp.factors else 1
        one = _band_window(source, factor)  # one output pixel on this band's grid
        w, h = one.width, one.height
        full = Window(one.col_off - half * w, one.row_off - half * h, CHIP * w, CHIP * h)
        ds = dataset(inp.rasters[b][d])
        inner = full.intersection(Window(0, 0, ds.width, ds.height))
        c0, r0 = round((inner.col_off - full.col_off) / w), round((inner.row_off - full.row_off) / h)
        cw, ch = min(CHIP - c0, round(inner.width / w)), min(CHIP - r0, round(inner.height / h))
        if cw > 0 and ch > 0:
            bands[k, r0:r0 + ch, c0:c0 + cw] = _read(ds, inner, np.empty((ch, cw), np.uint16), inp.scale * factor)
    valid = (bands != 0).all(axis=0)
    return np.ascontiguousarray(truecolor(harmonise(bands, inp.offsets[d]), valid).transpose(1, 2, 0))


def _explained(record, path: Path, row: int, col: int, where, stack: Stack, value, count, facts) -> Explanation:
    """The reasons of each date and the rule applied again to the used ones."""
    rule = parse_method(record.rule)
    n, nb = len(facts), len(stack.bands)
    stacks = np.zeros((nb, n, 1, 1), np.uint16)
    valid = np.zeros((n, 1, 1), bool)
    reasons = []
    for d, f in enumerate(facts):
        raw = f["raw"]
        stacks[:, d] = harmonise(raw, f["offset"])
        reason = Reason(0)
        if f["offset"] and raw.all():
            reason |= Reason.OFFSET_APPLIED
        if not raw.all():
            reason |= Reason.NODATA
        if f.get("masked"):
            reason |= Reason.MASKED
        if f["skipped"] or f["footprint"] is False:
            reason |= Reason.OUTSIDE_FOOTPRINT
        if not f["inside_area"]:
            reason |= Reason.OUTSIDE_AREA
        used = raw.all() and not f.get("masked") and not f["skipped"] and f["inside_area"]
        valid[d] = used
        reasons.append(reason | Reason.USED if used else reason)
    reduced = reduce(rule, stacks, valid)
    chosen = int(reduced.chosen[0, 0]) if reduced.chosen is not None and reduced.count[0, 0] else None
    dates = tuple(DateWhy(
        date=o.date, orbit=o.orbit, baseline=o.baseline, reason=reasons[d],
        raw=tuple(int(v) for v in f["raw"][:, 0, 0]), values=tuple(int(v) for v in stacks[:, d, 0, 0]),
        mask=o.mask.band if o.mask else None, mask_value=f.get("mask_value"), mask_class=f.get("mask_class"),
        chosen=d == chosen, chip=f.get("chip")) for d, (o, f) in enumerate(zip(stack.observations, facts)))
    x, y, lon, lat, crs = where
    return Explanation(composite=str(path), row=row, col=col, x=x, y=y, lon=lon, lat=lat, crs=crs,
                       bands=tuple(stack.bands), rule=rule.label, value=value, count=count,
                       recomputed=tuple(int(v) for v in reduced.values[:, 0, 0]), dates=dates)
