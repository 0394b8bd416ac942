"""Everything a composite decides before any decoding, as one picklable :class:`CompositePlan`.

Every check happens here: inputs present and consistent (each opened once, the odd file named, a truncated file
caught by a cheap probe of its last block), the destination writable and not in the way. Then the DN offset of
every input (from its scene metadata, or `offsets=`), the scene classification (SCL) masks, the windows and the
dates each window can skip (data footprints), and the tags of the product.

Windows are aligned to the inputs' internal blocks (1024 x 1024 for S2 JP2s; for `scale` > 1 a window spans
`scale` blocks a side so the output window stays ~1024), so each compressed block of each input is decoded
exactly once. Each task holds its source window (what is read from every input) and its output window.
"""

from __future__ import annotations

import datetime as _dt
import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from affine import Affine
from rasterio.enums import Resampling
from rasterio.errors import RasterioIOError
from rasterio.windows import Window, subdivide

from s2desktop.core.baseline import offset_for_baseline
from s2desktop.core.errors import InvalidInputError, RasterError
from s2desktop.core.fsutil import check_output_file
from s2desktop.core.methods import Median, Rule, parse_method
from s2desktop.core.rasterinfo import gdal_error_text, open_raster, scene_metadata
from s2desktop.core.scenefiles import parse_band_filename, scl_files

log = logging.getLogger(__name__)

BANDS = ("B04", "B03", "B02")  # output order R, G, B
SCL_MASKED_CLASSES = (0, 1, 3, 8, 9, 10)
VALID_SCALES = (1, 2, 4, 8)
TARGET_WINDOW = 1024
COMPRESSIONS = ("ZSTD", "DEFLATE")  # of the COG; why ZSTD is the default: see cog.py
MAX_DATES = 255  # the count raster is uint8


@dataclass(frozen=True)
class WindowTask:
    """One window: read `source` from every input, write the result at `output` in the output grid.

    For scale > 1 `source` is the output window's area on the input grid: fractional when the size does not
    divide by the scale, as a whole-image decimated read makes it.
    """

    index: int
    source: Window
    output: Window
    skip: frozenset[int] = frozenset()  # dates whose data footprint does not touch this window
    rule: Rule = Median()  # how the window's dates become one value per pixel and band


@dataclass(frozen=True)
class CompositePlan:
    """What to composite and how, decided and checked before any decoding. Sent as is to the spawned workers."""

    bands: tuple[tuple[str, ...], ...]  # [band][date] input paths; bands in BANDS order
    scl: tuple[str | None, ...]  # [date] scene classification to mask with, or None
    offsets: tuple[tuple[int, ...], ...]  # [band][date] DN offset: 0 or -1000
    baselines: tuple[str | None, ...]  # [date] processing baseline, when known
    scale: int
    mask: bool
    crs: Any
    out_transform: Affine
    out_shape: tuple[int, int]
    tasks: tuple[WindowTask, ...]
    output: Path
    count_path: Path | None
    workers: int  # 0: in this process
    threads: int  # GDAL threads per worker
    compress: str
    tags: dict[str, str] = field(default_factory=dict)
    clip: dict | None = None  # a GeoJSON (Multi)Polygon in the output CRS: pixels outside it are nodata
    rule: Rule = Median()
    date_path: Path | None = None  # the medoid's date band: where it is written
    date_days: tuple[int, ...] = ()  # [date] its acquisition date, days since 1970-01-01 (with date_path)

    @property
    def dates(self) -> int:
        return len(self.bands[0])

    @property
    def masked_dates(self) -> int:
        return sum(1 for s in self.scl if s)


def make_plan(red: Sequence, green: Sequence, blue: Sequence, output, *, workers: int | None = None,
              scale: int = 1, mask: str = "auto", count_path=None, offsets=None, overwrite: bool = False,
              scl: Sequence | None = None, window_size: int = TARGET_WINDOW,
              compress: str = "ZSTD", clip: dict | None = None, tags: dict | None = None,
              method: Rule | str = Median(), date_path=None) -> CompositePlan:
    """Check everything and plan the composite (see `composite()` for the arguments); S2Error subclasses."""
    paths = [[Path(p) for p in (lst or [])] for lst in (red, green, blue)]
    offsets_given, compress, workers = _check_arguments(paths, scale, mask, compress, offsets, workers)
    rule = _check_rule(method, date_path)
    output = Path(output)
    count_path = Path(count_path) if count_path else None
    date_path = Path(date_path) if date_path else None
    _check_outputs(output, count_path, overwrite, [p for lst in paths for p in lst], date_path)
    ref = _open_inputs([p for lst in paths for p in lst])
    metas = [scene_metadata(p) for p in paths[0]]  # per date, from the red file: a date's bands share a scene
    offs, sources = _offsets(paths, metas, offsets_given)
    scl_paths = _scl_masks(paths[0], scl, ref) if mask == "auto" else [None] * len(metas)
    out_shape, out_transform, tasks = _plan_tasks(ref, scale, window_size, metas, rule)
    own_tags = _tags(paths, metas, offs, sources, scl_paths if mask == "auto" else None, scale)
    return CompositePlan(
        bands=tuple(tuple(str(p) for p in lst) for lst in paths), scl=tuple(scl_paths),
        offsets=tuple(tuple(o) for o in offs), baselines=tuple(m["baseline"] for m in metas), scale=scale,
        mask=mask == "auto", crs=ref["crs"], out_transform=out_transform, out_shape=out_shape, tasks=tasks,
        output=output, count_path=count_path, workers=workers,
        threads=max(1, (os.cpu_count() or 1) // max(1, workers)), compress=compress,
        tags={**_rule_tags(own_tags, rule, date_path), **{str(k): str(v) for k, v in (tags or {}).items()}},
        clip=clip, rule=rule, date_path=date_path,
        date_days=_date_days(paths[0], metas) if date_path else (),
    )


# --- checks -----------------------------------------------------------------------------------------------------


def _check_arguments(paths, scale, mask, compress, offsets, workers):
    """InvalidInputError for arguments wrong on their face. -> (offsets[band][date], compress, workers)."""
    names = ("red", "green", "blue")
    if not any(paths):
        raise InvalidInputError("no input files given")
    for name, lst in zip(names, paths):
        if not lst:
            raise InvalidInputError(f"no {name} input files given")
    counts = {name: len(lst) for name, lst in zip(names, paths)}
    if len(set(counts.values())) != 1:
        raise InvalidInputError(
            "bands have different numbers of dates: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    n = len(paths[0])
    if n > MAX_DATES:
        raise InvalidInputError(f"{n} dates is more than the 255 a composite supports")
    if scale not in VALID_SCALES:
        raise InvalidInputError(f"scale {scale} is not one of 1, 2, 4, 8")
    if mask not in ("auto", "none"):
        raise InvalidInputError(f"mask {mask!r} is not 'auto' or 'none'")
    compress = str(compress).upper()
    if compress not in COMPRESSIONS:
        raise InvalidInputError(f"compression {compress!r} is not one of {', '.join(COMPRESSIONS)}")
    offsets_given = _normalise_offsets(offsets, n)
    workers = int((os.cpu_count() or 1) if workers is None else workers)
    if workers < 0:
        raise InvalidInputError("workers must be 0 or more")
    return offsets_given, compress, workers


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


def _open_inputs(inputs: list[Path]) -> dict:
    """Open every input once, by content, with consistency checks naming the odd file. -> the first's grid."""
    ref = None
    for p in inputs:
        with open_raster(p) as ds:
            if ds.count < 1:
                raise RasterError(f"{p}: has no bands")
            if ds.dtypes[0] != "uint16":
                raise RasterError(f"{p}: is {ds.dtypes[0]}, expected uint16 Sentinel-2 band data")
            if ref is None:
                ref = {"path": p, "crs": ds.crs, "transform": ds.transform, "shape": (ds.height, ds.width),
                       "block": ds.block_shapes[0]}
            elif (ds.height, ds.width) != ref["shape"]:
                raise RasterError(f"{p}: is {ds.width}x{ds.height} px, the others {ref['shape'][1]}x"
                                  f"{ref['shape'][0]} (first: {ref['path'].name})")
            elif ds.crs != ref["crs"]:
                raise RasterError(f"{p}: CRS {ds.crs} differs from {ref['crs']} of {ref['path'].name}")
            elif not ds.transform.almost_equals(ref["transform"], precision=1e-6):
                raise RasterError(f"{p}: georeferencing (transform) differs from {ref['path'].name}")
            _probe_last_block(ds, p)
    return ref


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


# --- offsets ----------------------------------------------------------------------------------------------------


def _normalise_offsets(offsets, n: int) -> list[list[int | None]]:
    """-> offsets[band][date]; None entries mean 'from metadata'."""
    if offsets is None:
        return [[None] * n for _ in range(3)]
    if isinstance(offsets, (int, np.integer)):
        offsets = [int(offsets)]
    offsets = [int(o) for o in offsets]
    for o in offsets:
        if o not in (0, -1000):
            raise InvalidInputError(f"offset {o} is not supported: use 0 (baseline < 04.00) or -1000 (>= 04.00)")
    if len(offsets) == 1:
        return [[offsets[0]] * n for _ in range(3)]
    if len(offsets) == n:
        return [list(offsets) for _ in range(3)]
    if len(offsets) == 3 * n:
        return [offsets[i * n:(i + 1) * n] for i in range(3)]
    raise InvalidInputError(
        f"{len(offsets)} offsets given for {n} date(s): give one, one per date ({n}) or one per file ({3 * n})")


def _offsets(paths, metas, offsets_given) -> tuple[list[list[int]], list[str]]:
    """-> (offset[band][date], where each date's offset came from). The scene's own metadata decides; a given
    offset fills in where the baseline is unknown. Refuses a date whose band files are known to differ."""
    n = len(metas)
    offs: list[list[int]] = [[0] * n for _ in range(3)]
    sources, unknown, overridden = [], [], []
    for d in range(n):
        scenes_of_date = []
        for b in range(3):
            md = metas[d] if b == 0 else scene_metadata(paths[b][d])
            scenes_of_date.append(_scene_identity(paths[b][d], md))
            o, given = offset_for_baseline(md["baseline"]), offsets_given[b][d]
            if o is not None:
                src = md["source"] or "metadata"
                if given is not None and given != o:
                    overridden.append(paths[b][d])
            elif given is not None:
                o, src = given, "--offset"
            else:
                unknown.append(paths[b][d])
                o, src = 0, "assumed (baseline unknown)"
            offs[b][d] = o
            if b == 0:
                sources.append(src)
        _check_same_scene(d, [paths[b][d] for b in range(3)], scenes_of_date)
    if unknown:
        log.warning("processing baseline unknown for %d file(s) (e.g. %s): assuming offset 0; pass --offset",
                    len(unknown), unknown[0].name)
    if overridden:
        log.warning("--offset ignored for %d file(s) whose scene metadata gives the baseline (e.g. %s)",
                    len(overridden), overridden[0].name)
    return offs, sources


def _scene_identity(path: Path, md: dict) -> tuple | None:
    """(tile, date, sequence or None) of a band file's scene when its name or metadata tell; else None."""
    parsed = parse_band_filename(path)
    if parsed:
        return parsed["tile"], parsed["date"], parsed["seq"]
    if md.get("tile") and md.get("date"):
        return str(md["tile"]), str(md["date"]), None
    return None


def _check_same_scene(d: int, files: list[Path], ids: list[tuple | None]) -> None:
    """InvalidInputError when the red, green and blue files of one date are known to be different scenes."""
    known = [(f, i) for f, i in zip(files, ids) if i is not None]
    for f, i in known[1:]:
        f0, i0 = known[0]
        same = i[:2] == i0[:2] and (i[2] is None or i0[2] is None or i[2] == i0[2])
        if not same:
            def label(x):
                return "_".join(str(v) for v in x if v is not None)

            raise InvalidInputError(
                f"date {d + 1}: {f0.name} is scene {label(i0)} but {f.name} is {label(i)}: give the red, green "
                "and blue files in the same date order")


# --- scene classification masks ---------------------------------------------------------------------------------


def _scl_masks(red: list[Path], scl: Sequence | None, ref: dict) -> list[str | None]:
    """Per date the SCL to mask with: the `scl` list given (each must fit), else one found beside the inputs
    (one that does not fit the bands is left out, not fatal)."""
    n = len(red)
    if scl is not None:
        if len(scl) != n:
            raise InvalidInputError(f"{len(scl)} SCL files given for {n} dates")
        scl_paths = [str(s) if s else None for s in scl]
        for s in scl_paths:
            if s and not _scl_fits(s, ref):
                raise RasterError(f"{s}: scene classification does not cover the band files' grid")
        return scl_paths
    scl_paths = [str(s) if (s := find_scl(p)) else None for p in red]
    for i, s in enumerate(scl_paths):
        if s and not _scl_fits(s, ref):
            log.warning("ignoring %s: its CRS or extent does not match the band files", s)
            scl_paths[i] = None
    return scl_paths


def find_scl(band_path) -> Path | None:
    """The L2A scene classification (SCL) file of a band file's scene, or None.

    Knows the download layout (`{out}/SCL/{tile}_{date}_{seq}_SCL.*` beside `{out}/red/...`), the L2A JP2
    bucket layout (`R10m/B04.jp2` -> `R20m/SCL.jp2`) and the COG layout (`SCL.tif` in the same folder).
    """
    p = Path(band_path)
    parsed = parse_band_filename(p)
    candidates: list[Path] = []
    if parsed:  # downloaded: {out}/SCL/{scene}_SCL.* beside {out}/red/, or in the band's own folder
        candidates += scl_files(p.parent.parent, parsed["scene_id"])
        candidates += sorted(p.parent.glob(f"{parsed['scene_id']}_SCL.*"))
    if p.parent.name in ("R10m", "R20m", "R60m"):
        candidates += [p.parent.parent / "R20m" / "SCL.jp2", p.parent.parent / "R60m" / "SCL.jp2"]
    candidates.append(p.parent / f"SCL{p.suffix}")
    candidates += [p.parent / "SCL.tif", p.parent / "SCL.jp2"]
    for c in candidates:
        if c.is_file() and not c.name.endswith((".aux.xml", ".part", ".tmp")):
            return c
    return None


def _scl_fits(path, ref) -> bool:
    """An SCL raster usable for the bands: same CRS, covering the bands' extent (any resolution)."""
    from rasterio.transform import array_bounds

    with open_raster(path) as ds:
        if ds.crs != ref["crs"]:
            return False
        left, bottom, right, top = ds.bounds
    h, w = ref["shape"]
    b_left, b_bottom, b_right, b_top = array_bounds(h, w, ref["transform"])
    tol = abs(ref["transform"].a)
    return left <= b_left + tol and right >= b_right - tol and bottom <= b_bottom + tol and top >= b_top - tol


# --- windows ----------------------------------------------------------------------------------------------------


def _plan_tasks(ref: dict, scale: int, target: int, metas: list[dict], rule: Rule = Median()):
    """-> (output shape, output transform, the window tasks with the dates each can skip)."""
    height, width = ref["shape"]
    step, out_shape, cells = _plan_windows(height, width, ref["block"], scale, target)
    out_h, out_w = out_shape
    # The output grid covers the inputs' extent exactly (like GDAL's overviews): pixels are `scale` source
    # pixels a side when the size divides by `scale`, a little less otherwise (10980 / 8 -> 1373 px).
    pitch = (width / out_w, height / out_h)
    out_transform = ref["transform"] @ Affine.scale(*pitch)
    skips = _footprint_skips([m["data_geometry"] for m in metas], ref["transform"], ref["crs"],
                             [src for src, _out in cells], step, dilate=pitch != (scale, scale))
    tasks = []
    for i, ((src, out), skip) in enumerate(zip(cells, skips)):
        if scale > 1:  # the source area of the output window on the output grid (fractional where it must be)
            src = Window(out.col_off * pitch[0], out.row_off * pitch[1], out.width * pitch[0], out.height * pitch[1])
        tasks.append(WindowTask(i, src, out, skip, rule))
    return out_shape, out_transform, tuple(tasks)


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


def _tags(paths, metas, offs, offset_sources, scl_paths: list | None, scale: int) -> dict[str, str]:
    """The product's GeoTIFF tags: what went in and how it was combined. scl_paths None: masking is off."""
    tiles = sorted({m["tile"] for m in metas if m["tile"]})
    return {
        "S2DESKTOP_PRODUCT": "temporal median composite",
        "TILE": ",".join(tiles) if tiles else "unknown",
        "DATES": ",".join(str(m.get("date") or p.stem) for p, m in zip(paths[0], metas)),
        "DATE_COUNT": str(len(metas)),
        "BASELINES": ",".join(m["baseline"] or "unknown" for m in metas),
        "OFFSETS_RED": ",".join(str(o) for o in offs[0]),
        "OFFSETS_GREEN": ",".join(str(o) for o in offs[1]),
        "OFFSETS_BLUE": ",".join(str(o) for o in offs[2]),
        "OFFSET_SOURCES": ",".join(offset_sources),
        "HARMONISATION": "inputs with offset -1000 (baseline >= 04.00) shifted by -1000 DN (min 1); output on "
        "the pre-04.00 scale: reflectance = DN / 10000",
        "OUTPUT_OFFSET": "0",
        "MEDIAN": "per pixel median of observations valid in all three bands (nonzero, not masked); even count: "
        "mean of the two middle values rounded half up; none valid: 0",
        "MASK": "none" if scl_paths is None else "SCL classes " + ",".join(map(str, SCL_MASKED_CLASSES))
        + " masked on " + str(sum(1 for s in scl_paths if s)) + " date(s)",
        "SCALE": str(scale),
        "SOURCES_RED": ",".join(p.name for p in paths[0]),
        "SOURCES_GREEN": ",".join(p.name for p in paths[1]),
        "SOURCES_BLUE": ",".join(p.name for p in paths[2]),
        "CREATED": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


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


def _date_days(red: list[Path], metas: list[dict]) -> tuple[int, ...]:
    """Per date its acquisition date in days since 1970-01-01, for the date band; a date unknown is an error."""
    days = []
    for p, m in zip(red, metas):
        try:
            days.append((_dt.date.fromisoformat(str(m.get("date"))[:10]) - EPOCH).days)
        except ValueError:
            raise InvalidInputError(f"{p.name}: its acquisition date is unknown (no scene metadata or name), so "
                                    "a date band cannot name it") from None
    return tuple(days)
