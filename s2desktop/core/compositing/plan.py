"""Everything a composite decides before any decoding, as one :class:`CompositePlan` of picklable window tasks.

The inputs come as a :class:`~s2desktop.core.stack.Stack`: each observation's rasters, mask, offset, baseline and
data footprint are values the job already held -- nothing here reads a file name or a side-car file. Every
check happens here: inputs present and consistent (each opened once, the odd file named, a truncated file
caught by a cheap probe of its last block), each mask covering the bands, the destination writable and not in
the way. Then the windows, the dates each window can skip (data footprints), and the tags of the product.

Windows are aligned to the inputs' internal blocks (1024 x 1024 for S2 JP2s; for `scale` > 1 a window spans
`scale` blocks a side so the output window stays ~1024), so each compressed block of each input is decoded
exactly once. Each task is a plain value: its source window (what is read from every input), its output window,
and the :class:`WindowInputs` it reads (the rasters, masks, offsets, mask classes) -- all a worker needs.
"""

from __future__ import annotations

import datetime as _dt
import logging
import math
import os
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from affine import Affine
from rasterio.enums import Resampling
from rasterio.errors import RasterioIOError
from rasterio.windows import Window, subdivide

from s2desktop.core.bands import RESAMPLING, TRUE_COLOUR
from s2desktop.core.compositing.cluster import check_scheduler
from s2desktop.core.compositing.tiles import Layer, Pyramid
from s2desktop.core.errors import InvalidInputError, RasterError
from s2desktop.core.fsutil import check_output_file
from s2desktop.core.maskrules import DEFAULT_CLASSES, check_buffer, describe_classes, parse_classes
from s2desktop.core.methods import Median, Rule, parse_method
from s2desktop.core.rasterinfo import gdal_error_text, open_raster
from s2desktop.core.remotereads import RemoteReads, reading
from s2desktop.core.stack import Stack, mask_covers

log = logging.getLogger(__name__)

BANDS = TRUE_COLOUR  # the default: output order R, G, B (any Sentinel-2 bands can be composited)
SCL_MASKED_CLASSES = DEFAULT_CLASSES  # --mask-classes changes them (core.maskrules)
VALID_SCALES = (1, 2, 4, 8)
TARGET_WINDOW = 1024
COMPRESSIONS = ("ZSTD", "DEFLATE")  # of the COG; why ZSTD is the default: see cog.py
MAX_DATES = 255  # the count raster is uint8


@dataclass(frozen=True)
class WindowInputs:
    """What every window of a composite reads and how, as plain values (shared by its tasks)."""

    rasters: tuple[tuple[str, ...], ...]  # [band][date] paths, bands in output order
    masks: tuple[str | None, ...]  # [date] the raster (or GML) to mask clouds with, or None
    offsets: tuple[int, ...]  # [date] DN offset: 0 or -1000
    mask_classes: tuple[int, ...]  # the SCL classes masked
    scale: int
    out_transform: Affine
    clip: dict | None = None  # a GeoJSON (Multi)Polygon in the output CRS: pixels outside it are nodata
    date_days: tuple[int, ...] = ()  # [date] acquisition day since 1970-01-01, for the medoid's date band
    mask_bands: tuple[str | None, ...] = ()  # [date] what each mask is: 'SCL', 'MSKCLASSI', 'MSKCLOUDS' (L1C)
    factors: tuple[float, ...] = ()  # [band] pixels of the output grid (at scale 1) one of its pixels spans a
    # side: 1, 2 for a 20 m band beside 10 m ones, 6 for 60 m (upsampled by nearest: `core.bands.RESAMPLING`);
    # (): all 1
    mask_buffer: float = 0.0  # m the masked area grows by (core.maskrules); read with a halo that wide
    out_shape: tuple[int, int] = (0, 0)  # the output grid (h, w): the halo stops at its edges
    layers: tuple[Layer, ...] = ()  # the output files' pixels a window hands back: values, count, date
    pyramid: Pyramid | None = None  # the outputs' levels and which of them the windows tile
    remote: RemoteReads | None = None  # the rasters' documents and GDAL options (read through /vsis3/), or None

    @property
    def dates(self) -> int:
        return len(self.offsets)


@dataclass(frozen=True)
class WindowTask:
    """One window, a plain picklable value: read `source` from every input of `inputs`, write the result at
    `output` in the output grid.

    For scale > 1 `source` is the output window's area on the input grid: fractional when the size does not
    divide by the scale, as a whole-image decimated read makes it.
    """

    index: int
    source: Window
    output: Window
    inputs: WindowInputs
    skip: frozenset[int] = frozenset()  # dates whose data footprint does not touch this window
    rule: Rule = Median()  # how the window's dates become one value per pixel and band


@dataclass(frozen=True)
class CompositePlan:
    """What to composite and how, decided and checked before any decoding."""

    stack: Stack
    inputs: WindowInputs
    crs: Any
    out_shape: tuple[int, int]
    tasks: tuple[WindowTask, ...]
    output: Path
    count_path: Path | None
    workers: int  # 0: in this process
    threads: int  # GDAL threads per worker
    compress: str
    tags: dict[str, str] = field(default_factory=dict)
    rule: Rule = Median()
    date_path: Path | None = None  # the medoid's date band: where it is written
    scheduler: str | None = None  # a Dask scheduler's address or 'local' (a LocalCluster); None: the spawn pool

    @property
    def dates(self) -> int:
        return self.inputs.dates

    @property
    def scale(self) -> int:
        return self.inputs.scale

    @property
    def out_transform(self) -> Affine:
        return self.inputs.out_transform

    @property
    def masked_dates(self) -> int:
        return sum(1 for s in self.inputs.masks if s)


def make_plan(stack: Stack, output, *, workers: int | None = None, scale: int = 1, count_path=None,
              overwrite: bool = False, window_size: int = TARGET_WINDOW, compress: str = "ZSTD",
              clip: dict | None = None, tags: dict | None = None, method: Rule | str = Median(),
              date_path=None, mask_classes=DEFAULT_CLASSES, mask_buffer: float = 0.0,
              scheduler: str | None = None, probe: bool = True) -> CompositePlan:
    """Check everything and plan the composite (see `composite()` for the arguments; probe: read each input's
    last block, False for inputs still arriving); S2Error subclasses."""
    compress, workers = _check_arguments(stack, scale, compress, workers)
    mask_classes, mask_buffer = parse_classes(mask_classes), check_buffer(mask_buffer)
    scheduler = check_scheduler(scheduler)
    rule = _check_rule(method, date_path)
    obs = stack.observations
    paths = [[Path(o.rasters[b].path) for o in obs] for b in stack.bands]
    output = Path(output)
    count_path = Path(count_path) if count_path else None
    date_path = Path(date_path) if date_path else None
    _check_outputs(output, count_path, overwrite, [p for lst in paths for p in lst], date_path)
    with reading(stack.remote, keep=False):  # documents read through /vsis3/: opened here, not probed (no pixels)
        ref, factors = _open_inputs(paths, probe=probe and stack.remote is None)
        _check_grid(ref, stack.grid)
        inputs, cells = window_inputs(stack, ref, factors, scale=scale, window_size=window_size, clip=clip,
                                      mask_classes=mask_classes, mask_buffer=mask_buffer,
                                      date_days=_date_days(stack) if date_path else ())
        _check_masks([m for m, b in zip(inputs.masks, inputs.mask_bands) if b != "MSKCLOUDS"], ref)  # GML: no grid
    inputs = replace(inputs, layers=_layers(len(paths), count_path, date_path),
                     pyramid=Pyramid.of(inputs.out_shape, [out for _src, out, _skip in cells], compress))
    return CompositePlan(
        stack=stack, inputs=inputs, crs=ref["crs"], out_shape=inputs.out_shape,
        tasks=tuple(WindowTask(i, src, out, inputs, skip, rule) for i, (src, out, skip) in enumerate(cells)),
        output=output, count_path=count_path, workers=workers,
        threads=max(1, (os.cpu_count() or 1) // max(1, workers)), compress=compress,
        tags={**_rule_tags(_tags(stack, scale, factors, mask_classes, mask_buffer), rule, date_path),
              **{str(k): str(v) for k, v in (tags or {}).items()}},
        rule=rule, date_path=date_path, scheduler=scheduler,
    )


def _layers(bands: int, count_path, date_path) -> tuple[Layer, ...]:
    """The outputs' pixels: the rule's values (uint16, nodata 0), the count of valid observations (uint8) and
    the medoid's date band (uint16 days, nodata 0; its overviews pick a pixel, an average of dates is none)."""
    layers = [Layer("values", bands, "uint16", 0)]
    if count_path is not None:
        layers.append(Layer("count", 1, "uint8", None))
    if date_path is not None:
        layers.append(Layer("date", 1, "uint16", 0, "nearest"))
    return tuple(layers)


def window_inputs(stack: Stack, ref: dict, factors: tuple[float, ...], *, scale: int, window_size: int,
                  clip: dict | None = None, mask_classes=DEFAULT_CLASSES, mask_buffer: float = 0.0,
                  date_days: tuple[int, ...] = ()) -> tuple[WindowInputs, list]:
    """What every window of the stack's composite reads, on the reference grid ``ref`` with the bands'
    ``factors``, and its windows [(source window, output window, the dates it can skip)]: the plan's, and
    `core.explain`'s to read one pixel as the composite did."""
    obs = stack.observations
    out_shape, out_transform, cells = _plan_tasks(ref, scale, window_size, [o.footprint for o in obs])
    inputs = WindowInputs(rasters=tuple(tuple(str(Path(o.rasters[b].path)) for o in obs) for b in stack.bands),
                          masks=tuple(o.mask.path if o.mask else None for o in obs),
                          mask_bands=tuple(o.mask.band if o.mask else None for o in obs),
                          offsets=tuple(o.offset for o in obs), mask_classes=mask_classes,
                          mask_buffer=mask_buffer, out_shape=out_shape, scale=scale, factors=factors,
                          out_transform=out_transform, clip=clip, date_days=date_days, remote=stack.remote)
    return inputs, cells


# --- checks -----------------------------------------------------------------------------------------------------


def _check_arguments(stack: Stack, scale, compress, workers):
    """InvalidInputError for arguments wrong on their face. -> (compress, workers)."""
    n = len(stack.observations)
    if not n:
        raise InvalidInputError("no input files given")
    if n > MAX_DATES:
        raise InvalidInputError(f"{n} dates is more than the 255 a composite supports")
    _check_bands(stack.bands)
    for o in stack.observations:
        missing = [b for b in stack.bands if b not in o.rasters]
        if missing:
            raise InvalidInputError(f"the observation of {o.date} has no {', '.join(missing)} raster")
        if o.offset not in (0, -1000):
            raise InvalidInputError(f"offset {o.offset} of {o.date} is not supported (use 0 or -1000)")
    if scale not in VALID_SCALES:
        raise InvalidInputError(f"scale {scale} is not one of 1, 2, 4, 8")
    compress = str(compress).upper()
    if compress not in COMPRESSIONS:
        raise InvalidInputError(f"compression {compress!r} is not one of {', '.join(COMPRESSIONS)}")
    workers = int((os.cpu_count() or 1) if workers is None else workers)
    if workers < 0:
        raise InvalidInputError("workers must be 0 or more")
    return compress, workers


def _check_bands(bands) -> None:
    """InvalidInputError for no band or a band twice (which band is which: the stack's names, in output order)."""
    if not bands:
        raise InvalidInputError("no bands to composite")
    twice = sorted({b for b in bands if list(bands).count(b) > 1})
    if twice:
        raise InvalidInputError(f"band {', '.join(twice)} given more than once")


def _check_rule(method, date_path) -> Rule:
    """The rule as a value; a date band only for a rule that takes each pixel from one date."""
    rule = parse_method(method)
    if date_path and not rule.picks_a_date:
        raise InvalidInputError(f"a date band needs the medoid rule: {rule.label} mixes the dates of a pixel")
    return rule


def _check_outputs(output: Path, count_path: Path | None, overwrite: bool, inputs: list[Path],
                   date_path: Path | None = None) -> None:
    if count_path is not None and count_path.resolve() == output.resolve():
        raise InvalidInputError("the count raster cannot be the composite output itself")
    if date_path is not None and date_path.resolve() in {output.resolve(), (count_path or output).resolve()}:
        raise InvalidInputError("the date band needs a file of its own, not the composite or the count output")
    check_output(output, overwrite, "output")
    if count_path is not None:
        check_output(count_path, overwrite, "count output")
    if date_path is not None:
        check_output(date_path, overwrite, "date band output")
    if output.resolve() in {p.resolve() for p in inputs}:
        raise InvalidInputError(f"output {output} is one of the inputs")


def check_output(path, overwrite: bool = False, what: str = "output") -> None:
    """OutputError unless `path` can be written: not a folder, absent (or overwrite), folder writable."""
    check_output_file(path, overwrite=overwrite, what=what)


def _open_inputs(paths: list[list[Path]], probe: bool = True) -> tuple[dict, tuple[float, ...]]:
    """Open every input ([band][date]) once, by content, with consistency checks naming the odd file: a band's
    dates share one grid; a band of coarser pixels than the finest (20 m or 60 m beside 10 m)
    covers the same extent. -> (the finest band's grid, the windows' reference; per band how many of its pixels
    one of the band's spans a side: 1, 2 or 6 for Sentinel-2's own products). probe: read each one's last block
    (a truncated file); not for rasters still arriving (their fetch checks them) or that the workers read
    remotely (that would fetch here)."""
    grids = [[_grid_of(p, probe) for p in band] for band in paths]
    usual = [_usual(band) for band in grids]
    ref = max(usual, key=lambda g: g["shape"][1])  # the finest (RGB: the red file of date 1)
    factors = tuple(_factor(g, ref) for g in usual)
    for band, first in zip(grids, usual):
        for g in band:
            if g is not first:
                _check_same_grid(g, first)
    return ref, factors


def _usual(grids: list[dict]) -> dict:
    """The first of a band's files on the grid most of them share (a tie: the finer grid), so that the odd
    file is the one named."""
    def key(g):
        return g["shape"], str(g["crs"]), tuple(round(v, 6) for v in g["transform"][:6])

    counts = Counter(key(g) for g in grids)
    return max(grids, key=lambda g: (counts[key(g)], g["shape"][1], -grids.index(g)))


def _grid_of(p: Path, probe: bool = True) -> dict:
    with open_raster(p) as ds:
        if ds.count < 1:
            raise RasterError(f"{p}: has no bands")
        if ds.dtypes[0] != "uint16":
            raise RasterError(f"{p}: is {ds.dtypes[0]}, expected uint16 Sentinel-2 band data")
        if probe:
            _probe_last_block(ds, p)
        return {"path": p, "crs": ds.crs, "transform": ds.transform, "shape": (ds.height, ds.width),
                "block": ds.block_shapes[0]}


def _check_same_grid(g: dict, first: dict) -> None:
    """RasterError naming g's file unless it is on `first`'s grid."""
    (h, w), (fh, fw) = g["shape"], first["shape"]
    if (h, w) != (fh, fw):
        raise RasterError(f"{g['path']}: is {w}x{h} px, the others {fw}x{fh} (first: {first['path'].name})")
    if g["crs"] != first["crs"]:
        raise RasterError(f"{g['path']}: CRS {g['crs']} differs from {first['crs']} of {first['path'].name}")
    if not g["transform"].almost_equals(first["transform"], precision=1e-6):
        raise RasterError(f"{g['path']}: georeferencing (transform) differs from {first['path'].name}")


def _factor(g: dict, ref: dict) -> float:
    """How many of the reference's pixels one of g's spans a side: 1 on the same grid; a band of fewer, larger
    pixels over the same extent (in the same CRS, square pixels) 2 for 20 m beside 10 m, 6 for 60 m."""
    (h, w), (rh, rw) = g["shape"], ref["shape"]
    fx, fy = rw / w, rh / h
    coarser = (h, w) != (rh, rw) and g["crs"] == ref["crs"] and math.isclose(fx, fy, rel_tol=1e-9)
    if coarser and g["transform"].almost_equals(ref["transform"] * Affine.scale(fx, fy), precision=1e-6):
        return fx
    _check_same_grid(g, ref)
    return 1.0


def _probe_last_block(ds, path: Path) -> None:
    """Cheap integrity probe: the last block at reduced resolution (a truncated file fails here)."""
    bh, bw = ds.block_shapes[0]
    r0 = ((ds.height - 1) // bh) * bh
    c0 = ((ds.width - 1) // bw) * bw
    lw = Window(c0, r0, ds.width - c0, ds.height - r0)
    try:
        ds.read(1, window=lw, out_shape=(max(1, int(lw.height) // 8), max(1, int(lw.width) // 8)),
                resampling=Resampling.nearest)
    except RasterioIOError as exc:
        raise RasterError(f"{path}: cannot read ({gdal_error_text(exc)}; truncated or corrupt?)") from None


# --- grid and masks ---------------------------------------------------------------------------------------------


def _check_grid(ref: dict, grid) -> None:
    """RasterError when the rasters are not on the stack's grid (an area's), when it has one."""
    if grid is None:
        return
    same = ref["shape"] == (grid.height, grid.width) and ref["transform"].almost_equals(
        Affine(*grid.transform), precision=1e-6)
    if not same:
        raise RasterError(f"{ref['path']}: not on the area's {grid.width} x {grid.height} px grid")


def _check_masks(masks, ref: dict) -> None:
    """RasterError for a mask that does not cover the bands' grid."""
    for s in masks:
        if s and not mask_covers(s, ref["crs"], ref["transform"], ref["shape"]):
            raise RasterError(f"{s}: scene classification does not cover the band files' grid")


# --- windows ----------------------------------------------------------------------------------------------------


def _plan_tasks(ref: dict, scale: int, target: int, footprints: list):
    """-> (output shape, output transform, [(source window, output window, the dates it can skip)])."""
    height, width = ref["shape"]
    step, out_shape, cells = _plan_windows(height, width, ref["block"], scale, target)
    out_h, out_w = out_shape
    # The output grid covers the inputs' extent exactly (like GDAL's overviews): pixels are `scale` source
    # pixels a side when the size divides by `scale`, a little less otherwise (10980 / 8 -> 1373 px).
    pitch = (width / out_w, height / out_h)
    out_transform = ref["transform"] @ Affine.scale(*pitch)
    skips = _footprint_skips(footprints, ref["transform"], ref["crs"], [src for src, _out in cells], step,
                             dilate=pitch != (scale, scale))
    tasks = []
    for (src, out), skip in zip(cells, skips):
        if scale > 1:  # the source area of the output window on the output grid (fractional where it must be)
            src = Window(out.col_off * pitch[0], out.row_off * pitch[1], out.width * pitch[0], out.height * pitch[1])
        tasks.append((src, out, skip))
    return out_shape, out_transform, tasks


def _plan_windows(height: int, width: int, block: tuple[int, int], scale: int, target: int):
    """Block-aligned source windows and their output windows. -> (window step (h, w), output shape, [(src, out)])."""
    bh, bw = block
    bh, bw = max(1, min(bh, height)), max(1, min(bw, width))
    # Reduced-resolution windows are cheap: aim at half-size output windows so the pool stays balanced.
    want = target * scale if scale == 1 else max(1, target // 2) * scale
    wh = bh * max(1, round(want / bh))
    ww = bw * max(1, round(want / bw))
    # Source windows must be multiples of scale so output offsets are whole pixels.
    wh = int(math.ceil(wh / scale) * scale)
    ww = int(math.ceil(ww / scale) * scale)
    out_h, out_w = int(math.ceil(height / scale)), int(math.ceil(width / scale))
    out_grid = Window(0, 0, out_w, out_h)
    cells = []
    for src in subdivide(Window(0, 0, width, height), wh, ww):
        out = Window(src.col_off // scale, src.row_off // scale, math.ceil(src.width / scale),
                     math.ceil(src.height / scale)).intersection(out_grid)
        cells.append((src, out))
    return (wh, ww), (out_h, out_w), cells


def _footprint_skips(geoms, transform, crs, windows: list[Window], step, dilate: bool = False
                     ) -> list[frozenset[int]]:
    """For each window, the dates whose data footprint (tileDataGeometry) does not touch it.

    dilate: the windows read may reach a few pixels into their neighbours (fractional reduced-resolution
    windows); skip a date only when its footprint touches neither the window nor a neighbour.
    """
    from rasterio.features import rasterize

    wh, ww = step
    cells = [(int(w.row_off) // wh, int(w.col_off) // ww) for w in windows]
    shape = (max(i for i, _ in cells) + 1, max(j for _, j in cells) + 1)
    grid_tf = transform @ Affine.scale(ww, wh)
    epsg = crs.to_epsg() if crs is not None else None
    touched: dict[int, np.ndarray] = {}
    for d, geom in enumerate(geoms):
        if not geom or geom.get("type") not in ("Polygon", "MultiPolygon"):
            continue
        name = ((geom.get("crs") or {}).get("properties") or {}).get("name", "")
        if name and (epsg is None or not name.endswith(str(epsg))):
            continue  # footprint in another CRS: do not risk skipping data
        try:
            g = {"type": geom["type"], "coordinates": geom["coordinates"]}
            t = rasterize([(g, 1)], out_shape=shape, transform=grid_tf, all_touched=True,
                          fill=0, dtype="uint8").astype(bool)
            if dilate:
                p = np.pad(t, 1)
                t = p[1:-1, 1:-1] | p[:-2, 1:-1] | p[2:, 1:-1] | p[1:-1, :-2] | p[1:-1, 2:]
                t |= p[:-2, :-2] | p[:-2, 2:] | p[2:, :-2] | p[2:, 2:]
            touched[d] = t
        except Exception as exc:  # a footprint we cannot use costs only speed
            log.debug("footprint of date %d unusable: %s", d, exc)
    return [frozenset(d for d, t in touched.items() if not t[i, j]) for i, j in cells]


# --- tags -------------------------------------------------------------------------------------------------------


def _tags(stack: Stack, scale: int, factors: tuple[float, ...] = (), mask_classes=DEFAULT_CLASSES,
          mask_buffer: float = 0.0) -> dict[str, str]:
    """The product's GeoTIFF tags: what went in (from the observations) and how it was combined."""
    obs = stack.observations
    tiles = sorted({t for o in obs for t in o.tiles})
    offsets = ",".join(str(o.offset) for o in obs)
    masked = sum(1 for o in obs if o.mask is not None and o.mask.band == "SCL")
    qi = sum(1 for o in obs if o.mask is not None and o.mask.band != "SCL")
    tags = {
        "S2DESKTOP_PRODUCT": "temporal median composite",
        "TILE": ",".join(tiles) if tiles else "unknown",
        "DATES": ",".join(o.date for o in obs),
        "DATE_COUNT": str(len(obs)),
        "BASELINES": ",".join(o.baseline or "unknown" for o in obs),
        **_band_tags(stack, offsets, factors),
        "OFFSET_SOURCES": ",".join(o.offset_source for o in obs),
        "HARMONISATION": "inputs with offset -1000 (baseline >= 04.00) shifted by -1000 DN (min 1); output on "
        "the pre-04.00 scale: reflectance = DN / 10000",
        "OUTPUT_OFFSET": "0",
        "MEDIAN": "per pixel median of observations valid in every band (nonzero, not masked); even count: "
        "mean of the two middle values rounded half up; none valid: 0",
        "MASK": "; ".join(([f"SCL classes {','.join(map(str, mask_classes))} masked on {masked} date(s)"]
                           if masked else []) + ([f"L1C cloud masks (opaque clouds, cirrus) on {qi} date(s)"]
                                                 if qi else [])) or "none",
        "MASK_BUFFER": f"{mask_buffer:g} m: pixels whose centre lies within it of a masked one are masked too"
        if mask_buffer and (masked or qi) else "0 m",
        "SCALE": str(scale),
    }
    if masked:
        tags["MASK_CLASSES"] = describe_classes(mask_classes)
    for name, band in _band_keys(stack.bands):
        tags[f"SOURCES_{name}"] = ",".join(_source(o, band) for o in obs)
    tags["CREATED"] = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return tags


def _band_keys(bands) -> list[tuple[str, str]]:
    """(name in the tags, band): RED, GREEN, BLUE for a true-colour composite (its tags as they always were),
    else the band names."""
    names = ("RED", "GREEN", "BLUE") if tuple(bands) == BANDS else bands
    return list(zip(names, bands))


def _band_tags(stack: Stack, offsets: str, factors: tuple[float, ...]) -> dict[str, str]:
    """BANDS (the output's, in order), the offsets per band (a date's bands share one), and how the bands
    coarser than the output grid were put on it."""
    tags = {"BANDS": ",".join(stack.bands)}
    tags.update({f"OFFSETS_{name}": offsets for name, _band in _band_keys(stack.bands)})
    coarse = [f"{b} (x{k:.6g})" for b, k in zip(stack.bands, factors) if k > 1]
    if coarse:
        tags["BAND_RESAMPLING"] = f"{', '.join(coarse)} upsampled to the output grid by {RESAMPLING}"
    return tags


def _source(obs, band: str) -> str:
    """What an observation's band was made of: its files or objects (joined by '+'), else its raster's name."""
    labels = [p.label for p in obs.provenance if p.band == band and p.label]
    return "+".join(labels) if labels else Path(obs.rasters[band].path).name


def _rule_tags(tags: dict[str, str], rule: Rule, date_path: Path | None) -> dict[str, str]:
    """The tags with the rule: METHOD (its spelling) and METHOD_RULE (what it computes); a rule other than the
    median names the product after itself, and its own rule replaces the MEDIAN tag."""
    tags = dict(tags, METHOD=rule.label, METHOD_RULE=rule.description)
    if not isinstance(rule, Median):
        tags.pop("MEDIAN", None)
        tags["S2DESKTOP_PRODUCT"] = f"temporal {rule.label} composite"
    if date_path is not None:
        tags["DATE_BAND"] = f"{date_path.name}: {DATE_BAND_ENCODING}"
    return tags


DATE_BAND_ENCODING = "the date of the observation each pixel holds, in days since 1970-01-01 (uint16); 0: none"
EPOCH = _dt.date(1970, 1, 1)


def _date_days(stack: Stack) -> tuple[int, ...]:
    """Per observation its acquisition date in days since 1970-01-01, for the date band; an unknown one is an
    error."""
    days = []
    for o in stack.observations:
        try:
            days.append((_dt.date.fromisoformat(str(o.date)[:10]) - EPOCH).days)
        except ValueError:
            name = Path(o.rasters[stack.bands[0]].path).name
            raise InvalidInputError(f"{name}: its acquisition date is unknown (no scene metadata or name), so a "
                                    "date band cannot name it") from None
    return tuple(days)
