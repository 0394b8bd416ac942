"""The composite's inputs as values: one :class:`Observation` per acquisition, a :class:`Stack` of them.

The job already knows each date's facts -- the acquisition, where each band and its mask live, the baseline and
so the DN offset, the data footprint, the objects it came from -- and hands them on as values; the compositor
reads them and never a file name. Three builders fill a stack:

- :func:`from_downloads`: a tile's downloaded scenes (`pipeline.Plan.inputs`), from the job's `Scene`s;
- `streaming.build_inputs`: an area's acquisitions, one VRT per band on the area's grid;
- :func:`from_files`: loose band files (the command line's files mode) -- the one place that reads side-car
  metadata (`rasterinfo.scene_metadata`) or looks for a scene classification beside a file (:func:`find_scl`).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Sequence

import numpy as np

from s2desktop.core.areas import OutputGrid
from s2desktop.core.bands import TRUE_COLOUR
from s2desktop.core.baseline import offset_for_baseline
from s2desktop.core.errors import InvalidInputError
from s2desktop.core.layouts import QI_BANDS  # the L1C cloud masks (core.qimasks), raster first
from s2desktop.core.rasterinfo import open_raster, scene_metadata
from s2desktop.core.remotereads import RemoteReads
from s2desktop.core.scenefiles import parse_band_filename, scl_files

log = logging.getLogger(__name__)

__all__ = ["MASK_BANDS", "QI_BANDS", "MASK_CHOICES", "mask_bands_for", "with_mask_choice", "RasterRef", "Provenance", "Observation", "Stack", "from_downloads", "from_files",
           "find_scl", "mask_covers", "orbit_of", "scene_offset", "RGB", "MASK_BAND", "SCENE_METADATA", "GIVEN", "ASSUMED"]

RGB = TRUE_COLOUR  # the default composite's R, G, B (B04, B03, B02); any bands: core.bands
MASK_BAND = "SCL"  # the L2A scene classification
MASK_BANDS = (MASK_BAND,) + QI_BANDS  # what masks a scene's clouds, in order of preference
MASK_CHOICES = {"auto": MASK_BANDS, "scl": (MASK_BAND,), "qi": QI_BANDS, "none": ()}  # --mask: the bands it takes


def mask_bands_for(choice: str) -> tuple[str, ...]:
    """The mask bands a --mask choice takes: 'auto' a scene's SCL, else its L1C cloud mask; 'scl'; 'qi'; 'none'."""
    try:
        return MASK_CHOICES[choice]
    except KeyError:
        raise InvalidInputError(f"mask {choice!r} is not one of {', '.join(MASK_CHOICES)}") from None


def with_mask_choice(stack: "Stack", choice: str) -> "Stack":
    """The stack with only the masks a --mask choice takes: an observation whose mask is of another kind is
    unmasked (the window's choice changed after the download; a mask never downloaded cannot be added here)."""
    allowed = mask_bands_for(choice)
    obs = tuple(o if o.mask is None or o.mask.band in allowed else replace(o, mask=None) for o in stack.observations)
    return replace(stack, observations=obs)


SCENE_METADATA = "scene metadata"  # where an offset came from: the baseline the search read
GIVEN = "--offset"
ASSUMED = "assumed (baseline unknown)"
_ORBIT_RE = re.compile(r"_R(\d{3})_")


@dataclass(frozen=True)
class RasterRef:
    """One band's raster: a local path or a GDAL path/URI (a VRT, a COG), the band it holds, and the overview
    level to read (None: the raster as it is)."""

    path: str
    band: str
    overview: int | None = None


@dataclass(frozen=True)
class Provenance:
    """Where one band of an observation came from: the object (key + ETag) and/or the local file (path + size)."""

    band: str
    key: str | None = None
    etag: str | None = None
    path: str | None = None
    size: int | None = None

    @property
    def label(self) -> str:
        """The file name, else the object key: what the composite's SOURCES_* tags list."""
        return Path(self.path).name if self.path else (self.key or "")


@dataclass(frozen=True)
class Observation:
    """One acquisition as the compositor sees it: its rasters per band, its mask, and its facts."""

    date: str  # ISO date of the acquisition
    rasters: dict = field(hash=False)  # {band: RasterRef}
    mask: RasterRef | None = None  # the scene classification (SCL) to mask clouds with, or None: unmasked
    offset: int = 0  # DN offset of its bands: 0 (baseline < 04.00) or -1000
    offset_source: str = ASSUMED  # where the offset came from: SCENE_METADATA, a side-car file, GIVEN, ASSUMED
    baseline: str | None = None
    orbit: int | None = None  # relative orbit
    scenes: tuple[str, ...] = ()  # the scene ids it merges (one per tile)
    tiles: tuple[str, ...] = ()
    footprint: dict | None = field(default=None, hash=False)  # GeoJSON data footprint in the rasters' CRS
    provenance: tuple[Provenance, ...] = ()


@dataclass(frozen=True)
class Stack:
    """The observations to composite, in date order, the bands to composite (output order) and the grid their
    rasters share (an area's `OutputGrid`; None: the rasters' own). remote: when the rasters are documents read
    through /vsis3/ (an area on a Dask cluster, `core.clusterinputs`), the documents and GDAL options that open
    them anywhere; None: paths this machine (and workers sharing its file system) open as they are."""

    observations: tuple[Observation, ...]
    bands: tuple[str, ...] = RGB
    grid: OutputGrid | None = None
    remote: RemoteReads | None = None

    def paths(self, band: str) -> tuple[str, ...]:
        """The raster of ``band`` of every observation, in date order."""
        return tuple(o.rasters[band].path for o in self.observations)

    @property
    def dates(self) -> tuple[str, ...]:
        return tuple(o.date for o in self.observations)

    @property
    def masked(self) -> int:
        """How many observations carry a mask."""
        return sum(1 for o in self.observations if o.mask is not None)

    def default_name(self) -> str:
        if not self.observations:
            return "composite.tif"
        tiles = sorted({t for o in self.observations for t in o.tiles})
        return f"{','.join(tiles) or 'composite'}_{min(self.dates)}_{max(self.dates)}_median.tif"


def orbit_of(product_name: str | None) -> int | None:
    """The relative orbit in a product name (``..._R022_...``), or None."""
    m = _ORBIT_RE.search(product_name or "")
    return int(m.group(1)) if m else None


def scene_offset(baseline: str | None) -> tuple[int, str]:
    """(DN offset, where it came from) of a scene whose baseline the search read (None: unknown, assumed 0)."""
    o = offset_for_baseline(baseline)
    return (0, ASSUMED) if o is None else (o, SCENE_METADATA)


# --- a tile's downloads -------------------------------------------------------------------------------------------


def from_downloads(scenes: Sequence, tasks: dict, bands: Sequence[str] = RGB, mask: bool = True) -> Stack:
    """The stack of a tile's downloaded scenes: ``tasks`` {(scene_id, band): DownloadTask} of the files on disk,
    every scene with each of ``bands`` (its mask too when ``mask`` and downloaded: the SCL, else an L1C cloud
    mask)."""
    obs = []
    for s in scenes:
        rasters = [tasks[(s.scene_id, b)] for b in bands]
        scl = next((t for b in MASK_BANDS if (t := tasks.get((s.scene_id, b)))), None) if mask else None
        offset, source = scene_offset(s.baseline)
        got = rasters + ([scl] if scl else [])
        obs.append(Observation(
            date=s.date.isoformat(), rasters={t.band: RasterRef(str(t.dest), t.band) for t in rasters},
            mask=RasterRef(str(scl.dest), scl.band) if scl else None, offset=offset, offset_source=source,
            baseline=s.baseline, orbit=orbit_of(s.product_name), scenes=(s.scene_id,), tiles=(s.tile,),
            footprint=s.data_geometry,
            provenance=tuple(Provenance(t.band, t.key, t.etag, str(t.dest), t.size) for t in got)))
    return Stack(tuple(obs), tuple(bands))


# --- loose files --------------------------------------------------------------------------------------------------


def from_files(red: Sequence, green: Sequence, blue: Sequence, *, offsets=None, mask: str = "auto",
               scl: Sequence | None = None) -> Stack:
    """The stack of co-registered band files, one per date in the same order per band (files mode).

    Each date's facts from its files' side-car metadata (`rasterinfo.scene_metadata`): the baseline decides the
    offset; ``offsets`` (one value, one per date or one per file) fills in where it is unknown. mask 'auto': the
    ``scl`` given per date, else an SCL found beside the red file (`find_scl`; one that does not cover the
    bands is left out with a warning); 'none': unmasked. InvalidInputError for inputs wrong on their face."""
    paths = [[Path(p) for p in (lst or [])] for lst in (red, green, blue)]
    _check_counts(paths)
    scl_masks = MASK_BAND in mask_bands_for(mask)  # loose files: an SCL beside them, never an L1C mask
    n = len(paths[0])
    given = _normalise_offsets(offsets, n)
    metas = [[scene_metadata(p) for p in lst] for lst in paths]  # [band][date]
    masks = _masks(paths[0], scl) if scl_masks else [None] * n
    offs, sources = _offsets(paths, metas, given)
    obs = []
    for d in range(n):
        _check_same_scene(d, [paths[b][d] for b in range(3)], [_scene_identity(paths[b][d], metas[b][d])
                                                                for b in range(3)])
        md = metas[0][d]  # a date's bands share a scene: its facts from the red file
        obs.append(Observation(
            date=str(md.get("date") or paths[0][d].stem), rasters={b: RasterRef(str(paths[i][d]), b)
                                                                  for i, b in enumerate(RGB)},
            mask=RasterRef(masks[d], MASK_BAND) if masks[d] else None, offset=offs[d], offset_source=sources[d],
            baseline=md["baseline"], orbit=orbit_of(md.get("product_name")), tiles=(md["tile"],) if md["tile"]
            else (), footprint=md["data_geometry"],
            provenance=tuple(Provenance(b, path=str(paths[i][d]), size=_size(paths[i][d]))
                             for i, b in enumerate(RGB))))
    return Stack(tuple(obs), RGB)


def _check_counts(paths: list[list[Path]]) -> None:
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


def _size(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except OSError:
        return None  # the compositor names the missing file


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
        per_file = [offsets[i * n:(i + 1) * n] for i in range(3)]
        for d in range(n):
            if len({per_file[b][d] for b in range(3)}) != 1:
                raise InvalidInputError(f"date {d + 1}: different offsets for its red, green and blue files: "
                                        "a date's bands share one scene and one offset")
        return per_file
    raise InvalidInputError(
        f"{len(offsets)} offsets given for {n} date(s): give one, one per date ({n}) or one per file ({3 * n})")


def _offsets(paths, metas, given) -> tuple[list[int], list[str]]:
    """-> (offset per date, where it came from). The scene's own metadata decides (any of the date's files that
    knows its baseline); a given offset fills in where the baseline is unknown."""
    offs, sources, unknown, overridden = [], [], [], []
    for d in range(len(paths[0])):
        known = [(b, metas[b][d]) for b in range(3) if offset_for_baseline(metas[b][d]["baseline"]) is not None]
        if known:
            b, md = known[0]
            o, src = offset_for_baseline(md["baseline"]), md["source"] or "metadata"
            overridden += [paths[b][d] for b in range(3) if given[b][d] is not None and given[b][d] != o]
        elif given[0][d] is not None:
            o, src = given[0][d], GIVEN
        else:
            unknown.append(paths[0][d])
            o, src = 0, ASSUMED
        offs.append(o)
        sources.append(src)
    if unknown:
        log.warning("processing baseline unknown for %d date(s) (e.g. %s): assuming offset 0; pass --offset",
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


def _masks(red: list[Path], scl: Sequence | None) -> list[str | None]:
    """Per date the SCL to mask with: the `scl` list given (the compositor checks each fits), else one found
    beside the red file (one that does not cover the bands is left out, not fatal)."""
    if scl is not None:
        if len(scl) != len(red):
            raise InvalidInputError(f"{len(scl)} SCL files given for {len(red)} dates")
        return [str(s) if s else None for s in scl]
    found = []
    for p in red:
        s = find_scl(p)
        if s is not None and not _covers_file(s, p):
            log.warning("ignoring %s: its CRS or extent does not match the band files", s)
            s = None
        found.append(str(s) if s else None)
    return found


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


def _covers_file(mask_path, band_path) -> bool:
    """Whether a mask raster covers a band file's grid (a band file that cannot be read: left to the
    compositor, which names it)."""
    try:
        with open_raster(band_path) as ds:
            crs, transform, shape = ds.crs, ds.transform, (ds.height, ds.width)
    except Exception:
        return True
    return mask_covers(mask_path, crs, transform, shape)


def mask_covers(path, crs, transform, shape: tuple[int, int]) -> bool:
    """A mask raster usable for bands on a grid: same CRS, covering the grid's extent (any resolution)."""
    from rasterio.transform import array_bounds

    with open_raster(path) as ds:
        if ds.crs != crs:
            return False
        left, bottom, right, top = ds.bounds
    h, w = shape
    b_left, b_bottom, b_right, b_top = array_bounds(h, w, transform)
    tol = abs(transform.a)
    return left <= b_left + tol and right >= b_right - tol and bottom <= b_bottom + tol and top >= b_top - tol
