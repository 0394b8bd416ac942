"""The one job: a request -> a plan (search, the files to fetch with their masks, the composite inputs) -> run.

The command line, the headless demo and the window all build a :class:`Request` and run a :class:`Job`; they
render its :class:`~s2desktop.core.progress.Progress` events and never wire search, download and composite
themselves::

    job = Job(Request(SourceSpec("l2a"), tile="33UUP", start=d0, end=d1, output=Path("out.tif")), progress=print)
    result = job.run()                      # search -> plan -> download -> composite

or step by step, as the window does (the user picks scenes between search and download, and the composite runs
in another process)::

    scenes = job.search()
    plan = job.plan(chosen)                 # band files + SCL masks -> DownloadTasks, bytes to fetch
    job.download(plan)                      # verified, resumable, byte progress
    stack = plan.inputs()                   # a core.stack.Stack of observations: plain values, picklable
    run_composite(stack, options)           # in this process or a worker process

Every step checks the cancel object between its parts and raises CancelledError; nothing partial is left.
"""

from __future__ import annotations

import datetime as _dt
import os
import shutil
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path

from s2desktop.core import areas, catalog, clusterinputs, download, fetch, pricing, stack, streaming
from s2desktop.core.areas import Area
from s2desktop.core.arrivals import Arrivals
from s2desktop.core.bands import parse_bands
from s2desktop.core.errors import InvalidInputError, NotFoundError
from s2desktop.core.maskrules import DEFAULT_CLASSES
from s2desktop.core.methods import Median, Rule
from s2desktop.core.progress import Progress, ProgressFn, check_cancel, emit
from s2desktop.core.sources import Source, resolve_source
from s2desktop.core.stack import MASK_BAND, MASK_BANDS, RGB, Stack, mask_bands_for
from s2desktop.core.windowcache import DEFAULT_LIMIT, WindowCache

__all__ = ["SourceSpec", "Request", "CompositeOptions", "Plan", "Job", "JobResult", "run_composite", "RGB_BANDS",
           "MASK_BAND"]

RGB_BANDS = RGB  # the composite's R, G, B; MASK_BAND (SCL) is fetched with them when the request's mask is 'auto'


@dataclass(frozen=True)
class SourceSpec:
    """Where scenes come from, as plain values: 'l1c' | 'l2a' | 'cogs' | 'demo' | a folder path."""

    name: str = "l1c"
    endpoint_url: str | None = None
    bucket: str | None = None
    profile: str | None = None

    def resolve(self, progress: ProgressFn | None = None) -> Source:
        """The Source; 'demo' generates the built-in archive on first use (its progress as 'archive' events)."""
        if self.name.strip().lower() == "demo":
            from s2desktop.core.demo import ensure_demo_archive  # the archive writer: only when asked for

            root = ensure_demo_archive(progress=progress)
            return replace(resolve_source(str(root)), name="demo")
        return resolve_source(self.name, endpoint_url=self.endpoint_url, bucket=self.bucket,
                              profile=self.profile)


@dataclass(frozen=True)
class CompositeOptions:
    """How to composite: everything but the inputs (the stack, masks included). Plain values (sent to the
    window's worker process)."""

    output: str
    scale: int = 1
    workers: int | None = None  # composite processes (None: all cores; 0: in this process)
    count_path: str | None = None
    compress: str = "ZSTD"
    overwrite: bool = False
    window_size: int | None = None
    clip: dict | None = None  # a GeoJSON (Multi)Polygon in the inputs' CRS: pixels outside are nodata
    tags: dict | None = None  # GeoTIFF tags said by the caller (an area's tiles, area, grid): over the compositor's
    method: Rule = Median()  # the per-pixel rule (compositing.parse_method reads 'quantile:25' etc.)
    date_band: str | None = None  # with the medoid: where to write each pixel's date (days since 1970-01-01)
    # How a scene's mask is applied (which mask: Request.mask): the SCL classes masked, metres grown around them
    mask_classes: tuple[int, ...] = DEFAULT_CLASSES
    mask_buffer: float = 0.0
    command: tuple[str, ...] | None = None  # the command line that asked for it, for the provenance record

    @property
    def count_file(self) -> str:
        """Where the count of valid observations goes: the path asked for, else ``OUT_count.tif`` beside it."""
        if self.count_path:
            return str(self.count_path)
        out = Path(self.output)
        return str(out.with_name(f"{out.stem}_count{out.suffix or '.tif'}"))

    @property
    def record_file(self) -> str:
        """Where the provenance record goes: ``OUT.json`` beside the output."""
        return str(Path(self.output).with_suffix(".json"))
    scheduler: str | None = None  # the windows on a Dask cluster: its scheduler's address, or 'local'


@dataclass(frozen=True)
class Request:
    """One job's worth of choices. ``scenes`` are the chosen acquisitions (None: every one the search finds)."""

    source: SourceSpec = field(default_factory=SourceSpec)
    tile: str | None = None
    area: Area | None = None  # instead of a tile: streamed from COGs on its own grid (resolution m, crs)
    resolution: float | None = 10.0  # None: the finest the scenes under the area have
    crs: str | None = None
    start: _dt.date | None = None
    end: _dt.date | None = None
    max_cloud: float | None = None
    scenes: tuple | None = None
    bands: tuple[str, ...] = RGB_BANDS
    mask: str = "auto"  # 'auto': each scene's SCL, else its L1C cloud mask | 'scl' | 'qi' | 'none' (the one place)
    download_dir: Path = Path("tmp")
    download_workers: int | None = None  # files at once (the connection budget is split by core.download)
    composite: CompositeOptions | None = None  # None: search and download only
    cache_dir: Path | None = None  # an area's fetched windows (None: the user cache folder's 'areas')
    cache_limit: int = DEFAULT_LIMIT  # bytes the area cache may hold; the least recently used go first

    def __post_init__(self):  # the bands as names, checked before any work: one-line InvalidInputError
        object.__setattr__(self, "bands", parse_bands(self.bands, products=self.composite is None))


@dataclass(frozen=True)
class Plan:
    """What a request needs on disk: one download task per scene and band, plus the SCL masks."""

    scenes: tuple
    tasks: tuple  # DownloadTask, bands then masks
    mask: bool
    bands: tuple[str, ...] = RGB_BANDS  # the composite's, in output order

    @property
    def bytes_total(self) -> int:
        return sum(t.size or 0 for t in self.tasks)

    def inputs(self) -> Stack:
        """The stack of the scenes whose bands are all on disk, in date order (with their SCL when masked).

        A scene with a band missing (a file the user cancelled) is left out; its SCL is used when it is there.
        """
        files = {(t.scene.scene_id, t.band): t for t in self.tasks if Path(t.dest).is_file()}
        complete = [s for s in self.scenes if all((s.scene_id, b) in files for b in self.bands)]
        if not complete:
            which = "red, green and blue" if self.bands == RGB_BANDS else ", ".join(self.bands)
            raise NotFoundError(f"none of the scenes has its {which} bands downloaded")
        return stack.from_downloads(complete, files, self.bands, mask=self.mask)


@dataclass(frozen=True)
class JobResult:
    scenes: tuple
    downloads: tuple  # DownloadResult
    inputs: Stack | None
    composite: object | None  # CompositeResult


@dataclass(frozen=True)
class AreaInputs:
    """An area's composite inputs: the stack on its grid, the options it is composited with (its clip and
    tags), the scenes it reads (each acquisition's, in mosaic order) and what was downloaded for it."""

    inputs: Stack
    options: CompositeOptions
    scenes: tuple
    downloads: tuple
    arrivals: object | None = None  # core.arrivals.Arrivals: the windows still arriving from remote COGs


def run_composite(inputs: Stack, options: CompositeOptions, progress: ProgressFn | None = None, cancel=None,
                  request: Request | None = None, arrivals=None):
    """The composite step: the same call from the command line, the demo and the window's worker process.

    Beside the output it always writes the count of valid observations per pixel (``options.count_file``) and,
    once the composite is published, its provenance record (``OUT.json``, `core.provenance`): the stack's own
    files, or for an area the job's ``request`` (with the scenes it used) so that it can run again. ``arrivals``:
    an area's windows still on their way (`core.arrivals`), each window composited as soon as its are in."""
    from s2desktop.core import provenance
    from s2desktop.core.compositing import composite
    from s2desktop.core.fsutil import check_output_file

    check_output_file(options.record_file, overwrite=options.overwrite, what="provenance record")
    kwargs = {} if options.window_size is None else {"window_size": options.window_size}
    hashing = provenance.hash_loose_inputs(inputs, cancel) if request is None or request.area is None else None
    if arrivals is not None:
        progress = arrivals.progress  # the fetch's bytes first, then the windows
    inputs = clusterinputs.for_workers(inputs, options.scheduler, request)  # remote COGs: read on the workers
    result = composite(
        inputs, options.output, workers=options.workers, scale=options.scale, count_path=options.count_file,
        overwrite=options.overwrite, progress=progress, cancel=cancel, compress=options.compress,
        clip=options.clip, tags=options.tags, method=options.method, date_path=options.date_band,
        mask_classes=options.mask_classes, mask_buffer=options.mask_buffer, scheduler=options.scheduler,
        arrivals=arrivals, **kwargs,
    )
    if hashing is not None:
        hashing.join()
    provenance.write_record(result, inputs, options, request)
    return result


def rerun(record, options: CompositeOptions, progress: ProgressFn | None = None, cancel=None):
    """A composite made again from its provenance record (``OUT.json``, `core.provenance`) into
    ``options.output``, through the same step as the first time: the record's rule, scale, windows and (with
    the medoid) a date band beside the new output. A 'stack' record (a tile's downloads, loose files)
    composites its own files again, each checked first (there, same size, same checksum or verified
    download); an area's runs its job again on the scenes it used, each object checked first against the
    source's listing (same ETag and size). An input gone or changed: InvalidInputError naming it."""
    from s2desktop.core import provenance
    from s2desktop.core.methods import parse_method

    rec = provenance.read_record(record)
    props = rec.props
    out = Path(options.output)
    dates = f"{out.stem}_dates{out.suffix or '.tif'}" if "dates" in rec.item.get("assets", {}) else None
    options = replace(options, scale=int(props["s2desktop:scale"]), method=parse_method(rec.rule),
                      window_size=props.get("s2desktop:window_size"),
                      date_band=str(out.with_name(dates)) if dates else None, **rec.mask_rules)
    if rec.mode != "area":
        provenance.check_files(rec)
        return run_composite(rec.stack(), options, progress, cancel)
    fields = rec.request_fields()
    recorded = {s.scene_id for s in fields["scenes"]}
    job = Job(Request(source=SourceSpec(**fields.pop("source")), composite=options, **fields), progress, cancel)
    listed = [s for s in job.search() if s.scene_id in recorded]
    gone = sorted(recorded - {s.scene_id for s in listed})
    if gone:
        raise InvalidInputError(f"input scene {gone[0]} is gone from {job.source.describe()}")
    provenance.check_objects(rec, listed)
    return job.run_area(listed).composite


class Job:
    """Runs a request's steps, reporting Progress events to ``progress`` and stopping when ``cancel`` is set."""

    def __init__(self, request: Request, progress: ProgressFn | None = None, cancel=None,
                 source: Source | None = None):
        self.request = request
        self.progress = progress
        self.cancel = cancel
        self._source = source

    @property
    def source(self) -> Source:
        if self._source is None:
            self._source = self.request.source.resolve(self.progress)
        return self._source

    def search(self) -> list:
        """The scenes of the tile, or of every tile under the area, in date order."""
        r = self.request
        if (r.tile is None and r.area is None) or r.start is None or r.end is None:
            raise InvalidInputError("a search needs a tile or an area, a start date and an end date")
        if r.area is not None:  # too large: said before any request
            areas.check_size(r.area, r.resolution if r.composite is not None else None, r.crs)
        names = [r.tile] if r.area is None else areas.area_tiles(r.area)
        where = r.tile if r.area is None else f"{r.area.name} ({len(names)} tiles)"
        emit(self.progress, Progress("search", 0, len(names), message=f"searching {where} {r.start} - {r.end} in "
                                                                     f"{self.source.describe()}"))
        scenes = []
        for i, tile in enumerate(names, 1):
            check_cancel(self.cancel, "search cancelled")
            scenes += catalog.search(self.source, tile, r.start, r.end, max_cloud=r.max_cloud)
            emit(self.progress, Progress("search", i, len(names), message="" if i < len(names) else
                                         f"{len(scenes)} scene(s)"))
        return sorted(scenes, key=lambda s: (s.date, s.tile, s.sequence))

    def plan(self, scenes=None) -> Plan:
        """The files to fetch for ``scenes`` (default: the request's, else a search): bands, and the SCL of
        every scene that has one when the request masks clouds."""
        scenes = list(scenes if scenes is not None else (self.request.scenes or self.search()))
        if not scenes:
            raise NotFoundError(_nothing_found(self.request))
        r = self.request
        allowed = mask_bands_for(r.mask)
        out = Path(r.download_dir)
        tasks = download.plan(scenes, list(r.bands), out)
        if allowed and MASK_BAND not in r.bands:  # each scene's mask: its SCL, else its L1C cloud mask
            for band in allowed:
                tasks += download.plan([s for s in scenes if _mask_band(s, allowed) == band], [band], out)
            self._say_unmasked(scenes)
        return Plan(tuple(scenes), tuple(tasks), bool(allowed), tuple(r.bands))

    def _say_unmasked(self, scenes) -> None:
        """A 'plan' event naming the scenes that have no mask of the request's choice: composited unmasked."""
        r = self.request
        unmasked = [s.scene_id for s in scenes if _mask_band(s, mask_bands_for(r.mask)) is None]
        if not unmasked:
            return
        why = ""
        if r.mask == "qi" and self.source.layout in ("cogs", "l2a"):
            why = " (Level-2A scenes carry no L1C cloud mask: use --mask auto or scl)"
        emit(self.progress, Progress("plan", message=f"{len(unmasked)} scene(s) without a cloud mask (--mask "
                                     f"{r.mask}) are composited unmasked{why}: {', '.join(unmasked[:5])}"
                                     + (", ..." if len(unmasked) > 5 else "")))

    def estimate(self, scenes=None, plan: Plan | None = None):
        """What the request would fetch and take, without fetching it: (the download's pricing.Cost -- bytes
        and requests --, the composite's compositing.CompositeEstimate -- windows, tasks, memory per worker),
        the windows planned on the bands' grid as the composite will (one band's header read for it). plan: a
        tile's download plan when the caller has it (else made here)."""
        from s2desktop.core.compositing.estimate import estimate_grid

        options = self.request.composite or CompositeOptions("")
        if self.request.area is not None:  # on the area's grid, in the VRTs' blocks, one date per acquisition
            grid, _region, acqs, used = self._area_plan(scenes)
            cost, shape, block, dates = self._area_fetch(used, grid), (grid.height, grid.width), \
                (streaming.BLOCK, streaming.BLOCK), len(acqs)
        else:
            plan = plan or self.plan(scenes)
            cost, dates = self.cost(plan), len(plan.scenes)
            shape, block = self._grid_of(next(t for t in plan.tasks if t.band == self.request.bands[0]))
        kwargs = {} if options.window_size is None else {"window_size": options.window_size}
        workers = options.workers if options.workers is not None else (os.cpu_count() or 1)
        return cost, estimate_grid(
            shape, block, dates, len(self.request.bands), scale=options.scale, workers=workers,
            count=True, date_band=bool(options.date_band), compress=options.compress, **kwargs)

    def _grid_of(self, task) -> tuple[tuple[int, int], tuple[int, int]]:
        """(height, width) and internal block of a band: its downloaded file, else the object's header."""
        import rasterio
        from rasterio.errors import RasterioIOError

        from s2desktop.core.errors import RasterError
        from s2desktop.core.rasterinfo import gdal_error_text

        local = Path(task.dest).is_file()
        path = str(task.dest) if local else streaming.object_path(self.source, task.key)
        try:
            with rasterio.Env(**({} if local else streaming.gdal_env(self.source))), rasterio.open(path) as ds:
                return (ds.height, ds.width), ds.block_shapes[0]
        except RasterioIOError as exc:
            raise RasterError(f"{path}: {gdal_error_text(exc)}") from None

    def cost(self, plan: Plan):
        """What downloading ``plan`` will cost (files already verified on disk left out): a pricing.Cost."""
        to_fetch = [t.size for t in plan.tasks if not download.is_verified(t)]
        return pricing.estimate(to_fetch, requester_pays=self.source.requester_pays, region=self.source.region,
                                endpoint_url=self.source.endpoint_url)

    def download(self, plan: Plan) -> list:
        check_cancel(self.cancel, "download cancelled")
        return download.download_all(self.source, plan.tasks, workers=self.request.download_workers,
                                     progress=self.progress, cancel=self.cancel)

    def composite(self, inputs: Stack):
        options = self.request.composite
        if options is None:
            raise InvalidInputError("the request has no composite output")
        check_cancel(self.cancel, "composite cancelled")
        return run_composite(inputs, options, self.progress, self.cancel)

    def run(self) -> JobResult:
        """search -> plan -> download -> composite (when the request has a composite output); for an area,
        search -> stream the windows of the area from COGs -> composite."""
        if self.request.area is not None:
            return self.run_area()
        plan = self.plan()
        results = self.download(plan)
        if self.request.composite is None:
            return JobResult(plan.scenes, tuple(results), None, None)
        inputs = plan.inputs()
        return JobResult(plan.scenes, tuple(results), inputs, self.composite(inputs))

    def run_area(self, scenes=None) -> JobResult:
        """The area's composite on its own grid, clipped to it: from COGs, the windows under the area fetched
        (or found in the cache); from JPEG 2000 sources, the tiles' files downloaded first."""
        r = self.request
        if r.composite is None:
            raise InvalidInputError("an area has no files to download: give it a composite output")
        scratch = Path(tempfile.mkdtemp(prefix="s2desktop-area-"))
        area = None
        try:
            area = self.area_inputs(scenes, scratch, overlap=True)
            result = run_composite(area.inputs, area.options, self.progress, self.cancel,
                                   request=replace(r, scenes=area.scenes), arrivals=area.arrivals)
        finally:
            if area is not None and area.arrivals is not None:
                area.arrivals.close()  # rows no window needed any more, or after a failure: stop fetching
            shutil.rmtree(scratch, ignore_errors=True)
            self._cache().trim()
        return JobResult(area.scenes, area.downloads, area.inputs, result)

    def area_inputs(self, scenes, scratch: Path, overlap: bool = False) -> AreaInputs:
        """The area's stack (its VRTs written into ``scratch``, reading the fetched windows, a local mirror's
        files or the downloads) and the composite options it takes (the area's clip and tags): what
        :meth:`run_area` composites and what `core.explain` reads a pixel of. Remote COGs' windows are fetched on
        a thread of their own (`core.arrivals`); ``overlap``: return while they are still arriving (the composite
        runs each window as soon as its inputs are in), else once they are all in."""
        r = self.request
        grid, region, acqs, used = self._area_plan(scenes)
        locate, downloads, origin, arrivals = self._area_rasters(used, grid, scratch)
        try:
            if arrivals is not None and not overlap:
                arrivals.wait()
            check_cancel(self.cancel, "composite cancelled")
            inputs = streaming.build_inputs(acqs, grid, locate, scratch, masks=mask_bands_for(r.mask),
                                            origin=origin, bands=tuple(r.bands))
            tiles = ",".join(sorted({s.tile for s in used}))
            tags = {**areas.area_tags(r.area, grid, r.composite.scale), "TILE": tiles,
                    **streaming.resampling_tags(acqs, locate, r.bands, grid), **(r.composite.tags or {})}
        except BaseException:
            if arrivals is not None:
                arrivals.close()
            raise
        return AreaInputs(inputs, replace(r.composite, clip=region, tags=tags), tuple(used), downloads, arrivals)

    def _area_plan(self, scenes=None):
        """An area's grid (checked before any request), its region on it, and the acquisitions that cover it
        -> (grid, region, acquisitions, the scenes used in mosaic order)."""
        r = self.request
        grid = areas.check_size(r.area, r.resolution, r.crs)  # too large: said before any request
        scenes = list(scenes if scenes is not None else (r.scenes or self.search()))
        if not scenes:
            raise NotFoundError(_nothing_found(r))
        if grid is None:  # no resolution given: the finest the scenes have (100 m on the demo, 10 m on AWS)
            resolution = streaming.finest_resolution(self.source, scenes, r.bands) or 10.0
            emit(self.progress, Progress("plan", message=f"resolution {resolution:g} m, the finest the scenes have "
                                                         "(choose another with --resolution)"))
            grid = areas.output_grid(r.area, resolution, r.crs)
        region = areas.geometry_in(r.area, grid.crs)
        acqs = streaming.prioritise(streaming.acquisitions(scenes), grid, region)
        used = [s for a in acqs for s in a.scenes]  # in each acquisition's mosaic order
        _check_bands_present(used, r.bands)
        skipped = len(scenes) - len(used)
        emit(self.progress, Progress("plan", message=f"{len(acqs)} acquisition(s) of {len({s.tile for s in used})} "
                                                     f"tile(s) on a {grid.width} x {grid.height} px grid at "
                                                     f"{grid.resolution:g} m ({grid.crs})" + (
                                                         f"; {skipped} scene(s) left out, covered by a tile "
                                                         "before them" if skipped else "")))
        return grid, region, acqs, used

    def _area_fetch(self, used, grid):
        """What an area's inputs take to fetch -> pricing.Cost: its COGs' windows not cached (their headers are
        read for it: the requests of the plan), a local mirror's nothing, a JPEG 2000 source's files."""
        if self.source.layout != "cogs":
            return self.cost(self.plan(used))
        if self.source.is_local:
            return pricing.Cost(0, 0, None, self.source.region or "")
        masked = MASK_BAND in mask_bands_for(self.request.mask)
        bands = tuple(self.request.bands) + ((MASK_BAND,) if masked else ())
        store, cache = self.source.store, self._cache()
        wanted = {(s.scene_id, b): fetch.remote_of(store, s, k)
                  for s in used for b, k in s.bands.items() if b in bands}
        pieces = [row for p in fetch.plan_pieces(store, wanted, grid, cache, None, self.cancel).values()
                  if p is not None for row in fetch.strips(p) if cache.get(cache.key(row.identity, row.etag)) is None]
        return pricing.Cost(sum(p.nbytes for p in pieces), sum(len(fetch.ranges(p)) for p in pieces), None,
                            self.source.region or "")

    def _area_rasters(self, scenes, grid, scratch: Path):
        """-> (locate(scene, band) -> the raster to read or None, downloads, where the scenes' metadata came
        with the rasters, the windows still arriving or None): windows of remote COGs fetched on a thread of
        their own ('streamed', `core.arrivals`), the files of a local mirror, or the downloaded files of a JPEG
        2000 source."""
        masked = MASK_BAND in mask_bands_for(self.request.mask)  # COGs are Level-2A: their SCL, no L1C mask
        bands = tuple(self.request.bands) + ((MASK_BAND,) if masked else ())
        if self.source.layout != "cogs":  # JPEG 2000 tiles, their masks (SCL or L1C) with them: the plan's
            plan = self.plan(scenes)
            downloads = tuple(self.download(plan))
            files = {(t.scene.scene_id, t.band): str(Path(t.dest).resolve()) for t in plan.tasks
                     if Path(t.dest).is_file()}
            return (lambda s, b: files.get((s.scene_id, b))), downloads, "download metadata", None
        if mask_bands_for(self.request.mask):  # the plan says it for downloaded tiles; COGs: here
            self._say_unmasked(scenes)
        if self.source.is_local:
            return ((lambda s, b: streaming.object_path(self.source, s.bands[b]) if b in s.bands else None), (),
                    "local mirror metadata", None)
        if clusterinputs.on_workers(self.request.composite.scheduler, self.source):  # the workers read the COGs
            return clusterinputs.area_rasters(self.source, scenes, bands, grid, self._cache(), scratch, self.progress,
                                              self.cancel), (), "streamed", None
        store, cache = self.source.store, self._cache()
        if (self.source.endpoint_url or "").lower().startswith("http://"):
            emit(self.progress, Progress("plan", message=f"note: {self.source.endpoint_url} is plain HTTP: nothing "
                                         "protects the bytes on the way but each tile's own checksum and size"))
        wanted = {(s.scene_id, b): fetch.remote_of(store, s, k)
                  for s in scenes for b, k in s.bands.items() if b in bands}
        pieces = fetch.plan_pieces(store, wanted, grid, cache, self.progress, self.cancel)
        pieces = {item: p for item, p in pieces.items() if p is not None}
        arrivals = Arrivals(store, pieces, cache, scratch, grid, self.progress, self.cancel,
                            margin=self.request.composite.mask_buffer if self.request.composite else 0.0).start()
        return (lambda s, b: arrivals.path((s.scene_id, b))), (), "streamed", arrivals

    def _cache(self) -> WindowCache:
        return WindowCache(self.request.cache_dir, self.request.cache_limit)


def _check_bands_present(scenes, bands) -> None:
    """InvalidInputError (one line, before any fetch) when a scene lacks one of the bands, as download.plan says
    it for a tile."""
    for s in scenes:
        missing = [b for b in bands if b not in (s.bands or {})]
        if missing:
            have = ", ".join(sorted(b for b in (s.bands or {}) if b.startswith("B"))) or "none"
            raise InvalidInputError(f"band {', '.join(missing)} is not in scene {s.scene_id} (it has: {have})")


def _mask_band(scene, allowed=MASK_BANDS) -> str | None:
    """The band that masks a scene's clouds, of those ``allowed``: its SCL (L2A), else its L1C cloud mask; None:
    it has none."""
    return next((b for b in allowed if b in (scene.bands or {})), None)


def _nothing_found(r: Request) -> str:
    cloud = f" with cloud cover <= {r.max_cloud:g}%" if r.max_cloud is not None else ""
    where = r.tile if r.area is None else r.area.name
    return f"no scenes of {where} between {r.start} and {r.end}{cloud}"
